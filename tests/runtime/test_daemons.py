"""Per-object daemons and timers under supervision: started per object, restarted per their restart
type, cancelled when their object is deleted; timers tick in virtual time with the current object."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from kubevisor.client import Client
from kubevisor.runtime import Action, Context, Controller, Daemon, DaemonContext, Manager, Timer
from kubevisor.supervisor import Restart
from tests.runtime.conftest import WIDGET, SimClock, Widget, eventually, manager_options, widget


async def nothing(obj: Widget, ctx: Context[Widget]) -> Action:
    return Action.done()


async def test_a_daemon_runs_per_object_and_is_cancelled_when_its_object_is_deleted(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    running: set[str] = set()
    cancelled: list[str] = []

    async def watch_over(obj: Widget, ctx: DaemonContext) -> None:
        running.add(obj.name or "")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(obj.name or "")
            raise
        finally:
            running.discard(obj.name or "")

    manager = make_manager()
    manager.add(Controller(Widget, nothing, daemons=[Daemon(watch_over)]))
    async with manager:
        await client.create(widget("one"))
        await client.create(widget("two"))
        await eventually(lambda: running == {"one", "two"})
        await client.delete(WIDGET, "one")
        await eventually(lambda: cancelled == ["one"])
        assert running == {"two"}
    assert sorted(cancelled) == ["one", "two"]  # the manager's stop cancels the rest


async def test_a_daemon_that_crashes_is_restarted_unless_it_is_temporary(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    starts: Counter[str] = Counter()

    def crashing_once(label: str) -> Callable[[Widget, DaemonContext], Any]:
        async def daemon(obj: Widget, ctx: DaemonContext) -> None:
            starts[label] += 1
            if starts[label] == 1:
                raise RuntimeError("lost the connection")
            await asyncio.Event().wait()

        return daemon

    manager = make_manager()
    manager.add(
        Controller(
            Widget,
            nothing,
            daemons=[
                Daemon(crashing_once("transient"), name="transient"),
                Daemon(crashing_once("temporary"), name="temporary", restart=Restart.TEMPORARY),
            ],
        )
    )
    async with manager:
        await client.create(widget("w"))
        await eventually(lambda: starts["transient"] == 2)
        await eventually(lambda: starts["temporary"] == 1)
    assert starts == {"transient": 2, "temporary": 1}


async def test_a_timer_ticks_every_interval_with_the_objects_current_state(client: Client) -> None:
    clock = SimClock()
    ticks: list[tuple[float, int]] = []

    async def check(obj: Widget, ctx: DaemonContext) -> None:
        ticks.append((clock.now(), obj.spec.size))
        if len(ticks) == 2:
            raise RuntimeError("a failing tick is logged; the timer carries on")

    manager = Manager(client, manager_options(), clock=clock, wall_clock=clock.wall)
    manager.add(Controller(Widget, nothing, daemons=[Timer(check, interval=10)]))
    async with manager:
        await client.create(widget("w", size=1))
        await clock.run_until(lambda: len(ticks) == 2, participants=lambda: 1, limit=25)
        await client.patch(WIDGET, "w", {"spec": {"size": 7}})
        await eventually(lambda: manager.informers.synced and _cached_size(manager) == 7)
        await clock.run_until(lambda: len(ticks) == 4, participants=lambda: 1, limit=45)
    assert ticks == [(10.0, 1), (20.0, 1), (30.0, 7), (40.0, 7)]


def _cached_size(manager: Manager) -> int | None:
    controller = manager.controllers[0]
    assert controller.primary is not None
    for obj in controller.primary.store:
        return int(obj["spec"]["size"])
    return None
