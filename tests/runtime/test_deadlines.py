"""Per-reconcile deadlines sharing one loop timer: ``asyncio.timeout``'s semantics for any number of
concurrent scopes, across event loops.

Every test runs on :class:`VirtualTimeLoop`, an event loop whose clock moves only when every task is
blocked, straight to the next timer: deadlines fall due at exact virtual seconds whatever the
machine's load, and a test that waits "an hour" takes microseconds.  Assertions about when things
happened are about those virtual seconds, never about wall-clock time.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, TypeVarTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevisor.runtime._deadlines import Deadlines, DeadlineScope

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Deadlines may declare a deadline passed up to 1 ms early (its _SLACK, so that deadlines a hair
# apart share one wake-up): virtual instants are compared with this tolerance (float rounding
# included), and no body is made to finish within it of its deadline.
EARLY = 0.0011


class _JumpingSelector(selectors.DefaultSelector):
    """The loop's selector: where the loop would sleep until its next timer with no I/O ready, it
    moves the virtual clock to that timer instead."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # nothing scheduled at all: only I/O (a thread's wake-up) can go on
            return super().select(None)
        self._loop.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A discrete-event loop: virtual time, and a count of the timers still armed on it.

    Keep virtual instants below about 1e6 s: beyond that a float step is coarser than the loop's
    clock resolution and a jump could land a hair short of its timer for ever.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._armed: set[asyncio.TimerHandle] = set()
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.now

    def call_at(
        self,
        when: float,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        def fire() -> None:
            self._armed.discard(handle)
            callback(*args)

        handle = super().call_at(when, fire, context=context)
        self._armed.add(handle)
        return handle

    def armed_timers(self) -> int:
        """Timers scheduled on this loop that have neither fired nor been cancelled."""
        return sum(1 for handle in self._armed if not handle.cancelled())


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` to completion on a fresh virtual-time loop, then close the loop."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main())


def loop() -> VirtualTimeLoop:
    running = asyncio.get_running_loop()
    assert isinstance(running, VirtualTimeLoop)
    return running


def this_task() -> asyncio.Task[Any]:
    task = asyncio.current_task()
    assert task is not None
    return task


# -- one scope --


def test_a_scope_that_overruns_raises_timeout_error_at_its_deadline_and_reports_expired() -> None:
    async def main() -> None:
        deadlines = Deadlines(5)
        with pytest.raises(TimeoutError):
            async with deadlines.scope() as scope:
                assert len(deadlines) == 1
                await asyncio.sleep(60)
        assert scope.expired()
        assert loop().now == pytest.approx(5, abs=EARLY)
        assert len(deadlines) == 0
        # The cancellation was absorbed: the task goes on awaiting like any other.
        assert this_task().cancelling() == 0
        await asyncio.sleep(60)

    run(main)


def test_a_scope_left_early_cancels_nothing_and_leaves_no_timer_once_its_deadline_is_past() -> None:
    async def main() -> None:
        deadlines = Deadlines(5)
        async with deadlines.scope() as scope:
            await asyncio.sleep(1)
        assert not scope.expired()
        assert len(deadlines) == 0
        # Sleeping across the deadline the scope had: nothing cancels this task ...
        await asyncio.sleep(10)
        assert this_task().cancelling() == 0
        # ... and the shared timer, once its time came with no scope left, did not re-arm.
        assert loop().armed_timers() == 0

    run(main)


def test_a_scope_left_early_does_not_disturb_the_deadline_of_a_scope_still_running() -> None:
    async def main() -> list[tuple[str, float]]:
        deadlines = Deadlines(5)
        ends: list[tuple[str, float]] = []

        async def body(name: str, seconds: float) -> None:
            try:
                async with deadlines.scope():
                    await asyncio.sleep(seconds)
                ends.append((name, loop().now))
            except TimeoutError:
                ends.append((f"{name} timed out", loop().now))

        async with asyncio.TaskGroup() as group:
            group.create_task(body("short", 1))  # enters at 0, leaves at 1 (its deadline was 5)
            await asyncio.sleep(2)
            group.create_task(body("long", 60))  # enters at 2: due at 7, not at 5
        return ends

    (short, left_at), (long, timed_out_at) = run(main)
    assert (short, left_at) == ("short", 1)
    assert long == "long timed out" and timed_out_at == pytest.approx(7, abs=EARLY)


def test_a_timeout_error_raised_inside_the_body_is_not_mistaken_for_the_scopes() -> None:
    async def main() -> None:
        deadlines = Deadlines(5)
        mine = TimeoutError("the body's own")
        with pytest.raises(TimeoutError) as raised:
            async with deadlines.scope() as scope:
                await asyncio.sleep(1)
                raise mine
        assert raised.value is mine
        assert not scope.expired()
        assert len(deadlines) == 0
        await asyncio.sleep(10)  # the scope's deadline passing later cancels nothing
        assert this_task().cancelling() == 0

    run(main)


def test_an_inner_asyncio_timeout_that_fires_first_is_not_the_scopes() -> None:
    async def main() -> None:
        deadlines = Deadlines(5)
        with pytest.raises(TimeoutError):
            async with deadlines.scope() as scope:
                async with asyncio.timeout(1):
                    await asyncio.sleep(60)
        assert not scope.expired()
        assert loop().now == 1

    run(main)


def test_of_nested_scopes_only_the_overdue_one_reports_the_timeout() -> None:
    async def main() -> None:
        outer, inner = Deadlines(3), Deadlines(10)
        with pytest.raises(TimeoutError):
            async with outer.scope() as outer_scope:
                async with inner.scope() as inner_scope:
                    await asyncio.sleep(60)
        assert outer_scope.expired() and not inner_scope.expired()
        assert len(outer) == len(inner) == 0
        assert loop().now == pytest.approx(3, abs=EARLY)

    run(main)


def test_cancellation_from_outside_propagates_as_cancelled_error_not_timeout_error() -> None:
    async def main() -> None:
        deadlines = Deadlines(5)
        scopes: list[DeadlineScope] = []

        async def body() -> None:
            async with deadlines.scope() as scope:
                scopes.append(scope)
                await asyncio.sleep(60)

        task = asyncio.create_task(body())
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not scopes[0].expired()
        assert len(deadlines) == 0

    run(main)


def test_cancellation_from_outside_at_the_very_moment_of_the_deadline_still_propagates() -> None:
    # As with asyncio.timeout: when the task was also cancelled by someone else, the cancellation is
    # not the scope's to turn into TimeoutError, even though the deadline did pass.
    async def main() -> None:
        deadlines = Deadlines(5)
        scopes: list[DeadlineScope] = []

        async def body() -> None:
            async with deadlines.scope() as scope:
                scopes.append(scope)
                # Due in the same loop iteration as the deadline: both cancel before the task resumes.
                loop().call_later(5, this_task().cancel)
                await asyncio.sleep(60)

        task = asyncio.create_task(body())
        with pytest.raises(asyncio.CancelledError):
            await task
        assert scopes[0].expired()
        assert loop().now == 5

    run(main)


def test_none_seconds_means_no_deadline_and_no_timer() -> None:
    async def main() -> None:
        deadlines = Deadlines(None)
        async with deadlines.scope() as scope:
            assert len(deadlines) == 0
            assert loop().armed_timers() == 0
            await asyncio.sleep(1e6)  # eleven days
        assert not scope.expired()
        assert loop().now == 1e6

    run(main)


@pytest.mark.parametrize("seconds", [0, 0.0, -0.0, -1, -math.inf])
def test_a_timeout_that_is_not_positive_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Deadlines(seconds)


@pytest.mark.xfail(
    strict=True,
    reason="Deadlines.__init__ (kubevisor/runtime/_deadlines.py:37) checks `seconds <= 0`, which is "
    "False for NaN: NaN is accepted, and a NaN deadline falls due at once, so every scope times out "
    "immediately (ControllerOptions.reconcile_timeout, _controller.py:168, has the same check)",
)
def test_a_nan_timeout_is_refused() -> None:
    with pytest.raises(ValueError):
        Deadlines(math.nan)


def test_a_scope_entered_outside_a_task_is_refused() -> None:
    errors: list[RuntimeError] = []
    callback_loop = VirtualTimeLoop()

    def enter_from_a_callback() -> None:  # a loop callback runs with no current task
        entering = Deadlines(5).scope().__aenter__()
        try:
            entering.send(None)
        except RuntimeError as error:
            errors.append(error)
        finally:
            callback_loop.stop()

    try:
        callback_loop.call_soon(enter_from_a_callback)
        callback_loop.run_forever()
    finally:
        callback_loop.close()
    assert len(errors) == 1 and "inside a task" in str(errors[0])


# -- many scopes --


def test_concurrent_scopes_time_out_in_the_order_they_started_and_only_the_overdue_ones() -> None:
    durations = [7, 1, 9, 2, 6, 3, 8, 4.5, 5.5, 0.5]  # scope i starts at virtual second i

    async def main() -> tuple[list[tuple[int, str, float]], int]:
        deadlines = Deadlines(5)
        outcomes: list[tuple[int, str, float]] = []

        async def body(i: int) -> None:
            try:
                async with deadlines.scope():
                    await asyncio.sleep(durations[i])
                outcomes.append((i, "done", loop().now))
            except TimeoutError:
                outcomes.append((i, "timeout", loop().now))

        async with asyncio.TaskGroup() as group:
            for i in range(len(durations)):
                group.create_task(body(i))
                await asyncio.sleep(1)
        return outcomes, len(deadlines)

    outcomes, left = run(main)
    timeouts = [(i, at) for i, outcome, at in outcomes if outcome == "timeout"]
    assert [i for i, _ in timeouts] == [0, 2, 4, 6, 8]
    assert all(at == pytest.approx(i + 5, abs=EARLY) for i, at in timeouts)
    assert sorted((i, at) for i, outcome, at in outcomes if outcome == "done") == [
        (i, i + durations[i]) for i in (1, 3, 5, 7, 9)
    ]
    assert left == 0


def test_any_number_of_concurrent_scopes_share_one_timer() -> None:
    async def main() -> tuple[int, int]:
        deadlines = Deadlines(5)
        release = asyncio.Event()

        async def body() -> None:
            async with deadlines.scope():
                await release.wait()  # no timer of its own

        async with asyncio.TaskGroup() as group:
            for _ in range(100):
                group.create_task(body())
            await asyncio.sleep(0)  # every body is now inside its scope
            in_flight, timers = len(deadlines), loop().armed_timers()
            release.set()
        return in_flight, timers

    assert run(main) == (100, 1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=3),  # seconds after the previous scope started
            st.floats(min_value=0, max_value=12).filter(lambda d: abs(d - 4) > 10 * EARLY),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_every_scope_times_out_exactly_when_its_body_outlasts_the_timeout(
    plan: list[tuple[float, float]],
) -> None:
    async def main() -> list[tuple[float, float, bool, float]]:
        deadlines = Deadlines(4)
        results: list[tuple[float, float, bool, float]] = []

        async def body(duration: float) -> None:
            started = loop().now
            try:
                async with deadlines.scope():
                    await asyncio.sleep(duration)
                results.append((started, duration, False, loop().now))
            except TimeoutError:
                results.append((started, duration, True, loop().now))

        async with asyncio.TaskGroup() as group:
            for gap, duration in plan:
                await asyncio.sleep(gap)
                group.create_task(body(duration))
        assert len(deadlines) == 0
        return results

    results = run(main)
    assert len(results) == len(plan)
    for started, duration, timed_out, ended in results:
        assert timed_out == (duration > 4)
        assert ended == pytest.approx(started + min(duration, 4), abs=EARLY)


# -- a change of event loop (as between tests, each on its own loop) --


def test_a_deadlines_whose_timer_was_armed_on_a_closed_loop_still_times_out_on_the_next() -> None:
    deadlines = Deadlines(5)

    async def leave_early() -> None:
        async with deadlines.scope():
            await asyncio.sleep(1)
        # The shared timer stays armed on this loop, which closes before it is due.

    async def overrun() -> bool:
        with pytest.raises(TimeoutError):
            async with deadlines.scope() as scope:
                await asyncio.sleep(60)
        return scope.expired()

    run(leave_early)
    assert run(overrun)


def test_scopes_left_pending_on_a_loop_no_longer_running_are_forgotten_on_the_next() -> None:
    deadlines = Deadlines(5)
    first = VirtualTimeLoop()

    async def stuck() -> None:
        async with deadlines.scope():
            await first.create_future()  # never resolved while the next loop runs

    abandoned = first.create_task(stuck())
    try:
        first.run_until_complete(asyncio.sleep(1))
        assert len(deadlines) == 1

        async def overrun() -> tuple[int, bool]:
            with pytest.raises(TimeoutError):
                async with deadlines.scope() as scope:
                    in_flight = len(deadlines)
                    await asyncio.sleep(60)
            return in_flight, scope.expired()

        assert run(overrun) == (1, True)
        assert len(deadlines) == 0
    finally:
        abandoned.cancel()
        first.run_until_complete(asyncio.gather(abandoned, return_exceptions=True))
        first.close()
