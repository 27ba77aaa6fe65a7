"""Controllers: a primary kind, the kinds it owns and watches, a work queue, N workers running the
reconcile, and the application of what each reconcile registered.

Life of a request (controller-runtime's model, DESIGN.md convention 2):

1. An informer event (of the primary kind, of an owned kind mapped through its controller owner
   reference, or of a watched kind through a mapping function) that passes the predicates becomes an
   :class:`ObjectRef` in the work queue.  The queue deduplicates it and never hands one key to two
   workers at once.
2. A worker reads the object from the cache.  Absent: it was deleted, nothing to do.  Being deleted:
   the cleanup runs, then the finalizer is removed.  Otherwise the finalizer is added first (when the
   controller has a cleanup), the object is converted to its typed model (an object that does not fit
   is reported with an event and a condition, and skipped), and the reconcile runs under a timeout.
3. The reconcile's intent is applied (descendants, pruning, status, events); its :class:`Action` or
   error decides whether and when the key comes back.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from kubevisor.api import (
    ApiError,
    Conflict,
    GroupVersionKind,
    NotFound,
    ResourceInfo,
    create_merge_patch,
    split_api_version,
)
from kubevisor.client import Client, MonotonicClock, Preconditions, UnknownKind
from kubevisor.runtime._context import Action, Context, PermanentError
from kubevisor.runtime._daemons import Daemon, DaemonContext, Timer, kind_key
from kubevisor.runtime._deadlines import Deadlines
from kubevisor.runtime._informer import Informer, InformerCache, KindRef
from kubevisor.runtime._predicates import Predicate
from kubevisor.runtime._queue import QueueShutDown, RateLimiter, WorkQueue, WorkQueueOptions, run_workers
from kubevisor.runtime._store import CONTROLLER_INDEX, ObjectRef, controller_of
from kubevisor.supervisor import (
    ChildNotFound,
    ChildSpec,
    ChildType,
    DuplicateChild,
    Ready,
    Restart,
    StartFailed,
    Strategy,
    Supervisor,
    SupervisorNotRunning,
    SupervisorOptions,
)

if TYPE_CHECKING:
    from kubevisor.runtime._metrics import RuntimeMetrics
    from kubevisor.runtime._recorder import EventRecorder

__all__ = [
    "MANAGED_BY_LABEL",
    "OWNER_UID_LABEL",
    "Cleanup",
    "Controller",
    "ControllerOptions",
    "DeclarationError",
    "Mapper",
    "Owns",
    "Reconciler",
    "Watches",
]

log = logging.getLogger("kubevisor.runtime")
_reconcile_log = logging.getLogger("kubevisor.reconcile")

Obj = dict[str, Any]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
"""Set on every descendant to the controller's field manager."""
OWNER_UID_LABEL = "kubevisor.dev/owner-uid"
"""Set on every descendant to its owner's UID: what marks it as the controller's to prune."""
APPLIED_ANNOTATION = "kubevisor.dev/applied"
"""A digest of the descendant as last applied: an unchanged descendant is not applied again."""

Reconciler = Callable[[Any, Context[Any]], Awaitable[Action | None]]
"""``async def reconcile(obj, ctx) -> Action``; returning ``None`` means :meth:`Action.done`."""
Cleanup = Callable[[Any, Context[Any]], Awaitable[None]]
"""``async def cleanup(obj, ctx) -> None``: run once the object is being deleted, before its
finalizer is removed.  Raise to retry (with backoff); the finalizer stays until it succeeds."""
Mapper = Callable[[Obj], Iterable[ObjectRef | tuple[str, str]]]
"""Maps a watched object (its wire dict, read-only) to the primary objects to reconcile."""


class DeclarationError(ValueError):
    """A controller is declared wrongly (an unknown kind, a scope that cannot work, a duplicate name).
    Raised when the manager starts, naming the controller and the declaration at fault."""


@dataclass(frozen=True, slots=True)
class Owns:
    """A kind whose objects the controller creates: their events reach the owner through the
    controller owner reference, and they are the only descendants ``ctx.apply`` accepts and prunes.

    The informer is scoped like the controller (its namespace); ``label_selector`` narrows it further
    (for instance to the objects this controller manages, to save memory).
    """

    kind: KindRef
    predicates: Predicate | None = None
    label_selector: str | None = None


@dataclass(frozen=True, slots=True)
class Watches:
    """Any kind whose events should reconcile primary objects chosen by ``map`` (for an update, the
    union of what the old and the new object map to)."""

    kind: KindRef
    map: Mapper
    predicates: Predicate | None = None
    label_selector: str | None = None
    all_namespaces: bool = False
    """Watch every namespace even when the controller is scoped to one."""


