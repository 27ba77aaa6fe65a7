"""HTTP to one API server: the pooled aiohttp session, TLS, proxies, credentials, the rate limiter,
retries with backoff, and the mapping of error responses to the typed ``ApiError`` tree."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import re
import ssl
import tempfile
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from kubevisor.api import Clock, error_from_status, now
from kubevisor.client._auth import Authenticator, Credentials
from kubevisor.client._clock import MonotonicClock, SystemClock
from kubevisor.client._config import ClientConfig
from kubevisor.client._decode import loads
from kubevisor.client._errors import TransportError
from kubevisor.client._options import ClientOptions
from kubevisor.client._ratelimit import TokenBucket

__all__ = ["Response", "Transport", "quote_segment"]

log = logging.getLogger("kubevisor.client")

X = TypeVar("X")

_READS: Final = frozenset({"GET", "HEAD"})
_RETRYABLE_READ_STATUSES: Final = frozenset({500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Response:
    """A complete response: status, headers and the raw body."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return loads(self.body) if self.body else None


def raise_for_status(status: int, headers: Mapping[str, str], body: bytes) -> None:
    """Raise the typed :class:`ApiError` for a non-2xx response; its ``status`` is the server's
    Status body (or one synthesised around a body that is not a Status, such as a proxy's page)."""
    if status < 400:
        return
    try:
        decoded: Any = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        decoded = body.decode("utf-8", errors="replace").strip() or f"HTTP {status}"
    error = error_from_status(decoded, status)
    retry_after = _retry_after_header(headers)
    if retry_after is not None and error.retry_after is None:
        error.status.setdefault("details", {})["retryAfterSeconds"] = int(retry_after)
    raise error


