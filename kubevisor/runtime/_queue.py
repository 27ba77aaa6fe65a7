"""The work queue between informers and reconcilers (client-go's ``workqueue``, on asyncio).

Guarantees:

* **Deduplication.** A key is queued at most once; adding a queued key again does nothing.
* **Exclusive processing.** A key handed out by :meth:`WorkQueue.get` is not handed out again until
  :meth:`WorkQueue.done` is called for it.  A key added while it is being processed is remembered
  ("dirty") and queued again when it is done, so the change that caused the add is never lost and
  two reconciles of one object never overlap.
* **Fairness.** Keys are handed out in the order they were (first) queued, and waiting workers are
  served in the order they asked.
* **Delays and rate limiting.** :meth:`WorkQueue.add_after` queues a key once a delay has passed;
  :meth:`WorkQueue.add_rate_limited` delays it by the rate limiter's verdict, by default the larger
  of a per-key exponential backoff (5 ms doubling to 1000 s) and an overall token bucket (10 per
  second, bursts of 100), as client-go's default controller rate limiter.

Time comes from a :class:`TimerClock`; tests pass a :class:`ManualClock` and advance virtual time,
so no test ever waits on the wall clock.  Nothing here starts a task: delays are loop timers.

The maximum number of concurrent reconciles is the number of workers taking keys from one queue;
:func:`run_workers` runs that many under a TaskGroup.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

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

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


# --- time ----------------------------------------------------------------------------------------------


class TimerHandle(Protocol):
    """A scheduled callback that can be called off (``asyncio.TimerHandle`` is one)."""

    def cancel(self) -> None: ...


class TimerClock(Protocol):
    """Monotonic seconds plus one-shot timers: all the time a work queue needs."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences are meaningful)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` once ``delay`` seconds have passed on this clock."""
        ...


