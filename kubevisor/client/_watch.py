"""Watch streams that do not go blind: resumed from the last resourceVersion after a clean close or
a network failure, recycled when silent for too long, and ending in :class:`Expired` when the
server can no longer serve the history the caller needs (so that the caller relists)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import aiohttp
import orjson

from kubevisor.api import (
    ApiError,
    Expired,
    ServerError,
    ServerTimeout,
    ServiceUnavailable,
    TooManyRequests,
    error_from_status,
)
from kubevisor.client._decode import loads_many
from kubevisor.client._errors import TransportError
from kubevisor.client._options import WatchOptions
from kubevisor.client._transport import Transport

__all__ = ["Watch", "WatchEvent"]

log = logging.getLogger("kubevisor.client")

R = TypeVar("R")

# Errors on (re)opening a stream that a later attempt may not meet.
_TRANSIENT_API_ERRORS = (TooManyRequests, ServiceUnavailable, ServerTimeout, ServerError)
# Errors while reading a stream: the connection died, or stayed silent past the idle timeout.
_STREAM_FAILURES = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError, ConnectionError)


_DECODE_BATCH = 256


@dataclass(frozen=True, slots=True)
class WatchEvent(Generic[R]):
    """One change: ``type`` is ``ADDED``, ``MODIFIED`` or ``DELETED`` (which carries the object's
    final state); ``resource_version`` is the object's, which the watch resumes after."""

    type: str
    object: R
    resource_version: str


# Events are built field by field through the slots' descriptors: the frozen dataclass's __init__
# assigns through object.__setattr__, which costs as much again (0.62 -> 0.35 us an event).
_new_event = object.__new__
_set_type = WatchEvent.__dict__["type"].__set__
_set_object = WatchEvent.__dict__["object"].__set__
_set_version = WatchEvent.__dict__["resource_version"].__set__


def _event(kind: str, obj: Any, version: str) -> WatchEvent[Any]:
    event: WatchEvent[Any] = _new_event(WatchEvent)
    _set_type(event, kind)
    _set_object(event, obj)
    _set_version(event, version)
    return event


