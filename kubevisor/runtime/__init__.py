"""The controller runtime: informers, work queue, controllers, manager, leader election.

Rule: imports from ``kubevisor.api``, ``kubevisor.client`` and ``kubevisor.supervisor`` only.

A :class:`Controller` declares a primary kind, what it owns and watches, and a reconcile
``async def reconcile(obj, ctx) -> Action`` that registers intent on its :class:`Context`; a
:class:`Manager` runs controllers under one supervision tree with shared informers, leader
election, events, metrics and probes.  See ``docs/runtime.md``.
"""

from kubevisor.runtime._context import (
    Action,
    Context,
    EventType,
    PermanentError,
    RecordedEvent,
    set_condition,
)
from kubevisor.runtime._controller import (
    MANAGED_BY_LABEL,
    OWNER_UID_LABEL,
    Cleanup,
    Controller,
    ControllerOptions,
    DeclarationError,
    Mapper,
    Owns,
    Reconciler,
    Watches,
)
from kubevisor.runtime._daemons import Daemon, DaemonContext, DaemonFunction, Timer
from kubevisor.runtime._informer import (
    EventHandler,
    Informer,
    InformerCache,
    InformerKey,
    InformerObserver,
    InformerOptions,
    KindRef,
)
from kubevisor.runtime._leader import (
    LeaderElectionLost,
    LeaderElectionOptions,
    LeaderElector,
    default_identity,
)
from kubevisor.runtime._manager import Manager, ManagerOptions
from kubevisor.runtime._metrics import RuntimeMetrics
from kubevisor.runtime._predicates import (
    Predicate,
    annotations_changed,
    generation_changed,
    labels_changed,
    matching,
    resource_version_changed,
)
from kubevisor.runtime._queue import (
    BucketRateLimiter,
    ItemExponentialRateLimiter,
    LoopClock,
    ManualClock,
    MaxOfRateLimiter,
    QueueObserver,
    QueueShutDown,
    RateLimiter,
    TimerClock,
    TimerHandle,
    WorkQueue,
    WorkQueueOptions,
    default_controller_rate_limiter,
    run_workers,
)
from kubevisor.runtime._recorder import EventRecorder, EventRecorderOptions
from kubevisor.runtime._store import (
    CONTROLLER_INDEX,
    NAMESPACE_INDEX,
    OWNER_INDEX,
    IndexFunc,
    ObjectRef,
    Store,
    controller_of,
)

__all__ = [
    "CONTROLLER_INDEX",
    "MANAGED_BY_LABEL",
    "NAMESPACE_INDEX",
    "OWNER_INDEX",
    "OWNER_UID_LABEL",
    "Action",
    "BucketRateLimiter",
    "Cleanup",
    "Context",
    "Controller",
    "ControllerOptions",
    "Daemon",
    "DaemonContext",
    "DaemonFunction",
    "DeclarationError",
    "EventHandler",
    "EventRecorder",
    "EventRecorderOptions",
    "EventType",
    "IndexFunc",
    "Informer",
    "InformerCache",
    "InformerKey",
    "InformerObserver",
    "InformerOptions",
    "ItemExponentialRateLimiter",
    "KindRef",
    "LeaderElectionLost",
    "LeaderElectionOptions",
    "LeaderElector",
    "LoopClock",
    "Manager",
    "ManagerOptions",
    "ManualClock",
    "Mapper",
    "MaxOfRateLimiter",
    "ObjectRef",
    "Owns",
    "PermanentError",
    "Predicate",
    "QueueObserver",
    "QueueShutDown",
    "RateLimiter",
    "Reconciler",
    "RecordedEvent",
    "RuntimeMetrics",
    "Store",
    "Timer",
    "TimerClock",
    "TimerHandle",
    "Watches",
    "WorkQueue",
    "WorkQueueOptions",
    "annotations_changed",
    "controller_of",
    "default_controller_rate_limiter",
    "default_identity",
    "generation_changed",
    "labels_changed",
    "matching",
    "resource_version_changed",
    "run_workers",
    "set_condition",
]
