"""Watch streams that do not go blind: resumed from the last resourceVersion after a clean close or
a network failure, recycled when silent for too long, and ending in :class:`Expired` when the
server can no longer serve the history the caller needs (so that the caller relists)."""

from __future__ import annotations

import logging
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
from kubevisor.client._decode import pause, resume
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

_BATCH_BYTES = 16 * 1024
"""Stream decoded at a time (or one event, if larger).  orjson builds a parse tree of about 12 times
its input before making the objects, so this bounds a batch's transient memory to about 200 KB.
Batches of 16 to 128 KiB took the same time within 1 ms (10,000 events dropped: 28-29 ms; with
8 KiB batches 29.7 ms, with 256 KiB 29.8 ms), and the smallest of them keeps the heap peak of a
watch whose objects are all kept at the line-by-line decoder's (40.0 MB; 40.2 MB with 32 KiB)."""
_BULK_BYTES = 8 * 1024
"""Batches of at least this size are decoded as a bulk (see :func:`kubevisor.client._decode.pause`):
about ten 0.9 KB ConfigMaps, each with about ten containers that two young collections would
otherwise walk on their way to the oldest generation.  Events trickling in one at a time are left to
the collector's ordinary pace: a young collection of the application's objects per event would cost
more than it saves."""
_CHANGES = frozenset(("ADDED", "MODIFIED", "DELETED"))
_TYPES = {kind: kind for kind in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR")}
"""Event types taken by the decoder's fast path (any other, or a type that is not a string, takes
the slow one)."""
_LOADS = orjson.loads
# What reaching into a decoded event can raise.
_IRREGULAR = (KeyError, TypeError)
_MALFORMED: Any = object()
"""The type of a decoded item that ends the watch with its error."""


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
    * A line that is not JSON, or not an event, raises :class:`ApiError` (code 500) after the events
      before it, and closes the watch.
    * ``WatchOptions.max_reconnect_failures`` consecutive failures to reopen raise
      :class:`TransportError` (or the server's last error).  Nothing is retried silently forever.

    When no ``resource_version`` was given the first stream starts with synthetic ``ADDED`` events
    for every existing object; resumption then continues from the last one seen.

    Lines are decoded a batch at a time (what has arrived, up to 16 KiB) ahead of the consumer;
    :attr:`resource_version` advances only as events are delivered, and a stream that is dropped
    drops its undelivered events with it, which the next stream sends again.
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
        # Complete lines of the stream not decoded yet: self._head (a line that straddled network
        # chunks, if any), then self._buf[self._pos : self._end], newline-separated.
        self._head: bytes | None = None
        self._buf = b""
        self._pos = 0
        self._end = 0
        # Decoded (type, object, resourceVersion) not delivered yet: self._batch[self._next:].
        self._batch: list[tuple[Any, Any, str]] = []
        self._next = 0
        self._partial: list[bytes] = []  # the start of a line that has not ended yet
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
        self._head = None
        self._buf = b""
        self._pos = self._end = 0
        self._batch = []
        self._next = 0
        self._partial = []

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

    async def _read(self) -> bool:
        """Wait for the next complete lines of the stream (``self._head``, then ``self._buf``);
        ``False`` at a clean end of stream."""
        assert self._response is not None
        content = self._response.content
        partial = self._partial
        while True:
            # readchunk, not readany: readany joins all that is buffered (260 KB when the consumer
            # is slower than the network) into one more copy; the plain watch's heap peak was
            # 0.86 MB with it, 0.66 MB without.
            chunk, _ = await content.readchunk()
            if not chunk:
                tail = b"".join(partial)
                self._partial = []
                if tail.strip():  # a last line without its newline
                    self._head = tail
                    return True
                return False
            end = chunk.rfind(b"\n")
            if end < 0:
                # Collected, not concatenated: a line arriving in many chunks (an object near
                # etcd's size limit) is joined once, so reading stays linear in its size.
                partial.append(chunk)
                continue
            pos = 0
            if partial:
                # The line that straddles chunks is joined on its own, not the whole chunk.
                pos = chunk.find(b"\n") + 1
                partial.append(chunk[: pos - 1])
                self._head = b"".join(partial)
                partial.clear()
            if end + 1 < len(chunk):
                partial.append(chunk[end + 1 :])
            self._buf, self._pos, self._end = chunk, pos, end
            return True

    def _decode(self) -> None:
        """Decode the next batch of lines into ``self._batch``: ``(type, object, resourceVersion)``
        per event, in order; a line that is not an event ends the batch with a
        ``(_MALFORMED, error, "")`` item, which ends the watch when the consumer reaches it."""
        if self._head is not None:
            piece, self._head = self._head, None
        else:
            buf, pos, end = self._buf, self._pos, self._end
            cut = end
            if end - pos > _BATCH_BYTES:
                cut = buf.rfind(b"\n", pos, pos + _BATCH_BYTES)
                if cut < 0:  # one event larger than a batch
                    cut = buf.find(b"\n", pos + _BATCH_BYTES, end)
                    if cut < 0:
                        cut = end
            self._pos = cut + 1
            piece = buf[pos:cut]
        batch: list[tuple[Any, Any, str]] = []
        append = batch.append
        state = pause(bulk=len(piece) >= _BULK_BYTES)
        try:
            # The lines are decoded as one JSON array, with their newlines made commas: one orjson
            # call and no bytes object per line (measured: 10,000 events consumed in 31.8 ms
            # instead of 35.2 ms, one line at a time; orjson alone takes 23 ms).  Any line that
            # is not one JSON document, or a blank one, fails the array, and the batch is then
            # decoded line by line to find it (a line holding several comma-separated documents,
            # which no API server writes, would pass as several events).
            try:
                events = _LOADS(b"".join((b"[", piece.replace(b"\n", b","), b"]")))
            except orjson.JSONDecodeError:
                events = [self._line(line) for line in piece.split(b"\n") if line.strip()]
            for event in events:
                try:
                    obj = event["object"]
                    append((_TYPES[event["type"]], obj, obj["metadata"]["resourceVersion"]))
                except _IRREGULAR:
                    item = self._irregular(event)
                    append(item)
                    if item[0] is _MALFORMED:
                        self._head, self._pos, self._end = None, 0, 0  # the watch ends there
                        break
        finally:
            resume(state)
        self._batch, self._next = batch, 0
        if batch:
            self._received = True
            self._failures = 0

    def _line(self, line: bytes) -> Any:
        """One line decoded on its own; an :class:`ApiError` instead if it is not JSON."""
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            error = ApiError(f"watch {self._path}: the stream carried malformed JSON: {exc}", code=500)
            error.__cause__ = exc
            return error

    def _irregular(self, event: Any) -> tuple[Any, Any, str]:
        """The item for a decoded line that the fast path could not take: an event without a
        resourceVersion (an ``ERROR``'s Status) or of another type, or not an event at all."""
        if isinstance(event, ApiError):
            return (_MALFORMED, event, "")
        try:
            kind = event["type"]
            obj = event["object"]
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if not isinstance(kind, str):
                raise TypeError(f"the event type is {type(kind).__name__}, not a string")
        except (KeyError, TypeError, AttributeError) as exc:
            error = ApiError(f"watch {self._path}: malformed event {str(event)[:200]}: {exc}", code=500)
            error.__cause__ = exc
            return (_MALFORMED, error, "")
        return (kind, obj, version or "")

    async def __anext__(self) -> WatchEvent[R]:
        while True:
            batch = self._batch
            index = self._next
            if index < len(batch):
                # The path of nearly every event: already decoded, taken without awaiting.
                self._next = index + 1
                kind, obj, version = batch[index]
                if kind in _CHANGES:
                    if version:
                        self.resource_version = version
                    event: WatchEvent[R] = _new_event(WatchEvent)
                    _set_type(event, kind)
                    _set_object(event, self._convert(obj))
                    _set_version(event, version)
                    return event
                if kind is _MALFORMED:
                    await self.close()
                    raise obj
                if version:
                    self.resource_version = version
                if kind == "ERROR":
                    await self.close()
                    raise error_from_status(obj, int(obj.get("code") or 500))
                if kind == "BOOKMARK":
                    continue
                return _event(kind, self._convert(obj), version)
            if self._closed:
                raise StopAsyncIteration
            if self._head is not None or self._pos < self._end:
                self._decode()
                continue
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
                more = await self._read()
            except _STREAM_FAILURES as exc:
                if self._closed:
                    raise StopAsyncIteration from None  # closed by another task while reading
                silent = isinstance(exc, TimeoutError)
                reason = f"no data for {self._options.idle_timeout:g}s" if silent else "the stream broke"
                self.reconnects += 1
                await self._fail(reason, exc)
                continue
            if not more:
                # A clean close (the server's timeoutSeconds): resume at once.  A stream that ends
                # without a single line may be a server refusing quietly; pause briefly so that
                # such a server does not get a tight loop of requests.
                quiet = not self._received
                self._drop_stream()
                self.reconnects += 1
                if quiet:
                    await self._transport.clock.sleep(self._transport.rng.uniform(0.0, 1.0))
                continue
