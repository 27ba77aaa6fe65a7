"""Credentials for requests: static tokens, basic auth, re-read token files, exec credential
plugins and client certificates, with refresh on expiry and on ``401 Unauthorized``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from kubevisor.api import Clock, now, parse_time
from kubevisor.client._clock import MonotonicClock
from kubevisor.client._config import ClientConfig, ExecConfig
from kubevisor.client._errors import CredentialError

__all__ = ["Authenticator", "Credentials"]

log = logging.getLogger("kubevisor.client")


@dataclass(frozen=True, eq=False)
class Credentials:
    """What one request presents: headers (``Authorization``, ``Impersonate-*``) and optionally a
    PEM client certificate and key.  Compared by identity: a refresh yields a new object."""

    headers: tuple[tuple[str, str], ...] = ()
    client_cert: tuple[bytes, bytes] | None = None


class _TokenFile:
    """A bearer token file, re-read when the cached copy is older than ``period`` seconds or after
    a 401 (client-go's cached file token source: rotated service-account tokens are picked up)."""

    def __init__(self, path: str, initial: str | None, period: float, clock: MonotonicClock) -> None:
        self.path = Path(path)
        self.period = period
        self.clock = clock
        self.token = initial
        self.read_at = clock.now() if initial is not None else float("-inf")

    def current(self, force: bool = False) -> str | None:
        if force or self.clock.now() - self.read_at >= self.period:
            try:
                text = self.path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                if self.token is None:
                    raise CredentialError(
                        f"cannot read token file {self.path}: {exc.strerror or exc}"
                    ) from exc
                # Keep serving the last good token: a transient read failure should not fail requests.
                log.warning("cannot re-read token file %s, keeping the previous token: %s", self.path, exc)
            else:
                self.token = text or self.token
            self.read_at = self.clock.now()
        return self.token


@dataclass(frozen=True)
class _ExecResult:
    token: str | None
    cert: tuple[bytes, bytes] | None
    expires: datetime | None


class _ExecPlugin:
    """Runs an exec credential plugin and caches its answer until ``status.expirationTimestamp``
    (forever when it gives none), or until a 401 shows the credential was rejected.  Concurrent
    callers share one run."""

    def __init__(
        self,
        spec: ExecConfig,
        config: ClientConfig,
        wall_clock: Clock,
        timeout: float,
        environ: Mapping[str, str],
    ) -> None:
        self.spec = spec
        self.config = config
        self.wall_clock = wall_clock
        self.timeout = timeout
        self.environ = environ
        self.cached: _ExecResult | None = None
        self.lock = asyncio.Lock()

    def _valid(self, result: _ExecResult | None) -> bool:
        return result is not None and (result.expires is None or self.wall_clock() < result.expires)

    async def get(self, *, reject: _ExecResult | None = None) -> _ExecResult:
        """The cached result while valid; a fresh run otherwise, or when the cache is ``reject``."""
        cached = self.cached
        if self._valid(cached) and cached is not reject:
            assert cached is not None
            return cached
        async with self.lock:
            cached = self.cached
            if self._valid(cached) and cached is not reject:
                assert cached is not None
                return cached
            self.cached = await self._run()
            return self.cached

    def _exec_info(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"interactive": False}
        if self.spec.provide_cluster_info:
            cluster: dict[str, Any] = {"server": self.config.server}
            if self.config.tls_server_name:
                cluster["tls-server-name"] = self.config.tls_server_name
            if self.config.insecure_skip_tls_verify:
                cluster["insecure-skip-tls-verify"] = True
            if self.config.ca_data:
                cluster["certificate-authority-data"] = base64.b64encode(self.config.ca_data).decode()
            if self.config.proxy_url:
                cluster["proxy-url"] = self.config.proxy_url
            if self.config.disable_compression:
                cluster["disable-compression"] = True
            if self.spec.cluster_config is not None:
                cluster["config"] = self.spec.cluster_config
            spec["cluster"] = cluster
        return {"apiVersion": self.spec.api_version, "kind": "ExecCredential", "spec": spec}

    async def _run(self) -> _ExecResult:
        spec = self.spec
        name = f"exec plugin {spec.command!r} (user {spec.user!r})"
        if spec.interactive_mode == "Always":
            raise CredentialError(
                f"{name} requires interactiveMode Always, but the client never has a terminal to offer"
            )
        env = dict(self.environ)
        env.update(spec.env)
        env["KUBERNETES_EXEC_INFO"] = orjson.dumps(self._exec_info()).decode()
        try:
            process = await asyncio.create_subprocess_exec(
                spec.command,
                *spec.args,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            hint = f"\n{spec.install_hint}" if spec.install_hint else ""
            raise CredentialError(f"{name} could not be started: {exc.strerror or exc}{hint}") from exc
        try:
            async with asyncio.timeout(self.timeout):
                stdout, stderr = await process.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise CredentialError(f"{name} did not finish within {self.timeout:g}s") from None
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise
        diagnostics = stderr.decode(errors="replace").strip()
        if process.returncode != 0:
            raise CredentialError(
                f"{name} failed with exit code {process.returncode}"
                + (f": {diagnostics}" if diagnostics else "")
            )
        return self._parse(stdout, name)

    def _parse(self, stdout: bytes, name: str) -> _ExecResult:
        try:
            answer = orjson.loads(stdout)
        except orjson.JSONDecodeError as exc:
            raise CredentialError(f"{name} printed something that is not JSON: {exc}") from exc
        if not isinstance(answer, dict) or answer.get("kind") != "ExecCredential":
            raise CredentialError(f"{name} did not print an ExecCredential object")
        if answer.get("apiVersion") != self.spec.api_version:
            raise CredentialError(
                f"{name} is configured to use API version {self.spec.api_version}, "
                f"plugin returned version {answer.get('apiVersion')}"
            )
        status = answer.get("status")
        if not isinstance(status, dict):
            raise CredentialError(f"{name} didn't return a status field")
        token = status.get("token") or None
        cert_pem, key_pem = status.get("clientCertificateData"), status.get("clientKeyData")
        if bool(cert_pem) != bool(key_pem):
            raise CredentialError(f"{name} returned only certificate or key, not both")
        if not token and not cert_pem:
            raise CredentialError(f"{name} didn't return a token or cert/key pair")
        if token is not None and not isinstance(token, str):
            raise CredentialError(f"{name} returned a status.token that is not a string")
        cert: tuple[bytes, bytes] | None = None
        if cert_pem:
            if not isinstance(cert_pem, str) or not isinstance(key_pem, str):
                raise CredentialError(f"{name} returned certificate data that is not a string")
            cert = (cert_pem.encode(), key_pem.encode())
        expires: datetime | None = None
        if status.get("expirationTimestamp"):
            try:
                expires = parse_time(str(status["expirationTimestamp"]))
            except ValueError as exc:
                raise CredentialError(
                    f"{name} returned an invalid status.expirationTimestamp: {exc}"
                ) from exc
        return _ExecResult(token, cert, expires)


class Authenticator:
    """Produces the :class:`Credentials` for each request from a :class:`ClientConfig`.

    Guarantees: static credentials cost nothing per request; a token file is re-read at most every
    ``token_refresh_period`` seconds (and at once after a 401); an exec plugin runs once per
    credential lifetime however many requests are concurrent.  ``credentials()`` raises
    :class:`CredentialError` when a plugin or token file fails.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        clock: MonotonicClock,
        wall_clock: Clock = now,
        token_refresh_period: float = 60.0,
        exec_timeout: float = 120.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self._extra = tuple(_impersonation_headers(config))
        static_cert = (
            (config.client_certificate_data, config.client_key_data)
            if config.client_certificate_data is not None and config.client_key_data is not None
            else None
        )
        self._static_cert = static_cert
        self._token_file = (
            _TokenFile(config.token_file, config.token, token_refresh_period, clock)
            if config.token_file
            else None
        )
        self._exec = (
            _ExecPlugin(
                config.exec, config, wall_clock, exec_timeout, os.environ if environ is None else environ
            )
            if config.exec is not None
            else None
        )
        self._last_exec: _ExecResult | None = None
        self._cached: Credentials | None = None
        self._cached_token: str | None = None
        if self._token_file is None and self._exec is None:
            self._cached = self._build(config.token, None)

    @property
    def refreshable(self) -> bool:
        """Whether a 401 can be answered by fetching different credentials."""
        return self._token_file is not None or self._exec is not None

    def _build(self, token: str | None, exec_cert: tuple[bytes, bytes] | None) -> Credentials:
        headers: list[tuple[str, str]] = []
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        elif self.config.username is not None or self.config.password is not None:
            raw = f"{self.config.username or ''}:{self.config.password or ''}".encode()
            headers.append(("Authorization", "Basic " + base64.b64encode(raw).decode()))
        headers.extend(self._extra)
        return Credentials(tuple(headers), exec_cert or self._static_cert)

    async def credentials(self) -> Credentials:
        if self._exec is not None:
            result = await self._exec.get()
            if result is not self._last_exec or self._cached is None:
                self._last_exec = result
                self._cached = self._build(result.token, result.cert)
            return self._cached
        if self._token_file is not None:
            token = self._token_file.current()
            if token != self._cached_token or self._cached is None:
                self._cached_token = token
                self._cached = self._build(token, None)
            return self._cached
        assert self._cached is not None
        return self._cached

    async def unauthorized(self, used: Credentials) -> bool:
        """A request presenting ``used`` got 401.  Refresh what is refreshable (re-run the plugin,
        re-read the token file) unless someone already did; return whether the credentials the next
        request gets differ from ``used`` (so that retrying it once is worthwhile)."""
        if self._exec is not None:
            if used is self._cached and self._last_exec is not None:
                await self._exec.get(reject=self._last_exec)
        elif self._token_file is not None and used is self._cached:
            self._token_file.current(force=True)
        else:
            return False
        fresh = await self.credentials()
        return fresh.headers != used.headers or fresh.client_cert != used.client_cert


def _impersonation_headers(config: ClientConfig) -> list[tuple[str, str]]:
    imp = config.impersonate
    if imp is None:
        return []
    headers = [("Impersonate-User", imp.user)]
    if imp.uid:
        headers.append(("Impersonate-Uid", imp.uid))
    headers.extend(("Impersonate-Group", group) for group in imp.groups)
    for key, values in imp.extra:
        # Header names cannot carry arbitrary characters: upstream percent-encodes extra keys.
        headers.extend((f"Impersonate-Extra-{quote(key, safe='')}", value) for value in values)
    return headers
