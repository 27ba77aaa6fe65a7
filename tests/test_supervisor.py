"""kubevisor.supervisor: OTP supervision semantics on asyncio.

Every test is deterministic: children are driven by futures the test resolves, progress is observed
through the supervisor's events and its serialized child operations, and restart intensity runs on
an injected clock.  The only real durations are safety nets against hangs and the start/shutdown
timeouts that a test deliberately lets expire (the outcome asserted never depends on how long).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevisor.supervisor import (
    BRUTAL_KILL,
    ChildCounts,
    ChildExited,
    ChildInfo,
    ChildNotFound,
    ChildRestarted,
    ChildRunning,
    ChildSpec,
    ChildStarted,
    ChildType,
    DuplicateChild,
    ExitReason,
    IntensityExceeded,
    Ready,
    Restart,
    StartFailed,
    Strategy,
    Supervisor,
    SupervisorEvent,
    SupervisorNotRunning,
    SupervisorOptions,
    TooManyRestarts,
)

T = TypeVar("T")
SAFETY = 10.0  # seconds; only ever reached when a test is broken


async def bounded(awaitable: Awaitable[T]) -> T:
    """Await with a safety net, so a regression fails instead of hanging the suite."""
    async with asyncio.timeout(SAFETY):
        return await awaitable


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Events:
    """An observer that records every event and lets a test wait for a condition on them."""

    def __init__(self) -> None:
        self.log: list[SupervisorEvent] = []
        self._changed: asyncio.Event | None = None

    def __call__(self, event: SupervisorEvent) -> None:
        self.log.append(event)
        if self._changed is not None:
            self._changed.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(SAFETY):
            while not predicate():
                self._changed = asyncio.Event()
                await self._changed.wait()

    def count(self, kind: type[Any], child_id: str | None = None) -> int:
        return sum(1 for e in self.log if isinstance(e, kind) and child_id in (None, e.child_id))

    async def wait(self, kind: type[Any], child_id: str | None = None, times: int = 1) -> None:
        await self.until(lambda: self.count(kind, child_id) >= times)

    def exits(self, supervisor: str | None = None) -> list[tuple[str, ExitReason]]:
        return [
            (e.child_id, e.reason)
            for e in self.log
            if isinstance(e, ChildExited) and supervisor in (None, e.supervisor)
        ]


class Fleet:
    """Children whose fate the test decides.  Each writes ``start <id>`` once it is ready and
    ``stop <id>`` when its supervisor cancels it, all into one journal, so order is observable."""

    def __init__(self) -> None:
        self.journal: list[str] = []
        self._fates: dict[str, asyncio.Future[str]] = {}

    def spec(self, child_id: str, **options: Any) -> ChildSpec:
        return ChildSpec(child_id, self.body(child_id), **options)

    def body(self, child_id: str) -> Callable[[Ready], Awaitable[None]]:
        async def run(ready: Ready) -> None:
            fate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._fates[child_id] = fate
            self.journal.append(f"start {child_id}")
            ready()
            try:
                how = await fate
            except asyncio.CancelledError:
                self.journal.append(f"stop {child_id}")
                raise
            if how == "crash":
                raise RuntimeError(f"{child_id} crashed")
            if how == "cancel":
                # Cancellation its supervisor did not ask for (a leaked CancelledError).
                raise asyncio.CancelledError

        return run

    def crash(self, child_id: str) -> None:
        self._fates[child_id].set_result("crash")

    def finish(self, child_id: str) -> None:
        self._fates[child_id].set_result("return")

    def cancel(self, child_id: str) -> None:
        self._fates[child_id].set_result("cancel")

    def since(self, mark: int) -> list[str]:
        return self.journal[mark:]


class Gate:
    """A child that pauses at a named point until the test opens the gate."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.open = asyncio.Event()
        self.done = asyncio.Event()  # set by children that finish their work after the gate

    async def pass_(self) -> None:
        self.reached.set()
        await self.open.wait()


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel a running supervisor task and check that the cancellation propagated."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await bounded(task)


# ---------------------------------------------------------------------------------------- data


def test_child_spec_defaults_follow_otp_for_a_worker() -> None:
    spec = ChildSpec("w", Fleet().body("w"))
    assert spec.restart is Restart.PERMANENT
    assert spec.shutdown == 5.0
    assert spec.type is ChildType.WORKER
    assert spec.start_timeout == 30.0


@pytest.mark.parametrize(
    "options",
    [{"shutdown": -1}, {"shutdown": math.nan}, {"start_timeout": 0}, {"start_timeout": -2.0}],
)
def test_child_spec_rejects_invalid_timeouts(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="'w'"):
        ChildSpec("w", Fleet().body("w"), **options)


def test_child_spec_rejects_an_empty_id() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        ChildSpec("", Fleet().body("w"))


