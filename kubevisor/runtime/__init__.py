"""The controller runtime: informers, work queue, controllers, manager, leader election.

Rule: imports from ``kubevisor.api``, ``kubevisor.client`` and ``kubevisor.supervisor`` only.
"""

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

__all__ = [
    "BucketRateLimiter",
    "ItemExponentialRateLimiter",
    "LoopClock",
    "ManualClock",
    "MaxOfRateLimiter",
    "QueueObserver",
    "QueueShutDown",
    "RateLimiter",
    "TimerClock",
    "TimerHandle",
    "WorkQueue",
    "WorkQueueOptions",
    "default_controller_rate_limiter",
    "run_workers",
]
