"""Events with client-go's correlation, against the embedded server: repeats aggregated into one
Event with a count, a per-object spam filter, recreation of an aggregated Event that expired."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubevisor.client import Client
from kubevisor.runtime import EventRecorder, EventRecorderOptions, ManualClock
from tests.runtime.conftest import EVENT

INVOLVED = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "w", "namespace": "default", "uid": "uid-1", "resourceVersion": "7"},
}


class Wall:
    def __init__(self) -> None:
        self.now = datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def recorder(client: Client) -> AsyncIterator[tuple[EventRecorder, ManualClock, Wall]]:
    clock, wall = ManualClock(), Wall()
    rec = EventRecorder(
        client,
        "widget-controller",
        EventRecorderOptions(instance="pod-1", burst=3),
        clock=clock,
        wall_clock=wall,
    )
    task = asyncio.create_task(rec.run())
    try:
        yield rec, clock, wall
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def events(client: Client) -> list[dict[str, Any]]:
    return (await client.list_all(EVENT, namespace="default")).items


async def test_identical_events_are_aggregated_into_one_event_with_a_count(
    client: Client, recorder: tuple[EventRecorder, ManualClock, Wall]
) -> None:
    rec, _, wall = recorder
    rec.record(INVOLVED, "Warning", "Failed", "cannot reach the database")
    await rec.flush()
    wall.now += timedelta(minutes=1)
    rec.record(INVOLVED, "Warning", "Failed", "cannot reach the database")
    rec.record(INVOLVED, "Warning", "Failed", "cannot reach the database")
    await rec.flush()
    [event] = await events(client)
    assert event["count"] == 3
    assert (
        event["firstTimestamp"] == "2024-03-01T09:00:00Z" and event["lastTimestamp"] == "2024-03-01T09:01:00Z"
    )
    assert event["involvedObject"] == {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "name": "w",
        "namespace": "default",
        "uid": "uid-1",
        "resourceVersion": "7",
    }
    assert event["source"] == {"component": "widget-controller", "host": "pod-1"}
    assert event["reportingComponent"] == "widget-controller" and event["reportingInstance"] == "pod-1"
    assert event["metadata"]["name"].startswith("w.")


async def test_events_with_different_messages_are_separate_events(
    client: Client, recorder: tuple[EventRecorder, ManualClock, Wall]
) -> None:
    rec, _, _ = recorder
    rec.record(INVOLVED, "Normal", "Scaled", "to 2")
    rec.record(INVOLVED, "Normal", "Scaled", "to 3")
    await rec.flush()
    assert sorted(e["message"] for e in await events(client)) == ["to 2", "to 3"]


async def test_the_spam_filter_drops_events_beyond_the_burst_until_tokens_refill(
    client: Client, recorder: tuple[EventRecorder, ManualClock, Wall]
) -> None:
    rec, clock, _ = recorder
    for i in range(5):
        rec.record(INVOLVED, "Normal", "Tick", f"tick {i}")
    await rec.flush()
    assert len(await events(client)) == 3 and rec.dropped == 2
    clock.advance(300)  # one token per five minutes
    rec.record(INVOLVED, "Normal", "Tick", "tick 5")
    rec.record(INVOLVED, "Normal", "Tick", "tick 6")
    await rec.flush()
    assert sorted(e["message"] for e in await events(client)) == ["tick 0", "tick 1", "tick 2", "tick 5"]


async def test_an_aggregated_event_that_expired_is_recreated_with_its_count(
    client: Client, recorder: tuple[EventRecorder, ManualClock, Wall]
) -> None:
    rec, _, _ = recorder
    rec.record(INVOLVED, "Normal", "Synced", "ok")
    await rec.flush()
    [first] = await events(client)
    await client.delete(EVENT, first["metadata"]["name"], namespace="default")
    rec.record(INVOLVED, "Normal", "Synced", "ok")
    await rec.flush()
    [second] = await events(client)
    assert second["count"] == 2 and second["metadata"]["name"] != first["metadata"]["name"]


async def test_events_about_cluster_scoped_objects_go_to_the_default_namespace(
    client: Client, recorder: tuple[EventRecorder, ManualClock, Wall]
) -> None:
    rec, _, _ = recorder
    rec.record(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "uid": "n1"}},
        "Normal",
        "Seen",
        "hi",
    )
    await rec.flush()
    [event] = await events(client)
    assert event["involvedObject"]["kind"] == "Namespace" and "namespace" not in event["involvedObject"]
