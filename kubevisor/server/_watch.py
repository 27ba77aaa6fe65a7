"""The watch hub: fans each committed event out to every interested watcher.

Guarantees (given :class:`~kubevisor.server._storage.Storage`'s synchronous, serialised writes):

* A watcher is registered in the same synchronous step that computes its starting point (the current
  state, or the retained history after a resourceVersion), so it sees every later event exactly once
  and in resourceVersion order, with no gap and no duplicate.
* Filtering is per watcher (namespace, label selector, field selector) and follows upstream's cacher:
  an object that stops matching is a ``DELETED`` (carrying its previous state at the event's RV), one
  that starts matching is an ``ADDED``.
* Events go out as the stored bytes of their objects, never re-encoded (see :meth:`Entry.object_bytes`).
* Buffers are bounded.  A watcher whose client falls ``buffer_size`` events behind is closed (as
  upstream closes blocked watchers); the client re-watches from the last RV it saw.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from kubevisor.server._storage import ADDED, DELETED, MODIFIED, Event, Record, ResourceKey, Storage

__all__ = ["Entry", "Matcher", "WatchHub", "Watcher"]


class Matcher(Protocol):
    """A parsed label or field selector."""

    def matches(self, values: Mapping[str, str], /) -> bool: ...


@dataclass(slots=True, frozen=True)
class Entry:
    """One event as one watcher sees it.

    ``type`` may differ from the stored event's type (selector transitions).  ``event`` is ``None`` for
    synthetic initial ``ADDED`` entries, which are not shared between watchers.  ``use_prev`` marks a
    ``DELETED`` synthesised from an object leaving the selector: upstream sends the previous state with
    the event's resourceVersion.
    """

    type: str
    record: Record
    event: Event | None = None
    use_prev: bool = False

    @property
    def rv(self) -> int:
        return self.event.rv if self.event is not None else self.record.rv

    def object_bytes(self) -> bytes:
        """The object's JSON as this entry sends it."""
        if not self.use_prev or self.event is None:
            return self.record.data
        cache = self.event.cache
        data = cache.get("prev-object")
        if data is None:
            obj = self.record.load()
            obj["metadata"]["resourceVersion"] = str(self.event.rv)
            data = cache["prev-object"] = bytes(memoryview(orjson.dumps(obj)))
        return data


class Watcher:
    """One watch stream's subscription.  Drain it with :meth:`next_batch`; close it when done.

    ``overflowed`` tells, after the watcher closed itself, that its client fell too far behind.
    """

    def __init__(
        self,
        hub: WatchHub,
        key: ResourceKey,
        namespace: str | None,
        labels: Matcher | None,
        fields: Matcher | None,
        buffer_size: int,
        name: str | None = None,
    ) -> None:
        self.key = key
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.name = name
        self.overflowed = False
        self.closed = False
        self.delivered_rv = 0
        self._hub = hub
        self._limit = buffer_size
        self._pending: deque[Entry] = deque()
        self._wakeup = asyncio.Event()

    def matches(self, record: Record) -> bool:
        if self.namespace is not None and record.namespace != self.namespace:
            return False
        if self.name is not None and record.name != self.name:
            return False
        if self.labels is not None and not self.labels.matches(record.labels):
            return False
        return self.fields is None or self.fields.matches(record.fields)

    def _push(self, entry: Entry) -> None:
        self._pending.append(entry)
        self._wakeup.set()

    def offer(self, event: Event) -> None:
        """Called synchronously by the hub for every event of this watcher's resource."""
        if self.closed:
            return
        record, prev = event.record, event.prev
        now = self.matches(record) if event.type != DELETED else False
        before = prev is not None and self.matches(prev)
        if event.type == ADDED:
            entry = Entry(ADDED, record, event) if now else None
        elif event.type == MODIFIED:
            if now:
                entry = Entry(MODIFIED if before else ADDED, record, event)
            elif before and prev is not None:
                entry = Entry(DELETED, prev, event, use_prev=True)
            else:
                entry = None
        else:  # DELETED: the final state carries the same labels/fields as the previous one.
            entry = Entry(DELETED, record, event) if before else None
        if entry is None:
            return
        if len(self._pending) >= self._limit:
            self.overflowed = True
            self.close()
            return
        self._push(entry)

    def pending(self) -> int:
        return len(self._pending)

    async def next_batch(self, max_wait: float | None = None) -> list[Entry]:
        """Wait until entries are available (or ``max_wait`` seconds pass, or the watcher closes) and
        return all of them, oldest first.  An empty list means timeout or closed."""
        if not self._pending and not self.closed:
            self._wakeup.clear()
            try:
                # Not wait_for: that wraps the wait in a task of its own, on every call.
                async with asyncio.timeout(max_wait):
                    await self._wakeup.wait()
            except TimeoutError:
                return []
        batch = list(self._pending)
        self._pending.clear()
        if batch:
            self.delivered_rv = max(self.delivered_rv, batch[-1].rv)
        return batch

    def close(self) -> None:
        """Unsubscribe; wakes a pending :meth:`next_batch`.  Idempotent."""
        if not self.closed:
            self.closed = True
            self._hub._remove(self)
            self._wakeup.set()


