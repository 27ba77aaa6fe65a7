"""Prometheus metrics of one manager, in its own ``CollectorRegistry`` (two managers in one process,
as in tests, never share counters).

Every metric is listed in ``docs/runtime.md``; their shapes follow controller-runtime's and client-go's
(reconcile totals by result, work-queue depth/adds/latency/retries, leader status) under the
``kubevisor_`` prefix.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from kubevisor.runtime._informer import Informer, InformerObserver
from kubevisor.runtime._queue import QueueObserver
from kubevisor.runtime._store import ObjectRef

__all__ = ["LoopHistogram", "RuntimeMetrics"]

# controller-runtime's reconcile buckets, extended to the per-reconcile timeout range.
_RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# client-go's workqueue buckets: 1 µs to 10 s by powers of ten.
_QUEUE_BUCKETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


class LoopHistogram:
    """A labelled Prometheus histogram updated without locks.

    prometheus_client's ``Histogram`` takes a lock for a bucket and again for the sum at every
    observation (about 1.3 µs); the runtime observes three per reconcile, always from its event
    loop's thread, and ``/metrics`` is served from that loop too.  This one keeps plain counts per
    bucket and builds the exposition when collected: same name, help, labels, buckets and samples
    (``_bucket``, ``_count``, ``_sum``), without the ``_created`` series.  A collection from another
    thread may see an observation half counted (its bucket but not yet its sum); the next one is
    whole.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = list(labelnames)
        self._bounds = tuple(float(b) for b in buckets if b != math.inf)
        self._children: dict[tuple[str, ...], _LoopHistogramChild] = {}
        registry.register(self)

    def labels(self, *values: str) -> _LoopHistogramChild:
        """The series for these label values (created at zero on first use)."""
        if len(values) != len(self._labelnames):
            raise ValueError(f"{self._name} takes labels {self._labelnames}, got {values!r}")
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = _LoopHistogramChild(self._bounds)
        return child

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        bounds = [floatToGoString(b) for b in (*self._bounds, math.inf)]  # type: ignore[no-untyped-call]
        for values, child in list(self._children.items()):
            cumulative = list(accumulate(child.counts))
            family.add_metric(list(values), list(zip(bounds, cumulative, strict=True)), child.sum)
        yield family


class _LoopHistogramChild:
    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self._bounds, amount)] += 1  # the first bucket with le >= amount
        self.sum += amount


class RuntimeMetrics:
    """The runtime's metrics.  ``registry`` is what ``/metrics`` serves."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconcile_total = Counter(
            "kubevisor_reconcile_total",
            "Reconciles per controller by result: success, requeue, requeue_after, error, permanent_error, "
            "invalid_object, timeout, conflict.",
            ["controller", "result"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            "kubevisor_reconcile_errors_total",
            "Reconciles that failed (raised, timed out, or could not apply their intent).",
            ["controller"],
            registry=r,
        )
        self.reconcile_duration = LoopHistogram(
            "kubevisor_reconcile_duration_seconds",
            "Time per reconcile, including applying its intent.",
            ["controller"],
            buckets=_RECONCILE_BUCKETS,
            registry=r,
        )
        self.active_workers = Gauge(
            "kubevisor_reconcile_active_workers",
            "Reconciles in progress per controller.",
            ["controller"],
            registry=r,
        )
        self.max_workers = Gauge(
            "kubevisor_reconcile_max_workers",
            "Maximum concurrent reconciles per controller.",
            ["controller"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "kubevisor_workqueue_depth", "Keys waiting in a work queue.", ["name"], registry=r
        )
        self.queue_adds = Counter(
            "kubevisor_workqueue_adds_total", "Keys added to a work queue.", ["name"], registry=r
        )
        self.queue_latency = LoopHistogram(
            "kubevisor_workqueue_queue_duration_seconds",
            "Time a key waits in a work queue before a worker takes it.",
            ["name"],
            buckets=_QUEUE_BUCKETS,
            registry=r,
        )
        self.queue_work = LoopHistogram(
            "kubevisor_workqueue_work_duration_seconds",
            "Time a worker spends on a key.",
            ["name"],
            buckets=_QUEUE_BUCKETS,
            registry=r,
        )
        self.queue_retries = Counter(
            "kubevisor_workqueue_retries_total", "Rate-limited re-adds to a work queue.", ["name"], registry=r
        )
        self.watch_restarts = Counter(
            "kubevisor_watch_restarts_total",
            "Watch streams reopened per informer (server timeouts, broken or silent streams, relists).",
            ["resource"],
            registry=r,
        )
        self.relists = Counter(
            "kubevisor_relists_total",
            "Lists that replaced an informer's store, by reason: initial, expired, error.",
            ["resource", "reason"],
            registry=r,
        )
        self.informer_objects = Gauge(
            "kubevisor_informer_objects", "Objects cached per informer.", ["resource"], registry=r
        )
        self.leader = Gauge(
            "kubevisor_leader",
            "1 while this replica holds the lease, else 0 (client-go's leader_election_master_status).",
            ["lease"],
            registry=r,
        )
        self.events = Counter(
            "kubevisor_events_total",
            "Events recorded by controllers, by type.",
            ["controller", "type"],
            registry=r,
        )

    def queue_observer(self, name: str) -> QueueObserver[ObjectRef]:
        """Work-queue metrics for the queue ``name`` (a controller's)."""
        return _QueueMetrics(self, name)

    def informer_observer(self, informer: Informer) -> InformerObserver:
        """Informer metrics labelled with the informer's scope."""
        return _InformerMetrics(self, str(informer.key))


class _QueueMetrics:
    __slots__ = ("_adds", "_depth", "_latency", "_retries", "_work")

    def __init__(self, metrics: RuntimeMetrics, name: str) -> None:
        # Children bound once: label lookups are the expensive part of a prometheus_client update.
        # The depth changes twice per key; it is read when scraped rather than stored under the
        # gauge's lock at every change.
        self._depth = 0
        metrics.queue_depth.labels(name).set_function(lambda: self._depth)
        self._adds = metrics.queue_adds.labels(name)
        self._latency = metrics.queue_latency.labels(name)
        self._work = metrics.queue_work.labels(name)
        self._retries = metrics.queue_retries.labels(name)

    def depth(self, depth: int) -> None:
        self._depth = depth

    def added(self, key: ObjectRef) -> None:
        self._adds.inc()

    def queue_latency(self, seconds: float) -> None:
        self._latency.observe(seconds)

    def work_duration(self, seconds: float) -> None:
        self._work.observe(seconds)

    def retried(self, key: ObjectRef) -> None:
        self._retries.inc()


class _InformerMetrics:
    __slots__ = ("_metrics", "_objects", "_resource", "_restarts")

    def __init__(self, metrics: RuntimeMetrics, resource: str) -> None:
        self._metrics = metrics
        self._resource = resource
        self._restarts = metrics.watch_restarts.labels(resource)
        # Reported after every watch event; read when scraped instead of set under a lock each time.
        self._objects = 0
        metrics.informer_objects.labels(resource).set_function(lambda: self._objects)

    def relisted(self, reason: str) -> None:
        self._metrics.relists.labels(self._resource, reason).inc()

    def watch_restarted(self, count: int) -> None:
        self._restarts.inc(count)

    def objects(self, count: int) -> None:
        self._objects = count
