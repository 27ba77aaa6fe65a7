"""The garbage collector: kube-controller-manager's, run inside the embedded server.

Objects name their owners in ``metadata.ownerReferences``.  The collector keeps an owner → dependents
graph of the stored objects and deletes what has lost its owners, with upstream's three propagation
policies (reference §7):

* **Background** (the default): DELETE removes the owner at once; the collector then deletes every
  dependent whose owners are all gone (each dependent's own finalizers are honoured, so it may linger
  with a deletionTimestamp).
* **Foreground**: DELETE keeps the owner, with a deletionTimestamp and the ``foregroundDeletion``
  finalizer.  The collector deletes every dependent (those that themselves have dependents in
  Foreground too) and removes the finalizer once no dependent with ``blockOwnerDeletion: true`` is
  left, so the owner goes last.
* **Orphan**: DELETE keeps the owner with the ``orphan`` finalizer.  The collector removes the
  ownerReferences to it from its dependents, then removes the finalizer.

The finalizers themselves are set by DELETE (see :func:`deletion_finalizers`, which the REST layer
calls); this module only acts on them.

How the graph is kept
    It is built once from storage at start (so a restart over the same data directory picks up every
    pending deletion) and then kept current from the storage's change events, which arrive
    synchronously, in resourceVersion order, with each write.  Nothing is ever polled.  Only objects
    that matter get a node: objects with ownerReferences, objects carrying a garbage-collection
    finalizer, and the owners those reference.  Owners are resolved against storage at once, which is
    an in-process dictionary lookup, so upstream's "virtual node" round trips are not needed.

Owner resolution follows upstream exactly
    A reference names ``apiVersion``, ``kind``, ``name`` and ``uid`` but no namespace: a namespaced
    owner is looked up in the dependent's namespace, a cluster-scoped one at cluster scope.  The owner
    exists only if an object with those coordinates has that uid (the same name with another uid is a
    missing owner).  A reference to an object in another namespace therefore resolves to nothing: it
    is treated as absent (the dependent is collected once every owner is verified absent, and the
    real owner and its valid dependents are never affected), and a Warning Event
    ``OwnerRefInvalidNamespace`` is recorded on the dependent.  A cluster-scoped dependent naming a
    namespaced kind can never be resolved: it is left alone for good.  A reference to a kind the
    server does not serve (yet) blocks any decision about its dependent until the registry changes
    (a CRD being added), as upstream retries REST-mapping failures.

Work happens in worker tasks fed by a deduplicating queue; every decision re-reads the object from
storage and every write carries the resourceVersion it was based on, so a concurrent change only
costs a retry.  Writes go through :class:`~kubevisor.server.ObjectService` like any client's, so
finalizers, admission and watch events behave exactly as for requests over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from kubevisor.api import (
    KUBERNETES_VERSION,
    ApiError,
    Conflict,
    NotFound,
    ResourceInfo,
    format_time,
    split_api_version,
)
from kubevisor.server._service import RequestOptions, resource_key
from kubevisor.server._storage import DELETED, Event, Record, ResourceKey

if TYPE_CHECKING:
    from kubevisor.server._app import APIServer

__all__ = [
    "FINALIZER_FOREGROUND",
    "FINALIZER_ORPHAN",
    "GarbageCollector",
    "RetryLater",
    "WorkQueue",
    "deletion_finalizers",
    "run_workers",
]

log = logging.getLogger("kubevisor.server.gc")

FINALIZER_ORPHAN = "orphan"
"""Set by DELETE with ``propagationPolicy: Orphan``: dependents are released before the owner goes."""
FINALIZER_FOREGROUND = "foregroundDeletion"
"""Set by DELETE with ``propagationPolicy: Foreground``: the owner goes after its blocking dependents."""

_GC_FINALIZERS = (FINALIZER_ORPHAN, FINALIZER_FOREGROUND)
# A record that contains none of these byte strings has no ownerReferences and no GC finalizer, so the
# collector can skip it without parsing: most writes (status updates above all) never pay for the GC.
_MARKERS = (b'"ownerReferences"', b'"orphan"', b'"foregroundDeletion"')

COMPONENT = "garbage-collector-controller"
"""The Event source of the collector's warnings (upstream's)."""


def deletion_finalizers(finalizers: Sequence[str] | None, delete_options: Mapping[str, Any]) -> list[str]:
    """The finalizers an object should carry after a DELETE with ``delete_options`` (upstream's
    ``deletionFinalizersForGarbageCollection``).

    The request decides first: ``orphanDependents`` (legacy: true means Orphan, false means neither),
    then ``propagationPolicy``; without either, a GC finalizer already on the object is kept; the
    default policy of every served kind is Background, which needs no finalizer.  Other finalizers are
    kept in order; at most one of ``orphan`` and ``foregroundDeletion`` is ever present in the result.
    The caller compares the result with the current list (as a set) to decide whether to write.
    """
    current = [f for f in finalizers or () if isinstance(f, str)]
    orphan_dependents = delete_options.get("orphanDependents")
    policy = delete_options.get("propagationPolicy")
    if isinstance(orphan_dependents, bool):
        orphan, foreground = orphan_dependents, False
    elif policy in ("Orphan", "Background", "Foreground"):
        orphan, foreground = policy == "Orphan", policy == "Foreground"
    else:
        orphan = FINALIZER_ORPHAN in current
        foreground = not orphan and FINALIZER_FOREGROUND in current
    result = [f for f in current if f not in _GC_FINALIZERS]
    if orphan:
        result.append(FINALIZER_ORPHAN)
    if foreground:
        result.append(FINALIZER_FOREGROUND)
    return result


# --------------------------------------------------------------------------- work queue

T = TypeVar("T", bound=Hashable)


class WorkQueue(Generic[T]):
    """A deduplicating FIFO for controller workers (client-go's workqueue semantics, on asyncio).

    * An item queued twice before a worker takes it is handed out once.
    * An item is never handed to two workers at once: added while being processed, it is handed out
      again after :meth:`done`.
    * :meth:`retry` re-adds an item after an exponential backoff (``base_delay`` doubling per
      consecutive failure, capped at ``max_delay``); :meth:`forget` resets its failure count.

    Not thread-safe: used from the event loop only.  :meth:`close` cancels pending retries.
    """

    def __init__(self, *, base_delay: float = 0.05, max_delay: float = 10.0) -> None:
        self._queue: deque[T] = deque()
        self._queued: set[T] = set()
        self._processing: set[T] = set()
        self._dirty: set[T] = set()
        self._failures: dict[T, int] = {}
        self._timers: dict[T, asyncio.TimerHandle] = {}
        self._nonempty = asyncio.Event()
        self._base_delay = base_delay
        self._max_delay = max_delay

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, item: T) -> None:
        if item in self._processing:
            self._dirty.add(item)
            return
        if item in self._queued:
            return
        self._queued.add(item)
        self._queue.append(item)
        self._nonempty.set()

    async def get(self) -> T:
        """The next item; the caller must call :meth:`done` with it when finished."""
        while not self._queue:
            self._nonempty.clear()
            await self._nonempty.wait()
        item = self._queue.popleft()
        self._queued.discard(item)
        self._processing.add(item)
        return item

    def done(self, item: T) -> None:
        self._processing.discard(item)
        if item in self._dirty:
            self._dirty.discard(item)
            self.add(item)

    def retry(self, item: T) -> float:
        """Add ``item`` again after its backoff delay; returns the delay."""
        failures = self._failures.get(item, 0)
        self._failures[item] = failures + 1
        delay: float = min(self._base_delay * 2.0**failures, self._max_delay)
        previous = self._timers.pop(item, None)
        if previous is not None:
            previous.cancel()

        def fire() -> None:
            self._timers.pop(item, None)
            self.add(item)

        self._timers[item] = asyncio.get_running_loop().call_later(delay, fire)
        return delay

    def forget(self, item: T) -> None:
        self._failures.pop(item, None)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


async def run_workers(
    queue: WorkQueue[T], handle: Callable[[T], Awaitable[None]], workers: int, what: str
) -> None:
    """Run ``workers`` tasks that take items from ``queue`` and await ``handle(item)`` until
    cancelled.  ``handle`` returns normally when the item is finished (the queue forgets its
    failures) or raises to have it retried with backoff: a :class:`~kubevisor.api.Conflict` (the
    object changed under it) quietly, an :class:`~kubevisor.api.ApiError` or :class:`RetryLater`
    with a log line, anything else with its traceback.  Cancellation is always re-raised."""

    async def work() -> None:
        while True:
            item = await queue.get()
            try:
                await handle(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad object must not stop the controller
                delay = queue.retry(item)
                if isinstance(exc, Conflict):
                    log.debug("%s: %r conflicted, retrying in %.2fs", what, item, delay)
                elif isinstance(exc, ApiError | RetryLater):
                    log.info("%s: %r failed (%s), retrying in %.2fs", what, item, exc, delay)
                else:
                    log.exception("%s: %r failed, retrying in %.2fs", what, item, delay)
            else:
                queue.forget(item)
            finally:
                queue.done(item)
            # Give request handlers a turn between items: a long backlog must not starve the server.
            await asyncio.sleep(0)

    async with asyncio.TaskGroup() as group:
        for index in range(max(1, workers)):
            group.create_task(work(), name=f"kubevisor-{what}-{index}")


class RetryLater(Exception):
    """Raised by a worker's handler when its item cannot finish yet for a reason worth a log line
    but not a traceback; the item is retried with backoff."""


# --------------------------------------------------------------------------- graph


@dataclass(frozen=True, slots=True)
class _OwnerRef:
    api_version: str
    kind: str
    name: str
    uid: str
    block: bool


def _owner_refs(meta: Mapping[str, Any]) -> tuple[_OwnerRef, ...]:
    refs = meta.get("ownerReferences")
    if not isinstance(refs, list):
        return ()
    out = []
    for ref in refs:
        if isinstance(ref, Mapping) and isinstance(ref.get("uid"), str) and ref["uid"]:
            out.append(
                _OwnerRef(
                    str(ref.get("apiVersion") or ""),
                    str(ref.get("kind") or ""),
                    str(ref.get("name") or ""),
                    ref["uid"],
                    ref.get("blockOwnerDeletion") is True,
                )
            )
    return tuple(out)


def _finalizers(meta: Mapping[str, Any]) -> list[str]:
    value = meta.get("finalizers")
    return [f for f in value if isinstance(f, str)] if isinstance(value, list) else []


@dataclass(eq=False, slots=True)
class _Node:
    """One tracked object.  Identity is the uid; coordinates locate it in storage."""

    uid: str
    key: ResourceKey
    namespace: str
    name: str
    api_version: str
    kind: str
    owners: tuple[_OwnerRef, ...] = ()
    orphaning: bool = False
    """Being deleted with the ``orphan`` finalizer."""
    deleting_dependents: bool = False
    """Being deleted with the ``foregroundDeletion`` finalizer."""

    @property
    def coords(self) -> tuple[ResourceKey, str, str]:
        return (self.key, self.namespace, self.name)

    def update_state(self, meta: Mapping[str, Any]) -> None:
        deleting = bool(meta.get("deletionTimestamp"))
        finalizers = _finalizers(meta)
        self.orphaning = deleting and FINALIZER_ORPHAN in finalizers
        self.deleting_dependents = deleting and FINALIZER_FOREGROUND in finalizers


def _node_of(key: ResourceKey, obj: Mapping[str, Any]) -> _Node:
    meta = obj.get("metadata") or {}
    node = _Node(
        uid=str(meta.get("uid") or ""),
        key=key,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        api_version=str(obj.get("apiVersion") or ""),
        kind=str(obj.get("kind") or ""),
        owners=_owner_refs(meta),
    )
    node.update_state(meta)
    return node


class _Unresolvable(Exception):
    """An owner reference names a kind the server does not serve."""


class _InvalidScope(Exception):
    """A cluster-scoped dependent names a namespaced kind as its owner."""


_Item = tuple[str, str]
"""``("delete" | "orphan", uid)``."""


@dataclass(frozen=True)
class GarbageCollector:
    """The garbage collector as a server controller (see the module docstring)::

        APIServer(ServerOptions(controllers=(GarbageCollector(), ...)))

    Each call runs one collector for one server until cancelled; the object itself holds only
    options, so one instance may serve any number of servers.
    """

    workers: int = 4
    """Concurrent worker tasks (upstream's ``--concurrent-gc-syncs`` is 20; in-process writes are fast)."""
    retry_delay: float = 0.05
    """Seconds before the first retry of a failed item; doubled per consecutive failure."""
    max_retry_delay: float = 10.0
    """Upper bound of the retry delay."""
    field_manager: str = "kube-controller-manager"
    """Field manager recorded for the collector's writes."""

    async def __call__(self, server: APIServer) -> None:
        await _Collector(server, self).run()


@dataclass(eq=False)
class _Collector:
    server: APIServer
    options: GarbageCollector
    nodes: dict[str, _Node] = field(default_factory=dict)
    by_coords: dict[tuple[ResourceKey, str, str], _Node] = field(default_factory=dict)
    dependents: dict[str, set[_Node]] = field(default_factory=dict)
    """Owner uid → nodes whose ownerReferences name it (whether or not the owner exists)."""
    absent: dict[str, str] = field(default_factory=dict)
    """Uid → namespace of owners seen deleted, while dependents still name them: absent whatever
    their kind (it may stop being served, as when a CRD is deleted with its instances)."""
    unresolved: set[str] = field(default_factory=set)
    """Dependents waiting for an owner kind to be served."""
    reported: set[tuple[str, str]] = field(default_factory=set)
    _kinds: dict[tuple[str, str], list[ResourceInfo]] | None = None
    _keys: dict[ResourceKey, list[ResourceInfo]] | None = None

    def __post_init__(self) -> None:
        self.queue: WorkQueue[_Item] = WorkQueue(
            base_delay=self.options.retry_delay, max_delay=self.options.max_retry_delay
        )

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        storage = self.server.storage
        assert storage is not None, "the server is not started"
        # Building and subscribing happen in one synchronous step: no write can fall between them.
        self._build()
        unsubscribe = storage.subscribe(self._on_event)
        unwatch = self.server.registry.on_change(self._on_registry_change)
        try:
            await run_workers(self.queue, self._process, self.options.workers, "garbage-collector")
        finally:
            unsubscribe()
            unwatch()
            self.queue.close()

    def _build(self) -> None:
        storage = self.server.storage
        assert storage is not None
        for key in storage.keys():
            for record in storage.list_records(key):
                if any(marker in record.data for marker in _MARKERS):
                    obj = record.load()
                    meta = obj.get("metadata") or {}
                    if _owner_refs(meta) or _gc_pending(meta):
                        self._insert(_node_of(key, obj))
        # Decisions only once the whole graph is known: an owner may sort after its dependents.
        for node in list(self.nodes.values()):
            self._check_owners(node, node.owners)
            self._transitions(node, was_deleting_dependents=False)

    # ------------------------------------------------------------------ registry

    def _on_registry_change(self) -> None:
        self._kinds = self._keys = None
        for uid in self.unresolved:
            self.queue.add(("delete", uid))
        self.unresolved.clear()

    def _index(
        self,
    ) -> tuple[dict[tuple[str, str], list[ResourceInfo]], dict[ResourceKey, list[ResourceInfo]]]:
        """Served resources by (group, kind) and by storage key; rebuilt after registry changes."""
        if self._kinds is None or self._keys is None:
            kinds: dict[tuple[str, str], list[ResourceInfo]] = {}
            keys: dict[ResourceKey, list[ResourceInfo]] = {}
            for info in self.server.registry.resources():
                kinds.setdefault((info.group, info.kind), []).append(info)
                keys.setdefault(resource_key(info), []).append(info)
            self._kinds, self._keys = kinds, keys
        return self._kinds, self._keys

    def _owner_info(self, ref: _OwnerRef) -> ResourceInfo:
        group, version = split_api_version(ref.api_version)
        infos = self._index()[0].get((group, ref.kind), [])
        if not infos:
            raise _Unresolvable(f"{ref.api_version}, Kind={ref.kind}")
        # Objects of every version of a kind share one storage key; the exact version is preferred
        # only for its scope, which all versions share.
        return next((i for i in infos if i.version == version), infos[0])

    def _info_for(self, key: ResourceKey, api_version: str) -> ResourceInfo | None:
        """The resource an object stored under ``key`` as ``api_version`` is served as.  Writes use
        the object's own version so that no field of a newer version is pruned."""
        infos = self._index()[1].get(key, [])
        _, version = split_api_version(api_version)
        for candidate in (
            next((i for i in infos if i.api_version == api_version), None),
            next((i for i in infos if i.version == version), None),
        ):
            if candidate is not None:
                return candidate
        return infos[0] if infos else None

    # ------------------------------------------------------------------ graph upkeep

    def _on_event(self, event: Event) -> None:
        try:
            self._observe(event.type, event.record)
        except Exception:  # a listener must not raise into the storage's write path
            log.exception("garbage collector: cannot process event for %s", event.record.name)

    def _observe(self, kind: str, record: Record) -> None:
        coords = (record.key, record.namespace, record.name)
        node = self.by_coords.get(coords)
        if kind == DELETED:
            if node is not None:
                self._remove(node, deleted=True)
            return
        if node is None and not any(marker in record.data for marker in _MARKERS):
            return
        obj = record.load()
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if node is not None and node.uid != uid:
            # Deleted and recreated under the same name: the deletion was already observed, so this
            # only happens for a node created on demand for an owner; start afresh.
            self._remove(node, deleted=True)
            node = None
        if node is None:
            if not _owner_refs(meta) and not _gc_pending(meta) and uid not in self.dependents:
                return
            node = _node_of(record.key, obj)
            self._insert(node)
            self._check_owners(node, node.owners)
            self._transitions(node, was_deleting_dependents=False)
            return
        was_deleting_dependents = node.deleting_dependents
        node.update_state(meta)
        node.api_version = str(obj.get("apiVersion") or node.api_version)
        new_owners = _owner_refs(meta)
        if new_owners != node.owners:
            self._update_owners(node, new_owners)
        self._transitions(node, was_deleting_dependents=was_deleting_dependents)
        self._prune(node)

    def _insert(self, node: _Node) -> None:
        self.nodes[node.uid] = node
        self.by_coords[node.coords] = node
        for ref in node.owners:
            self.dependents.setdefault(ref.uid, set()).add(node)

    def _remove(self, node: _Node, *, deleted: bool) -> None:
        """Drop ``node``.  ``deleted``: the object is gone, so its dependents lost an owner."""
        self.nodes.pop(node.uid, None)
        if self.by_coords.get(node.coords) is node:
            del self.by_coords[node.coords]
        if deleted and node.uid in self.dependents:
            self.absent[node.uid] = node.namespace
            for dependent in self.dependents[node.uid]:
                self.queue.add(("delete", dependent.uid))
        for ref in node.owners:
            self._unlink(node, ref.uid)

    def _unlink(self, node: _Node, owner_uid: str) -> None:
        linked = self.dependents.get(owner_uid)
        if linked is not None:
            linked.discard(node)
            if not linked:
                del self.dependents[owner_uid]
                self.absent.pop(owner_uid, None)
        owner = self.nodes.get(owner_uid)
        if owner is not None:
            if owner.deleting_dependents:
                # One fewer dependent: the owner may now be free to go.
                self.queue.add(("delete", owner.uid))
            else:
                self._prune(owner)

    def _prune(self, node: _Node) -> None:
        """Stop tracking an object that no longer matters to the graph (not a deletion)."""
        if node.owners or node.orphaning or node.deleting_dependents or self.dependents.get(node.uid):
            return
        if self.nodes.get(node.uid) is node:
            self._remove(node, deleted=False)

    def _update_owners(self, node: _Node, new_owners: tuple[_OwnerRef, ...]) -> None:
        old = {ref.uid: ref for ref in node.owners}
        new = {ref.uid: ref for ref in new_owners}
        node.owners = new_owners
        added = [ref for uid, ref in new.items() if uid not in old]
        for ref in added:
            self.dependents.setdefault(ref.uid, set()).add(node)
        for uid, ref in old.items():
            if uid not in new:
                self._unlink(node, uid)
            elif ref.block and not new[uid].block:
                owner = self.nodes.get(uid)
                if owner is not None and owner.deleting_dependents:
                    self.queue.add(("delete", uid))
        self._check_owners(node, added)

    def _transitions(self, node: _Node, *, was_deleting_dependents: bool) -> None:
        if node.orphaning:
            self.queue.add(("orphan", node.uid))
        elif node.deleting_dependents:
            if not was_deleting_dependents:
                for dependent in self.dependents.get(node.uid, ()):
                    self.queue.add(("delete", dependent.uid))
            self.queue.add(("delete", node.uid))

    def _check_owners(self, node: _Node, refs: Iterable[_OwnerRef]) -> None:
        """Queue ``node`` for a decision if any of ``refs`` is absent, unresolvable or waiting for its
        dependents.  Every present owner is resolved (and so tracked), so that its deletion is seen."""
        for ref in refs:
            try:
                owner = self._resolve(ref, node.namespace)
            except (_Unresolvable, _InvalidScope):
                owner = None
            if owner is None or owner.deleting_dependents:
                self.queue.add(("delete", node.uid))

    def _resolve(self, ref: _OwnerRef, namespace: str) -> _Node | None:
        """The owner ``ref`` names, seen from a dependent in ``namespace`` (``""``: cluster-scoped),
        as a tracked node; ``None`` when absent.  Raises :class:`_Unresolvable` or
        :class:`_InvalidScope`."""
        if self.absent.get(ref.uid) in ("", namespace):
            return None  # seen deleted, and it would have resolved from here (scope rules below)
        info = self._owner_info(ref)
        if info.namespaced and not namespace:
            raise _InvalidScope(ref.kind)
        coords = (resource_key(info), namespace if info.namespaced else "", ref.name)
        node = self.by_coords.get(coords)
        if node is not None:
            return node if node.uid == ref.uid else None
        storage = self.server.storage
        assert storage is not None
        record = storage.get(*coords)
        if record is None:
            return None
        obj = record.load()
        if (obj.get("metadata") or {}).get("uid") != ref.uid:
            return None
        node = _node_of(coords[0], obj)
        self._insert(node)
        return node

    # ------------------------------------------------------------------ workers

    async def _process(self, item: _Item) -> None:
        op, uid = item
        if op == "orphan":
            await self._orphan(uid)
        else:
            await self._attempt_to_delete(uid)

    def _latest(self, node: _Node) -> tuple[ResourceInfo, Record, dict[str, Any]] | None:
        """The stored object behind ``node``, or ``None`` when it is gone (or is another object now)."""
        storage = self.server.storage
        assert storage is not None
        record = storage.get(*node.coords)
        if record is None:
            return None
        obj = record.load()
        if (obj.get("metadata") or {}).get("uid") != node.uid:
            return None
        info = self._info_for(node.key, str(obj.get("apiVersion") or ""))
        if info is None:
            return None
        obj["apiVersion"] = info.api_version
        return info, record, obj

    def _request(self) -> RequestOptions:
        return RequestOptions(
            field_validation="Ignore",
            field_manager=self.options.field_manager,
            user_agent=f"kube-controller-manager/v{KUBERNETES_VERSION} (linux/amd64) kubernetes/"
            "generic-garbage-collector",
        )

    async def _write(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        """PUT ``obj`` (carrying the resourceVersion it was read at)."""
        meta = obj["metadata"]
        try:
            await self.server.service.update(
                info, meta.get("namespace") or "", meta["name"], obj, self._request()
            )
        except NotFound:
            return

    async def _delete(self, info: ResourceInfo, node: _Node, record: Record, policy: str) -> None:
        """DELETE with ``policy``, on condition that the object is still exactly as classified (uid
        as upstream, plus the resourceVersion, because classification may have awaited)."""
        log.debug("garbage collector: deleting %s %s/%s (%s)", node.kind, node.namespace, node.name, policy)
        preconditions = {"uid": node.uid, "resourceVersion": str(record.rv)}
        with contextlib.suppress(NotFound):
            await self.server.service.delete(
                info,
                node.namespace,
                node.name,
                {"propagationPolicy": policy, "preconditions": preconditions},
                self._request(),
            )

    async def _remove_finalizer(self, node: _Node, finalizer: str) -> None:
        latest = self._latest(node)
        if latest is None:
            return
        info, _, obj = latest
        meta = obj["metadata"]
        finalizers = _finalizers(meta)
        if finalizer not in finalizers:
            return
        meta["finalizers"] = [f for f in finalizers if f != finalizer]
        if not meta["finalizers"]:
            del meta["finalizers"]
        await self._write(info, obj)

    async def _orphan(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None:
            return
        latest = self._latest(node)
        if latest is None:
            return
        meta = latest[2]["metadata"]
        if not meta.get("deletionTimestamp") or FINALIZER_ORPHAN not in _finalizers(meta):
            return
        for dependent in list(self.dependents.get(uid, ())):
            await self._drop_owner_refs(dependent, {uid}, unblock=False)
        await self._remove_finalizer(node, FINALIZER_ORPHAN)

    async def _drop_owner_refs(self, node: _Node, uids: set[str], *, unblock: bool) -> None:
        """Remove the references to ``uids`` from ``node``'s object (``unblock``: instead of
        removing any, set every ``blockOwnerDeletion`` to false)."""
        latest = self._latest(node)
        if latest is None:
            return
        info, _, obj = latest
        meta = obj["metadata"]
        refs = meta.get("ownerReferences")
        if not isinstance(refs, list):
            return
        if unblock:
            kept = [
                {**ref, "blockOwnerDeletion": False}
                if isinstance(ref, dict) and ref.get("blockOwnerDeletion")
                else ref
                for ref in refs
            ]
        else:
            kept = [ref for ref in refs if not (isinstance(ref, dict) and ref.get("uid") in uids)]
        if kept == refs:
            return
        if kept:
            meta["ownerReferences"] = kept
        else:
            del meta["ownerReferences"]
        await self._write(info, obj)

    async def _attempt_to_delete(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None:
            return
        latest = self._latest(node)
        if latest is None:
            return
        info, record, obj = latest
        meta = obj["metadata"]
        finalizers = _finalizers(meta)
        if meta.get("deletionTimestamp"):
            if FINALIZER_FOREGROUND in finalizers:
                await self._process_deleting_dependents(node)
            # Otherwise deletion is already under way: its DELETED event will release the dependents.
            return
        refs = _owner_refs(meta)
        if not refs:
            return
        # Classification is synchronous, so it sees one consistent state of storage.
        solid: list[_OwnerRef] = []
        dangling: list[_OwnerRef] = []
        waiting: list[_OwnerRef] = []
        for ref in refs:
            try:
                owner = self._resolve(ref, node.namespace)
            except _Unresolvable as exc:
                log.info("garbage collector: %s %s names unknown owner kind %s", node.kind, node.name, exc)
                self.unresolved.add(uid)
                return
            except _InvalidScope:
                # Upstream: an error no retry resolves, so the dependent is never collected.
                await self._report_invalid_namespaces(node, [ref])
                return
            if owner is None:
                dangling.append(ref)
            elif owner.deleting_dependents:
                waiting.append(ref)
            else:
                solid.append(ref)
        await self._report_invalid_namespaces(node, dangling)
        if solid:
            if dangling or waiting:
                # Keep the object (it has a live owner) but let go of the others, so that a
                # foreground-deleting owner is not held by a dependent that will never go.
                await self._drop_owner_refs(node, {r.uid for r in dangling + waiting}, unblock=False)
            return
        dependents = self.dependents.get(uid, set())
        if waiting and dependents:
            if any(d.deleting_dependents for d in dependents):
                # An owner and a dependent both wait for their dependents: a cycle is possible, so
                # stop blocking the owners before deleting in the foreground.
                await self._drop_owner_refs(node, set(), unblock=True)
                latest = self._latest(node)
                if latest is None:
                    return
                record = latest[1]
            await self._delete(info, node, record, "Foreground")
            return
        if FINALIZER_ORPHAN in finalizers:
            policy = "Orphan"
        elif FINALIZER_FOREGROUND in finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        await self._delete(info, node, record, policy)

    async def _process_deleting_dependents(self, node: _Node) -> None:
        blocking = [
            dependent
            for dependent in self.dependents.get(node.uid, ())
            if any(ref.uid == node.uid and ref.block for ref in dependent.owners)
        ]
        if not blocking:
            await self._remove_finalizer(node, FINALIZER_FOREGROUND)
            return
        for dependent in blocking:
            if not dependent.deleting_dependents:
                self.queue.add(("delete", dependent.uid))

    # ------------------------------------------------------------------ invalid references

    async def _report_invalid_namespaces(self, node: _Node, refs: Sequence[_OwnerRef]) -> None:
        """Record upstream's ``OwnerRefInvalidNamespace`` Warning for each of ``refs`` that names an
        object in another namespace than ``node``'s (once per dependent and owner)."""
        for ref in refs:
            if (node.uid, ref.uid) in self.reported:
                continue
            elsewhere = self._find_elsewhere(ref, node.namespace)
            if not elsewhere:
                continue
            self.reported.add((node.uid, ref.uid))
            log.warning(
                "garbage collector: %s %s/%s names owner %s %s of namespace %s",
                node.kind,
                node.namespace,
                node.name,
                ref.kind,
                ref.name,
                elsewhere,
            )
            identity = f"[{ref.api_version}/{ref.kind}, namespace: {node.namespace}, name: {ref.name}, uid: {ref.uid}]"
            await self._record_event(
                node,
                "OwnerRefInvalidNamespace",
                f'ownerRef {identity} does not exist in namespace "{node.namespace}"',
            )

    def _find_elsewhere(self, ref: _OwnerRef, namespace: str) -> str:
        """The namespace other than ``namespace`` holding the object ``ref`` names by uid, or ``""``."""
        tracked = self.nodes.get(ref.uid)
        if tracked is not None:
            return tracked.namespace if tracked.namespace and tracked.namespace != namespace else ""
        try:
            info = self._owner_info(ref)
        except _Unresolvable:
            return ""
        if not info.namespaced:
            return ""
        storage = self.server.storage
        assert storage is not None
        for record in storage.list_records(resource_key(info)):
            if record.name == ref.name and record.namespace != namespace:
                if (record.load().get("metadata") or {}).get("uid") == ref.uid:
                    return record.namespace
        return ""

    async def _record_event(self, node: _Node, reason: str, message: str) -> None:
        info = self.server.registry.get("", "v1", "events")
        if info is None:
            return
        stamp = format_time(self.server.service.clock())
        involved = {
            "kind": node.kind,
            "namespace": node.namespace,
            "name": node.name,
            "uid": node.uid,
            "apiVersion": node.api_version,
        }
        if not node.namespace:
            del involved["namespace"]
        namespace = node.namespace or "default"
        event = {
            "metadata": {"name": f"{node.name}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": {"component": COMPONENT},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": "Warning",
            "reportingComponent": COMPONENT,
            "reportingInstance": "",
        }
        with contextlib.suppress(ApiError):  # events are best effort, as upstream's recorder
            await self.server.service.create(info, namespace, event, self._request())


def _gc_pending(meta: Mapping[str, Any]) -> bool:
    return bool(meta.get("deletionTimestamp")) and any(f in _GC_FINALIZERS for f in _finalizers(meta))