def test_supervisor_options_default_to_one_for_one_three_restarts_in_five_seconds() -> None:
    options = SupervisorOptions()
    assert (options.strategy, options.max_restarts, options.max_seconds) == (Strategy.ONE_FOR_ONE, 3, 5.0)
    with pytest.raises(ValueError, match="max_restarts"):
        SupervisorOptions(max_restarts=-1)
    with pytest.raises(ValueError, match="max_seconds"):
        SupervisorOptions(max_seconds=0)


def test_supervisor_rejects_duplicate_child_ids() -> None:
    fleet = Fleet()
    with pytest.raises(ValueError, match=r"duplicate child ids \['a'\]"):
        Supervisor([fleet.spec("a"), fleet.spec("b"), fleet.spec("a")])


def test_child_spec_of_a_supervisor_is_a_supervisor_with_unbounded_shutdown_and_start() -> None:
    spec = Supervisor(name="informers").child_spec(restart=Restart.TRANSIENT)
    assert spec.id == "informers"
    assert spec.type is ChildType.SUPERVISOR
    assert spec.restart is Restart.TRANSIENT
    assert spec.shutdown == math.inf
    assert spec.start_timeout == math.inf


# ---------------------------------------------------------------------------------------- start and stop order


async def test_children_start_in_order_each_after_the_previous_reported_ready() -> None:
    fleet, gate, events = Fleet(), Gate(), Events()

    async def slow(ready: Ready) -> None:
        fleet.journal.append("connecting a")
        await gate.pass_()
        fleet.journal.append("start a")
        ready()
        await asyncio.Event().wait()

    sup = Supervisor([ChildSpec("a", slow), fleet.spec("b")], observer=events)
    task = asyncio.create_task(sup.run())
    await bounded(gate.reached.wait())
    await asyncio.sleep(0)
    assert fleet.journal == ["connecting a"]
    gate.open.set()
    await events.wait(ChildStarted, "b")
    assert fleet.journal == ["connecting a", "start a", "start b"]
    await stop(task)


async def test_cancelling_the_root_stops_children_in_reverse_start_order_and_propagates() -> None:
    fleet, events = Fleet(), Events()
    sup = Supervisor([fleet.spec("a"), fleet.spec("b"), fleet.spec("c")], observer=events)
    task = asyncio.create_task(sup.run())
    await events.wait(ChildStarted, "c")
    await stop(task)
    assert fleet.journal == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]
    assert events.exits() == [(c, ExitReason.SHUTDOWN) for c in "cba"]


async def test_leaving_async_with_stops_children_in_reverse_start_order() -> None:
    fleet = Fleet()
    async with Supervisor([fleet.spec("a"), fleet.spec("b")]) as sup:
        assert fleet.journal == ["start a", "start b"]  # entered only once all are ready
        assert [c.running for c in await sup.which_children()] == [True, True]
    assert fleet.journal == ["start a", "start b", "stop b", "stop a"]


async def test_nested_supervisor_stops_its_own_children_in_its_turn() -> None:
    fleet = Fleet()
    inner = Supervisor([fleet.spec("x"), fleet.spec("y")], name="inner")
    async with Supervisor([fleet.spec("a"), inner.child_spec(), fleet.spec("b")], name="root"):
        assert fleet.journal == ["start a", "start x", "start y", "start b"]
    assert fleet.since(4) == ["stop b", "stop y", "stop x", "stop a"]


async def test_an_initial_child_failing_to_start_stops_those_started_and_fails_the_supervisor() -> None:
    fleet = Fleet()

    async def broken(ready: Ready) -> None:
        raise OSError("port in use")

    sup = Supervisor([fleet.spec("a"), ChildSpec("b", broken), fleet.spec("c")], name="root")
    with pytest.raises(StartFailed) as failure:
        await bounded(sup.run())
    assert failure.value.child_id == "b"
    assert isinstance(failure.value.__cause__, OSError)
    assert "child 'b' failed to start" in str(failure.value)
    assert fleet.journal == ["start a", "stop a"]


async def test_async_with_raises_start_failed_when_an_initial_child_fails() -> None:
    async def broken(ready: Ready) -> None:
        raise OSError("no route")

    with pytest.raises(StartFailed, match="'b'"):
        async with Supervisor([ChildSpec("b", broken)]):
            pytest.fail("the body must not run")


async def test_cancelling_the_task_inside_async_with_stops_the_tree_and_propagates() -> None:
    fleet, entered = Fleet(), asyncio.Event()

    async def owner() -> None:
        async with Supervisor([fleet.spec("a"), fleet.spec("b")]):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(owner())
    await bounded(entered.wait())
    await stop(task)
    assert fleet.journal == ["start a", "start b", "stop b", "stop a"]