class Watch(Generic[R]):
    """An async iterator of :class:`WatchEvent`, open until :meth:`close` (or ``async with`` exit).

    Guarantees:

    * Each event is delivered once, in server order, across reconnections: a stream that the
      server closes (its ``timeoutSeconds``), that breaks, or that stays silent for longer than
      ``WatchOptions.idle_timeout`` is reopened from the last resourceVersion seen (events and
      bookmarks), which :attr:`resource_version` exposes.
    * Bookmarks are requested and consumed: they advance :attr:`resource_version` but are not
      yielded, so a quiet resource resumes from a recent version.
    * When the server cannot resume (an in-stream ``ERROR`` with code 410, or HTTP 410), the watch
      raises :class:`~kubevisor.api.Expired` and closes: the caller must relist and watch from the
      list's resourceVersion.  Other ``ERROR`` events raise their typed :class:`ApiError`.
    * ``WatchOptions.max_reconnect_failures`` consecutive failures to reopen raise
      :class:`TransportError` (or the server's last error).  Nothing is retried silently forever.

    When no ``resource_version`` was given the first stream starts with synthetic ``ADDED`` events
    for every existing object; resumption then continues from the last one seen.
    """

    def __init__(
        self,
        transport: Transport,
        path: str,
        params: dict[str, str],
        convert: Callable[[dict[str, Any]], R],
        *,
        resource_version: str | None,
        options: WatchOptions,
    ) -> None:
        self._transport = transport
        self._path = path
        self._params = params
        self._convert = convert
        self._options = options
        self.resource_version: str | None = resource_version
        """The last resourceVersion seen (the start version until an event or bookmark arrives)."""
        self._response: aiohttp.ClientResponse | None = None
        self._lines: deque[bytes] = deque()
        self._events: deque[Any] = deque()
        self._pending = b""
        self._received = False
        self._failures = 0
        self._closed = False
        self.reconnects = 0
        """How many times a stream was reopened (for diagnostics and metrics)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def close(self) -> None:
        """Stop watching and release the connection; idempotent.  Iteration then ends."""
        self._closed = True
        self._drop_stream()

    def _drop_stream(self) -> None:
        if self._response is not None:
            self._response.close()  # not release(): an unfinished chunked body cannot be reused
            self._response = None
        self._lines.clear()
        self._events.clear()
        self._pending = b""

    async def _open(self) -> None:
        params = dict(self._params)
        if self.resource_version:
            params["resourceVersion"] = self.resource_version
        minimum = self._options.min_timeout_seconds
        params["timeoutSeconds"] = str(int(self._transport.rng.uniform(minimum, 2 * minimum)))
        self._response = await self._transport.open_stream(
            self._path, params=params, read_timeout=self._options.idle_timeout
        )
        self._received = False

    async def _fail(self, reason: str, error: BaseException) -> None:
        """Count a failure, give up after too many in a row, otherwise back off before resuming."""
        self._drop_stream()
        self._failures += 1
        if self._failures > self._options.max_reconnect_failures:
            await self.close()
            if isinstance(error, ApiError | TransportError):
                raise error
            raise TransportError(f"watch {self._path}: {reason}: {error}") from error
        delay = self._transport.rng.uniform(
            0.0, min(self._options.reconnect_backoff_max, 0.5 * 2**self._failures)
        )
        log.warning(
            "watch %s: %s (%s); resuming from resourceVersion %s in %.1fs",
            self._path,
            reason,
            error,
            self.resource_version or "<start>",
            delay,
        )
        await self._transport.clock.sleep(delay)

    async def _next_event(self) -> Any:
        """The next decoded event of the stream, or ``None`` at a clean end of stream.  Raises
        ``orjson.JSONDecodeError`` for a line that is not JSON."""
        if not self._events:
            assert self._response is not None
            content = self._response.content
            while not self._lines:
                chunk = await content.readany()
                if not chunk:
                    tail, self._pending = self._pending.strip(), b""
                    return orjson.loads(tail) if tail else None
                # One split per chunk keeps reading linear however the server chunks its lines,
                # and places no limit on the size of one event.
                parts = (self._pending + chunk).split(b"\n")
                self._pending = parts.pop()
                self._lines.extend(part for part in parts if part.strip())
            # Decode a batch of lines under one collector pause: with a consumer that keeps the
            # objects (an informer), fewer, larger pauses mean far fewer collections; the batch
            # bound keeps what the consumer has not reached yet mostly as compact bytes.
            lines = self._lines
            self._events.extend(loads_many(lines.popleft() for _ in range(min(_DECODE_BATCH, len(lines)))))
        return self._events.popleft()

    async def __anext__(self) -> WatchEvent[R]:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._response is None:
                try:
                    await self._open()
                except Expired:
                    await self.close()
                    raise
                except (*_TRANSIENT_API_ERRORS, TransportError) as exc:
                    await self._fail("cannot open the stream", exc)
                    continue
                except BaseException:
                    await self.close()
                    raise
            try:
                # Most events are already decoded (a batch at a time): take one without awaiting.
                event = self._events.popleft() if self._events else await self._next_event()
            except orjson.JSONDecodeError as exc:
                await self.close()
                raise ApiError(
                    f"watch {self._path}: the stream carried malformed JSON: {exc}", code=500
                ) from exc
            except _STREAM_FAILURES as exc:
                silent = isinstance(exc, TimeoutError)
                reason = f"no data for {self._options.idle_timeout:g}s" if silent else "the stream broke"
                self.reconnects += 1
                await self._fail(reason, exc)
                continue
            if event is None:
                # A clean close (the server's timeoutSeconds): resume at once.  A stream that ends
                # without a single line may be a server refusing quietly; pause briefly so that
                # such a server does not get a tight loop of requests.
                quiet = not self._received
                self._drop_stream()
                self.reconnects += 1
                if quiet:
                    await self._transport.clock.sleep(self._transport.rng.uniform(0.0, 1.0))
                continue
            self._received = True
            self._failures = 0
            try:
                kind = event["type"]
                obj = event["object"]
                version = (obj.get("metadata") or {}).get("resourceVersion")
            except (KeyError, TypeError, AttributeError) as exc:
                await self.close()
                raise ApiError(
                    f"watch {self._path}: malformed event {str(event)[:200]}: {exc}", code=500
                ) from exc
            if kind == "ERROR":
                await self.close()
                raise error_from_status(obj, int(obj.get("code") or 500))
            if version:
                self.resource_version = version
            if kind == "BOOKMARK":
                continue
            return _event(kind, self._convert(obj), version or "")
