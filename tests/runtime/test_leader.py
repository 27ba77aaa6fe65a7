"""Leader election on a Lease, against the embedded server, in virtual time: client-go's acquire,
renew, expiry, transition counting, optimistic concurrency and release; then two managers where the
leader is killed and the standby takes over once the lease expires."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from kubevisor.client import Client
from kubevisor.runtime import (
    Action,
    Context,
    Controller,
    LeaderElectionOptions,
    LeaderElector,
    Manager,
)
from kubevisor.runtime._leader import LEASE_RESOURCE
from tests.runtime.conftest import SimClock, Widget, eventually, manager_options, widget

MICROTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def elector(client: Client, clock: SimClock, identity: str, **options: Any) -> LeaderElector:
    return LeaderElector(
        client,
        LeaderElectionOptions("operator", identity=identity, **options),
        clock=clock,
        wall_clock=clock.wall,
    )


async def lease(client: Client) -> dict[str, Any]:
    spec: dict[str, Any] = (await client.get(LEASE_RESOURCE, "operator", namespace="default"))["spec"]
    return spec


def test_options_enforce_client_go_timing_invariants() -> None:
    with pytest.raises(ValueError, match="renew_deadline"):
        LeaderElectionOptions("x", lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError, match="jitter"):
        LeaderElectionOptions("x", renew_deadline=2, retry_period=2)
    defaults = LeaderElectionOptions("x")
    assert (defaults.lease_duration, defaults.renew_deadline, defaults.retry_period) == (15.0, 10.0, 2.0)
    assert defaults.identity != LeaderElectionOptions("x").identity  # unique per process


async def test_the_first_candidate_creates_the_lease_with_microtime_stamps(client: Client) -> None:
    clock = SimClock(100.0)
    first = elector(client, clock, "a")
    assert await first.try_acquire_or_renew() and first.is_leader
    spec = await lease(client)
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0 and spec["acquireTime"] == spec["renewTime"]
    assert MICROTIME.match(spec["renewTime"]) and clock.virtual(spec["renewTime"]) == 100.0


async def test_a_standby_takes_over_only_once_the_record_was_unchanged_for_the_lease_duration(
    client: Client,
) -> None:
    clock = SimClock()
    leader, standby = elector(client, clock, "a"), elector(client, clock, "b")
    assert await leader.try_acquire_or_renew()
    assert not await standby.try_acquire_or_renew()  # observes the record at t=0
    clock.time = 10.0
    assert await leader.try_acquire_or_renew()  # a renewal: the record changes
    spec = await lease(client)
    assert spec["acquireTime"] != spec["renewTime"] and spec["leaseTransitions"] == 0
    clock.time = 16.0
    assert not await standby.try_acquire_or_renew()  # sees the change now, at t=16
    clock.time = 30.9
    assert not await standby.try_acquire_or_renew()  # 14.9 s since it saw a change
    clock.time = 31.0
    assert await standby.try_acquire_or_renew() and standby.is_leader
    spec = await lease(client)
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    assert clock.virtual(spec["acquireTime"]) == 31.0
    assert not await leader.try_acquire_or_renew() and not leader.is_leader


async def test_racing_candidates_are_settled_by_optimistic_concurrency(client: Client) -> None:
    clock = SimClock()
    dead = elector(client, clock, "dead")
    assert await dead.try_acquire_or_renew()
    racers = [elector(client, clock, f"r{i}") for i in range(4)]
    for racer in racers:
        assert not await racer.try_acquire_or_renew()
    clock.time = 20.0
    results = await asyncio.gather(*(racer.try_acquire_or_renew() for racer in racers))
    assert sum(results) == 1
    assert (await lease(client))["leaseTransitions"] == 1


async def test_release_clears_the_holder_so_a_standby_takes_over_at_its_next_attempt(client: Client) -> None:
    clock = SimClock()
    leader, standby = elector(client, clock, "a"), elector(client, clock, "b")
    assert await leader.try_acquire_or_renew()
    assert not await standby.try_acquire_or_renew()
    assert await leader.release() and not leader.is_leader
    spec = await lease(client)
    assert spec["holderIdentity"] == "" and spec["leaseDurationSeconds"] == 1
    assert await standby.try_acquire_or_renew()
    assert (await lease(client))["leaseTransitions"] == 1
    assert not await leader.release()  # not the leader any more: nothing to release


async def test_a_leader_that_cannot_renew_within_the_deadline_stops_its_work(client: Client) -> None:
    clock = SimClock()
    leader = elector(client, clock, "a")
    usurper = elector(client, clock, "b")
    stopped = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    running = asyncio.create_task(leader.run(work))
    await clock.run_until(lambda: leader.is_leader, participants=lambda: 1, limit=1)
    # Someone takes the Lease (as after a long pause of this process): every renewal now fails.
    assert not await usurper.try_acquire_or_renew()
    clock.time += 15
    assert await usurper.try_acquire_or_renew()
    await clock.run_until(lambda: running.done(), participants=lambda: 1, limit=clock.time + 15)
    assert stopped.is_set() and not leader.is_leader
    with pytest.raises(Exception, match="could not renew"):
        running.result()


async def test_the_standby_manager_takes_over_within_the_lease_duration_when_the_leader_is_killed(
    client: Client,
) -> None:
    clock = SimClock()
    reconciled_by: dict[str, list[str]] = {"a": [], "b": []}

    def manager(identity: str, *, release: bool) -> Manager:
        async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
            reconciled_by[identity].append(obj.name or "")
            return Action.done()

        election = LeaderElectionOptions("operator", identity=identity, release_on_cancel=release)
        m = Manager(client, manager_options(leader_election=election), clock=clock, wall_clock=clock.wall)
        m.add(Controller(Widget, reconcile))
        return m

    # The first is killed (a crashed process cannot release its Lease); the second stops cleanly.
    first, second = manager("a", release=False), manager("b", release=True)
    first_task = asyncio.create_task(first.run())
    await clock.run_until(lambda: first.is_leader, participants=lambda: 1, limit=1)
    second_task = asyncio.create_task(second.run())
    await clock.run_until(lambda: second.ready, participants=lambda: 2, limit=1)

    await client.create(widget("before"))
    await eventually(lambda: reconciled_by["a"] == ["before"])
    await clock.run_until(lambda: clock.time >= 60, participants=lambda: 2, limit=61)
    assert not second.is_leader and reconciled_by["b"] == []  # one active replica, renewals keep it so

    first_task.cancel()  # killed: no release, the Lease stays held until it expires
    await asyncio.gather(first_task, return_exceptions=True)
    last_renewal = clock.virtual((await lease(client))["renewTime"])
    await clock.run_until(lambda: second.is_leader, participants=lambda: 1, limit=last_renewal + 30)
    taken_over = clock.time
    options = LeaderElectionOptions("x")
    poll = options.retry_period * (1 + options.jitter)
    # Not before the lease expired (no two leaders), and within the lease duration plus the
    # standby's polling granularity (when it saw the last renewal, when it checked again).
    assert options.lease_duration <= taken_over - last_renewal <= options.lease_duration + 2 * poll
    spec = await lease(client)
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1

    await eventually(lambda: "before" in reconciled_by["b"])  # controllers resync on taking over
    await client.create(widget("after"))
    await eventually(lambda: "after" in reconciled_by["b"])
    assert "after" not in reconciled_by["a"]
    second.stop()
    await second_task
    assert (await lease(client))["holderIdentity"] == ""  # released on a clean stop


async def test_a_stopped_leader_releases_and_the_standby_takes_over_at_its_next_attempt(
    client: Client,
) -> None:
    clock = SimClock()

    def manager(identity: str) -> Manager:
        election = LeaderElectionOptions("operator", identity=identity)
        return Manager(client, manager_options(leader_election=election), clock=clock, wall_clock=clock.wall)

    first, second = manager("a"), manager("b")
    first_task = asyncio.create_task(first.run())
    await clock.run_until(lambda: first.is_leader, participants=lambda: 1, limit=1)
    second_task = asyncio.create_task(second.run())
    await clock.run_until(lambda: clock.time >= 5, participants=lambda: 2, limit=6)
    first.stop()
    await first_task
    released_at = clock.time
    await clock.run_until(lambda: second.is_leader, participants=lambda: 1, limit=released_at + 10)
    options = LeaderElectionOptions("x")
    assert clock.time - released_at <= options.retry_period * (1 + options.jitter)
    assert second.metrics.leader.labels("default/operator")._value.get() == 1
    assert first.metrics.leader.labels("default/operator")._value.get() == 0
    second.stop()
    await second_task