class WatchHub:
    """Registry of live watchers, fed synchronously by the storage."""

    def __init__(self, storage: Storage, *, buffer_size: int = 10_000) -> None:
        self._storage = storage
        self._buffer_size = buffer_size
        self._watchers: dict[ResourceKey, set[Watcher]] = {}
        self._unsubscribe = storage.subscribe(self._publish)
        self._closed = False

    def watch(
        self,
        key: ResourceKey,
        *,
        namespace: str | None = None,
        labels: Matcher | None = None,
        fields: Matcher | None = None,
        since: int | None = None,
        name: str | None = None,
    ) -> Watcher:
        """Register a watcher.

        ``since=None`` starts with a synthetic ``ADDED`` for every current matching object;
        ``since=N`` replays the retained events after N (raises :class:`~kubevisor.api.Expired` when
        they are no longer all retained).  Either way, later events follow without gap.
        """
        watcher = Watcher(self, key, namespace, labels, fields, self._buffer_size, name)
        if since is None:
            initial = [r for r in self._storage.list_records(key, namespace) if watcher.matches(r)]
            initial.sort(key=lambda r: r.rv)
            for record in initial:
                watcher._push(Entry(ADDED, record))
            # The initial state does not count against the buffer: only lag on live events does.
            watcher._limit += len(initial)
        else:
            events = self._storage.events_since(since, key)
            watcher._limit = len(events) + 1  # the replay itself never overflows
            for event in events:
                watcher.offer(event)
            watcher._limit = self._buffer_size + watcher.pending()
        self._watchers.setdefault(key, set()).add(watcher)
        return watcher

    def count(self, key: ResourceKey | None = None) -> int:
        if key is not None:
            return len(self._watchers.get(key, ()))
        return sum(len(w) for w in self._watchers.values())

    def _publish(self, event: Event) -> None:
        watchers = self._watchers.get(event.record.key)
        if watchers:
            # Copy: an overflowing watcher removes itself while we iterate.
            for watcher in tuple(watchers):
                watcher.offer(event)

    def _remove(self, watcher: Watcher) -> None:
        watchers = self._watchers.get(watcher.key)
        if watchers is not None:
            watchers.discard(watcher)

    def close(self) -> None:
        """Close every watcher (their streams end) and detach from the storage.  Idempotent."""
        for watchers in list(self._watchers.values()):
            for watcher in list(watchers):
                watcher.close()
        if not self._closed:
            self._closed = True
            self._unsubscribe()

    def stats(self) -> dict[str, Any]:
        return {"watchers": self.count()}
