"""Object storage for the embedded API server: SQLite for durability, memory for speed.

Every object lives as a :class:`Record` in memory, the copy that reads are served from, and, when the
storage has a file, as a row in SQLite (the durable copy, written before a write returns).  Without a
file there is no database at all: a second in-memory copy would cost as much memory as the records
themselves and a third of a write's time, and would protect nothing.  Records hold the object's
serialised JSON bytes rather than parsed dicts, because parsed dicts cost roughly ten times the memory
and most reads (lists, watches) only need to copy the bytes onto the wire.

Guarantees:

* One global, strictly increasing resourceVersion (RV) across all resources.  It is persisted with
  every write, so it keeps increasing across restarts on the same data directory.
* Writes are serialised: every mutating method is synchronous and runs on the event-loop thread, so a
  write, its history entry and its fan-out to watchers happen atomically with respect to other
  coroutines.  Listeners therefore observe events in strictly increasing RV order, each exactly once.
* A bounded in-memory history (like etcd compaction) lets watches resume and exact-RV lists be served
  for recent versions.  Asking for anything older than the oldest retained event raises
  :class:`~kubevisor.api.Expired`.  After a restart the history starts empty at the current RV.
"""

from __future__ import annotations

import bisect
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kubevisor.api import Expired

__all__ = [
    "ADDED",
    "DELETED",
    "MODIFIED",
    "Event",
    "Indexer",
    "KeyExistsError",
    "KeyNotFoundError",
    "Record",
    "ResourceKey",
    "StaleVersionError",
    "Storage",
    "StorageError",
]

ResourceKey = tuple[str, str]
"""``(group, plural)``: objects of one resource share a key across all of its served versions."""

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"

Attributes = tuple[Mapping[str, str], Mapping[str, str]]
Indexer = Callable[[ResourceKey, dict[str, Any]], Attributes]
"""Computes ``(labels, selectable fields)`` of an object, for label and field selectors."""


class StorageError(Exception):
    """Base of the storage-level outcomes that the REST layer maps to API errors."""


class KeyExistsError(StorageError):
    """A create named an object that already exists."""


class KeyNotFoundError(StorageError):
    """An update or delete named an object that does not exist."""


class StaleVersionError(StorageError):
    """An update or delete expected a resourceVersion that is no longer current."""


def _default_indexer(key: ResourceKey, obj: dict[str, Any]) -> Attributes:
    meta = obj.get("metadata") or {}
    return (meta.get("labels") or {}), {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
    }


@dataclass(slots=True, eq=False)
class Record:
    """One stored version of one object.

    ``data`` is the object's JSON with ``metadata.resourceVersion == str(rv)``; it is immutable and is
    shared between the live index, the history and every watcher, so it must never be modified.
    Labels and selectable fields are computed once (lazily for objects loaded from disk).
    """

    key: ResourceKey
    namespace: str
    name: str
    rv: int
    data: bytes
    _attributes: Attributes | None = None
    _indexer: Indexer | None = field(default=None, repr=False)

    def load(self) -> dict[str, Any]:
        """A fresh, mutable parse of the object."""
        obj: dict[str, Any] = orjson.loads(self.data)
        return obj

    def _attrs(self) -> Attributes:
        if self._attributes is None:
            indexer = self._indexer or _default_indexer
            self._attributes = indexer(self.key, self.load())
            self._indexer = None
        return self._attributes

    @property
    def labels(self) -> Mapping[str, str]:
        return self._attrs()[0]

    @property
    def fields(self) -> Mapping[str, str]:
        return self._attrs()[1]

    @property
    def sort_key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(slots=True, eq=False)
class Event:
    """One committed change.

    ``record`` is the new state; for ``DELETED`` it is the final state stamped with the deletion's RV
    (as upstream does).  ``prev`` is the state before the change (``None`` for ``ADDED``); watchers use
    it to turn an object leaving their selector into a ``DELETED`` and exact-RV lists use it to
    reconstruct older states.  ``cache`` memoises encodings so that each event is encoded once, not
    once per watcher.
    """

    type: str
    rv: int
    record: Record
    prev: Record | None
    _cache: dict[Any, bytes] | None = None

    @property
    def cache(self) -> dict[Any, bytes]:
        # Created on first use: most events in the history are never sent to a watcher.
        if self._cache is None:
            self._cache = {}
        return self._cache

    @property
    def key(self) -> ResourceKey:
        return self.record.key