async def test_cancelled_while_entering_async_with_stops_the_children_already_started() -> None:
    fleet, gate, events = Fleet(), Gate(), Events()

    async def connecting(ready: Ready) -> None:
        try:
            await gate.pass_()
        except asyncio.CancelledError:
            fleet.journal.append("stop b (never ready)")
            raise

    async def owner() -> None:
        async with Supervisor([fleet.spec("a"), ChildSpec("b", connecting)], observer=events):
            pytest.fail("the body must not run")

    task = asyncio.create_task(owner())
    await bounded(gate.reached.wait())
    await stop(task)
    assert fleet.journal == ["start a", "stop b (never ready)", "stop a"]
    assert events.exits() == [("b", ExitReason.SHUTDOWN), ("a", ExitReason.SHUTDOWN)]


async def test_an_exception_in_the_async_with_body_stops_the_tree_and_propagates_unchanged() -> None:
    fleet = Fleet()
    with pytest.raises(LookupError, match="from the body"):
        async with Supervisor([fleet.spec("a")]):
            raise LookupError("from the body")
    assert fleet.journal == ["start a", "stop a"]


# ---------------------------------------------------------------------------------------- readiness


async def test_start_child_returns_only_once_the_child_reported_ready() -> None:
    gate = Gate()
    log: list[str] = []

    async def warming(ready: Ready) -> None:
        await gate.pass_()
        log.append("ready")
        ready()
        await asyncio.Event().wait()

    async with Supervisor() as sup:
        starting = asyncio.create_task(sup.start_child(ChildSpec("cache", warming)))
        await bounded(gate.reached.wait())
        await asyncio.sleep(0)
        assert not starting.done()
        gate.open.set()
        await bounded(starting)
        assert log == ["ready"]


async def test_start_child_raises_start_failed_and_forgets_a_child_that_raised_before_ready() -> None:
    events = Events()

    async def broken(ready: Ready) -> None:
        raise ValueError("bad config")

    async with Supervisor(observer=events) as sup:
        with pytest.raises(StartFailed) as failure:
            await bounded(sup.start_child(ChildSpec("x", broken)))
        assert isinstance(failure.value.__cause__, ValueError)
        assert await sup.which_children() == []
    assert events.exits() == [("x", ExitReason.ERROR)]


async def test_start_child_times_out_a_child_that_never_reports_ready_and_stops_it() -> None:
    events = Events()
    log: list[str] = []

    async def forgetful(ready: Ready) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log.append("stopped")
            raise

    async with Supervisor(observer=events) as sup:
        with pytest.raises(StartFailed) as failure:
            await bounded(sup.start_child(ChildSpec("x", forgetful, start_timeout=0.01)))
        assert isinstance(failure.value.__cause__, TimeoutError)
        assert "did not report ready within 0.01 s" in str(failure.value.__cause__)
    assert log == ["stopped"]
    [exited] = [e for e in events.log if isinstance(e, ChildExited)]
    assert exited.reason is ExitReason.ERROR
    assert isinstance(exited.error, TimeoutError)


async def test_a_child_returning_before_ready_is_ignored_and_kept_not_running() -> None:
    runs: list[int] = []

    async def disabled(ready: Ready) -> None:
        runs.append(1)  # nothing to do in this configuration

    async with Supervisor([ChildSpec("optional", disabled)]) as sup:
        assert await sup.which_children() == [
            ChildInfo("optional", running=False, type=ChildType.WORKER, restart=Restart.PERMANENT)
        ]
        await sup.restart_child("optional")  # may be tried again by hand
        assert runs == [1, 1]


async def test_a_temporary_child_returning_before_ready_is_forgotten() -> None:
    async def done(ready: Ready) -> None:
        return None

    async with Supervisor() as sup:
        await sup.start_child(ChildSpec("once", done, restart=Restart.TEMPORARY))
        assert await sup.which_children() == []


async def test_the_ready_handle_can_be_awaited_without_a_supervisor() -> None:
    ready = Ready()

    async def component(ready: Ready) -> None:
        await asyncio.sleep(0)
        ready()
        ready()  # idempotent

    task = asyncio.create_task(component(ready))
    await bounded(ready.wait())
    assert ready.is_set
    await task


# ---------------------------------------------------------------------------------------- restart types


