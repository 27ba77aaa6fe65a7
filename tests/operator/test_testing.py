"""kubevisor.testing: the embedded server in its thread, the namespace fixture, the waiters."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from kubevisor.api import GroupVersionKind
from kubevisor.client import Client
from kubevisor.testing import EmbeddedServer, WaitTimeout, namespace_name, wait_for, wait_for_list, wait_gone

CONFIG_MAP = GroupVersionKind("", "v1", "ConfigMap")
NAMESPACE = GroupVersionKind("", "v1", "Namespace")


def config_map(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def test_namespace_names_are_dns_labels_made_from_the_test_name() -> None:
    assert namespace_name("test_a_todo_is_done[param-1]", 7) == "t7-a-todo-is-done-param-1"
    long = namespace_name("test_" + "x" * 100, 12)
    assert len(long) == 63 and long.startswith("t12-")
    assert namespace_name("test_ends_with_symbols___", 1) == "t1-ends-with-symbols"


async def test_the_namespace_fixture_gives_each_test_a_namespace_of_its_own(
    kube_client: Client, namespace: str
) -> None:
    stored = await kube_client.get(NAMESPACE, namespace)
    assert stored["status"]["phase"] == "Active"
    assert namespace.startswith("t") and "the-namespace-fixture" in namespace


async def test_wait_for_returns_the_object_once_the_predicate_holds(
    kube_client: Client, namespace: str
) -> None:
    await kube_client.create(config_map("c", namespace, step="1"))

    async def advance() -> None:
        for step in ("2", "3"):
            await kube_client.patch(CONFIG_MAP, "c", {"data": {"step": step}}, namespace=namespace)

    waiting = asyncio.ensure_future(
        wait_for(kube_client, CONFIG_MAP, "c", lambda cm: cm["data"]["step"] == "3", namespace=namespace)
    )
    await advance()
    assert (await waiting)["data"]["step"] == "3"


async def test_wait_for_waits_for_an_object_to_appear(kube_client: Client, namespace: str) -> None:
    waiting = asyncio.ensure_future(wait_for(kube_client, CONFIG_MAP, "late", namespace=namespace))
    await asyncio.sleep(0)
    await kube_client.create(config_map("late", namespace))
    assert (await waiting)["metadata"]["name"] == "late"


async def test_wait_for_treats_a_predicate_reading_a_missing_field_as_not_yet(
    kube_client: Client, namespace: str
) -> None:
    await kube_client.create(config_map("c", namespace))
    waiting = asyncio.ensure_future(
        wait_for(kube_client, CONFIG_MAP, "c", lambda cm: cm["data"]["later"] == "yes", namespace=namespace)
    )
    await asyncio.sleep(0)
    await kube_client.patch(CONFIG_MAP, "c", {"data": {"later": "yes"}}, namespace=namespace)
    await waiting


async def test_wait_for_fails_with_the_last_state_seen(kube_client: Client, namespace: str) -> None:
    await kube_client.create(config_map("c", namespace, color="blue"))
    with pytest.raises(WaitTimeout) as raised:
        await wait_for(
            kube_client,
            CONFIG_MAP,
            "c",
            lambda cm: cm["data"]["color"] == "red",
            namespace=namespace,
            timeout=0.2,
        )
    message = str(raised.value)
    assert f"ConfigMap {namespace}/c did not reach the awaited state within 0.2s" in message
    assert "'data': {'color': 'blue'}" in message


async def test_wait_gone_returns_once_the_object_is_deleted(kube_client: Client, namespace: str) -> None:
    await kube_client.create(config_map("c", namespace))
    waiting = asyncio.ensure_future(wait_gone(kube_client, CONFIG_MAP, "c", namespace=namespace))
    await asyncio.sleep(0)
    await kube_client.delete(CONFIG_MAP, "c", namespace=namespace)
    await waiting


async def test_wait_for_list_returns_what_the_predicate_found(kube_client: Client, namespace: str) -> None:
    waiting = asyncio.ensure_future(
        wait_for_list(
            kube_client,
            CONFIG_MAP,
            lambda items: (
                sorted(i["metadata"]["name"] for i in items if i["metadata"]["name"] != "kube-root-ca.crt")
                if len(items) >= 3
                else None
            ),
            namespace=namespace,
        )
    )
    for name in ("a", "b", "c"):
        await kube_client.create(config_map(name, namespace))
    found = await waiting
    assert {"a", "b"} <= set(found)


def test_an_embedded_server_serves_from_its_thread_until_stopped() -> None:
    async def version(url: str) -> int:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/version") as response:
            return response.status

    with EmbeddedServer() as server:
        url = server.url
        assert asyncio.run(version(url)) == 200  # answered from the server's thread
        assert server.call(lambda s: s.port) == server.server.port
    with pytest.raises(aiohttp.ClientConnectionError):
        asyncio.run(version(url))
    server.stop()  # idempotent