@dataclass(frozen=True, slots=True)
class ControllerOptions:
    """A controller's tunables; every default is stated here."""

    name: str | None = None
    """The controller's name (metrics, logs, events' source, default field manager); default:
    ``<kind>.<group>`` in lower case, e.g. ``todo.example.com``."""
    workers: int = 16
    """Maximum concurrent reconciles (controller-runtime defaults to 1; reconciles here are async
    and mostly wait on the API, so more workers cost little).  Never two for one object."""
    reconcile_timeout: float | None = 300.0
    """Seconds after which a reconcile (or cleanup) is cancelled and retried with backoff; ``None``:
    unbounded."""
    namespace: str | None = None
    """Only reconcile objects of this namespace (and watch owned kinds there); ``None``: all."""
    label_selector: str | None = None
    """Only reconcile primary objects matching this label selector."""
    field_manager: str | None = None
    """The server-side apply field manager and ``app.kubernetes.io/managed-by`` value; default: the name."""
    finalizer: str | None = None
    """The finalizer added when the controller has a cleanup; default ``kubevisor.dev/<name>``."""
    error_condition: str | None = "Reconciled"
    """The condition type set to ``False`` (with the reason and message) when a reconcile raises a
    :class:`PermanentError` or the object fails its typed model, and back to ``True`` once a
    reconcile succeeds again.  ``None``: no such condition."""
    queue: WorkQueueOptions = field(default_factory=WorkQueueOptions)
    """Backoff and token bucket of the controller's work queue (its name defaults to the controller's)."""
    daemon_max_restarts: int = 10
    """Daemon restarts tolerated within ``daemon_max_seconds`` before the controller's daemon
    supervisor gives up (and is itself restarted by the controller's)."""
    daemon_max_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("a controller needs at least one worker")
        if self.reconcile_timeout is not None and self.reconcile_timeout <= 0:
            raise ValueError("reconcile_timeout must be positive or None")


class _Host(Protocol):
    """What a controller needs from the manager that runs it."""

    client: Client
    informers: InformerCache
    recorder: EventRecorder
    metrics: RuntimeMetrics
    clock: MonotonicClock
    wall_clock: Callable[[], datetime]


def _default_name(kind: KindRef) -> str:
    if isinstance(kind, ResourceInfo | GroupVersionKind):
        group, name = kind.group, kind.kind
    else:
        info = kind.resource_info()
        group, name = info.group, info.kind
    return f"{name.lower()}.{group}" if group else name.lower()


def _kind_of(kind: Any) -> tuple[str, str]:
    """``(group, kind)`` of a kind reference, without discovery."""
    if isinstance(kind, ResourceInfo | GroupVersionKind):
        return kind.group, kind.kind
    info = kind.resource_info()
    return info.group, info.kind