@pytest.mark.parametrize(
    ("restart", "exit_kind", "reason", "restarted"),
    [
        (Restart.PERMANENT, "finish", ExitReason.NORMAL, True),
        (Restart.PERMANENT, "crash", ExitReason.ERROR, True),
        (Restart.PERMANENT, "cancel", ExitReason.CANCELLED, True),
        (Restart.TRANSIENT, "finish", ExitReason.NORMAL, False),
        (Restart.TRANSIENT, "crash", ExitReason.ERROR, True),
        (Restart.TRANSIENT, "cancel", ExitReason.CANCELLED, True),
        (Restart.TEMPORARY, "finish", ExitReason.NORMAL, False),
        (Restart.TEMPORARY, "crash", ExitReason.ERROR, False),
        (Restart.TEMPORARY, "cancel", ExitReason.CANCELLED, False),
    ],
)
async def test_the_restart_type_decides_whether_an_exit_is_restarted(
    restart: Restart, exit_kind: str, reason: ExitReason, restarted: bool
) -> None:
    fleet, events = Fleet(), Events()
    async with Supervisor([fleet.spec("w", restart=restart)], observer=events) as sup:
        getattr(fleet, exit_kind)("w")
        await events.wait(ChildExited, "w")
        children = await sup.which_children()  # served only after the exit was fully handled
        assert events.exits() == [("w", reason)]
        assert events.count(ChildRestarted, "w") == (1 if restarted else 0)
        if restarted:
            assert fleet.journal == ["start w", "start w"]
            assert [c.running for c in children] == [True]
        elif restart is Restart.TEMPORARY:
            assert children == []  # a temporary child is forgotten once it exits
        else:
            assert [c.running for c in children] == [False]


# ---------------------------------------------------------------------------------------- strategies


async def test_one_for_one_restarts_only_the_failed_child() -> None:
    fleet, events = Fleet(), Events()
    specs = [fleet.spec(c) for c in "abc"]
    async with Supervisor(specs, SupervisorOptions(Strategy.ONE_FOR_ONE), observer=events):
        mark = len(fleet.journal)
        fleet.crash("b")
        await events.wait(ChildRestarted, "b")
        assert fleet.since(mark) == ["start b"]


async def test_one_for_all_stops_the_others_in_reverse_then_restarts_all_in_order() -> None:
    fleet, events = Fleet(), Events()
    specs = [fleet.spec(c) for c in "abc"]
    async with Supervisor(specs, SupervisorOptions(Strategy.ONE_FOR_ALL), observer=events):
        mark = len(fleet.journal)
        fleet.crash("b")
        await events.wait(ChildRestarted, "c")
        assert fleet.since(mark) == ["stop c", "stop a", "start a", "start b", "start c"]
        restarted = [e for e in events.log if isinstance(e, ChildRestarted)]
        assert [(e.child_id, e.trigger) for e in restarted] == [("a", "b"), ("b", "b"), ("c", "b")]
        assert events.exits() == [
            ("b", ExitReason.ERROR),
            ("c", ExitReason.SHUTDOWN),
            ("a", ExitReason.SHUTDOWN),
        ]


async def test_rest_for_one_restarts_the_failed_child_and_those_started_after_it() -> None:
    fleet, events = Fleet(), Events()
    specs = [fleet.spec(c) for c in "abcd"]
    async with Supervisor(specs, SupervisorOptions(Strategy.REST_FOR_ONE), observer=events):
        mark = len(fleet.journal)
        fleet.crash("b")
        await events.wait(ChildRestarted, "d")
        assert fleet.since(mark) == ["stop d", "stop c", "start b", "start c", "start d"]


async def test_a_temporary_sibling_is_stopped_by_one_for_all_but_never_restarted() -> None:
    fleet, events = Fleet(), Events()
    specs = [fleet.spec("a"), fleet.spec("job", restart=Restart.TEMPORARY), fleet.spec("c")]
    async with Supervisor(specs, SupervisorOptions(Strategy.ONE_FOR_ALL), observer=events) as sup:
        mark = len(fleet.journal)
        fleet.crash("a")
        await events.wait(ChildRestarted, "c")
        assert fleet.since(mark) == ["stop c", "stop job", "start a", "start c"]
        assert [c.id for c in await sup.which_children()] == ["a", "c"]


async def test_one_for_all_also_starts_a_sibling_that_had_stopped_as_otp_does() -> None:
    fleet, events = Fleet(), Events()
    specs = [fleet.spec("a"), fleet.spec("t", restart=Restart.TRANSIENT)]
    async with Supervisor(specs, SupervisorOptions(Strategy.ONE_FOR_ALL), observer=events) as sup:
        fleet.finish("t")  # a normal exit: transient, so not restarted on its own
        await events.wait(ChildExited, "t")
        assert [c.running for c in await sup.which_children()] == [True, False]
        fleet.crash("a")
        await events.wait(ChildRestarted, "t")
        assert [c.running for c in await sup.which_children()] == [True, True]


