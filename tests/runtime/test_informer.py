"""Informers against the embedded API server over HTTP: paged initial list, events to handlers,
shared instances, managedFields dropped, resync, and recovery from a cut stream and from an expired
watch history with no object missed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from kubevisor.client import Client
from kubevisor.runtime import Informer, InformerCache, InformerOptions, ManualClock, ObjectRef
from kubevisor.server import APIServer
from tests.runtime.conftest import CONFIGMAP, Proxy, client_for, configmap, eventually, start_server


class Recorder:
    """An event handler that writes down what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def on_add(self, obj: dict[str, Any]) -> None:
        self.events.append(("add", obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.events.append(("update", new["metadata"]["name"], new["metadata"]["resourceVersion"]))

    def on_delete(self, obj: dict[str, Any]) -> None:
        self.events.append(("delete", obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))

    def names(self, kind: str) -> list[str]:
        return [name for k, name, _ in self.events if k == kind]


class Reasons:
    def __init__(self) -> None:
        self.relists: list[str] = []
        self.restarts = 0

    def relisted(self, reason: str) -> None:
        self.relists.append(reason)

    def watch_restarted(self, count: int) -> None:
        self.restarts += count

    def objects(self, count: int) -> None:
        pass


def labelled(name: str, **data: str) -> dict[str, Any]:
    obj = configmap(name, **data)
    obj["metadata"]["labels"] = {"suite": "informer"}
    return obj


@asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.wait_synced(), 15)
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def server_names(items: list[dict[str, Any]]) -> set[str]:
    return {o["metadata"]["name"] for o in items}


async def test_informer_lists_in_pages_then_delivers_adds_updates_and_deletes(client: Client) -> None:
    for i in range(5):
        await client.create(labelled(f"pre-{i}"))
    cache = InformerCache(client, InformerOptions(page_size=2))
    informer = await cache.informer(CONFIGMAP, namespace="default", label_selector="suite=informer")
    recorder = Recorder()
    informer.add_handler(recorder)
    async with running(informer):
        assert informer.synced and cache.synced
        assert sorted(recorder.names("add")) == [f"pre-{i}" for i in range(5)]
        await client.create(labelled("new"))
        await client.patch(CONFIGMAP, "pre-0", {"data": {"x": "1"}})
        await client.delete(CONFIGMAP, "pre-1")
        await eventually(lambda: len(recorder.events) == 8)
        assert [(k, n) for k, n, _ in recorder.events[5:]] == [
            ("add", "new"),
            ("update", "pre-0"),
            ("delete", "pre-1"),
        ]
        assert informer.store.get(ObjectRef("default", "pre-0"))["data"] == {"x": "1"}  # type: ignore[index]
        assert ObjectRef("default", "pre-1") not in informer.store


async def test_informers_are_shared_per_kind_namespace_and_selectors(client: Client) -> None:
    cache = InformerCache(client)
    a = await cache.informer(CONFIGMAP, namespace="default")
    assert await cache.informer(CONFIGMAP, namespace="default") is a
    assert await cache.informer(CONFIGMAP, namespace="default", label_selector="x=y") is not a
    assert await cache.informer(CONFIGMAP) is not a
    assert len(cache) == 3
    with pytest.raises(ValueError, match="cluster-scoped"):
        from kubevisor.api import GroupVersionKind

        await cache.informer(GroupVersionKind("", "v1", "Namespace"), namespace="default")


async def test_a_handler_added_after_sync_is_first_told_about_every_cached_object(client: Client) -> None:
    await client.create(labelled("one"))
    informer = await InformerCache(client).informer(CONFIGMAP, label_selector="suite=informer")
    async with running(informer):
        late = Recorder()
        informer.add_handler(late)
        assert late.names("add") == ["one"]


async def test_cached_objects_drop_managed_fields_unless_told_to_keep_them(client: Client) -> None:
    obj = labelled("managed")
    obj["metadata"]["managedFields"] = [
        {
            "manager": "test",
            "operation": "Update",
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }
    ]
    await client.create(obj)
    stored = await client.get(CONFIGMAP, "managed")
    if not stored["metadata"].get("managedFields"):
        pytest.skip("the server does not keep managedFields yet")
    lean = await InformerCache(client).informer(CONFIGMAP, label_selector="suite=informer")
    full = await InformerCache(client, InformerOptions(keep_managed_fields=True)).informer(
        CONFIGMAP, label_selector="suite=informer"
    )
    async with running(lean):
        async with running(full):
            ref = ObjectRef("default", "managed")
            assert "managedFields" not in lean.store.get(ref)["metadata"]  # type: ignore[index]
            assert full.store.get(ref)["metadata"]["managedFields"]  # type: ignore[index]


async def test_a_periodic_resync_hands_every_cached_object_to_the_handlers_again(client: Client) -> None:
    await client.create(labelled("a"))
    await client.create(labelled("b"))
    clock = ManualClock()
    cache = InformerCache(client, InformerOptions(resync_period=30), clock=clock)
    informer = await cache.informer(CONFIGMAP, label_selector="suite=informer")
    recorder = Recorder()
    informer.add_handler(recorder)
    async with running(informer):
        clock.advance(29)
        await asyncio.sleep(0)
        assert recorder.names("update") == []
        clock.advance(1)
        await eventually(lambda: sorted(recorder.names("update")) == ["a", "b"])


async def test_a_watch_stream_cut_mid_run_is_resumed_with_no_object_missed(
    server: APIServer, client: Client, proxy: Proxy
) -> None:
    async with client_for(proxy.url, server.kubeconfig) as proxied:
        reasons = Reasons()
        cache = InformerCache(proxied, observer_factory=lambda _: reasons)
        informer = await cache.informer(CONFIGMAP, label_selector="suite=informer")
        recorder = Recorder()
        informer.add_handler(recorder)
        async with running(informer):
            for i in range(30):
                await client.create(labelled(f"cm-{i}"))
                if i % 7 == 3:
                    proxy.cut()  # the stream (and every pooled connection) breaks mid-run
            expected = server_names((await client.list_all(CONFIGMAP, label_selector="suite=informer")).items)
            await eventually(lambda: server_names(informer.store.list()) == expected)
            assert sorted(recorder.names("add")) == sorted(expected)  # each seen once, none missed
            assert reasons.restarts >= 1 and informer.watch_restarts >= 1


async def test_an_expired_watch_history_is_recovered_by_a_relist_with_no_change_missed(
    proxy_small: Any,
) -> None:
    server, client, proxy = proxy_small
    for i in range(5):
        await client.create(labelled(f"old-{i}"))
    async with client_for(proxy.url, server.kubeconfig) as proxied:
        reasons = Reasons()
        informer = await InformerCache(proxied, observer_factory=lambda _: reasons).informer(
            CONFIGMAP, label_selector="suite=informer"
        )
        recorder = Recorder()
        informer.add_handler(recorder)
        async with running(informer):
            proxy.hold()  # a partition: the informer cannot reach the server...
            proxy.cut()
            for i in range(30):  # ...while more changes happen than the server's history keeps
                await client.create(labelled(f"new-{i}"))
            await client.patch(CONFIGMAP, "old-0", {"data": {"changed": "yes"}})
            await client.delete(CONFIGMAP, "old-1")
            proxy.release()
            expected = (await client.list_all(CONFIGMAP, label_selector="suite=informer")).items
            await eventually(lambda: server_names(informer.store.list()) == server_names(expected))
            assert "expired" in reasons.relists
            assert sorted(recorder.names("add")) == sorted(
                [f"old-{i}" for i in range(5)] + [f"new-{i}" for i in range(30)]
            )
            assert recorder.names("delete") == ["old-1"]
            assert recorder.names("update") == ["old-0"]
            assert informer.store.get(ObjectRef("default", "old-0"))["data"] == {"changed": "yes"}  # type: ignore[index]


@pytest.fixture
async def proxy_small() -> AsyncIterator[tuple[APIServer, Client, Proxy]]:
    server = await start_server(history_size=10)
    proxy = Proxy("127.0.0.1", server.port)
    await proxy.start()
    try:
        async with client_for(server.url, server.kubeconfig) as client:
            yield server, client, proxy
    finally:
        await proxy.stop()
        await server.stop()