class _Index:
    """The live objects of one resource, with a lazily rebuilt sorted order for paged lists."""

    __slots__ = ("_sorted", "objects")

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Record] = {}
        self._sorted: list[tuple[str, str]] | None = None

    def put(self, record: Record) -> None:
        k = (record.namespace, record.name)
        if k not in self.objects:
            self._sorted = None
        self.objects[k] = record

    def remove(self, namespace: str, name: str) -> None:
        if self.objects.pop((namespace, name), None) is not None:
            self._sorted = None

    def sorted_keys(self) -> list[tuple[str, str]]:
        if self._sorted is None:
            self._sorted = sorted(self.objects)
        return self._sorted


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    grp TEXT NOT NULL,
    resource TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    rv INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (grp, resource, namespace, name)
) WITHOUT ROWID;
"""


class Storage:
    """The single writer of all objects.  See the module docstring for the guarantees.

    ``path`` is the SQLite database file (created if missing) or ``None`` to keep objects in memory only
    (nothing survives the process).  ``history_size`` bounds the number of retained
    events (0 keeps none: every watch must start from the current state).  ``indexer`` computes the
    labels and selectable fields of an object.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        history_size: int = 10_000,
        indexer: Indexer | None = None,
    ) -> None:
        if history_size < 0:
            raise ValueError("history_size must be >= 0")
        self._indexer: Indexer = indexer or _default_indexer
        self._history: deque[Event] = deque()
        self._history_size = history_size
        self._listeners: list[Callable[[Event], None]] = []
        self._indexes: dict[ResourceKey, _Index] = {}
        self._rv: int = 0
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = self._open(Path(path))
        self._compacted: int = self._rv
        self._closed = False

    def _open(self, path: Path) -> sqlite3.Connection:
        """Open (or create) the database and load every object and the resourceVersion from it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so that each write is exactly one
        # transaction.  check_same_thread=False: the owner may hand the storage to a helper thread for
        # shutdown, but all use is still serialised by the event loop.
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode fsyncs at checkpoints, not per commit: a power loss may lose the last
        # writes but never corrupts the database, which is the trade-off etcd-less dev servers want.
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key = 'rv'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta (key, value) VALUES ('rv', 0)")
        else:
            self._rv = int(row[0])
        for grp, resource, namespace, name, rv, data in db.execute(
            "SELECT grp, resource, namespace, name, rv, data FROM objects"
        ):
            key = (grp, resource)
            record = Record(key, namespace, name, rv, bytes(data), None, self._indexer)
            self._index(key).put(record)
            self._rv = max(self._rv, rv)
        return db

    # ------------------------------------------------------------------ reads

    @property
    def resource_version(self) -> int:
        """The RV of the latest committed write (0 for an empty, new database)."""
        return self._rv

    @property
    def compacted(self) -> int:
        """Events with an RV at or below this are no longer retained."""
        return self._compacted

    def get(self, key: ResourceKey, namespace: str, name: str) -> Record | None:
        index = self._indexes.get(key)
        return index.objects.get((namespace, name)) if index else None

    def count(self, key: ResourceKey, namespace: str | None = None) -> int:
        index = self._indexes.get(key)
        if index is None:
            return 0
        if namespace is None:
            return len(index.objects)
        return sum(1 for ns, _ in index.objects if ns == namespace)

    def list_records(
        self,
        key: ResourceKey,
        namespace: str | None = None,
        *,
        start: tuple[str, str] | None = None,
        at: int | None = None,
    ) -> list[Record]:
        """The objects of ``key`` (in ``namespace`` when given) sorted by (namespace, name).

        ``start`` skips everything sorting strictly before it (paging).  ``at`` asks for the state as
        of that RV exactly: reconstructed from the history, or :class:`Expired` when older than it.
        """
        index = self._indexes.get(key)
        if at is not None and at != self._rv:
            return self._list_at(key, namespace, start, at)
        if index is None:
            return []
        keys = index.sorted_keys()
        lo = 0
        if namespace is not None:
            lo = bisect.bisect_left(keys, (namespace, ""))
        if start is not None:
            lo = max(lo, bisect.bisect_left(keys, start))
        objects = index.objects
        out: list[Record] = []
        for i in range(lo, len(keys)):
            k = keys[i]
            if namespace is not None and k[0] != namespace:
                break
            out.append(objects[k])
        return out

    def _list_at(
        self, key: ResourceKey, namespace: str | None, start: tuple[str, str] | None, at: int
    ) -> list[Record]:
        if at > self._rv:
            raise ValueError(f"resource version {at} is in the future (current {self._rv})")
        later = self.events_since(at, key)
        index = self._indexes.get(key)
        state: dict[tuple[str, str], Record | None] = dict(index.objects) if index else {}
        for event in reversed(later):
            k = event.record.sort_key
            state[k] = event.prev
        out = [
            r
            for k, r in state.items()
            if r is not None and (namespace is None or k[0] == namespace) and (start is None or k >= start)
        ]
        out.sort(key=lambda r: r.sort_key)
        return out

    def events_since(self, rv: int, key: ResourceKey | None = None) -> list[Event]:
        """Every retained event after ``rv`` (of ``key`` when given), oldest first.

        Raises :class:`Expired` with upstream's ``too old resource version`` message when events after
        ``rv`` may have been dropped.
        """
        if rv < self._compacted:
            raise Expired(f"too old resource version: {rv} ({self._compacted})")
        out: list[Event] = []
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            if key is None or event.record.key == key:
                out.append(event)
        out.reverse()
        return out

    def keys(self) -> Iterable[ResourceKey]:
        return list(self._indexes)

    def reindex(self, key: ResourceKey) -> None:
        """Recompute the labels and selectable fields of every live object of ``key`` (lazily, on
        next use): the set of selectable fields changed (a CRD's ``selectableFields``)."""
        index = self._indexes.get(key)
        if index is None:
            return
        for record in index.objects.values():
            record._attributes = None
            record._indexer = self._indexer

    # ----------------------------------------------------------------- writes

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``listener`` synchronously with every committed event, in RV order; returns an
        unsubscribe function.  A listener must not raise and must not write to the storage."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def create(self, key: ResourceKey, obj: dict[str, Any]) -> Record:
        """Store a new object.  ``obj["metadata"]["resourceVersion"]`` is set to the new RV (the dict
        is modified in place, so callers can return it).  Raises :class:`KeyExistsError`."""
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", "") or "", meta["name"]
        index = self._index(key)
        if (namespace, name) in index.objects:
            raise KeyExistsError(name)
        return self._write(key, ADDED, obj, None)

    def update(self, key: ResourceKey, obj: dict[str, Any], expected_rv: int | None = None) -> Record:
        """Replace an existing object, optionally only if its RV is still ``expected_rv``.

        Raises :class:`KeyNotFoundError` or :class:`StaleVersionError`.
        """
        meta = obj["metadata"]
        prev = self.get(key, meta.get("namespace", "") or "", meta["name"])
        if prev is None:
            raise KeyNotFoundError(meta["name"])
        if expected_rv is not None and prev.rv != expected_rv:
            raise StaleVersionError(meta["name"])
        return self._write(key, MODIFIED, obj, prev)

    def delete(
        self,
        key: ResourceKey,
        namespace: str,
        name: str,
        expected_rv: int | None = None,
        final: dict[str, Any] | None = None,
    ) -> Record:
        """Remove an object; returns its final state stamped with the deletion's RV.

        ``final`` is the object's final content if the caller already parsed it.  Raises
        :class:`KeyNotFoundError` or :class:`StaleVersionError`.
        """
        prev = self.get(key, namespace, name)
        if prev is None:
            raise KeyNotFoundError(name)
        if expected_rv is not None and prev.rv != expected_rv:
            raise StaleVersionError(name)
        obj = final if final is not None else prev.load()
        return self._write(key, DELETED, obj, prev)

    def _index(self, key: ResourceKey) -> _Index:
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = _Index()
        return index

    def _write(self, key: ResourceKey, kind: str, obj: dict[str, Any], prev: Record | None) -> Record:
        if self._closed:
            raise StorageError("storage is closed")
        rv = self._rv + 1
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", "") or "", meta["name"]
        meta["resourceVersion"] = str(rv)
        # orjson returns bytes with its whole (4 KiB or larger) output buffer still allocated; copying
        # to an exact-size object cuts stored memory per object by up to 8x.
        data = bytes(memoryview(orjson.dumps(obj)))
        if self._db is not None:
            try:
                self._persist(key, kind, namespace, name, rv, data)
            except BaseException:
                meta["resourceVersion"] = str(prev.rv) if prev else ""
                raise
        self._rv = rv
        labels, fields = self._indexer(key, obj)
        if prev is not None and prev._attributes is not None:
            # Most writes (status updates above all) leave labels and fields as they were: share the
            # previous version's dicts rather than keeping two equal copies alive in the history.
            old_labels, old_fields = prev._attributes
            labels = old_labels if old_labels == labels else labels
            fields = old_fields if old_fields == fields else fields
        record = Record(key, namespace, name, rv, data, (labels, fields))
        index = self._index(key)
        if kind == DELETED:
            index.remove(namespace, name)
        else:
            index.put(record)
        event = Event(kind, rv, record, prev)
        if self._history_size:
            if len(self._history) >= self._history_size:
                self._compacted = self._history.popleft().rv
            self._history.append(event)
        else:
            self._compacted = rv
        for listener in self._listeners:
            listener(event)
        return record

    def _persist(self, key: ResourceKey, kind: str, namespace: str, name: str, rv: int, data: bytes) -> None:
        """Write one change and the new resourceVersion in one transaction."""
        db = self._db
        assert db is not None
        try:
            db.execute("BEGIN")
            if kind == DELETED:
                db.execute(
                    "DELETE FROM objects WHERE grp = ? AND resource = ? AND namespace = ? AND name = ?",
                    (key[0], key[1], namespace, name),
                )
            else:
                db.execute(
                    "INSERT OR REPLACE INTO objects (grp, resource, namespace, name, rv, data) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (key[0], key[1], namespace, name, rv, data),
                )
            db.execute("UPDATE meta SET value = ? WHERE key = 'rv'", (rv,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Flush and close the database; further writes raise :class:`StorageError`."""
        if not self._closed:
            self._closed = True
            if self._db is not None:
                self._db.close()