def _json_copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def _contains(live: Any, desired: Any) -> bool:
    """Whether every field of ``desired`` is in ``live`` with the same value (lists: same length,
    item by item), so that applying ``desired`` again would change nothing that we own."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        for key, value in desired.items():
            if key not in live or not _contains(live[key], value):
                return False
        return True
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(_contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


@dataclass(slots=True)
class _Owned:
    resource: ResourceInfo
    informer: Informer


class _Outcome:
    """Result labels of ``kubevisor_reconcile_total``."""

    SUCCESS = "success"
    REQUEUE = "requeue"
    REQUEUE_AFTER = "requeue_after"
    ERROR = "error"
    PERMANENT = "permanent_error"
    INVALID = "invalid_object"
    TIMEOUT = "timeout"
    CONFLICT = "conflict"
    ALL = (SUCCESS, REQUEUE, REQUEUE_AFTER, ERROR, PERMANENT, INVALID, TIMEOUT, CONFLICT)


class Controller:
    """Reconciles one primary kind.  Declare it, add it to a :class:`~kubevisor.runtime.Manager`.

    ::

        controller = Controller(
            Todo,
            reconcile,
            owns=[ConfigMap],
            predicates=generation_changed(),
            cleanup=forget_todo,
            options=ControllerOptions(workers=8),
        )

    ``kind``, and those of ``owns`` and ``watches``, are typed resource classes, ``ResourceInfo`` or
    ``GroupVersionKind``.  A typed primary kind means the reconcile receives instances of it (built
    with ``from_wire`` from a copy of the cached object); otherwise it receives a dict (a copy too).
    """

    def __init__(
        self,
        kind: KindRef,
        reconcile: Reconciler,
        *,
        owns: Sequence[KindRef | Owns] = (),
        watches: Sequence[Watches] = (),
        predicates: Predicate | None = None,
        cleanup: Cleanup | None = None,
        daemons: Sequence[Daemon | Timer] = (),
        options: ControllerOptions | None = None,
        rate_limiter: RateLimiter[ObjectRef] | None = None,
    ) -> None:
        """``rate_limiter`` replaces the work queue's default (client-go's per-key exponential backoff
        combined with a token bucket, tuned by ``options.queue``)."""
        self.kind = kind
        self.reconcile = reconcile
        self.owns = tuple(o if isinstance(o, Owns) else Owns(o) for o in owns)
        self.watches = tuple(watches)
        self.predicates = predicates if predicates is not None else Predicate()
        self.cleanup = cleanup
        self.daemons = tuple(daemons)
        self.options = options if options is not None else ControllerOptions()
        self.name = self.options.name or _default_name(kind)
        self.field_manager = self.options.field_manager or self.name
        self.finalizer = self.options.finalizer or f"kubevisor.dev/{self.name}"[:253]
        ids = [d.id for d in self.daemons]
        if len(set(ids)) != len(ids):
            raise DeclarationError(
                f"controller {self.name!r}: daemon and timer names must be unique, got {ids}"
            )
        typed = not isinstance(kind, ResourceInfo | GroupVersionKind)
        self._convert: Callable[[Obj], Any] = kind.from_wire if typed else (lambda wire: wire)  # type: ignore[union-attr]
        self._rate_limiter = rate_limiter
        self._deadlines = Deadlines(self.options.reconcile_timeout)
        self._host: _Host | None = None
        self.resource: ResourceInfo | None = None
        self.primary: Informer | None = None
        self._owned: dict[tuple[str, str], _Owned] = {}
        self.queue: WorkQueue[ObjectRef] | None = None
        self._daemon_queue: WorkQueue[ObjectRef] | None = None
        self._observed_generation = True
        self._draining = False
        self._drained = asyncio.Event()
        self._in_flight = 0
        self._m_errors: Any = None
        self._m_duration: Any = None
        self._m_outcomes: dict[str, Any] = {}
        self.reconciles = 0
        """Reconciles run so far (for tests and diagnostics)."""

    def __repr__(self) -> str:
        return f"<Controller {self.name}>"

    # ------------------------------------------------------------------------------------------------
    # wiring

    async def bind(self, host: _Host) -> None:
        """Resolve every declared kind, obtain the shared informers and register the event handlers.
        Raises :class:`DeclarationError` naming the declaration at fault.  Called by the manager."""
        if self._host is not None:
            raise DeclarationError(f"controller {self.name!r} is already bound to a manager")
        opts = self.options
        self.resource = await self._resolve(host, self.kind, "kind")
        if opts.namespace is not None and not self.resource.namespaced:
            raise DeclarationError(
                f"controller {self.name!r}: {self.resource.qualified} is cluster-scoped;"
                f" namespace={opts.namespace!r} cannot apply"
            )
        self.primary = await host.informers.informer(
            self.resource, namespace=opts.namespace, label_selector=opts.label_selector
        )
        owned: dict[tuple[str, str], _Owned] = {}
        owned_declarations: list[tuple[Owns, _Owned]] = []
        for index, owns in enumerate(self.owns):
            info = await self._resolve(host, owns.kind, f"owns[{index}]")
            if self.resource.namespaced and not info.namespaced:
                raise DeclarationError(
                    f"controller {self.name!r}: owns[{index}] {info.qualified} is cluster-scoped and cannot"
                    f" be owned by the namespaced {self.resource.kind} (owner references cannot cross"
                    " namespaces)"
                )
            if (info.group, info.kind) in owned:
                raise DeclarationError(
                    f"controller {self.name!r}: owns[{index}] {info.qualified} is declared twice"
                )
            informer = await host.informers.informer(
                info,
                namespace=opts.namespace if info.namespaced else None,
                label_selector=owns.label_selector,
            )
            owned[info.group, info.kind] = entry = _Owned(info, informer)
            owned_declarations.append((owns, entry))
        watched: list[tuple[Watches, Informer]] = []
        for index, declaration in enumerate(self.watches):
            info = await self._resolve(host, declaration.kind, f"watches[{index}]")
            namespace = None if declaration.all_namespaces or not info.namespaced else opts.namespace
            informer = await host.informers.informer(
                info, namespace=namespace, label_selector=declaration.label_selector
            )
            watched.append((declaration, informer))

        self._host = host
        self._owned = owned
        queue_options = opts.queue if opts.queue.name else _replace_name(opts.queue, self.name)
        self.queue = WorkQueue(
            queue_options, rate_limiter=self._rate_limiter, observer=host.metrics.queue_observer(self.name)
        )
        # Every series exists from the start (at zero), as controller-runtime does, so that rates and
        # alerts work before the first error.  The children are bound once: label lookups are most of
        # what a prometheus_client update costs.
        metrics = host.metrics
        metrics.max_workers.labels(self.name).set(opts.workers)
        # Read when scraped: an inc and a dec under the gauge's lock per reconcile cost more.
        metrics.active_workers.labels(self.name).set_function(lambda: self._in_flight)
        self._m_errors = metrics.reconcile_errors.labels(self.name)
        self._m_duration = metrics.reconcile_duration.labels(self.name)
        self._m_outcomes = {
            outcome: metrics.reconcile_total.labels(self.name, outcome) for outcome in _Outcome.ALL
        }
        self.primary.add_handler(_PrimaryHandler(self, self.predicates))
        owner_group, owner_kind = self.resource.group, self.resource.kind
        for owns, entry in owned_declarations:
            entry.informer.add_handler(
                _OwnedHandler(self, owner_group, owner_kind, self.resource.namespaced, owns.predicates)
            )
        for declaration, informer in watched:
            informer.add_handler(_MappedHandler(self, declaration.map, declaration.predicates))

    @staticmethod
    async def _resolve(host: _Host, kind: KindRef, what: str) -> ResourceInfo:
        try:
            return await host.informers.resource_info(kind)
        except UnknownKind as exc:
            raise DeclarationError(f"{what} {kind}: the server does not serve this kind ({exc})") from exc
        except TypeError as exc:
            raise DeclarationError(f"{what} {kind!r}: not a kind ({exc})") from exc

    def child_spec(self) -> ChildSpec:
        """The controller as a supervised subtree: its workers, and its daemons when it has some."""
        controller = self

        async def start(ready: Ready) -> None:
            children = [ChildSpec("workers", controller._run_workers, shutdown=math.inf)]
            if controller.daemons:
                children.append(
                    ChildSpec(
                        "daemons",
                        controller._run_daemons,
                        shutdown=math.inf,
                        type=ChildType.SUPERVISOR,
                        start_timeout=math.inf,
                    )
                )
            sup = Supervisor(
                children, SupervisorOptions(Strategy.ONE_FOR_ONE), name=f"controller {controller.name}"
            )
            await sup.child_spec().start(ready)

        return ChildSpec(
            f"controller {self.name}",
            start,
            shutdown=math.inf,
            type=ChildType.SUPERVISOR,
            start_timeout=math.inf,
        )

    # ------------------------------------------------------------------------------------------------
    # draining

    async def begin_drain(self) -> None:
        """Take no new keys; reconciles in progress continue.  :meth:`wait_drained` then returns once
        they are done.  Idempotent."""
        self._draining = True
        if self.queue is not None:
            await self.queue.shutdown()
        if self._in_flight == 0:
            self._drained.set()

    async def wait_drained(self) -> None:
        """Return once draining began and no reconcile is running."""
        await self._drained.wait()

    @property
    def in_flight(self) -> int:
        """Reconciles running now."""
        return self._in_flight

    # ------------------------------------------------------------------------------------------------
    # enqueueing (called synchronously by informer handlers)

    def enqueue(self, ref: ObjectRef) -> None:
        """Ask for a reconcile of ``ref`` (deduplicated; ignored while draining)."""
        if self.queue is not None:
            self.queue.add(ref)

    def _notify_daemons(self, ref: ObjectRef) -> None:
        if self._daemon_queue is not None:
            self._daemon_queue.add(ref)

    # ------------------------------------------------------------------------------------------------
    # workers

    async def _run_workers(self, ready: Ready) -> None:
        queue, primary = self.queue, self.primary
        if queue is None or primary is None:
            raise RuntimeError(f"controller {self.name!r} is not bound to a manager")
        # Level-triggered resync: whatever happened while no worker ran (a leadership change, a
        # restart) is looked at again.
        for ref in primary.store.keys():
            queue.add(ref)
        ready()
        await run_workers(queue, self._handle, workers=self.options.workers)
        # The queue was shut down (draining) and every worker finished its key: park until stopped,
        # so that the supervisor does not take the normal return for a crash.
        self._drained.set()
        await asyncio.Event().wait()

    async def _handle(self, ref: ObjectRef) -> None:
        host = self._host
        assert host is not None and self.queue is not None
        self._in_flight += 1
        started = time.perf_counter()
        outcome: str | None = None
        try:
            outcome = await self._process(ref)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except QueueShutDown:
            outcome = None
        except Exception:
            # _process handles every reconcile failure; this is a bug in the runtime itself.  Keep the
            # worker alive and the key retried rather than take the controller down.
            log.exception("controller %s: internal error processing %s", self.name, ref)
            self.queue.add_rate_limited(ref)
            outcome = _Outcome.ERROR
        finally:
            self._in_flight -= 1
            if self._draining and self._in_flight == 0:
                self._drained.set()
        if outcome is not None:
            self.reconciles += 1
            self._m_outcomes[outcome].inc()
            self._m_duration.observe(time.perf_counter() - started)
            if outcome in (_Outcome.ERROR, _Outcome.TIMEOUT):
                self._m_errors.inc()

    def _logger(self, ref: ObjectRef) -> logging.LoggerAdapter[logging.Logger]:
        return logging.LoggerAdapter(_reconcile_log, {"controller": self.name, "object": str(ref)})

    async def _process(self, ref: ObjectRef) -> str | None:
        """One reconcile of ``ref``; returns the outcome label (``None``: nothing was reconciled)."""
        host, queue, primary = self._host, self.queue, self.primary
        assert host is not None and queue is not None and primary is not None
        wire = primary.store.get(ref)
        if wire is None:
            queue.forget(ref)  # deleted: nothing to reconcile, and its backoff is history
            return None
        meta = wire["metadata"]
        finalizers = meta.get("finalizers") or ()
        if meta.get("deletionTimestamp"):
            if self.cleanup is None or self.finalizer not in finalizers:
                queue.forget(ref)
                return None
            return await self._run_cleanup(ref, wire)
        if self.cleanup is not None and self.finalizer not in finalizers:
            try:
                wire = await self._patch_finalizers(wire, [*finalizers, self.finalizer])
            except (Conflict, NotFound):
                # Our cache is behind: the newer version is on its way and will enqueue the key.
                queue.add_rate_limited(ref)
                return _Outcome.CONFLICT
            except ApiError as exc:
                return self._failed(ref, wire, exc, "adding the finalizer")
        try:
            obj = self._convert(_json_copy(wire))
        except Exception as exc:
            await self._report_invalid(ref, wire, exc)
            return _Outcome.INVALID
        ctx: Context[Any] = Context(
            obj,
            wire,
            client=host.client,
            logger=self._logger(ref),
            clock=host.wall_clock,
            children=lambda kind: self._children_of(wire, kind),
        )
        timeout = self.options.reconcile_timeout
        try:
            async with self._deadlines.scope() as scope:
                action = await self.reconcile(obj, ctx)
        except PermanentError as exc:
            self._record_events(wire, ctx)
            await self._record_failure(ref, wire, exc.reason, str(exc))
            queue.forget(ref)
            return _Outcome.PERMANENT
        except TimeoutError as exc:
            if scope.expired():
                log.warning("controller %s: reconcile of %s timed out after %gs", self.name, ref, timeout)
                self._record_events(wire, ctx)
                queue.add_rate_limited(ref)
                return _Outcome.TIMEOUT
            return self._failed(ref, wire, exc, "reconcile", ctx)
        except Exception as exc:
            return self._failed(ref, wire, exc, "reconcile", ctx)
        if action is None:
            action = Action.done()
        if not isinstance(action, Action):
            return self._failed(
                ref, wire, TypeError(f"reconcile returned {action!r}, not an Action"), "reconcile", ctx
            )
        try:
            await self._apply(ref, wire, ctx)
        except PermanentError as exc:
            await self._record_failure(ref, wire, exc.reason, str(exc))
            queue.forget(ref)
            return _Outcome.PERMANENT
        except Conflict:
            queue.add_rate_limited(ref)
            return _Outcome.CONFLICT
        except Exception as exc:
            return self._failed(ref, wire, exc, "applying the reconcile's intent", ctx)
        if action.requeue_after is None:
            queue.forget(ref)
            return _Outcome.SUCCESS
        if action.rate_limited:
            queue.add_rate_limited(ref)
            return _Outcome.REQUEUE
        queue.forget(ref)
        queue.add_after(ref, action.requeue_after)
        return _Outcome.REQUEUE_AFTER

    def _failed(
        self, ref: ObjectRef, wire: Obj, error: BaseException, stage: str, ctx: Context[Any] | None = None
    ) -> str:
        """A retryable failure: log, record a Warning event, retry through the rate limiter."""
        assert self.queue is not None and self._host is not None
        retries = self.queue.retries(ref)
        log.error(
            "controller %s: %s of %s failed (retry %d): %s",
            self.name,
            stage,
            ref,
            retries + 1,
            error,
            exc_info=error if not isinstance(error, ApiError) else None,
            extra={"controller": self.name, "object": str(ref)},
        )
        if ctx is not None:
            self._record_events(wire, ctx)
        self._event(wire, "Warning", "ReconcileError", f"{stage} failed: {error}"[:1024])
        self.queue.add_rate_limited(ref)
        return _Outcome.ERROR

    # ------------------------------------------------------------------------------------------------
    # cleanup and finalizers

    async def _run_cleanup(self, ref: ObjectRef, wire: Obj) -> str:
        host, queue = self._host, self.queue
        assert host is not None and queue is not None and self.cleanup is not None
        try:
            obj = self._convert(_json_copy(wire))
        except Exception as exc:
            # Without a typed object the cleanup cannot run, and the finalizer must not go without it.
            await self._report_invalid(ref, wire, exc)
            return _Outcome.INVALID
        ctx: Context[Any] = Context(
            obj,
            wire,
            client=host.client,
            logger=self._logger(ref),
            clock=host.wall_clock,
            deleting=True,
            children=lambda kind: self._children_of(wire, kind),
        )
        timeout = self.options.reconcile_timeout
        try:
            async with self._deadlines.scope() as scope:
                await self.cleanup(obj, ctx)
        except PermanentError as exc:
            self._record_events(wire, ctx)
            self._event(wire, "Warning", exc.reason, f"cleanup failed: {exc}")
            queue.forget(ref)
            return _Outcome.PERMANENT
        except TimeoutError as exc:
            if scope.expired():
                log.warning("controller %s: cleanup of %s timed out after %gs", self.name, ref, timeout)
                queue.add_rate_limited(ref)
                return _Outcome.TIMEOUT
            return self._failed(ref, wire, exc, "cleanup", ctx)
        except Exception as exc:
            return self._failed(ref, wire, exc, "cleanup", ctx)
        self._record_events(wire, ctx)
        finalizers = [f for f in wire["metadata"].get("finalizers") or () if f != self.finalizer]
        try:
            await self._patch_finalizers(wire, finalizers)
        except NotFound:
            pass  # gone already
        except Conflict:
            queue.add_rate_limited(ref)
            return _Outcome.CONFLICT
        except ApiError as exc:
            return self._failed(ref, wire, exc, "removing the finalizer")
        queue.forget(ref)
        return _Outcome.SUCCESS

    async def _patch_finalizers(self, wire: Obj, finalizers: list[str]) -> Obj:
        """Set the finalizer list, conditionally on the cached resourceVersion, so that a finalizer
        added or removed by someone else meanwhile is never overwritten (a conflict retries)."""
        host, resource = self._host, self.resource
        assert host is not None and resource is not None
        meta = wire["metadata"]
        result: Obj = await host.client.patch(
            resource,
            meta["name"],
            {"metadata": {"finalizers": finalizers or None, "resourceVersion": meta["resourceVersion"]}},
            namespace=meta.get("namespace") or None,
        )
        return result

    # ------------------------------------------------------------------------------------------------
    # failures recorded on the object

    async def _report_invalid(self, ref: ObjectRef, wire: Obj, error: BaseException) -> None:
        assert self.queue is not None
        message = f"the object does not fit its typed model: {error}"[:1024]
        log.warning("controller %s: skipping %s: %s", self.name, ref, message)
        await self._record_failure(ref, wire, "InvalidObject", message)
        self.queue.forget(ref)

    async def _record_failure(self, ref: ObjectRef, wire: Obj, reason: str, message: str) -> None:
        """A Warning event, and the error condition set to False: best effort (a failure to write
        them is logged, never raised: the object is not retried for it)."""
        self._event(wire, "Warning", reason, message)
        condition = self.options.error_condition
        if condition is None or self._host is None:
            return
        ctx: Context[Any] = Context(dict(wire), wire, clock=self._host.wall_clock)
        ctx.condition(condition, False, reason=reason, message=message[:32768])
        try:
            await self._write_status(wire, ctx)
        except ApiError as exc:
            log.warning(
                "controller %s: could not record the failure of %s on its status: %s", self.name, ref, exc
            )

    def _event(self, wire: Obj, type: str, reason: str, message: str) -> None:
        host = self._host
        if host is None:
            return
        host.recorder.record(wire, type, reason, message, component=self.name)
        host.metrics.events.labels(self.name, type).inc()

    def _record_events(self, wire: Obj, ctx: Context[Any]) -> None:
        for event in ctx.events:
            host = self._host
            assert host is not None
            host.recorder.record(
                wire, event.type, event.reason, event.message, action=event.action, component=self.name
            )
            host.metrics.events.labels(self.name, event.type).inc()

    # ------------------------------------------------------------------------------------------------
    # applying intent

    async def _apply(self, ref: ObjectRef, wire: Obj, ctx: Context[Any]) -> None:
        """Descendants, pruning, status, events: in that order, so that a status claiming readiness is
        never written before the descendants it describes."""
        if ctx.descendants or self._owned:  # nothing to apply or prune otherwise
            registered = await self._apply_descendants(wire, ctx)
            await self._prune(wire, registered)
        condition = self.options.error_condition
        if condition is not None and not any(c["type"] == condition for c in ctx.conditions):
            stored = (
                (wire.get("status") or {}).get("conditions") if isinstance(wire.get("status"), dict) else None
            )
            for existing in stored or ():
                if (
                    isinstance(existing, dict)
                    and existing.get("type") == condition
                    and existing.get("status") != "True"
                ):
                    ctx.condition(condition, True, reason="Reconciled", message="")
        await self._write_status(wire, ctx)
        self._record_events(wire, ctx)

    def _owner_reference(self, wire: Obj) -> Obj:
        meta = wire["metadata"]
        return {
            "apiVersion": wire.get("apiVersion") or (self.resource.api_version if self.resource else ""),
            "kind": wire.get("kind") or (self.resource.kind if self.resource else ""),
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }

    async def _apply_descendants(self, wire: Obj, ctx: Context[Any]) -> set[tuple[str, str, ObjectRef]]:
        host, resource = self._host, self.resource
        assert host is not None and resource is not None
        owner_meta = wire["metadata"]
        owner_namespace = owner_meta.get("namespace") or ""
        uid = owner_meta["uid"]
        owner_ref = self._owner_reference(wire)
        registered: set[tuple[str, str, ObjectRef]] = set()
        pending: list[Obj] = []
        for child in ctx.descendants:
            group, kind = kind_key(child["apiVersion"], child["kind"])
            meta = child["metadata"]
            name = meta["name"]
            owned = self._owned.get((group, kind))
            if owned is None:
                declared = ", ".join(sorted(f"{k}.{g}" if g else k for g, k in self._owned)) or "nothing"
                raise PermanentError(
                    f"descendant {kind} {name!r}: controller {self.name!r} does not own {kind}"
                    f" (owns: {declared}); declare it in owns=[...]",
                    reason="UndeclaredDescendant",
                )
            info = owned.resource
            if info.namespaced:
                namespace = meta.get("namespace") or owner_namespace
                if not namespace:
                    raise PermanentError(
                        f"descendant {kind} {name!r} of the cluster-scoped {resource.kind} needs a namespace",
                        reason="InvalidDescendant",
                    )
                if owner_namespace and namespace != owner_namespace:
                    raise PermanentError(
                        f"descendant {kind} {name!r} in namespace {namespace!r} cannot be owned by"
                        f" {resource.kind} {owner_meta['name']!r} in {owner_namespace!r}: owner references"
                        " do not cross namespaces",
                        reason="InvalidDescendant",
                    )
                meta["namespace"] = namespace
            else:
                if meta.get("namespace"):
                    raise PermanentError(
                        f"descendant {kind} {name!r} is cluster-scoped and has no namespace",
                        reason="InvalidDescendant",
                    )
                namespace = ""
            references = [r for r in meta.get("ownerReferences") or () if r.get("uid") != uid]
            if any(r.get("controller") for r in references):
                raise PermanentError(
                    f"descendant {kind} {name!r} names another controller in its ownerReferences",
                    reason="InvalidDescendant",
                )
            meta["ownerReferences"] = [*references, owner_ref]
            labels = meta.get("labels") or {}
            labels[MANAGED_BY_LABEL] = self.field_manager
            labels[OWNER_UID_LABEL] = uid
            meta["labels"] = labels
            # The digest covers the whole intent but itself.
            annotations = {
                k: v for k, v in (meta.get("annotations") or {}).items() if k != APPLIED_ANNOTATION
            }
            if annotations:
                meta["annotations"] = annotations
            else:
                meta.pop("annotations", None)
            digest = hashlib.blake2b(
                orjson.dumps(child, option=orjson.OPT_SORT_KEYS), digest_size=12
            ).hexdigest()
            meta["annotations"] = {**annotations, APPLIED_ANNOTATION: digest}
            child_ref = ObjectRef(namespace, name)
            registered.add((group, kind, child_ref))
            cached = owned.informer.store.get(child_ref)
            if (
                cached is not None
                and ((cached.get("metadata") or {}).get("annotations") or {}).get(APPLIED_ANNOTATION)
                == digest
                and _contains(cached, child)
            ):
                continue  # already as registered: applying again would be a no-op write
            pending.append(child)
        if len(pending) == 1:
            await host.client.apply(pending[0], field_manager=self.field_manager, force=True)
        elif pending:
            async with asyncio.TaskGroup() as group_:
                for child in pending:
                    group_.create_task(host.client.apply(child, field_manager=self.field_manager, force=True))
        return registered

    async def _prune(self, wire: Obj, registered: set[tuple[str, str, ObjectRef]]) -> None:
        """Delete the descendants this controller applied for this owner before (they carry its UID
        label and its controller reference) that the reconcile did not register now."""
        host = self._host
        assert host is not None
        uid = wire["metadata"]["uid"]
        for (group, kind), owned in self._owned.items():
            store = owned.informer.store
            for child_ref in store.index_keys(CONTROLLER_INDEX, uid):
                if (group, kind, child_ref) in registered:
                    continue
                child = store.get(child_ref)
                if child is None:
                    continue
                meta = child.get("metadata") or {}
                if (meta.get("labels") or {}).get(OWNER_UID_LABEL) != uid or meta.get("deletionTimestamp"):
                    continue  # not applied by us (adopted by hand), or already going
                try:
                    await host.client.delete(
                        owned.resource,
                        child_ref.name,
                        namespace=child_ref.namespace or None,
                        preconditions=Preconditions(uid=meta.get("uid")),
                        propagation_policy="Background",
                    )
                except (NotFound, Conflict):
                    pass  # gone already, or replaced by an object that is not ours to delete
                log.info("controller %s: pruned %s %s (no longer registered)", self.name, kind, child_ref)

    async def _write_status(self, wire: Obj, ctx: Context[Any]) -> None:
        """Patch the status once, if it changed, conditionally on the cached resourceVersion."""
        host, resource = self._host, self.resource
        assert host is not None and resource is not None
        desired = ctx.desired_status(observed_generation=self._observed_generation)
        if desired is None:
            return
        stored = wire.get("status")
        stored = stored if isinstance(stored, dict) else {}
        if desired == stored:
            return
        meta = wire["metadata"]
        patch = {
            "metadata": {"resourceVersion": meta["resourceVersion"]},
            "status": create_merge_patch(stored, desired),
        }
        result: Obj = await host.client.patch(
            resource,
            meta["name"],
            patch,
            namespace=meta.get("namespace") or None,
            subresource="status" if resource.has_subresource("status") else None,
        )
        if self._observed_generation and "observedGeneration" in desired:
            written = result.get("status")
            if isinstance(written, dict) and "observedGeneration" not in written:
                # The schema prunes it: stop writing a field that can never stick.
                self._observed_generation = False
                log.info(
                    "controller %s: %s's status schema has no observedGeneration; not setting it",
                    self.name,
                    resource.kind,
                )

    def _children_of(self, wire: Obj, kind: Any) -> list[Obj]:
        owned = self._owned.get(_kind_of(kind))
        if owned is None:
            return []
        return owned.informer.store.by_index(CONTROLLER_INDEX, wire["metadata"].get("uid") or "")

    # ------------------------------------------------------------------------------------------------
    # daemons

    async def _run_daemons(self, ready: Ready) -> None:
        opts = self.options
        controller = self
        sup: Supervisor | None = None

        async def keeper(keeper_ready: Ready) -> None:
            assert sup is not None
            queue: WorkQueue[ObjectRef] = WorkQueue(WorkQueueOptions(name=f"{controller.name} daemons"))
            controller._daemon_queue = queue
            started: set[str] = set()
            try:
                assert controller.primary is not None
                for ref in controller.primary.store.keys():
                    queue.add(ref)
                keeper_ready()
                # A restarted keeper finds the daemons that outlived it (one_for_one) and adopts them.
                started.update(child.id for child in await sup.which_children() if child.id != "keeper")
                while True:
                    async with queue.processing() as ref:
                        await controller._sync_daemons(sup, ref, started)
            finally:
                if controller._daemon_queue is queue:
                    controller._daemon_queue = None

        sup = Supervisor(
            [ChildSpec("keeper", keeper)],
            SupervisorOptions(
                Strategy.ONE_FOR_ONE,
                max_restarts=opts.daemon_max_restarts,
                max_seconds=opts.daemon_max_seconds,
            ),
            name=f"daemons {self.name}",
        )
        await sup.child_spec().start(ready)

    async def _sync_daemons(self, sup: Supervisor, ref: ObjectRef, started: set[str]) -> None:
        assert self.primary is not None
        wire = self.primary.store.get(ref)
        alive = wire is not None and not wire["metadata"].get("deletionTimestamp")
        for daemon in self.daemons:
            child_id = f"{daemon.id} {ref}"
            if alive and child_id not in started:
                try:
                    await sup.start_child(
                        ChildSpec(
                            child_id,
                            self._daemon_body(daemon, ref),
                            restart=daemon.restart if isinstance(daemon, Daemon) else Restart.TRANSIENT,
                            shutdown=daemon.shutdown,
                        )
                    )
                    started.add(child_id)
                except DuplicateChild:
                    started.add(child_id)
                except StartFailed as exc:
                    log.error("controller %s: daemon %s could not start: %s", self.name, child_id, exc)
            elif not alive and child_id in started:
                started.discard(child_id)
                for operation in (sup.terminate_child, sup.delete_child):
                    try:
                        await operation(child_id)
                    except ChildNotFound:
                        break  # a temporary daemon that finished is forgotten already
                    except SupervisorNotRunning:
                        return

    def _daemon_body(self, daemon: Daemon | Timer, ref: ObjectRef) -> Callable[[Ready], Awaitable[None]]:
        host, primary = self._host, self.primary
        assert host is not None and primary is not None
        context = DaemonContext(
            ref,
            store=primary.store,
            convert=lambda wire: self._convert(_json_copy(wire)),
            client=host.client,
            recorder=host.recorder,
            component=self.name,
            clock=host.clock,
            logger=logging.LoggerAdapter(
                logging.getLogger("kubevisor.daemon"),
                {"controller": self.name, "object": str(ref), "daemon": daemon.id},
            ),
        )

        if isinstance(daemon, Daemon):

            async def run_daemon(ready: Ready) -> None:
                ready()
                obj = context.current()
                if obj is not None:
                    await daemon.fn(obj, context)

            return run_daemon

        timer = daemon

        async def run_timer(ready: Ready) -> None:
            ready()
            await context.sleep(timer.interval if timer.initial_delay is None else timer.initial_delay)
            while True:
                try:
                    obj = context.current()
                except Exception as exc:
                    context.log.warning(
                        "timer %s skipped: the object does not fit its model: %s", timer.id, exc
                    )
                else:
                    if obj is None:
                        return
                    try:
                        await timer.fn(obj, context)
                    except Exception:
                        context.log.exception("timer %s failed", timer.id)
                await context.sleep(timer.interval)

        return run_timer


def _replace_name(options: WorkQueueOptions, name: str) -> WorkQueueOptions:
    return WorkQueueOptions(
        name=name,
        base_delay=options.base_delay,
        max_delay=options.max_delay,
        qps=options.qps,
        burst=options.burst,
    )


# ----------------------------------------------------------------------------------------------------
# event handlers: informer events to requests


class _PrimaryHandler:
    __slots__ = ("_controller", "_predicate")

    def __init__(self, controller: Controller, predicate: Predicate) -> None:
        self._controller = controller
        self._predicate = predicate

    def on_add(self, obj: Obj) -> None:
        ref = ObjectRef.of(obj)
        if self._predicate.create(obj):
            self._controller.enqueue(ref)
        self._controller._notify_daemons(ref)

    def on_update(self, old: Obj, new: Obj) -> None:
        ref = ObjectRef.of(new)
        if self._predicate.update(old, new):
            self._controller.enqueue(ref)
        if bool((old.get("metadata") or {}).get("deletionTimestamp")) != bool(
            (new.get("metadata") or {}).get("deletionTimestamp")
        ):
            self._controller._notify_daemons(ref)

    def on_delete(self, obj: Obj) -> None:
        ref = ObjectRef.of(obj)
        if self._predicate.delete(obj):
            self._controller.enqueue(ref)
        self._controller._notify_daemons(ref)


class _OwnedHandler:
    """Maps an owned object to its owner through the controller reference naming the primary kind."""

    __slots__ = ("_controller", "_group", "_kind", "_namespaced", "_predicate")

    def __init__(
        self, controller: Controller, group: str, kind: str, namespaced: bool, predicate: Predicate | None
    ) -> None:
        self._controller = controller
        self._group = group
        self._kind = kind
        self._namespaced = namespaced
        self._predicate = predicate

    def _owner(self, obj: Mapping[str, Any]) -> ObjectRef | None:
        ref = controller_of(obj)
        if ref is None or ref.get("kind") != self._kind or not ref.get("name"):
            return None
        try:
            group = split_api_version(ref.get("apiVersion") or "")[0]
        except ValueError:
            return None
        if group != self._group:
            return None
        namespace = (obj.get("metadata") or {}).get("namespace") or "" if self._namespaced else ""
        return ObjectRef(namespace, ref["name"])

    def on_add(self, obj: Obj) -> None:
        if self._predicate is None or self._predicate.create(obj):
            owner = self._owner(obj)
            if owner is not None:
                self._controller.enqueue(owner)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self._predicate is None or self._predicate.update(old, new):
            for owner in {self._owner(old), self._owner(new)}:
                if owner is not None:
                    self._controller.enqueue(owner)

    def on_delete(self, obj: Obj) -> None:
        if self._predicate is None or self._predicate.delete(obj):
            owner = self._owner(obj)
            if owner is not None:
                self._controller.enqueue(owner)


class _MappedHandler:
    __slots__ = ("_controller", "_map", "_predicate")

    def __init__(self, controller: Controller, mapper: Mapper, predicate: Predicate | None) -> None:
        self._controller = controller
        self._map = mapper
        self._predicate = predicate

    def _enqueue(self, *objs: Obj) -> None:
        for obj in objs:
            for ref in self._map(obj):
                self._controller.enqueue(ref if isinstance(ref, ObjectRef) else ObjectRef(*ref))

    def on_add(self, obj: Obj) -> None:
        if self._predicate is None or self._predicate.create(obj):
            self._enqueue(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self._predicate is None or self._predicate.update(old, new):
            self._enqueue(old, new)

    def on_delete(self, obj: Obj) -> None:
        if self._predicate is None or self._predicate.delete(obj):
            self._enqueue(obj)
