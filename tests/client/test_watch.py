"""Watches: typed events, resumption after clean closes and broken or silent streams, bookmarks,
and Expired as the signal to relist."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
import pytest

from kubevisor.api import ApiError, Expired, GroupVersionKind, ServiceUnavailable
from kubevisor.client import (
    Client,
    ClientConfig,
    ClientOptions,
    RetryOptions,
    Watch,
    WatchEvent,
    WatchOptions,
)
from tests.client.conftest import FakeClock
from tests.client.fakeapi import CONFIGMAP, FakeAPI, error_response, status
from tests.client.test_operations import Widget, deployment

CM = GroupVersionKind("", "v1", "ConfigMap")


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "data": data}


async def take(watch: Watch[Any], count: int) -> list[WatchEvent[Any]]:
    events: list[WatchEvent[Any]] = []
    async with asyncio.timeout(10):  # a hang guard, not a timing assertion
        while len(events) < count:
            events.append(await anext(watch))
    return events


def watch_requests(api: FakeAPI) -> list[Any]:
    return [r for r in api.requests if r.query.get("watch") == "true"]


async def test_watch_without_a_version_starts_with_added_for_existing_objects(
    api: FakeAPI, client: Client
) -> None:
    api.put(CONFIGMAP, cm("existing"))
    async with client.watch(CM) as watch:
        [event] = await take(watch, 1)
    assert event.type == "ADDED" and event.object["metadata"]["name"] == "existing"
    assert event.resource_version == event.object["metadata"]["resourceVersion"]


async def test_watch_requests_bookmarks_and_a_randomised_server_timeout(api: FakeAPI, client: Client) -> None:
    start = str(api.rv)
    api.put(CONFIGMAP, {"metadata": {"name": "a", "namespace": "default", "labels": {"app": "x"}}})
    async with client.watch(
        CM, resource_version=start, label_selector="app=x", field_selector="metadata.name=a"
    ) as watch:
        await take(watch, 1)
    query = watch_requests(api)[0].query
    assert query["allowWatchBookmarks"] == "true" and query["resourceVersion"] == start
    assert query["labelSelector"] == "app=x" and query["fieldSelector"] == "metadata.name=a"
    assert 300 <= int(query["timeoutSeconds"]) < 600


async def test_watch_delivers_added_modified_and_deleted_in_order(api: FakeAPI, client: Client) -> None:
    start = str(api.rv)
    api.put(CONFIGMAP, cm("a", v="1"))
    api.put(CONFIGMAP, cm("a", v="2"))
    api.remove(CONFIGMAP, "default", "a")
    async with client.watch(CM, resource_version=start) as watch:
        events = await take(watch, 3)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1].object["data"] == {"v": "2"}
    assert watch.resource_version == events[-1].resource_version


async def test_watch_resumes_from_the_last_version_after_a_clean_close(api: FakeAPI, client: Client) -> None:
    start = str(api.rv)
    api.put(CONFIGMAP, cm("first"))
    async with client.watch(CM, resource_version=start) as watch:
        [first] = await take(watch, 1)
        api.close_watches()  # the server's timeoutSeconds elapsed
        api.put(CONFIGMAP, cm("second"))
        [second] = await take(watch, 1)
    assert second.object["metadata"]["name"] == "second"
    requests = watch_requests(api)
    assert len(requests) == 2
    assert requests[1].query["resourceVersion"] == first.resource_version
    assert watch.reconnects == 1


async def test_watch_resumes_after_the_connection_breaks_without_duplicates(
    api: FakeAPI, client: Client
) -> None:
    start = str(api.rv)
    api.put(CONFIGMAP, cm("one"))
    async with client.watch(CM, resource_version=start) as watch:
        await take(watch, 1)
        await api.wait_for_watchers(1)
        api.break_watches()
        api.put(CONFIGMAP, cm("two"))
        api.put(CONFIGMAP, cm("three"))
        events = await take(watch, 2)
    assert [e.object["metadata"]["name"] for e in events] == ["two", "three"]


async def test_bookmarks_advance_the_resume_version_without_being_yielded(
    api: FakeAPI, client: Client
) -> None:
    start = str(api.rv)
    api.put(CONFIGMAP, cm("seen"))
    async with client.watch(CM, resource_version=start) as watch:
        await take(watch, 1)
        await api.wait_for_watchers(1)
        api.rv += 50  # changes to other kinds advance the global version
        api.bookmark()
        api.close_watches()
        api.put(CONFIGMAP, cm("after"))
        [event] = await take(watch, 1)
    assert event.object["metadata"]["name"] == "after"
    assert watch_requests(api)[1].query["resourceVersion"] == str(int(event.resource_version) - 1)


async def test_in_stream_410_raises_expired_so_the_caller_relists(api: FakeAPI, client: Client) -> None:
    api.compacted_below = 500
    watch = client.watch(CM, resource_version="120")
    with pytest.raises(Expired, match="too old resource version: 120"):
        await take(watch, 1)
    with pytest.raises(StopAsyncIteration):
        await anext(watch)  # closed after signalling


async def test_http_410_on_open_raises_expired(api: FakeAPI, client: Client) -> None:
    api.inject(
        lambda r: r.query.get("watch") == "true",
        lambda: error_response(410, "Gone", "too old resource version"),
    )
    with pytest.raises(Expired):
        async with client.watch(CM, resource_version="1") as watch:
            await take(watch, 1)


async def test_other_in_stream_errors_raise_their_typed_error(api: FakeAPI, client: Client) -> None:
    from aiohttp import web

    def respond() -> web.Response:
        line = (
            b'{"type":"ERROR","object":'
            + __import__("orjson").dumps(status(500, "InternalError", "etcd exploded"))
            + b"}\n"
        )
        return web.Response(body=line, content_type="application/json")

    from kubevisor.api import ServerError

    api.inject(lambda r: r.query.get("watch") == "true", respond)
    with pytest.raises(ServerError, match="etcd exploded"):
        async with client.watch(CM, resource_version="1") as watch:
            await take(watch, 1)


async def test_a_silent_stream_is_recycled_after_the_idle_timeout(api: FakeAPI, clock: FakeClock) -> None:
    start = str(api.rv)
    api.put(CONFIGMAP, cm("late"))
    api.silent_watches = 1  # the first stream is a half-open connection: no bytes, ever
    options = ClientOptions(watch=WatchOptions(idle_timeout=0.2))
    async with Client(ClientConfig(server=api.url), options, clock=clock, rng=random.Random(5)) as client:
        async with client.watch(CM, resource_version=start) as watch:
            [event] = await take(watch, 1)
            assert watch.reconnects == 1
    assert event.object["metadata"]["name"] == "late"
    assert [r.query["resourceVersion"] for r in watch_requests(api)] == [start, start]


async def test_a_429_on_watch_open_is_retried_after_retry_after(
    api: FakeAPI, client: Client, clock: FakeClock
) -> None:
    start = str(api.rv)
    api.put(CONFIGMAP, cm("a"))
    api.inject(
        lambda r: r.query.get("watch") == "true",
        lambda: error_response(429, "TooManyRequests", "slow down", headers={"Retry-After": "2"}),
    )
    async with client.watch(CM, resource_version=start) as watch:
        await take(watch, 1)
    assert 2.0 in clock.sleeps


async def test_persistent_failures_to_reopen_end_the_watch_with_the_error(
    api: FakeAPI, clock: FakeClock
) -> None:
    api.inject(
        lambda r: r.query.get("watch") == "true",
        lambda: error_response(503, "ServiceUnavailable", "down"),
        times=10,
    )
    options = ClientOptions(retry=RetryOptions(max_retries=0), watch=WatchOptions(max_reconnect_failures=2))
    async with Client(ClientConfig(server=api.url), options, clock=clock) as client:
        watch = client.watch(CM, resource_version="1")
        with pytest.raises(ServiceUnavailable):
            await take(watch, 1)
    assert len(watch_requests(api)) == 3


async def test_a_large_event_beyond_stream_line_limits_is_decoded(api: FakeAPI, client: Client) -> None:
    start = str(api.rv)
    big = "x" * 1_500_000  # an object near etcd's size limit
    api.put(CONFIGMAP, cm("big", blob=big))
    async with client.watch(CM, resource_version=start) as watch:
        [event] = await take(watch, 1)
    assert len(event.object["data"]["blob"]) == 1_500_000


async def test_typed_watch_yields_typed_objects(api: FakeAPI, client: Client) -> None:
    from tests.client.fakeapi import DEPLOYMENT

    start = str(api.rv)
    api.put(DEPLOYMENT, deployment("web", replicas=3))
    async with client.watch(Widget, resource_version=start) as watch:
        [event] = await take(watch, 1)
    assert isinstance(event.object, Widget) and event.object.replicas == 3


async def test_closing_a_watch_releases_the_stream(api: FakeAPI, client: Client) -> None:
    start = str(api.rv)
    api.put(CONFIGMAP, cm("a"))
    async with client.watch(CM, resource_version=start) as watch:
        await take(watch, 1)
        await api.wait_for_watchers(1)
    await api.wait_for_watchers(0)
    with pytest.raises(StopAsyncIteration):
        await anext(watch)


async def test_many_events_arriving_together_are_delivered_in_order(api: FakeAPI, client: Client) -> None:
    start = str(api.rv)
    for i in range(600):  # more than one decode batch, many events per network chunk
        api.put(CONFIGMAP, cm(f"cm-{i:03d}"))
    async with client.watch(CM, resource_version=start) as watch:
        events = await take(watch, 600)
    assert [e.object["metadata"]["name"] for e in events] == [f"cm-{i:03d}" for i in range(600)]
    assert watch.resource_version == str(api.rv)


def answer_watch_with(api: FakeAPI, body: bytes) -> None:
    """The next watch request gets ``body`` as its whole stream."""
    from aiohttp import web

    api.inject(
        lambda r: r.query.get("watch") == "true",
        lambda: web.Response(body=body, content_type="application/json"),
    )


def added(name: str, version: str) -> bytes:
    obj = {"metadata": {"name": name, "namespace": "default", "resourceVersion": version}}
    return orjson.dumps({"type": "ADDED", "object": obj}) + b"\n"


async def test_a_line_that_is_not_json_ends_the_watch_with_a_500_after_the_events_before_it(
    api: FakeAPI, client: Client
) -> None:
    answer_watch_with(api, added("before", "7") + b'{"type":"ADDED","object":{\n' + added("after", "9"))
    watch = client.watch(CM, resource_version="1")
    [event] = await take(watch, 1)
    assert event.object["metadata"]["name"] == "before"
    with pytest.raises(ApiError, match="malformed JSON") as raised:
        await take(watch, 1)
    assert raised.value.code == 500
    assert watch.resource_version == "7"
    with pytest.raises(StopAsyncIteration):
        await anext(watch)  # closed


@pytest.mark.parametrize(
    "line",
    [b'{"object":{"metadata":{}}}', b'{"type":"ADDED"}', b"[1,2]", b'{"type":["ADDED"],"object":{}}'],
    ids=["no type", "no object", "not an object", "type not a string"],
)
async def test_a_line_that_is_not_an_event_ends_the_watch_with_a_500(
    api: FakeAPI, client: Client, line: bytes
) -> None:
    answer_watch_with(api, line + b"\n")
    with pytest.raises(ApiError, match="malformed event") as raised:
        async with client.watch(CM, resource_version="1") as watch:
            await take(watch, 1)
    assert raised.value.code == 500


async def test_blank_lines_and_a_last_line_without_newline_are_taken_as_they_come(
    api: FakeAPI, client: Client
) -> None:
    answer_watch_with(api, added("a", "7") + b"\n  \r\n\n" + added("b", "8").rstrip(b"\n"))
    async with client.watch(CM, resource_version="1") as watch:
        events = await take(watch, 2)
    assert [e.object["metadata"]["name"] for e in events] == ["a", "b"]
    assert watch.resource_version == "8"


async def test_an_event_without_a_resource_version_keeps_the_last_one(api: FakeAPI, client: Client) -> None:
    unversioned = orjson.dumps({"type": "MODIFIED", "object": {"metadata": {"name": "odd"}}}) + b"\n"
    answer_watch_with(api, added("a", "7") + unversioned)
    async with client.watch(CM, resource_version="1") as watch:
        events = await take(watch, 2)
    assert events[1].type == "MODIFIED" and events[1].resource_version == ""
    assert watch.resource_version == "7"


async def test_a_backlog_of_many_batches_is_delivered_in_order(api: FakeAPI, client: Client) -> None:
    start = str(api.rv)
    for i in range(400):  # about 1 MB: several decode batches, lines straddling network chunks
        api.put(CONFIGMAP, cm(f"cm-{i:03d}", blob=f"{i}" * 800))
    async with client.watch(CM, resource_version=start) as watch:
        events = await take(watch, 400)
    assert [e.object["metadata"]["name"] for e in events] == [f"cm-{i:03d}" for i in range(400)]
    assert events[-1].object["data"]["blob"] == "399" * 800