def _retry_after_header(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP-date (RFC 9110)."""
    value = headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, (parsedate_to_datetime(value) - now()).total_seconds())
    return None


def _retry_after_body(body: bytes) -> float | None:
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        decoded = orjson.loads(body)
        seconds = decoded.get("details", {}).get("retryAfterSeconds")
        if seconds is not None:
            return float(seconds)
    return None


_WARNING = re.compile(r'^\s*\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"')


def _warning_text(value: str) -> str:
    """The text of a ``Warning: 299 - "text"`` header (RFC 7234 quoted-string unescaped)."""
    match = _WARNING.match(value)
    if match is None:
        return value.strip()
    return re.sub(r"\\(.)", r"\1", match.group(1))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _environment_proxy(server: str) -> str | None:
    parts = urlsplit(server)
    host = parts.hostname or ""
    if _is_loopback(host):
        return None
    proxies = urllib.request.getproxies_environment()
    bypass = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009 - missing from typeshed
    if bypass(host, proxies):
        return None
    return proxies.get(parts.scheme)


_SEGMENT_SAFE: Final = ":@!$&'()*+,;=-._~"
# Names may hold ':' (system:controller:x) and '@'; only '/', '%', '?', '#' and the like must go.
_NEEDS_NO_QUOTING: Final = re.compile(r"[A-Za-z0-9:@!$&'()*+,;=\-._~]*").fullmatch


def quote_segment(segment: str) -> str:
    """One path segment, percent-encoded so that it cannot escape its segment."""
    # Almost every segment (DNS names, group names, versions) has nothing to escape: one regex
    # match is several times cheaper than quote(), which runs for every request.
    if _NEEDS_NO_QUOTING(segment) is not None:
        return segment
    return quote(segment, safe=_SEGMENT_SAFE)


class Transport:
    """Sends requests to ``config.server``.

    Every attempt (retries included) waits for a rate-limiter token, presents fresh credentials and
    honours the timeouts of :class:`ClientOptions`.  Non-2xx responses become :class:`ApiError`;
    connection failures become :class:`TransportError` once retries (where allowed) are spent.
    """

    def __init__(
        self,
        config: ClientConfig,
        options: ClientOptions,
        *,
        clock: MonotonicClock | None = None,
        wall_clock: Clock = now,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.options = options
        self.clock: MonotonicClock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.limiter = (
            TokenBucket(options.qps, options.burst, clock=self.clock) if options.qps is not None else None
        )
        self.auth = Authenticator(
            config,
            clock=self.clock,
            wall_clock=wall_clock,
            token_refresh_period=options.token_refresh_period,
            exec_timeout=options.exec_timeout,
        )
        self._base = config.server
        base_url = URL(config.server, encoded=True)
        # Building request URLs from the parsed base (with_path) skips re-parsing scheme, host and
        # port for every request; a base with a query or fragment (never seen in practice) is
        # joined as text instead.
        self._base_url: URL | None = None if base_url.raw_query_string or base_url.raw_fragment else base_url
        self._base_path = "" if base_url.raw_path == "/" else base_url.raw_path
        self._proxy = config.proxy_url or (_environment_proxy(config.server) if options.trust_env else None)
        self._ssl_contexts: dict[tuple[bytes, bytes] | None, ssl.SSLContext] = {}
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._timeout = aiohttp.ClientTimeout(
            total=options.request_timeout,
            sock_connect=options.connect_timeout,
            sock_read=options.read_timeout,
        )

    # ---------------------------------------------------------------------------------------------
    # session and TLS

    def _session_now(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.options.max_connections, limit_per_host=0)
            headers = {"User-Agent": self.options.user_agent, "Accept": "application/json"}
            if self.config.disable_compression:
                headers["Accept-Encoding"] = "identity"
            self._session = aiohttp.ClientSession(connector=connector, headers=headers, trust_env=False)
        return self._session

    async def close(self) -> None:
        """Close pooled connections; idempotent.  Requests after this raise ``RuntimeError``."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _ssl_for(self, credentials: Credentials) -> ssl.SSLContext | bool:
        if not self.config.uses_tls:
            return True  # ignored for http://
        key = credentials.client_cert
        context = self._ssl_contexts.get(key)
        if context is None:
            context = self._build_ssl(key)
            self._ssl_contexts[key] = context
        return context

    def _build_ssl(self, cert: tuple[bytes, bytes] | None) -> ssl.SSLContext:
        config = self.config
        if config.ca_data:
            try:
                context = ssl.create_default_context(cadata=config.ca_data.decode("ascii", errors="strict"))
            except (ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
                raise TransportError(
                    f"the certificate authority data of {config.source or 'the config'} is not valid PEM: {exc}"
                ) from exc
        else:
            context = ssl.create_default_context()
        if config.insecure_skip_tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if cert is not None:
            # The ssl module loads certificates only from files: write them to a private directory
            # that lives just long enough to be read.
            with tempfile.TemporaryDirectory(prefix="kubevisor-") as tmp:
                cert_path, key_path = Path(tmp, "client.crt"), Path(tmp, "client.key")
                cert_path.write_bytes(cert[0])
                key_path.touch(mode=0o600)
                key_path.write_bytes(cert[1])
                try:
                    context.load_cert_chain(cert_path, key_path)
                except ssl.SSLError as exc:
                    raise TransportError(
                        f"the client certificate or key of {config.source or 'the config'} is not usable: {exc}"
                    ) from exc
        return context

    # ---------------------------------------------------------------------------------------------
    # requests

    def url(self, path: str) -> URL:
        """The absolute URL of an API path (``/api/v1/...``) under the server's base URL."""
        if self._base_url is None:
            return URL(self._base + path, encoded=True)
        return self._base_url.with_path(self._base_path + path, encoded=True)

    @staticmethod
    def path(*segments: str) -> str:
        """Join path segments, percent-encoding each (a name cannot escape its segment)."""
        return "".join("/" + quote_segment(s) for s in segments)

    def _backoff(self, attempt: int) -> float:
        retry = self.options.retry
        return self.rng.uniform(0.0, min(retry.backoff_max, retry.backoff_base * (2**attempt)))

    def _response_retry_delay(
        self, method: str, status: int, headers: Mapping[str, str], body: bytes | None, attempt: int
    ) -> float | None:
        if attempt >= self.options.retry.max_retries:
            return None
        if status != 429 and status < 500:
            return None
        retry_after = _retry_after_header(headers)
        if retry_after is None and body is not None:
            retry_after = _retry_after_body(body)
        if retry_after is not None:
            return retry_after
        if status == 429 or (method in _READS and status in _RETRYABLE_READ_STATUSES):
            return self._backoff(attempt)
        return None

    def _connection_retry_delay(self, method: str, exc: BaseException, attempt: int) -> float | None:
        if attempt >= self.options.retry.max_retries or isinstance(exc, aiohttp.ClientSSLError):
            return None
        never_sent = isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
        if method in _READS or never_sent:
            return self._backoff(attempt)
        return None

    def _report_warnings(self, headers: Mapping[str, str] | CIMultiDictProxy[str]) -> None:
        if "Warning" not in headers:
            return  # nearly every response: one lookup
        getall = getattr(headers, "getall", None)
        values = (
            getall("Warning", [])
            if getall is not None
            else ([headers["Warning"]] if "Warning" in headers else [])
        )
        for value in values:
            text = _warning_text(value)
            if self.options.warning_handler is not None:
                self.options.warning_handler(text)
            else:
                log.warning("server warning: %s", text)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str | None = None,
    ) -> Response:
        """Send a request and return the complete 2xx response.

        Raises :class:`ApiError` (typed by the Status) for an error response once retries are spent,
        :class:`TransportError` for a connection that failed, ``CredentialError`` when credentials
        cannot be obtained.
        """
        response, data = await self._send(
            method, path, params=params, body=body, content_type=content_type, accept=accept, stream=False
        )
        assert data is not None
        self._report_warnings(response.headers)
        raise_for_status(response.status, response.headers, data)
        return Response(response.status, response.headers, data)

    async def open_stream(
        self, path: str, *, params: Mapping[str, str] | None = None, read_timeout: float
    ) -> aiohttp.ClientResponse:
        """``GET`` a streaming response (a watch).  Returns the open 2xx response, whose body the
        caller reads and must release; a read that waits more than ``read_timeout`` seconds for a
        byte raises a timeout.  Errors as :meth:`request`."""
        response, _ = await self._send("GET", path, params=params, stream=True, read_timeout=read_timeout)
        if response.status >= 400:
            try:
                data = await response.read()
            finally:
                response.release()
            raise_for_status(response.status, response.headers, data)
        self._report_warnings(response.headers)
        return response

    async def get_streamed(
        self,
        path: str,
        consume: Callable[[aiohttp.StreamReader], Awaitable[X]],
        *,
        params: Mapping[str, str] | None = None,
    ) -> X:
        """``GET`` a complete response whose body ``consume`` reads as it arrives (large lists).
        A connection that breaks mid-body is retried like any read (the body is consumed afresh:
        ``consume`` must not keep state across calls).  Errors as :meth:`request`."""
        attempt = 0
        while True:
            response, _ = await self._send(
                "GET", path, params=params, stream=True, read_timeout=self.options.read_timeout
            )
            try:
                if response.status >= 400:
                    data = await response.read()
                    raise_for_status(response.status, response.headers, data)
                self._report_warnings(response.headers)
                async with asyncio.timeout(self.options.request_timeout):
                    return await consume(response.content)
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
                delay = self._connection_retry_delay("GET", exc, attempt)
                if delay is None:
                    raise TransportError(
                        f"GET {self.url(path)}: {type(exc).__name__}: {exc}",
                        method="GET",
                        url=str(self.url(path)),
                    ) from exc
                attempt += 1
                await self.clock.sleep(delay)
            finally:
                response.release()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str | None = None,
        stream: bool,
        read_timeout: float | None = None,
    ) -> tuple[aiohttp.ClientResponse, bytes | None]:
        session = self._session_now()
        url = self.url(path)
        timeout = self._timeout
        if stream:
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self.options.connect_timeout, sock_read=read_timeout
            )
        attempt = 0
        reauthenticated = False
        while True:
            if self.limiter is not None:
                await self.limiter.acquire()
            credentials = await self.auth.credentials()
            headers: CIMultiDict[str] | None = None
            if credentials.headers or content_type is not None or accept is not None:
                headers = CIMultiDict(credentials.headers)
                if content_type is not None:
                    headers["Content-Type"] = content_type
                if accept is not None:
                    headers["Accept"] = accept
            response: aiohttp.ClientResponse | None = None
            try:
                response = await session.request(
                    method,
                    url,
                    params=params,
                    data=body,
                    headers=headers,
                    ssl=self._ssl_for(credentials),
                    server_hostname=self.config.tls_server_name,
                    proxy=self._proxy,
                    timeout=timeout,
                    allow_redirects=False,
                )
                data = None if stream and response.status < 400 else await response.read()
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if response is not None:
                    response.release()
                delay = self._connection_retry_delay(method, exc, attempt)
                if delay is None:
                    raise TransportError(
                        f"{method} {url.with_query(params or {})}: {type(exc).__name__}: {exc}",
                        method=method,
                        url=str(url),
                    ) from exc
                log.debug("%s %s failed (%s), retrying in %.2fs", method, url, exc, delay)
                attempt += 1
                await self.clock.sleep(delay)
                continue
            if response.status == 401 and not reauthenticated and self.auth.refreshable:
                reauthenticated = True
                if await self.auth.unauthorized(credentials):
                    # The rejected credential was replaced (expired token, rotated file): a 401 means
                    # nothing was done, so retrying once with the new one is safe for any verb.
                    response.release()
                    continue
            delay = self._response_retry_delay(method, response.status, response.headers, data, attempt)
            if delay is not None:
                response.release()
                log.debug("%s %s answered %s, retrying in %.2fs", method, url, response.status, delay)
                attempt += 1
                await self.clock.sleep(delay)
                continue
            return response, data
