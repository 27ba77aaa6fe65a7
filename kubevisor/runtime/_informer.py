"""Informers: a reflector keeping a :class:`Store` in step with the API server, event handlers for
controllers, a ``synced`` signal, and the shared :class:`InformerCache`.

The reflector follows client-go's:

* **List**, paged (``limit``), first with ``resourceVersion="0"`` (any version: a real API server
  answers from its watch cache instead of etcd), and replace the store with the result.
* **Watch** from the list's resourceVersion with bookmarks.  The client's :class:`~kubevisor.client.Watch`
  resumes broken, server-closed and silent streams from the last version seen (bookmarks keep that
  version fresh); the informer counts those resumptions as watch restarts.
* **Relist** when the watch reports :class:`~kubevisor.api.Expired` (the history it needs was
  compacted away): with ``resourceVersion=""``, a consistent read of the newest state; and after any
  other failure, from the last version seen, with exponential backoff (0.8 s doubling to 30 s,
  jittered).  A relist diffs the new listing against the store, so handlers see the objects added,
  changed and deleted while the informer was blind: nothing is missed, nothing is repeated.
* **Resync** (optional): every ``resync_period`` every cached object is handed to the handlers'
  ``on_update(obj, obj)`` again, so that level-triggered consumers recheck everything.

Informers never give up: errors are retried with backoff forever (a cache that stops silently is the
failure kopf users report most).  They are run as supervised children: :meth:`Informer.run` reports
ready once the first list is in the store.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from kubevisor.api import Expired, GroupVersionKind, ResourceInfo
from kubevisor.client import ALL_NAMESPACES, Client, MonotonicClock, SystemClock, TypedResource
from kubevisor.runtime._store import IndexFunc, ObjectRef, Store
from kubevisor.supervisor import ChildSpec, ChildType, Ready, Restart, Supervisor, SupervisorOptions

__all__ = [
    "EventHandler",
    "Informer",
    "InformerCache",
    "InformerKey",
    "InformerObserver",
    "InformerOptions",
    "KindRef",
]

log = logging.getLogger("kubevisor.runtime")

Obj = dict[str, Any]

KindRef = type[TypedResource] | ResourceInfo | GroupVersionKind
"""How the runtime names a kind: a typed resource class, a :class:`ResourceInfo`, or a GVK (resolved
through discovery)."""


@dataclass(frozen=True, slots=True)
class InformerOptions:
    """How informers list, watch and cache."""

    page_size: int | None = 500
    """Items per list request (client-go's pager: 500); ``None`` lists in one request."""
    initial_resource_version: str = "0"
    """The resourceVersion of the first list: ``"0"`` lets a real API server answer from its watch
    cache (client-go's choice); ``""`` forces a consistent read from etcd."""
    resync_period: float | None = None
    """Seconds between resyncs (every cached object handed to ``on_update(obj, obj)``); ``None`` (the
    default, as controller-runtime's) never resyncs: watches are reliable, requeues are explicit."""
    keep_managed_fields: bool = False
    """Keep ``metadata.managedFields`` in cached objects.  Dropped by default: they are often the
    largest part of an object, and controllers do not read them."""
    backoff_initial: float = 0.8
    """Seconds before the first retry after a failed list or watch (client-go's reflector: 800 ms)."""
    backoff_max: float = 30.0
    """Ceiling of the retry backoff in seconds (client-go's reflector: 30 s)."""

    def __post_init__(self) -> None:
        if self.page_size is not None and self.page_size < 1:
            raise ValueError("page_size must be positive or None")
        if self.resync_period is not None and self.resync_period <= 0:
            raise ValueError("resync_period must be positive or None")
        if self.backoff_initial <= 0 or self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_initial must be positive and at most backoff_max")


class EventHandler(Protocol):
    """Receives an informer's changes, synchronously, in the order the informer saw them.

    Handlers must be quick and must not block: controllers only turn events into work-queue keys.
    An exception is logged and otherwise ignored (one handler cannot starve the others).
    """

    def on_add(self, obj: Obj) -> None: ...

    def on_update(self, old: Obj, new: Obj) -> None: ...

    def on_delete(self, obj: Obj) -> None: ...


class InformerObserver(Protocol):
    """Receives an informer's metrics (the runtime wires one to Prometheus).  Must not raise."""

    def relisted(self, reason: str) -> None:
        """A list replaced the store: ``"initial"``, ``"expired"`` or ``"error"``."""

    def watch_restarted(self, count: int) -> None:
        """``count`` more watch streams were reopened (server timeout, broken or silent stream)."""

    def objects(self, count: int) -> None:
        """The store now holds ``count`` objects."""


class _NoObserver:
    def relisted(self, reason: str) -> None:
        pass

    def watch_restarted(self, count: int) -> None:
        pass

    def objects(self, count: int) -> None:
        pass


class InformerKey(NamedTuple):
    """What makes two informers the same: kind, namespace scope and selectors."""

    group: str
    version: str
    plural: str
    namespace: str | None
    """``None``: every namespace (or a cluster-scoped kind)."""
    label_selector: str | None
    field_selector: str | None

    def __str__(self) -> str:
        gvr = f"{self.plural}.{self.version}.{self.group}" if self.group else f"{self.plural}.{self.version}"
        parts = [gvr]
        if self.namespace:
            parts.append(f"ns={self.namespace}")
        if self.label_selector:
            parts.append(f"labels={self.label_selector}")
        if self.field_selector:
            parts.append(f"fields={self.field_selector}")
        return " ".join(parts)


class Informer:
    """One kind in one scope, cached and watched.  See the module docstring for the protocol.

    Construct through :meth:`InformerCache.informer` so that it is shared; run with :meth:`run`
    (usually as a supervised child, :meth:`child_spec`).
    """

    def __init__(
        self,
        client: Client,
        resource: ResourceInfo,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        options: InformerOptions = InformerOptions(),
        indexes: dict[str, IndexFunc] | None = None,
        observer: InformerObserver | None = None,
        clock: MonotonicClock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if namespace is not None and not resource.namespaced:
            raise ValueError(
                f"{resource.qualified} is cluster-scoped: an informer cannot be scoped to a namespace"
            )
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector or None
        self.field_selector = field_selector or None
        self.options = options
        self.key = InformerKey(
            resource.group,
            resource.version,
            resource.plural,
            namespace,
            self.label_selector,
            self.field_selector,
        )
        self.store = Store(indexes)
        self.observer: InformerObserver = observer if observer is not None else _NoObserver()
        self._clock: MonotonicClock = clock if clock is not None else SystemClock()
        self._rng = rng if rng is not None else random.Random()
        # Replaced, never mutated: dispatching iterates it without a copy, and a handler added or
        # removed during a dispatch takes effect from the next event.
        self._handlers: tuple[EventHandler, ...] = ()
        self._synced = asyncio.Event()
        self.last_sync_resource_version: str = ""
        """The resourceVersion of the last list or watch event applied to the store."""
        self.relists = 0
        """Lists that replaced the store, the initial one included."""
        self.watch_restarts = 0
        """Watch streams reopened, by the client's resumption or by a relist."""

    def __repr__(self) -> str:
        return f"<Informer {self.key}>"

    # -- consumers --

    @property
    def synced(self) -> bool:
        """Whether the first list is in the store (it stays true across later relists)."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Return once :attr:`synced`."""
        await self._synced.wait()

    def add_handler(self, handler: EventHandler, *, replay: bool = True) -> Callable[[], None]:
        """Deliver every later change to ``handler``; with ``replay``, first an ``on_add`` for every
        object already cached (so a handler added late sees the same world as one added first).
        Returns a function that removes the handler."""
        self._handlers = (*self._handlers, handler)
        if replay:
            for obj in list(self.store):
                _call(handler.on_add, obj)

        def remove() -> None:
            if handler in self._handlers:
                handlers = list(self._handlers)
                handlers.remove(handler)
                self._handlers = tuple(handlers)

        return remove

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Add an index to the store (see :meth:`Store.add_index`)."""
        self.store.add_index(name, func)

    def child_spec(self, *, start_timeout: float = math.inf) -> ChildSpec:
        """This informer as a supervised child: ready once synced, restarted if it ever exits."""
        return ChildSpec(
            id=f"informer {self.key}",
            start=self.run,
            restart=Restart.PERMANENT,
            shutdown=5.0,
            start_timeout=start_timeout,
        )

    # -- the reflector --

    async def run(self, ready: Ready | None = None) -> None:
        """List and watch until cancelled; call ``ready`` once the first list is in the store.

        Never returns normally and never raises for API or network failures: those are retried with
        backoff.  Programming errors (``TypeError`` and the like from a bad handler are caught per
        handler; anything else escaping here) propagate to the supervisor.
        """
        list_version: str = self.options.initial_resource_version
        reason = "initial"
        failures = 0
        async with asyncio.TaskGroup() as group:
            if self.options.resync_period is not None:
                group.create_task(self._resync_loop(self.options.resync_period))
            while True:
                try:
                    version = await self._list(list_version)
                except Expired:
                    # The version asked for is gone (a relist after an error): read the newest state.
                    list_version = ""
                    continue
                except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:
                    failures += 1
                    delay = self._backoff(failures)
                    log.warning("informer %s: list failed (%s); retrying in %.1fs", self.key, exc, delay)
                    await self._clock.sleep(delay)
                    continue
                self.relists += 1
                self.observer.relisted(reason)
                failures = 0
                if not self._synced.is_set():
                    self._synced.set()
                    log.debug("informer %s: synced with %d objects", self.key, len(self.store))
                if ready is not None:
                    ready()
                try:
                    await self._watch(version)
                    reason, list_version = "error", self.last_sync_resource_version
                    log.info("informer %s: watch ended; relisting", self.key)
                except Expired:
                    reason, list_version = "expired", ""
                    log.info("informer %s: watch history expired; relisting", self.key)
                except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:
                    failures += 1
                    reason, list_version = "error", self.last_sync_resource_version
                    delay = self._backoff(failures)
                    log.warning("informer %s: watch failed (%s); relisting in %.1fs", self.key, exc, delay)
                    await self._clock.sleep(delay)
                self.watch_restarts += 1
                self.observer.watch_restarted(1)

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.options.backoff_max, self.options.backoff_initial * 2.0 ** min(failures - 1, 32))
        # Jitter (client-go: factor 1.0) spreads the relists of many informers after an outage.
        return ceiling * (1.0 + self._rng.random()) / 2 if ceiling < self.options.backoff_max else ceiling

    def _scope(self) -> str:
        return self.namespace if self.namespace is not None else ALL_NAMESPACES

    async def _list(self, resource_version: str) -> str:
        listing = await self.client.list_all(
            self.resource,
            namespace=self._scope(),
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            resource_version=resource_version or None,
            limit=self.options.page_size,
        )
        items = listing.items
        if not self.options.keep_managed_fields:
            for obj in items:
                _strip(obj)
        added, updated, deleted = self.store.replace(items)
        self.last_sync_resource_version = listing.resource_version
        self.observer.objects(len(self.store))
        for obj in added:
            self._dispatch_add(obj)
        for old, new in updated:
            self._dispatch_update(old, new)
        for obj in deleted:
            self._dispatch_delete(obj)
        return listing.resource_version

    async def _watch(self, resource_version: str) -> None:
        watch = self.client.watch(
            self.resource,
            namespace=self._scope(),
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            resource_version=resource_version,
        )
        reported = 0
        keep = self.options.keep_managed_fields
        store = self.store
        async with watch:
            async for event in watch:
                if watch.reconnects != reported:
                    self.watch_restarts += watch.reconnects - reported
                    self.observer.watch_restarted(watch.reconnects - reported)
                    reported = watch.reconnects
                obj = event.object
                if not keep:
                    meta = obj.get("metadata")
                    if meta is not None:
                        meta.pop("managedFields", None)
                if event.type == "DELETED":
                    old = store.remove(ObjectRef.of(obj))
                    if old is not None:
                        self._dispatch_delete(obj)
                else:
                    old = store.upsert(obj)
                    if old is None:
                        self._dispatch_add(obj)
                    else:
                        self._dispatch_update(old, obj)
                if watch.resource_version:
                    self.last_sync_resource_version = watch.resource_version
                self.observer.objects(len(store))
        if watch.resource_version:
            self.last_sync_resource_version = watch.resource_version

    async def _resync_loop(self, period: float) -> None:
        while True:
            await self._clock.sleep(period)
            if not self._synced.is_set():
                continue
            for obj in list(self.store):
                for handler in self._handlers:
                    _call(handler.on_update, obj, obj)

    # The three dispatchers run once per event and handler: the try is inlined rather than
    # delegated to _call.

    def _dispatch_add(self, obj: Obj) -> None:
        for handler in self._handlers:
            try:
                handler.on_add(obj)
            except Exception:
                log.exception("informer event handler %r failed", handler.on_add)

    def _dispatch_update(self, old: Obj, new: Obj) -> None:
        for handler in self._handlers:
            try:
                handler.on_update(old, new)
            except Exception:
                log.exception("informer event handler %r failed", handler.on_update)

    def _dispatch_delete(self, obj: Obj) -> None:
        for handler in self._handlers:
            try:
                handler.on_delete(obj)
            except Exception:
                log.exception("informer event handler %r failed", handler.on_delete)


def _strip(obj: Obj) -> None:
    meta = obj.get("metadata")
    if meta is not None:
        meta.pop("managedFields", None)


def _call(method: Callable[..., None], *args: Obj) -> None:
    try:
        method(*args)
    except Exception:
        log.exception("informer event handler %r failed", method)


class InformerCache:
    """One :class:`Informer` per (kind, namespace, label selector, field selector), however many
    controllers ask for it: the shared cache of a manager.

    ``await cache.informer(kind, namespace=..., label_selector=...)`` returns the informer for that
    scope, creating it on first request.  :meth:`child_spec` is the supervision subtree that runs
    them (ready once every one synced); an informer requested while that subtree runs is started in
    it at once, and the call returns once it is synced.
    """

    def __init__(
        self,
        client: Client,
        options: InformerOptions = InformerOptions(),
        *,
        observer_factory: Callable[[Informer], InformerObserver] | None = None,
        clock: MonotonicClock | None = None,
        sync_timeout: float = math.inf,
    ) -> None:
        self.client = client
        self.options = options
        self._observer_factory = observer_factory
        self._clock = clock
        self._sync_timeout = sync_timeout
        self._informers: dict[InformerKey, Informer] = {}
        self._supervisor: Supervisor | None = None

    def __iter__(self) -> Iterator[Informer]:
        return iter(list(self._informers.values()))

    def __len__(self) -> int:
        return len(self._informers)

    @property
    def synced(self) -> bool:
        """Whether every informer has synced."""
        return all(informer.synced for informer in self._informers.values())

    async def wait_synced(self) -> None:
        """Return once every informer known now has synced."""
        for informer in list(self._informers.values()):
            await informer.wait_synced()

    async def resource_info(self, kind: KindRef) -> ResourceInfo:
        """What ``kind`` addresses (a GVK is resolved through discovery)."""
        return await self.client.resource_info(kind)

    async def informer(
        self,
        kind: KindRef,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Informer:
        """The shared informer for this scope.  ``namespace=None`` watches every namespace (the only
        choice for a cluster-scoped kind, for which a namespace is a ``ValueError``)."""
        resource = await self.resource_info(kind)
        if not resource.namespaced and namespace is not None:
            raise ValueError(f"{resource.qualified} is cluster-scoped: it has no namespace {namespace!r}")
        key = InformerKey(
            resource.group,
            resource.version,
            resource.plural,
            namespace,
            label_selector or None,
            field_selector or None,
        )
        existing = self._informers.get(key)
        if existing is not None:
            return existing
        informer = Informer(
            self.client,
            resource,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            options=self.options,
            clock=self._clock,
        )
        if self._observer_factory is not None:
            informer.observer = self._observer_factory(informer)
        self._informers[key] = informer
        if self._supervisor is not None:
            await self._supervisor.start_child(informer.child_spec(start_timeout=self._sync_timeout))
        return informer

    def child_spec(self, name: str = "informers") -> ChildSpec:
        """The informers as a supervised subtree: one child per informer (one_for_one; an informer
        retries failures itself, so a restart means a bug and a generous intensity absorbs it).  The
        subtree is ready once every informer synced, each within the cache's ``sync_timeout``.
        Informers requested while it runs join it; a restarted subtree starts every informer known."""
        cache = self

        async def start(ready: Ready) -> None:
            sup = Supervisor(
                [informer.child_spec(start_timeout=cache._sync_timeout) for informer in cache],
                SupervisorOptions(max_restarts=10, max_seconds=60),
                name=name,
            )
            cache._supervisor = sup
            try:
                await sup.child_spec().start(ready)
            finally:
                if cache._supervisor is sup:
                    cache._supervisor = None

        return ChildSpec(name, start, shutdown=math.inf, type=ChildType.SUPERVISOR, start_timeout=math.inf)
