"""The work queue: deduplication, exclusive processing, fairness, delays, rate limiting, shutdown and
metrics, all in virtual time (a ManualClock) so that no assertion depends on the wall clock."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevisor.runtime import (
    BucketRateLimiter,
    ItemExponentialRateLimiter,
    ManualClock,
    MaxOfRateLimiter,
    QueueShutDown,
    WorkQueue,
    WorkQueueOptions,
    run_workers,
)


def make_queue(clock: ManualClock | None = None, options: WorkQueueOptions | None = None) -> WorkQueue[str]:
    return WorkQueue(options or WorkQueueOptions(name="test"), clock=clock or ManualClock())


async def settle() -> None:
    """Let every ready task run until none is (the queue never needs more than a few rounds)."""
    for _ in range(10):
        await asyncio.sleep(0)


# --- deduplication, exclusivity and fairness ----------------------------------------------------------


async def test_a_key_added_twice_while_queued_is_handed_out_once() -> None:
    queue = make_queue()
    for key in ["a", "b", "a", "a"]:
        queue.add(key)
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    assert len(queue) == 0


async def test_keys_are_handed_out_in_the_order_they_were_first_added() -> None:
    queue = make_queue()
    for key in ["c", "a", "b", "c"]:
        queue.add(key)
    assert [await queue.get() for _ in range(3)] == ["c", "a", "b"]


async def test_a_key_being_processed_is_not_handed_out_again_until_done() -> None:
    queue = make_queue()
    queue.add("a")
    assert await queue.get() == "a"
    queue.add("a")
    queue.add("b")
    assert len(queue) == 1
    assert await queue.get() == "b"
    assert len(queue) == 0
    queue.done("a")
    assert len(queue) == 1
    assert await queue.get() == "a"


async def test_a_key_done_without_being_readded_is_not_queued_again() -> None:
    queue = make_queue()
    queue.add("a")
    queue.done(await queue.get())
    assert len(queue) == 0
    assert queue.processing_count == 0


async def test_done_for_a_key_not_being_processed_is_a_bug_that_raises() -> None:
    queue = make_queue()
    queue.add("a")
    with pytest.raises(ValueError, match="not being processed"):
        queue.done("a")


async def test_a_waiting_worker_receives_the_next_added_key() -> None:
    queue = make_queue()
    getter = asyncio.create_task(queue.get())
    await settle()
    assert not getter.done()
    queue.add("a")
    assert await getter == "a"


async def test_waiting_workers_are_served_in_the_order_they_asked() -> None:
    queue = make_queue()
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await settle()
    for key in ["x", "y", "z"]:
        queue.add(key)
    assert [await g for g in getters] == ["x", "y", "z"]


async def test_a_cancelled_worker_passes_its_wake_up_to_the_next_one() -> None:
    queue = make_queue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await settle()
    queue.add("a")  # wakes the first worker...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, timeout=5) == "a"
    assert queue.processing_count == 1


async def test_processing_context_marks_the_key_done_even_when_the_work_fails() -> None:
    queue = make_queue()
    queue.add("a")
    with pytest.raises(RuntimeError):
        async with queue.processing() as key:
            assert key == "a"
            raise RuntimeError("reconcile failed")
    assert queue.processing_count == 0


# --- delays and rate limiting -------------------------------------------------------------------------------


async def test_a_delayed_key_is_queued_once_its_delay_has_passed() -> None:
    clock = ManualClock()
    queue = make_queue(clock)
    queue.add_after("a", 2.0)
    assert len(queue) == 0
    assert queue.waiting_count == 1
    clock.advance(1.999)
    assert len(queue) == 0
    clock.advance(0.001)
    assert len(queue) == 1
    assert queue.waiting_count == 0
    assert await queue.get() == "a"


async def test_a_key_delayed_twice_keeps_the_earlier_due_time() -> None:
    clock = ManualClock()
    queue = make_queue(clock)
    queue.add_after("a", 5.0)
    queue.add_after("a", 1.0)
    queue.add_after("a", 3.0)
    clock.advance(1.0)
    assert len(queue) == 1
    queue.done(await queue.get())
    clock.advance(10.0)
    assert len(queue) == 0


async def test_delayed_keys_become_ready_in_order_of_due_time() -> None:
    clock = ManualClock()
    queue = make_queue(clock)
    queue.add_after("late", 3.0)
    queue.add_after("early", 1.0)
    queue.add_after("now", 0)
    clock.advance(5.0)
    assert [await queue.get() for _ in range(3)] == ["now", "early", "late"]


async def test_a_waiting_worker_is_woken_by_a_delayed_key() -> None:
    clock = ManualClock()
    queue = make_queue(clock)
    getter = asyncio.create_task(queue.get())
    queue.add_after("a", 0.5)
    await settle()
    assert not getter.done()
    clock.advance(0.5)
    assert await getter == "a"


async def test_rate_limited_retries_back_off_exponentially_from_5_ms() -> None:
    clock = ManualClock()
    queue = make_queue(clock)
    delays = []
    for _ in range(4):
        queue.add_rate_limited("a")
        start = clock.now()
        while not len(queue):
            clock.advance(0.001)
        delays.append(round(clock.now() - start, 3))
        queue.done(await queue.get())
    assert delays == [0.005, 0.01, 0.02, 0.04]
    assert queue.retries("a") == 4
    queue.forget("a")
    assert queue.retries("a") == 0


def test_per_key_backoff_is_capped_at_1000_seconds_and_independent_per_key() -> None:
    limiter: ItemExponentialRateLimiter[str] = ItemExponentialRateLimiter(0.005, 1000.0)
    delays = [limiter.when("a", 0.0) for _ in range(30)]
    assert delays[:3] == [0.005, 0.01, 0.02]
    assert delays[-1] == 1000.0
    assert max(delays) == 1000.0
    assert limiter.when("b", 0.0) == 0.005
    for _ in range(200):
        limiter.when("a", 0.0)
    assert limiter.when("a", 0.0) == 1000.0


def test_the_token_bucket_allows_a_burst_of_100_then_10_per_second() -> None:
    bucket: BucketRateLimiter[str] = BucketRateLimiter(qps=10, burst=100)
    assert [bucket.when(str(i), 0.0) for i in range(100)] == [0.0] * 100
    assert bucket.when("x", 0.0) == pytest.approx(0.1)
    assert bucket.when("y", 0.0) == pytest.approx(0.2)
    # After 10 s the two borrowed tokens are repaid and 98 more have accrued.
    assert bucket.when("z", 10.0) == 0.0
    assert bucket.retries("z") == 0


def test_the_default_limiter_takes_the_longer_of_backoff_and_bucket() -> None:
    limiter: MaxOfRateLimiter[str] = MaxOfRateLimiter(
        ItemExponentialRateLimiter(0.005, 1000.0), BucketRateLimiter(qps=10, burst=2)
    )
    assert limiter.when("a", 0.0) == 0.005  # backoff dominates while tokens last
    assert limiter.when("b", 0.0) == 0.005
    assert limiter.when("c", 0.0) == pytest.approx(0.1)  # then the bucket does
    assert limiter.retries("a") == 1
    limiter.forget("a")
    assert limiter.retries("a") == 0


async def test_the_queue_uses_the_options_for_its_default_rate_limiter() -> None:
    clock = ManualClock()
    queue = make_queue(clock, WorkQueueOptions(base_delay=1.0, burst=1, qps=0.5))
    queue.add_rate_limited("a")
    queue.add_rate_limited("b")
    clock.advance(1.0)
    assert len(queue) == 1  # "a": 1 s backoff, token available
    clock.advance(1.0)
    assert len(queue) == 2  # "b": waited 2 s for the bucket's next token


# --- shutdown -----------------------------------------------------------------------------------------------


async def test_shutdown_without_drain_drops_queued_and_delayed_keys() -> None:
    clock = ManualClock()
    queue = make_queue(clock)
    queue.add("a")
    queue.add("b")
    queue.add_after("c", 1.0)
    assert await queue.get() == "a"
    queue.add("a")
    await queue.shutdown()
    assert len(queue) == 0
    assert clock.pending == 0
    with pytest.raises(QueueShutDown):
        await queue.get()
    queue.add("d")
    queue.add_rate_limited("d")
    queue.done("a")  # the key in flight may still finish, and is not queued again
    clock.advance(10.0)
    assert len(queue) == 0
    assert queue.processing_count == 0


async def test_waiting_workers_learn_of_a_shutdown_at_once() -> None:
    queue = make_queue()
    getters = [asyncio.create_task(queue.get()) for _ in range(2)]
    await settle()
    await queue.shutdown()
    for getter in getters:
        with pytest.raises(QueueShutDown):
            await getter


async def test_drain_hands_out_queued_keys_and_waits_for_work_in_flight() -> None:
    queue = make_queue()
    queue.add("a")
    queue.add("b")
    assert await queue.get() == "a"
    queue.add("a")  # dirty while processing: dropped by the shutdown, nothing new is accepted
    shutdown = asyncio.create_task(queue.shutdown(drain=True))
    await settle()
    assert not shutdown.done()
    assert await queue.get() == "b"
    queue.done("b")
    await settle()
    assert not shutdown.done()
    queue.done("a")
    await asyncio.wait_for(shutdown, timeout=5)
    with pytest.raises(QueueShutDown):
        await queue.get()


async def test_a_drain_of_an_idle_queue_returns_at_once_and_shutdown_is_idempotent() -> None:
    queue = make_queue()
    await queue.shutdown(drain=True)
    await queue.shutdown(drain=True)
    assert queue.shutting_down


# --- metrics --------------------------------------------------------------------------------------------------


@dataclass
class RecordingObserver:
    depths: list[int] = field(default_factory=list)
    adds: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)

    def depth(self, depth: int) -> None:
        self.depths.append(depth)

    def added(self, key: str) -> None:
        self.adds.append(key)

    def queue_latency(self, seconds: float) -> None:
        self.latencies.append(seconds)

    def work_duration(self, seconds: float) -> None:
        self.durations.append(seconds)

    def retried(self, key: str) -> None:
        self.retries.append(key)


async def test_the_observer_sees_depth_adds_latency_duration_and_retries() -> None:
    clock = ManualClock()
    observer = RecordingObserver()
    queue: WorkQueue[str] = WorkQueue(WorkQueueOptions(name="widgets"), clock=clock, observer=observer)
    queue.add("a")
    queue.add("a")  # deduplicated: not an add
    queue.add("b")
    clock.advance(2.0)
    key = await queue.get()
    clock.advance(3.0)
    queue.add_rate_limited(key)
    queue.done(key)
    clock.advance(1.0)
    assert observer.adds == ["a", "b", "a"]
    assert observer.depths == [1, 2, 1, 2]
    assert observer.latencies == [2.0]
    assert observer.durations == [3.0]
    assert observer.retries == ["a"]


# --- workers ---------------------------------------------------------------------------------------------------


async def test_run_workers_never_exceeds_the_worker_count_and_stops_at_shutdown() -> None:
    queue = make_queue()
    running: set[str] = set()
    peak = 0
    handled: list[str] = []
    release = asyncio.Event()

    async def handle(key: str) -> None:
        nonlocal peak
        running.add(key)
        peak = max(peak, len(running))
        await release.wait()
        running.discard(key)
        handled.append(key)
        queue.forget(key)

    for key in "abcdef":
        queue.add(key)
    workers = asyncio.create_task(run_workers(queue, handle, workers=3))
    await settle()
    assert running == {"a", "b", "c"}
    release.set()
    await settle()
    await asyncio.wait_for(queue.shutdown(drain=True), timeout=5)
    await asyncio.wait_for(workers, timeout=5)
    assert peak == 3
    assert sorted(handled) == list("abcdef")


async def test_an_exception_in_a_handler_fails_the_workers() -> None:
    queue = make_queue()
    queue.add("a")

    async def handle(key: str) -> None:
        raise RuntimeError(f"cannot handle {key}")

    with pytest.raises(ExceptionGroup) as caught:
        await asyncio.wait_for(run_workers(queue, handle, workers=2), timeout=5)
    assert caught.group_contains(RuntimeError)
    assert queue.processing_count == 0


# --- random interleavings -----------------------------------------------------------------------------------

_keys = st.sampled_from(["a", "b", "c", "d"])
_yields = st.integers(min_value=0, max_value=3)


@settings(max_examples=150, deadline=None)
@given(
    adds=st.lists(st.tuples(_keys, _yields), max_size=30),
    workers=st.lists(
        st.lists(st.tuples(_yields, st.booleans()), min_size=1, max_size=5), min_size=1, max_size=4
    ),
)
def test_random_interleavings_never_share_a_key_and_process_every_last_add(
    adds: list[tuple[str, int]], workers: list[list[tuple[int, bool]]]
) -> None:
    """Several workers and an adder interleave at random: no key is ever held by two workers at once,
    and every key is handed out after its last add."""
    log: list[tuple[str, str]] = []
    held: set[str] = set()

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue(clock=ManualClock())

        async def adder() -> None:
            for key, pause in adds:
                queue.add(key)
                log.append(("add", key))
                for _ in range(pause):
                    await asyncio.sleep(0)

        async def worker(script: list[tuple[int, bool]]) -> None:
            for pause, readd in itertools.cycle(script):
                try:
                    key = await queue.get()
                except QueueShutDown:
                    return
                assert key not in held, f"{key} handed to two workers at once"
                held.add(key)
                log.append(("get", key))
                for _ in range(pause):
                    await asyncio.sleep(0)
                if readd and log.count(("get", key)) < 5:
                    queue.add(key)
                    log.append(("add", key))
                held.discard(key)
                queue.done(key)

        async with asyncio.TaskGroup() as group:
            for script in workers:
                group.create_task(worker(script))
            await adder()
            # Wait for quiescence (workers re-add only while processing) before draining, since a
            # drain ignores re-adds; yielding to the scheduler is the point, not an event.
            while len(queue) or queue.processing_count:  # noqa: ASYNC110
                await asyncio.sleep(0)
            await queue.shutdown(drain=True)

    asyncio.run(scenario())
    for key in {key for _, key in log}:
        last_add = max(i for i, event in enumerate(log) if event == ("add", key))
        gets_after = [i for i, event in enumerate(log) if event == ("get", key) and i > last_add]
        assert gets_after, f"{key} was added at step {last_add} and never processed afterwards"