@settings(max_examples=40, deadline=None)
@given(
    strategy=st.sampled_from(list(Strategy)),
    size=st.integers(min_value=1, max_value=6),
    data=st.data(),
)
def test_each_strategy_stops_its_restart_set_in_reverse_and_starts_it_in_order(
    strategy: Strategy, size: int, data: st.DataObject
) -> None:
    failed = data.draw(st.integers(min_value=0, max_value=size - 1), label="failed")
    ids = [f"c{i}" for i in range(size)]
    expected_set = {
        Strategy.ONE_FOR_ONE: [ids[failed]],
        Strategy.ONE_FOR_ALL: ids,
        Strategy.REST_FOR_ONE: ids[failed:],
    }[strategy]
    others = [i for i in expected_set if i != ids[failed]]
    expected = [f"stop {i}" for i in reversed(others)] + [f"start {i}" for i in expected_set]

    async def scenario() -> list[str]:
        fleet, events = Fleet(), Events()
        async with Supervisor([fleet.spec(i) for i in ids], SupervisorOptions(strategy), observer=events):
            mark = len(fleet.journal)
            fleet.crash(ids[failed])
            await events.wait(ChildRestarted, expected_set[-1])
            return fleet.since(mark)

    assert asyncio.run(scenario()) == expected


# ---------------------------------------------------------------------------------------- intensity


async def test_more_restarts_than_the_intensity_within_the_period_fails_the_supervisor_upward() -> None:
    fleet, events, clock = Fleet(), Events(), FakeClock()
    options = SupervisorOptions(max_restarts=2, max_seconds=5)
    sup = Supervisor([fleet.spec("a"), fleet.spec("b")], options, name="root", observer=events, clock=clock)
    task = asyncio.create_task(sup.run())
    await events.wait(ChildStarted, "b")
    for restarts in (1, 2):
        fleet.crash("a")
        await events.wait(ChildRestarted, "a", times=restarts)
        clock.advance(2.5)  # the third crash is still within 5 s of the first
    fleet.crash("a")
    with pytest.raises(TooManyRestarts) as failure:
        await bounded(task)
    assert failure.value.child_id == "a"
    assert failure.value.restarts == 3
    assert isinstance(failure.value.__cause__, RuntimeError)
    assert "more than the 2 allowed" in str(failure.value)
    assert events.log[-2:] == [
        IntensityExceeded("root", "a", restarts=3, max_restarts=2, max_seconds=5),
        ChildExited("root", "b", ExitReason.SHUTDOWN, None),
    ]
    assert fleet.journal[-1] == "stop b"


async def test_restarts_spread_wider_than_the_period_never_exhaust_the_intensity() -> None:
    fleet, events, clock = Fleet(), Events(), FakeClock()
    options = SupervisorOptions(max_restarts=1, max_seconds=5)
    async with Supervisor([fleet.spec("a")], options, observer=events, clock=clock):
        for attempt in range(1, 6):
            fleet.crash("a")
            await events.wait(ChildRestarted, "a", times=attempt)
            clock.advance(5.001)
    assert events.count(IntensityExceeded) == 0


async def test_a_restart_exactly_one_period_later_still_counts_against_the_intensity() -> None:
    fleet, events, clock = Fleet(), Events(), FakeClock()
    options = SupervisorOptions(max_restarts=1, max_seconds=5)
    sup = Supervisor([fleet.spec("a")], options, observer=events, clock=clock)
    task = asyncio.create_task(sup.run())
    await events.wait(ChildStarted, "a")
    fleet.crash("a")
    await events.wait(ChildRestarted, "a")
    clock.advance(5)  # inclusive window, as OTP's
    fleet.crash("a")
    with pytest.raises(TooManyRestarts):
        await bounded(task)


async def test_zero_max_restarts_fails_on_the_first_exit_needing_a_restart() -> None:
    fleet = Fleet()
    events = Events()
    sup = Supervisor(
        [fleet.spec("a", restart=Restart.TRANSIENT)], SupervisorOptions(max_restarts=0), observer=events
    )
    task = asyncio.create_task(sup.run())
    await events.wait(ChildStarted, "a")
    fleet.cancel("a")  # unrequested cancellation is abnormal, so transient needs a restart
    with pytest.raises(TooManyRestarts) as failure:
        await bounded(task)
    assert isinstance(failure.value.__cause__, asyncio.CancelledError)


async def test_async_with_cancels_its_body_and_raises_too_many_restarts_on_exit() -> None:
    fleet, events = Fleet(), Events()
    reached_cancel: list[str] = []
    with pytest.raises(TooManyRestarts):
        async with Supervisor([fleet.spec("a")], SupervisorOptions(max_restarts=0), observer=events):
            fleet.crash("a")
            try:
                await bounded(asyncio.Event().wait())
            except asyncio.CancelledError:
                reached_cancel.append("body cancelled")
                raise
    assert reached_cancel == ["body cancelled"]
    # The cancellation used to stop the body was consumed: this task is not left cancelling.
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)