class LoopClock:
    """The running event loop's clock and timers (the default)."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)


class _ManualTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Virtual time for tests: nothing happens until :meth:`advance` moves the clock.

    Timers fire synchronously inside :meth:`advance`, in order of due time (then of scheduling), each
    seeing :meth:`now` equal to its own due time.  Also usable wherever the client's
    ``MonotonicClock`` (``now`` plus ``async sleep``) is expected.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._sequence = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _ManualTimer(self._now + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.when, next(self._sequence), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            await future
        finally:
            timer.cancel()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing every timer that falls due on the way."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = when
            timer.callback()
        self._now = target

    @property
    def pending(self) -> int:
        """Timers scheduled and not yet fired or cancelled."""
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)


# --- rate limiters ----------------------------------------------------------------------------------------


class RateLimiter(Protocol[K_contra]):
    """Decides how long a key must wait before it is retried (client-go's ``RateLimiter``)."""

    def when(self, key: K_contra, now: float) -> float:
        """The delay in seconds for this retry of ``key``; records the retry."""
        ...

    def forget(self, key: K_contra) -> None:
        """The key succeeded: start its backoff afresh."""
        ...

    def retries(self, key: K_contra) -> int:
        """How many times ``key`` has been retried since it was last forgotten."""
        ...


class ItemExponentialRateLimiter(Generic[K]):
    """Per-key exponential backoff: ``base * 2**failures``, capped at ``maximum``."""

    def __init__(self, base: float, maximum: float) -> None:
        self._base = base
        self._maximum = maximum
        self._failures: dict[K, int] = {}

    def when(self, key: K, now: float) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        # Past 2**64 the cap has long applied; avoid building huge integers for keys that fail forever.
        if failures >= 64:
            return self._maximum
        return min(self._base * (1 << failures), self._maximum)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def retries(self, key: K) -> int:
        return self._failures.get(key, 0)


class BucketRateLimiter(Generic[K]):
    """An overall token bucket shared by all keys (Go's ``rate.Limiter`` with ``Reserve``): ``burst``
    tokens to start with, refilled at ``qps`` per second; a retry with no token left is delayed until
    its token will have accrued."""

    def __init__(self, qps: float, burst: int) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("a token bucket needs qps > 0 and burst >= 1")
        self._qps = qps
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None

    def when(self, key: K, now: float) -> float:
        if self._last is not None and now > self._last:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
        self._last = now if self._last is None else max(self._last, now)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._qps

    def forget(self, key: K) -> None:
        """Tokens are not per key: nothing to forget."""

    def retries(self, key: K) -> int:
        return 0


class MaxOfRateLimiter(Generic[K]):
    """The longest delay any of ``limiters`` asks for (each one records the retry)."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self._limiters = limiters

    def when(self, key: K, now: float) -> float:
        return max([limiter.when(key, now) for limiter in self._limiters])

    def forget(self, key: K) -> None:
        for limiter in self._limiters:
            limiter.forget(key)

    def retries(self, key: K) -> int:
        return max(limiter.retries(key) for limiter in self._limiters)


@dataclass(frozen=True, slots=True)
class WorkQueueOptions:
    """How a :class:`WorkQueue` paces retries, and what it is called in metrics."""

    name: str = ""
    """The queue's name for metrics and logs; by convention the controller's name."""
    base_delay: float = 0.005
    """First per-key retry delay in seconds (client-go: 5 ms); each further failure doubles it."""
    max_delay: float = 1000.0
    """Ceiling of the per-key retry delay in seconds (client-go: 1000 s)."""
    qps: float = 10.0
    """Overall retry rate the token bucket refills at, per second (client-go: 10)."""
    burst: int = 100
    """Retries the token bucket lets through at once before pacing starts (client-go: 100)."""


def default_controller_rate_limiter(options: WorkQueueOptions = WorkQueueOptions()) -> RateLimiter[K]:
    """client-go's ``DefaultControllerRateLimiter``: the larger of a per-key exponential backoff and
    an overall token bucket, parameterised by ``options``."""
    return MaxOfRateLimiter(
        ItemExponentialRateLimiter(options.base_delay, options.max_delay),
        BucketRateLimiter(options.qps, options.burst),
    )


# --- metrics ----------------------------------------------------------------------------------------------


class QueueObserver(Protocol[K_contra]):
    """Receives a queue's metrics as they happen (client-go's workqueue metrics); the runtime wires
    one to Prometheus.  Calls are synchronous and must not block or raise."""

    def depth(self, depth: int) -> None:
        """The number of queued keys changed (``workqueue_depth``)."""

    def added(self, key: K_contra) -> None:
        """A key was accepted by :meth:`WorkQueue.add` (``workqueue_adds_total``)."""

    def queue_latency(self, seconds: float) -> None:
        """A key waited this long between being added and being handed out
        (``workqueue_queue_duration_seconds``)."""

    def work_duration(self, seconds: float) -> None:
        """A key was processed for this long, from :meth:`~WorkQueue.get` to :meth:`~WorkQueue.done`
        (``workqueue_work_duration_seconds``)."""

    def retried(self, key: K_contra) -> None:
        """A key was re-added through the rate limiter (``workqueue_retries_total``)."""


class _NoObserver:
    def depth(self, depth: int) -> None:
        pass

    def added(self, key: object) -> None:
        pass

    def queue_latency(self, seconds: float) -> None:
        pass

    def work_duration(self, seconds: float) -> None:
        pass

    def retried(self, key: object) -> None:
        pass


# --- the queue --------------------------------------------------------------------------------------------


class QueueShutDown(Exception):
    """Raised by :meth:`WorkQueue.get` once the queue is shut down and has nothing left to hand out."""


class WorkQueue(Generic[K]):
    """A deduplicating, rate-limited FIFO of keys for a pool of workers.

    A worker loops ``key = await queue.get()``, processes ``key``, then calls ``queue.forget(key)``
    on success or ``queue.add_rate_limited(key)`` on failure, and always ``queue.done(key)``
    (:meth:`processing` does the ``done``).  All methods but :meth:`get` and :meth:`shutdown` are
    synchronous and must be called from the event loop's thread.
    """

    def __init__(
        self,
        options: WorkQueueOptions = WorkQueueOptions(),
        *,
        clock: TimerClock | None = None,
        rate_limiter: RateLimiter[K] | None = None,
        observer: QueueObserver[K] | None = None,
    ) -> None:
        self.options = options
        self._clock: TimerClock = clock if clock is not None else LoopClock()
        self._limiter: RateLimiter[K] = (
            rate_limiter if rate_limiter is not None else default_controller_rate_limiter(options)
        )
        self._observer: QueueObserver[K] = observer if observer is not None else _NoObserver()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._added_at: dict[K, float] = {}
        self._started_at: dict[K, float] = {}
        # Delayed keys: the earliest time each is due, a heap of (due, seq, key) holding stale entries
        # that are skipped, and one timer for the earliest entry.
        self._waiting: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._sequence = itertools.count()
        self._timer: TimerHandle | None = None
        self._timer_due: float | None = None
        self._shutting_down = False
        self._drained: list[asyncio.Future[None]] = []

    # -- adding --

    def add(self, key: K) -> None:
        """Queue ``key`` unless it is already queued; if it is being processed, queue it again once
        it is done.  Ignored after :meth:`shutdown`."""
        if self._shutting_down or key in self._dirty:
            return
        self._observer.added(key)
        self._added_at.setdefault(key, self._clock.now())
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._observer.depth(len(self._queue))
        self._wake_one()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` once ``delay`` seconds have passed (at once if ``delay <= 0``).  A key
        already waiting keeps the earlier of its two due times."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        due = self._clock.now() + delay
        current = self._waiting.get(key)
        if current is not None and current <= due:
            return
        self._waiting[key] = due
        heapq.heappush(self._heap, (due, next(self._sequence), key))
        self._arm_timer()

    def add_rate_limited(self, key: K) -> None:
        """Queue ``key`` after the delay the rate limiter decides for this retry."""
        if self._shutting_down:
            return
        self._observer.retried(key)
        self.add_after(key, self._limiter.when(key, self._clock.now()))

    def forget(self, key: K) -> None:
        """``key`` was processed successfully: reset its backoff.  Does not unqueue it."""
        self._limiter.forget(key)

    def retries(self, key: K) -> int:
        """How many rate-limited retries ``key`` has had since it was last forgotten."""
        return self._limiter.retries(key)

    # -- taking --

    async def get(self) -> K:
        """Wait for the next key and mark it as being processed.

        Raises :class:`QueueShutDown` once the queue is shut down and nothing queued remains.
        Cancellation is safe: a cancelled ``get`` takes no key and passes any wake-up it received to
        the next waiting worker.
        """
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(self.options.name)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()
                elif waiter in self._getters:
                    self._getters.remove(waiter)
                raise
        key = self._queue.popleft()
        self._observer.depth(len(self._queue))
        self._dirty.discard(key)
        self._processing.add(key)
        now = self._clock.now()
        added = self._added_at.pop(key, None)
        if added is not None:
            self._observer.queue_latency(now - added)
        self._started_at[key] = now
        return key

    def done(self, key: K) -> None:
        """Processing of ``key`` finished; if it was added meanwhile, queue it again.

        Raises ``ValueError`` for a key that is not being processed (a second ``done`` is a bug
        that would otherwise let two workers hold the key).
        """
        if key not in self._processing:
            raise ValueError(f"done({key!r}) for a key that is not being processed")
        self._processing.remove(key)
        started = self._started_at.pop(key, None)
        if started is not None:
            self._observer.work_duration(self._clock.now() - started)
        if key in self._dirty:
            self._queue.append(key)
            self._observer.depth(len(self._queue))
            self._wake_one()
        self._check_drained()

    @asynccontextmanager
    async def processing(self) -> AsyncIterator[K]:
        """``async with queue.processing() as key:`` gets a key and marks it done on the way out,
        whatever happens inside."""
        key = await self.get()
        try:
            yield key
        finally:
            self.done(key)

    # -- shutting down --

    async def shutdown(self, drain: bool = False) -> None:
        """Stop the queue: adds are ignored from now on and delayed keys are dropped.

        Without ``drain``, queued keys are dropped too, waiting workers get :class:`QueueShutDown`
        at once, and this returns immediately.  With ``drain``, workers keep receiving the keys
        already queued (keys re-added during processing are not queued again) and this returns once
        none is queued or being processed; bound the wait with ``asyncio.timeout``.  Idempotent; a
        later ``shutdown(drain=False)`` cuts a drain short.
        """
        self._shutting_down = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_due = None, None
        self._waiting.clear()
        self._heap.clear()
        # Dirty keys being processed would be queued again by done(); nothing new is accepted now.
        self._dirty.intersection_update(self._queue)
        self._added_at = {key: at for key, at in self._added_at.items() if key in self._dirty}
        if not drain:
            self._queue.clear()
            self._dirty.clear()
            self._added_at.clear()
            self._observer.depth(0)
        # Wake every waiting worker: each takes a queued key or learns of the shutdown.
        while self._getters:
            self._wake_one()
        if not drain or self._is_drained():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drained.append(future)
        try:
            await future
        finally:
            if future in self._drained:
                self._drained.remove(future)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    # -- introspection --

    def __len__(self) -> int:
        """Keys queued and ready to be handed out (not those delayed or being processed)."""
        return len(self._queue)

    @property
    def processing_count(self) -> int:
        """Keys handed out and not yet done."""
        return len(self._processing)

    @property
    def waiting_count(self) -> int:
        """Keys waiting for their delay to pass."""
        return len(self._waiting)

    # -- internals --

    def _wake_one(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _is_drained(self) -> bool:
        return not self._queue and not self._processing

    def _check_drained(self) -> None:
        if self._shutting_down and self._is_drained():
            # No further key can arrive, so workers still waiting learn of the shutdown now.
            while self._getters:
                self._wake_one()
            for future in self._drained:
                if not future.done():
                    future.set_result(None)

    def _arm_timer(self) -> None:
        """Keep exactly one timer, set for the earliest valid delayed key."""
        while self._heap and self._waiting.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # superseded by an earlier due time, or already queued
        if not self._heap:
            return
        due = self._heap[0][0]
        if self._timer is not None and self._timer_due is not None and self._timer_due <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = self._clock.call_later(due - self._clock.now(), self._release_due)

    def _release_due(self) -> None:
        self._timer, self._timer_due = None, None
        now = self._clock.now()
        while self._heap and self._heap[0][0] <= now:
            due, _, key = heapq.heappop(self._heap)
            if self._waiting.get(key) == due:
                del self._waiting[key]
                self.add(key)
        self._arm_timer()


async def run_workers(queue: WorkQueue[K], handle: Callable[[K], Awaitable[None]], *, workers: int) -> None:
    """Process ``queue`` with ``workers`` concurrent workers until it is shut down: at most that many
    keys are handled at once, and never one key twice at once.

    ``handle`` owns the retry policy (``forget`` or ``add_rate_limited``); :meth:`WorkQueue.done` is
    called for it.  An exception from ``handle`` is not swallowed: it fails this TaskGroup, stopping
    the other workers, and propagates to the supervisor that runs this.
    """
    if workers < 1:
        raise ValueError("at least one worker is needed")

    async def worker() -> None:
        # get/done by hand rather than ``async with queue.processing()``: the generator-based context
        # manager costs a few microseconds per key, which thousands of keys per second notice.
        get, done = queue.get, queue.done
        while True:
            try:
                key = await get()
            except QueueShutDown:
                return
            try:
                await handle(key)
            except QueueShutDown:
                return
            finally:
                done(key)

    async with asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(worker())
