"""Kubernetes Events (core/v1) with client-go's correlation: repeats are aggregated, floods are cut.

:meth:`EventRecorder.record` never blocks and never fails: it queues the event, and the recorder's
own task (a supervised child of the manager) sends it.  Events are best effort, as in client-go:
when the API server cannot take them they are logged and dropped, never retried forever and never
allowed to slow a reconcile down.

Correlation, as client-go's ``EventCorrelator`` does it:

* **Aggregation of repeats.** Events with the same key (source component and instance, involved
  object kind/namespace/name/uid/apiVersion, type, reason, message) after the first are sent as a
  PATCH of the first Event: ``count`` incremented, ``lastTimestamp`` moved, rather than a new Event.
  The recorder remembers the last ``cache_size`` keys (client-go: 4096).  When the remembered Event
  is gone (expired by the server), a new one is created carrying the count.
* **Spam filter.** Each (source, involved object) has a token bucket (client-go: burst 25, refilled
  one token per 5 minutes); events beyond it are dropped.

Not done (client-go's similar-event aggregator, which rewrites messages into "(combined from similar
events)"): aggregation here only merges identical events, which keeps messages exact.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubevisor.api import AlreadyExists, Clock, NotFound, ResourceInfo, format_time, now
from kubevisor.client import Client, MonotonicClock, SystemClock
from kubevisor.supervisor import Ready

__all__ = ["EVENT_RESOURCE", "EventRecorder", "EventRecorderOptions"]

log = logging.getLogger("kubevisor.runtime")

EVENT_RESOURCE = ResourceInfo("", "v1", "Event", "events", "event", True, short_names=("ev",))
"""core/v1 Events, addressed without discovery."""


@dataclass(frozen=True, slots=True)
class EventRecorderOptions:
    """How events are correlated and queued."""

    instance: str = field(default_factory=socket.gethostname)
    """``reportingInstance`` and ``source.host``: this replica (default: the host name, a pod's name)."""
    cache_size: int = 4096
    """Event keys remembered for aggregation (client-go: 4096)."""
    burst: int = 25
    """Events per involved object let through at once by the spam filter (client-go: 25)."""
    refill_seconds: float = 300.0
    """Seconds per token refilled into an object's spam-filter bucket (client-go: one per 5 min)."""
    max_pending: int = 1000
    """Events queued and not yet sent beyond which the oldest are dropped (client-go: 1000)."""


@dataclass(slots=True)
class _Pending:
    involved: dict[str, Any]
    type: str
    reason: str
    message: str
    action: str | None
    component: str


@dataclass(slots=True)
class _Seen:
    name: str
    namespace: str
    count: int
    first_timestamp: str


class EventRecorder:
    """Queues and sends Events about objects.  Run :meth:`run` as a supervised child."""

    def __init__(
        self,
        client: Client,
        component: str,
        options: EventRecorderOptions | None = None,
        *,
        clock: MonotonicClock | None = None,
        wall_clock: Clock = now,
    ) -> None:
        """``component`` is the default ``source.component`` / ``reportingComponent`` (the manager's
        name); controllers record under their own names."""
        self.client = client
        self.component = component
        self.options = options if options is not None else EventRecorderOptions()
        self._clock: MonotonicClock = clock if clock is not None else SystemClock()
        self._wall_clock = wall_clock
        self._pending: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._seen: OrderedDict[tuple[str, ...], _Seen] = OrderedDict()
        self._buckets: OrderedDict[tuple[str, ...], tuple[float, float]] = OrderedDict()
        self._sequence = 0
        self.sent = 0
        """Events written (created or patched)."""
        self.dropped = 0
        """Events dropped by the spam filter, the queue bound or a failed write."""

    def record(
        self,
        involved: Mapping[str, Any],
        type: str,
        reason: str,
        message: str,
        *,
        action: str | None = None,
        component: str | None = None,
    ) -> None:
        """Queue an event about ``involved`` (a wire object with apiVersion, kind and metadata).
        Never blocks, never raises for API trouble."""
        meta = involved.get("metadata") or {}
        ref = {
            "apiVersion": involved.get("apiVersion", ""),
            "kind": involved.get("kind", ""),
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if len(self._pending) >= self.options.max_pending:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append(_Pending(ref, type, reason, message, action, component or self.component))
        self._idle.clear()
        self._wakeup.set()

    async def flush(self) -> None:
        """Return once every event queued so far has been sent or dropped (bound it with a timeout;
        it only progresses while :meth:`run` runs)."""
        await self._idle.wait()

    async def run(self, ready: Ready | None = None) -> None:
        """Send queued events until cancelled."""
        if ready is not None:
            ready()
        while True:
            while not self._pending:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
            pending = self._pending.popleft()
            try:
                await self._send(pending)
            except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                self.dropped += 1
                log.warning(
                    "event %s/%s about %s %s not recorded: %s",
                    pending.type,
                    pending.reason,
                    pending.involved["kind"],
                    pending.involved["name"],
                    exc,
                )
            if not self._pending:
                self._idle.set()

    # -- correlation --

    def _allow(self, source: tuple[str, ...]) -> bool:
        """The spam filter's token bucket for one (source, object)."""
        moment = self._clock.now()
        tokens, last = self._buckets.pop(source, (float(self.options.burst), moment))
        tokens = min(float(self.options.burst), tokens + (moment - last) / self.options.refill_seconds)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[source] = (tokens, moment)
        if len(self._buckets) > self.options.cache_size:
            self._buckets.popitem(last=False)
        return allowed

    async def _send(self, pending: _Pending) -> None:
        ref = pending.involved
        source = (
            pending.component,
            self.options.instance,
            ref["kind"],
            ref["namespace"],
            ref["name"],
            ref["uid"],
        )
        if not self._allow(source):
            self.dropped += 1
            return
        key = (*source, ref["apiVersion"], pending.type, pending.reason, pending.message)
        timestamp = format_time(self._wall_clock())
        seen = self._seen.pop(key, None)
        if seen is not None:
            seen.count += 1
            self._seen[key] = seen
            try:
                await self.client.patch(
                    EVENT_RESOURCE,
                    seen.name,
                    {"count": seen.count, "lastTimestamp": timestamp, "message": pending.message},
                    namespace=seen.namespace,
                )
                self.sent += 1
                return
            except NotFound:
                pass  # the Event expired: record it anew, keeping the count
        count = seen.count if seen is not None else 1
        first = seen.first_timestamp if seen is not None else timestamp
        namespace = ref["namespace"] or "default"
        for _attempt in range(2):
            name = self._event_name(ref["name"] or "event")
            body = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {k: v for k, v in ref.items() if v},
                "type": pending.type,
                "reason": pending.reason,
                "message": pending.message,
                "source": {"component": pending.component, "host": self.options.instance},
                "reportingComponent": pending.component,
                "reportingInstance": self.options.instance,
                "firstTimestamp": first,
                "lastTimestamp": timestamp,
                "count": count,
            }
            if pending.action:
                body["action"] = pending.action
            try:
                await self.client.create(body, namespace=namespace)
            except AlreadyExists:
                continue
            self._seen[key] = _Seen(name, namespace, count, first)
            if len(self._seen) > self.options.cache_size:
                self._seen.popitem(last=False)
            self.sent += 1
            return

    def _event_name(self, involved_name: str) -> str:
        # client-go: "<name>.<unix nanoseconds in hex>"; the sequence keeps names unique within a
        # nanosecond tick of a coarse clock.
        self._sequence += 1
        suffix = f".{time.time_ns() + self._sequence:x}"
        return involved_name[: 253 - len(suffix)] + suffix