async def test_a_child_that_keeps_failing_to_restart_is_retried_until_the_intensity_gives_up() -> None:
    events = Events()
    incarnations: list[int] = []
    crash = asyncio.Event()

    async def flaky(ready: Ready) -> None:
        incarnations.append(len(incarnations) + 1)
        if len(incarnations) > 1:
            raise ConnectionError("dependency down")
        ready()
        await crash.wait()
        raise RuntimeError("lost connection")

    sup = Supervisor([ChildSpec("db", flaky)], SupervisorOptions(max_restarts=3), observer=events)
    task = asyncio.create_task(sup.run())
    await events.wait(ChildStarted, "db")
    crash.set()
    with pytest.raises(TooManyRestarts) as failure:
        await bounded(task)
    # One first run, then three restart attempts each failing to start; the fourth is refused.
    assert incarnations == [1, 2, 3, 4]
    assert isinstance(failure.value.__cause__, ConnectionError)


async def test_a_nested_supervisor_exceeding_its_intensity_is_restarted_by_its_parent() -> None:
    fleet, events = Fleet(), Events()
    inner = Supervisor([fleet.spec("g")], SupervisorOptions(max_restarts=0), name="inner", observer=events)
    root = Supervisor(
        [fleet.spec("w"), inner.child_spec()],
        SupervisorOptions(Strategy.ONE_FOR_ONE),
        name="root",
        observer=events,
    )
    async with root:
        fleet.crash("g")
        await events.wait(ChildRestarted, "inner")
        assert fleet.journal == ["start w", "start g", "start g"]
        [inner_exit] = [e for e in events.log if isinstance(e, ChildExited) and e.child_id == "inner"]
        assert inner_exit.reason is ExitReason.ERROR
        assert isinstance(inner_exit.error, TooManyRestarts)
        assert [c.running for c in await root.which_children()] == [True, True]


async def test_a_nested_failure_restarts_siblings_per_the_parent_strategy() -> None:
    fleet, events = Fleet(), Events()
    inner = Supervisor([fleet.spec("g")], SupervisorOptions(max_restarts=0), name="inner", observer=events)
    root = Supervisor(
        [fleet.spec("w"), inner.child_spec(), fleet.spec("z")],
        SupervisorOptions(Strategy.REST_FOR_ONE),
        name="root",
        observer=events,
    )
    async with root:
        mark = len(fleet.journal)
        fleet.crash("g")
        await events.wait(ChildRestarted, "z")
        assert fleet.since(mark) == ["stop z", "start g", "start z"]


# ---------------------------------------------------------------------------------------- shutdown


def cleaning_child(
    log: list[str], gate: Gate, *, ignore_cancel: bool = False
) -> Callable[[Ready], Awaitable[None]]:
    async def run(ready: Ready) -> None:
        ready()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log.append("cleanup begins")
            try:
                await gate.pass_()
            except asyncio.CancelledError:
                log.append("cleanup interrupted")
                gate.done.set()
                raise
            log.append("cleanup done")
            gate.done.set()
            if not ignore_cancel:
                raise

    return run


async def test_shutdown_waits_for_a_childs_cleanup_within_its_timeout() -> None:
    log: list[str] = []
    gate, events = Gate(), Events()
    async with Supervisor(
        [ChildSpec("c", cleaning_child(log, gate), shutdown=math.inf)], observer=events
    ) as sup:
        terminating = asyncio.create_task(sup.terminate_child("c"))
        await bounded(gate.reached.wait())
        await asyncio.sleep(0)
        assert not terminating.done()
        gate.open.set()
        await bounded(terminating)
        assert log == ["cleanup begins", "cleanup done"]
    assert events.exits() == [("c", ExitReason.SHUTDOWN)]


async def test_a_child_outliving_its_shutdown_timeout_is_abandoned_and_reported_killed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    gate, events = Gate(), Events()
    spec = ChildSpec("stubborn", cleaning_child(log, gate, ignore_cancel=True), shutdown=0.01)
    with caplog.at_level(logging.WARNING, logger="kubevisor.supervisor"):
        async with Supervisor([spec], name="root", observer=events) as sup:
            await bounded(sup.terminate_child("stubborn"))
            assert events.exits() == [("stubborn", ExitReason.KILLED)]
            assert log == ["cleanup begins"]  # still stuck: the supervisor stopped waiting
            assert await sup.count_children() == ChildCounts(specs=1, active=0, supervisors=0, workers=1)
    assert "child stubborn still running 0.01 s after cancellation; abandoning it" in caplog.text
    gate.open.set()
    await bounded(gate.done.wait())
    assert log == ["cleanup begins", "cleanup done"]


