"""Watches: the hub's ordering and selector rules, and the HTTP stream semantics of reference §2."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from kubevisor.api import Expired, LabelSelector
from kubevisor.server import APIServer, ServerOptions
from kubevisor.server._storage import Storage
from kubevisor.server._watch import WatchHub

CM = ("", "configmaps")
CMS = "/api/v1/namespaces/default/configmaps"


def cm(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
    }


# ---------------------------------------------------------------- hub


async def test_hub_delivers_events_once_in_resource_version_order() -> None:
    storage = Storage()
    hub = WatchHub(storage)
    watcher = hub.watch(CM, since=storage.resource_version)
    for i in range(5):
        storage.create(CM, cm(f"o{i}"))
    storage.update(CM, cm("o1", x="y"))
    storage.delete(CM, "default", "o2")
    batch = await watcher.next_batch()
    assert [(e.type, e.record.name) for e in batch] == [
        ("ADDED", "o0"),
        ("ADDED", "o1"),
        ("ADDED", "o2"),
        ("ADDED", "o3"),
        ("ADDED", "o4"),
        ("MODIFIED", "o1"),
        ("DELETED", "o2"),
    ]
    assert [e.rv for e in batch] == sorted({e.rv for e in batch})


async def test_an_object_leaving_the_selector_is_deleted_and_entering_is_added() -> None:
    storage = Storage()
    hub = WatchHub(storage)
    watcher = hub.watch(CM, labels=LabelSelector.parse("tier=fe"), since=storage.resource_version)
    storage.create(CM, cm("a", tier="fe"))
    storage.update(CM, cm("a", tier="be"))
    storage.update(CM, cm("a", tier="be", other="x"))
    moved = storage.update(CM, cm("a", tier="fe"))
    batch = await watcher.next_batch()
    assert [e.type for e in batch] == ["ADDED", "DELETED", "ADDED"]
    # The DELETED carries the previous (matching) state at the event's resourceVersion.
    left = json.loads(batch[1].object_bytes())
    assert left["metadata"]["labels"] == {"tier": "fe"}
    assert left["metadata"]["resourceVersion"] == str(batch[1].rv)
    assert batch[2].rv == moved.rv


async def test_watch_without_version_starts_with_the_current_state() -> None:
    storage = Storage()
    storage.create(CM, cm("a"))
    storage.create(CM, cm("b", namespace="other"))
    hub = WatchHub(storage)
    watcher = hub.watch(CM, namespace="default")
    storage.create(CM, cm("c"))
    assert [(e.type, e.record.name) for e in await watcher.next_batch()] == [("ADDED", "a"), ("ADDED", "c")]


async def test_watch_from_a_compacted_version_raises_expired() -> None:
    storage = Storage(history_size=2)
    for i in range(4):
        storage.create(CM, cm(f"o{i}"))
    with pytest.raises(Expired):
        WatchHub(storage).watch(CM, since=1)


async def test_a_watcher_that_falls_too_far_behind_is_closed() -> None:
    storage = Storage()
    hub = WatchHub(storage, buffer_size=3)
    watcher = hub.watch(CM, since=storage.resource_version)
    for i in range(5):
        storage.create(CM, cm(f"o{i}"))
    assert watcher.closed and watcher.overflowed
    assert hub.count() == 0


# ---------------------------------------------------------------- HTTP


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    events = []
    while len(events) < count:
        line = await response.content.readline()
        if not line:
            break
        events.append(json.loads(line))
    return events


async def test_http_watch_streams_changes_after_a_resource_version(
    http: aiohttp.ClientSession,
) -> None:
    async with http.post(CMS, json=cm("a")) as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    async with http.get(f"{CMS}?watch=true&resourceVersion={rv}&timeoutSeconds=5") as stream:
        assert stream.status == 200 and stream.headers["Content-Type"] == "application/json"
        async with http.post(CMS, json=cm("b")):
            pass
        async with http.delete(f"{CMS}/a"):
            pass
        events = await read_events(stream, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]


@pytest.mark.parametrize("server_options", [ServerOptions(history_size=2)])
async def test_watch_from_expired_version_sends_410_error_event(http: aiohttp.ClientSession) -> None:
    for i in range(4):
        async with http.post(CMS, json=cm(f"o{i}")):
            pass
    async with http.get(f"{CMS}?watch=1&resourceVersion=1") as stream:
        assert stream.status == 200
        events = await read_events(stream, 2)
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"
    assert status["message"].startswith("too old resource version: 1 (")


async def test_watch_timeout_seconds_closes_the_stream_cleanly(http: aiohttp.ClientSession) -> None:
    async with http.get(f"{CMS}?watch=1&timeoutSeconds=1&resourceVersion=1") as stream:
        body = await stream.read()
    assert stream.status == 200 and body == b""


async def test_send_initial_events_ends_with_an_annotated_bookmark(http: aiohttp.ClientSession) -> None:
    async with http.post(CMS, json=cm("a")):
        pass
    query = "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    async with http.get(f"{CMS}?{query}&timeoutSeconds=5") as stream:
        events = await read_events(stream, 2)
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "a"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_send_initial_events_without_its_requirements_is_invalid(http: aiohttp.ClientSession) -> None:
    async with http.get(f"{CMS}?watch=1&sendInitialEvents=true") as response:
        body = await response.json()
    assert response.status == 422 and body["reason"] == "Invalid"
    assert "resourceVersionMatch" in body["message"]


@pytest.mark.parametrize("server_options", [ServerOptions(bookmark_interval=0.05)])
async def test_idle_watches_that_allow_bookmarks_receive_them(http: aiohttp.ClientSession) -> None:
    async with http.get(
        f"{CMS}?watch=1&allowWatchBookmarks=true&resourceVersion=1&timeoutSeconds=5"
    ) as stream:
        events = await read_events(stream, 1)
    assert events[0]["type"] == "BOOKMARK"
    assert set(events[0]["object"]) == {"kind", "apiVersion", "metadata"}
    assert events[0]["object"]["kind"] == "ConfigMap"


async def test_field_selector_watch_of_one_name_sees_its_deletion(http: aiohttp.ClientSession) -> None:
    async with http.post(CMS, json=cm("a")) as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    async with http.post(CMS, json=cm("b")):
        pass
    url = f"{CMS}?watch=1&fieldSelector=metadata.name%3Da&resourceVersion={rv}&timeoutSeconds=5"
    async with http.get(url) as stream:
        async with http.delete(f"{CMS}/b"):
            pass
        async with http.delete(f"{CMS}/a"):
            pass
        events = await read_events(stream, 1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("DELETED", "a")]


async def test_table_watch_sends_column_definitions_only_first(http: aiohttp.ClientSession) -> None:
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    async with http.post(CMS, json=cm("a")):
        pass
    async with http.get(f"{CMS}?watch=1&timeoutSeconds=5", headers={"Accept": accept}) as stream:
        async with http.post(CMS, json=cm("b")):
            pass
        events = await read_events(stream, 2)
    assert [e["object"]["kind"] for e in events] == ["Table", "Table"]
    assert events[0]["object"]["columnDefinitions"][0]["name"] == "Name"
    assert events[1]["object"]["columnDefinitions"] is None
    assert events[1]["object"]["rows"][0]["cells"][0] == "b"


async def test_two_hundred_concurrent_watchers_each_see_every_event_once_in_order(
    api_server: APIServer, http: aiohttp.ClientSession
) -> None:
    watchers = 200
    events_per_watcher = 60
    start_rv = api_server.service.storage.resource_version
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(base_url=api_server.url, connector=connector) as watch_http:
        streams = [
            await watch_http.get(f"{CMS}?watch=1&resourceVersion={start_rv}&timeoutSeconds=60")
            for _ in range(watchers)
        ]
        try:
            assert api_server.hub.count() == watchers
            for i in range(events_per_watcher // 2):
                async with http.post(CMS, json=cm(f"o{i}")):
                    pass
                async with http.patch(
                    f"{CMS}/o{i}",
                    data=json.dumps({"data": {"n": str(i)}}),
                    headers={"Content-Type": "application/merge-patch+json"},
                ):
                    pass
            seen = await asyncio.gather(*(read_events(s, events_per_watcher) for s in streams))
        finally:
            for stream in streams:
                stream.close()
    expected = [(t, f"o{i}") for i in range(events_per_watcher // 2) for t in ("ADDED", "MODIFIED")]
    for events in seen:
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == expected
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert rvs == sorted(set(rvs))
