"""A property of the whole pipeline (server, watch, informer, queue, workers) under random event
storms: no object is ever reconciled twice at once, and the last state of every object is the last
state reconciled."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubevisor.api import AlreadyExists, Conflict, NotFound
from kubevisor.client import Client
from kubevisor.runtime import Action, Context, Controller, ControllerOptions, Manager, ObjectRef
from kubevisor.server import APIServer
from tests.runtime.conftest import (
    WIDGET,
    Widget,
    client_for,
    eventually,
    manager_options,
    start_server,
    widget,
)

NAMES = ("a", "b", "c", "d")

operation = st.tuples(
    st.sampled_from(("create", "update", "delete")), st.sampled_from(NAMES), st.integers(0, 9)
)
storm = st.lists(st.lists(operation, min_size=1, max_size=6), min_size=1, max_size=8)
"""Bursts of operations; the operations of one burst are sent concurrently."""


@pytest.fixture(scope="module")
def namespaces() -> itertools.count[int]:
    return itertools.count()


@pytest.fixture
async def shared() -> AsyncIterator[tuple[APIServer, Client]]:
    server = await start_server(history_size=10_000)
    try:
        async with client_for(server.url, server.kubeconfig) as client:
            yield server, client
    finally:
        await server.stop()


async def perform(client: Client, namespace: str, op: tuple[str, str, int]) -> None:
    kind, name, size = op
    try:
        if kind == "create":
            await client.create(widget(name, size, namespace=namespace))
        elif kind == "update":
            await client.patch(WIDGET, name, {"spec": {"size": size}}, namespace=namespace)
        else:
            await client.delete(WIDGET, name, namespace=namespace)
    except (AlreadyExists, NotFound, Conflict):
        pass  # a storm is allowed to collide with itself


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(bursts=storm, yields=st.lists(st.integers(0, 5), min_size=1, max_size=10), workers=st.integers(1, 4))
async def test_under_event_storms_no_key_is_reconciled_concurrently_and_every_last_state_is_reconciled(
    shared: tuple[APIServer, Client],
    namespaces: itertools.count[int],
    bursts: list[list[tuple[str, str, int]]],
    yields: list[int],
    workers: int,
) -> None:
    _, client = shared
    namespace = f"storm-{next(namespaces)}"
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    active: set[ObjectRef] = set()
    overlaps: list[ObjectRef] = []
    last_seen: dict[str, str] = {}
    pauses = itertools.cycle(yields)

    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        ref = ctx.ref
        if ref in active:
            overlaps.append(ref)
        active.add(ref)
        try:
            for _ in range(next(pauses)):  # interleave with other workers and with incoming events
                await asyncio.sleep(0)
            last_seen[ref.name] = obj.metadata.resource_version or ""
        finally:
            active.discard(ref)
        return Action.done()

    manager = Manager(client, manager_options(http_host=None))
    manager.add(
        Controller(Widget, reconcile, options=ControllerOptions(namespace=namespace, workers=workers))
    )
    async with manager:
        for burst in bursts:
            await asyncio.gather(*(perform(client, namespace, op) for op in burst))
        final: dict[str, Any] = {
            o["metadata"]["name"]: o["metadata"]["resourceVersion"]
            for o in (await client.list_all(WIDGET, namespace=namespace)).items
        }
        await eventually(lambda: all(last_seen.get(name) == rv for name, rv in final.items()))
    assert overlaps == []