async def test_brutal_kill_cancels_without_waiting_for_cleanup() -> None:
    log: list[str] = []
    gate, events = Gate(), Events()
    async with Supervisor(
        [ChildSpec("c", cleaning_child(log, gate), shutdown=BRUTAL_KILL)], observer=events
    ) as sup:
        await bounded(sup.terminate_child("c"))
        assert events.exits() == [("c", ExitReason.KILLED)]
        assert "cleanup done" not in log  # terminate_child returned while the child still cleans up
    gate.open.set()
    await bounded(gate.done.wait())  # it cleaned up on its own time, unsupervised
    assert log == ["cleanup begins", "cleanup done"]


async def test_a_second_cancellation_during_shutdown_stops_waiting_for_the_rest() -> None:
    log: list[str] = []
    gate, events, fleet = Gate(), Events(), Fleet()
    specs = [
        fleet.spec("a", shutdown=math.inf),
        ChildSpec("slow", cleaning_child(log, gate), shutdown=math.inf),
    ]
    sup = Supervisor(specs, observer=events)
    task = asyncio.create_task(sup.run())
    await events.wait(ChildStarted, "slow")
    task.cancel()
    await bounded(gate.reached.wait())  # the tree is waiting for "slow" to clean up
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await bounded(task)
    assert events.exits() == [("slow", ExitReason.KILLED), ("a", ExitReason.KILLED)]
    await bounded(gate.done.wait())
    assert log == ["cleanup begins", "cleanup interrupted"]  # the second cancellation reached it


# ---------------------------------------------------------------------------------------- dynamic children


async def test_start_child_appends_after_the_existing_children_and_rejects_a_duplicate_id() -> None:
    fleet = Fleet()
    async with Supervisor([fleet.spec("a")]) as sup:
        await sup.start_child(fleet.spec("b"))
        assert [c.id for c in await sup.which_children()] == ["a", "b"]
        with pytest.raises(DuplicateChild) as running:
            await sup.start_child(fleet.spec("b"))
        assert running.value.running is True
        await sup.terminate_child("b")
        with pytest.raises(DuplicateChild, match="already present") as present:
            await sup.start_child(fleet.spec("b"))
        assert present.value.running is False
    assert fleet.journal == ["start a", "start b", "stop b", "stop a"]


async def test_terminate_child_keeps_the_spec_and_restart_child_starts_it_again() -> None:
    fleet, events = Fleet(), Events()
    async with Supervisor([fleet.spec("a"), fleet.spec("b")], observer=events) as sup:
        await sup.terminate_child("a")
        assert [(c.id, c.running) for c in await sup.which_children()] == [("a", False), ("b", True)]
        await sup.restart_child("a")
        assert [(c.id, c.running) for c in await sup.which_children()] == [("a", True), ("b", True)]
    assert fleet.journal == ["start a", "start b", "stop a", "start a", "stop b", "stop a"]
    assert events.count(ChildStarted, "a") == 2
    assert events.count(ChildRestarted) == 0  # a manual restart is not a supervisor restart


async def test_a_terminated_child_is_not_restarted_even_if_permanent() -> None:
    fleet, events = Fleet(), Events()
    async with Supervisor([fleet.spec("a")], SupervisorOptions(max_restarts=0), observer=events) as sup:
        await sup.terminate_child("a")
        await sup.terminate_child("a")  # terminating a stopped child is a no-op
        assert await sup.count_children() == ChildCounts(specs=1, active=0, supervisors=0, workers=1)
    assert events.count(ChildRestarted) == 0


async def test_terminating_a_child_whose_crash_is_not_yet_handled_does_not_restart_it() -> None:
    fleet, events = Fleet(), Events()
    async with Supervisor([fleet.spec("a")], observer=events) as sup:
        fleet.crash("a")
        # Queued before the crash is reported: the supervisor handles the terminate first, finds
        # the task already dead, reports its real exit, and then ignores the overtaken exit.
        await sup.terminate_child("a")
        assert [c.running for c in await sup.which_children()] == [False]
    assert events.exits() == [("a", ExitReason.ERROR)]
    assert events.count(ChildRestarted) == 0


async def test_terminate_child_forgets_a_temporary_child() -> None:
    fleet = Fleet()
    async with Supervisor([fleet.spec("job", restart=Restart.TEMPORARY)]) as sup:
        await sup.terminate_child("job")
        assert await sup.which_children() == []


async def test_restart_and_delete_refuse_a_running_child_and_unknown_ids_are_not_found() -> None:
    fleet = Fleet()
    async with Supervisor([fleet.spec("a")], name="root") as sup:
        with pytest.raises(ChildRunning, match="child 'a' is running"):
            await sup.restart_child("a")
        with pytest.raises(ChildRunning):
            await sup.delete_child("a")
        for operation in (sup.terminate_child, sup.restart_child, sup.delete_child):
            with pytest.raises(ChildNotFound, match="supervisor 'root': no child 'nope'"):
                await operation("nope")


