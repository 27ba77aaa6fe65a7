"""Watch decoding and the cyclic garbage collector: a bulk of decoded events goes straight to the
oldest generation, yet cyclic garbage that the consumer creates while watching is still freed
within a bounded number of events, and the application's own collector settings are left alone."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kubevisor.api import ResourceInfo
from kubevisor.client import Client, ClientConfig, ClientOptions
from kubevisor.client._decode import pause, resume

CONFIGMAPS = ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True)
EVENTS = 20_000
BOUND = 2_000
"""Cycles allowed to be awaiting collection at any event.  Measured: at most 64 (one decode batch of
16 KiB is about 50 of these events), and 699 if batches were not promoted (the collector's own
young collections run every 700 allocations).  Garbage that escaped young collections would grow
with the number of events instead: a batch promoted without the young collection first left all
20,000 cycles uncollected."""


class Cycle:
    """A piece of cyclic garbage that counts its own collection."""

    created = 0
    freed = 0

    def __init__(self) -> None:
        self.me = self
        Cycle.created += 1

    def __del__(self) -> None:
        Cycle.freed += 1


def outstanding() -> int:
    return Cycle.created - Cycle.freed


def reset_cycles() -> None:
    """Count from zero, with no cycle of an earlier test left to be freed meanwhile."""
    gc.collect()
    Cycle.created = Cycle.freed = 0


def event(i: int) -> bytes:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"cm-{i:05d}",
            "namespace": "default",
            "resourceVersion": str(1000 + i),
            "labels": {"app": "demo", "tier": "cache"},
            "managedFields": [{"manager": "test", "fieldsV1": {"f:data": {"f:key": {}}}}],
        },
        "data": {"key": "value" * 10},
    }
    return orjson.dumps({"type": "ADDED", "object": obj}) + b"\n"


@pytest.fixture(scope="module")
def stream_body() -> bytes:
    return b"".join(event(i) for i in range(EVENTS))


@pytest.fixture
async def server(stream_body: bytes) -> AsyncIterator[str]:
    """An API server that answers a ConfigMap watch with the whole stream as fast as it can."""

    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        view = memoryview(stream_body)
        try:
            for start in range(0, len(view), 65536):
                await response.write(view[start : start + 65536])
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client closed the watch after the events it wanted
        return response

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default/configmaps", watch)
    test_server = TestServer(app, host="127.0.0.1", port=0)
    await test_server.start_server()
    try:
        yield f"http://127.0.0.1:{test_server.port}"
    finally:
        await test_server.close()


@pytest.fixture
def collector() -> Iterator[None]:
    """Each test starts with the collector as CPython sets it up and leaves it that way."""
    assert gc.isenabled() and gc.get_freeze_count() == 0
    yield
    gc.enable()
    gc.unfreeze()


async def watch_creating_cycles(url: str, keep: bool) -> tuple[int, list[Any]]:
    """Consume the stream, creating one cycle per event; the most cycles awaiting collection at any
    event, and the objects kept."""
    kept: list[Any] = []
    worst = 0
    reset_cycles()
    async with Client(ClientConfig(server=url), ClientOptions(qps=None)) as client:
        async with client.watch(CONFIGMAPS, namespace="default", resource_version="1") as watch:
            async for change in watch:
                Cycle()
                if keep:
                    kept.append(change.object)
                worst = max(worst, outstanding())
                if len(kept) == EVENTS or Cycle.created == EVENTS:
                    break
    return worst, kept


@pytest.mark.usefixtures("collector")
async def test_cyclic_garbage_of_a_consumer_dropping_objects_is_freed_while_watching(server: str) -> None:
    worst, _ = await watch_creating_cycles(server, keep=False)
    assert Cycle.created == EVENTS
    assert worst <= BOUND


@pytest.mark.usefixtures("collector")
async def test_cyclic_garbage_of_a_consumer_keeping_objects_is_freed_while_watching(server: str) -> None:
    worst, kept = await watch_creating_cycles(server, keep=True)
    assert [obj["metadata"]["name"] for obj in kept[:2]] == ["cm-00000", "cm-00001"]
    assert len(kept) == EVENTS
    assert worst <= BOUND


@pytest.mark.usefixtures("collector")
async def test_watching_leaves_the_collector_enabled_and_nothing_frozen(server: str) -> None:
    await watch_creating_cycles(server, keep=True)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("collector")
async def test_a_collector_disabled_by_the_application_stays_disabled(server: str) -> None:
    gc.disable()
    await watch_creating_cycles(server, keep=True)
    assert not gc.isenabled()


@pytest.mark.usefixtures("collector")
async def test_objects_frozen_by_the_application_stay_frozen(server: str) -> None:
    settings: dict[str, Any] = {"loaded": [1, 2, 3]}
    gc.freeze()
    await watch_creating_cycles(server, keep=True)
    assert gc.get_freeze_count() > 0
    assert all(obj is not settings for obj in gc.get_objects())  # still in the permanent generation


def young_ids() -> set[int]:
    return {id(obj) for generation in (0, 1) for obj in gc.get_objects(generation)}


@pytest.mark.usefixtures("collector")
def test_a_bulk_decode_frees_young_cyclic_garbage_first_and_promotes_only_the_decoded_trees() -> None:
    reset_cycles()
    for _ in range(100):
        Cycle()
    survivor = [Cycle()]  # young and alive: examined and promoted as CPython would
    survivor[0].me = survivor
    state = pause(bulk=True)
    try:
        assert outstanding() == 1  # the garbage was freed before anything was promoted
        decoded = [orjson.loads(event(i)) for i in range(300)]
    finally:
        resume(state)
    assert gc.isenabled()
    young = young_ids()
    assert id(decoded) not in young and id(decoded[0]["object"]["metadata"]) not in young
    assert id(survivor) not in young


@pytest.mark.usefixtures("collector")
def test_a_decode_that_is_not_bulk_leaves_its_objects_young() -> None:
    state = pause()
    try:
        decoded = [orjson.loads(event(i)) for i in range(10)]
    finally:
        resume(state)
    assert gc.isenabled()
    assert id(decoded) in young_ids()