async def test_delete_child_forgets_a_stopped_child() -> None:
    fleet = Fleet()
    async with Supervisor([fleet.spec("a"), fleet.spec("b")]) as sup:
        await sup.terminate_child("a")
        await sup.delete_child("a")
        assert [c.id for c in await sup.which_children()] == ["b"]
        with pytest.raises(ChildNotFound):
            await sup.restart_child("a")


async def test_restart_child_raises_start_failed_and_keeps_the_spec() -> None:
    attempts: list[int] = []

    async def once(ready: Ready) -> None:
        attempts.append(1)
        if len(attempts) > 1:
            raise OSError("gone")
        ready()
        await asyncio.Event().wait()

    async with Supervisor([ChildSpec("x", once)]) as sup:
        await sup.terminate_child("x")
        with pytest.raises(StartFailed):
            await sup.restart_child("x")
        assert await sup.which_children() == [ChildInfo("x", False, ChildType.WORKER, Restart.PERMANENT)]


async def test_which_and_count_children_describe_every_child_in_start_order() -> None:
    fleet = Fleet()
    inner = Supervisor([fleet.spec("x")], name="inner")
    specs = [
        fleet.spec("a"),
        inner.child_spec(restart=Restart.TRANSIENT),
        fleet.spec("t", restart=Restart.TEMPORARY),
    ]
    async with Supervisor(specs) as sup:
        await sup.start_child(fleet.spec("d", restart=Restart.TRANSIENT))
        await sup.terminate_child("d")
        assert await sup.which_children() == [
            ChildInfo("a", True, ChildType.WORKER, Restart.PERMANENT),
            ChildInfo("inner", True, ChildType.SUPERVISOR, Restart.TRANSIENT),
            ChildInfo("t", True, ChildType.WORKER, Restart.TEMPORARY),
            ChildInfo("d", False, ChildType.WORKER, Restart.TRANSIENT),
        ]
        assert await sup.count_children() == ChildCounts(specs=4, active=3, supervisors=1, workers=3)
        assert await inner.count_children() == ChildCounts(specs=1, active=1, supervisors=0, workers=1)


async def test_a_child_can_start_a_sibling_once_it_reported_ready() -> None:
    fleet, events = Fleet(), Events()
    sup = Supervisor(name="root", observer=events)

    async def spawner(ready: Ready) -> None:
        ready()
        await sup.start_child(fleet.spec("spawned"))
        await asyncio.Event().wait()

    async with sup:
        await sup.start_child(ChildSpec("spawner", spawner))
        await events.wait(ChildStarted, "spawned")
        assert [c.id for c in await sup.which_children()] == ["spawner", "spawned"]


async def test_child_operations_on_a_supervisor_that_is_not_running_raise_not_running() -> None:
    fleet = Fleet()
    sup = Supervisor([fleet.spec("a")], name="idle")
    with pytest.raises(SupervisorNotRunning, match="supervisor 'idle': not running"):
        await sup.which_children()
    async with sup:
        pass
    with pytest.raises(SupervisorNotRunning):
        await sup.start_child(fleet.spec("b"))


async def test_a_supervisor_runs_again_from_its_initial_children_but_never_twice_at_once() -> None:
    fleet = Fleet()
    sup = Supervisor([fleet.spec("a")])
    async with sup:
        await sup.start_child(fleet.spec("dynamic"))
        with pytest.raises(RuntimeError, match="already running"):
            await sup.run()
    async with sup:
        assert [c.id for c in await sup.which_children()] == ["a"]


# ---------------------------------------------------------------------------------------- observability


async def test_an_observer_that_raises_is_logged_and_does_not_take_the_tree_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fleet = Fleet()

    def broken(event: SupervisorEvent) -> None:
        raise KeyError("metrics backend down")

    async with Supervisor([fleet.spec("a")], observer=broken) as sup:
        assert [c.running for c in await sup.which_children()] == [True]
    assert "observer failed" in caplog.text
    assert fleet.journal == ["start a", "stop a"]


async def test_crash_logs_name_the_supervisor_and_the_child(caplog: pytest.LogCaptureFixture) -> None:
    fleet, events = Fleet(), Events()
    with caplog.at_level(logging.INFO, logger="kubevisor.supervisor"):
        async with Supervisor([fleet.spec("a")], name="root", observer=events):
            fleet.crash("a")
            await events.wait(ChildRestarted, "a")
    [crash] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert crash.getMessage() == "supervisor root: child a exited with an error"
    assert (crash.__dict__["supervisor"], crash.__dict__["child_id"]) == ("root", "a")
    assert crash.exc_info is not None and isinstance(crash.exc_info[1], RuntimeError)
    assert "supervisor root: child a restarted (after a exited)" in caplog.text
