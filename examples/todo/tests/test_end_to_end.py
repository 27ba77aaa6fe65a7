"""The Todo operator end to end on the embedded API server: create, update, a ConfigMap edited or
deleted by hand, delete; each test in a namespace of its own with the operator running there."""

from __future__ import annotations

from typing import Any

import pytest

from kubevisor.api import GroupVersionKind, Invalid
from kubevisor.client import Client
from kubevisor.runtime import MANAGED_BY_LABEL, Manager
from kubevisor.testing import wait_for, wait_for_list, wait_gone

from ..operator import CONFIG_MAP, Todo
from .conftest import todo

EVENT = GroupVersionKind("", "v1", "Event")


def is_ready(phase: str, generation: int = 1) -> Any:
    def check(obj: Todo | None) -> bool:
        return (
            obj is not None
            and obj.status.phase == phase
            and obj.status.observed_generation == generation
            and any(c.type == "Ready" and c.status == "True" for c in obj.status.conditions)
        )

    return check


async def test_a_new_todo_becomes_pending_and_gets_its_config_map(
    kube_client: Client, namespace: str, todo_operator: Manager
) -> None:
    await kube_client.create(todo("milk", namespace, "buy milk", priority="high"))
    converged = await wait_for(kube_client, Todo, "milk", is_ready("Pending"), namespace=namespace)
    assert converged.status.config_map == "todo-milk"
    config_map = await kube_client.get(CONFIG_MAP, "todo-milk", namespace=namespace)
    assert config_map["data"] == {
        "title": "buy milk",
        "priority": "high",
        "done": "false",
        "todo.md": "- [ ] buy milk (high)\n",
    }
    [owner] = config_map["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Todo",
        "milk",
        converged.uid,
        True,
    )
    assert config_map["metadata"]["labels"][MANAGED_BY_LABEL] == "todo-operator"


async def test_marking_a_todo_done_updates_its_status_and_its_config_map(
    kube_client: Client, namespace: str, todo_operator: Manager
) -> None:
    await kube_client.create(todo("milk", namespace, "buy milk"))
    await wait_for(kube_client, Todo, "milk", is_ready("Pending"), namespace=namespace)
    await kube_client.patch(Todo, "milk", {"spec": {"done": True}}, namespace=namespace)
    await wait_for(kube_client, Todo, "milk", is_ready("Done", generation=2), namespace=namespace)
    await wait_for(
        kube_client,
        CONFIG_MAP,
        "todo-milk",
        lambda cm: cm["data"]["todo.md"] == "- [x] buy milk (normal)\n",
        namespace=namespace,
    )


async def test_a_config_map_edited_by_hand_is_restored(
    kube_client: Client, namespace: str, todo_operator: Manager
) -> None:
    await kube_client.create(todo("milk", namespace, "buy milk"))
    await wait_for(kube_client, Todo, "milk", is_ready("Pending"), namespace=namespace)
    await wait_for(kube_client, CONFIG_MAP, "todo-milk", namespace=namespace)
    await kube_client.patch(CONFIG_MAP, "todo-milk", {"data": {"title": "buy beer"}}, namespace=namespace)
    await wait_for(
        kube_client,
        CONFIG_MAP,
        "todo-milk",
        lambda cm: cm["data"]["title"] == "buy milk",
        namespace=namespace,
    )


async def test_a_config_map_deleted_by_hand_is_recreated(
    kube_client: Client, namespace: str, todo_operator: Manager
) -> None:
    await kube_client.create(todo("milk", namespace, "buy milk"))
    original = await wait_for(kube_client, CONFIG_MAP, "todo-milk", namespace=namespace)
    await kube_client.delete(CONFIG_MAP, "todo-milk", namespace=namespace)
    recreated = await wait_for(
        kube_client,
        CONFIG_MAP,
        "todo-milk",
        lambda cm: cm is not None and cm["metadata"]["uid"] != original["metadata"]["uid"],
        namespace=namespace,
    )
    assert recreated["data"]["title"] == "buy milk"


async def test_deleting_a_todo_lets_the_garbage_collector_delete_its_config_map(
    kube_client: Client, namespace: str, todo_operator: Manager
) -> None:
    await kube_client.create(todo("milk", namespace, "buy milk"))
    await wait_for(kube_client, CONFIG_MAP, "todo-milk", namespace=namespace)
    await kube_client.delete(Todo, "milk", namespace=namespace)
    await wait_gone(kube_client, Todo, "milk", namespace=namespace)
    await wait_gone(kube_client, CONFIG_MAP, "todo-milk", namespace=namespace)


async def test_reconciling_records_an_event_about_the_todo(
    kube_client: Client, namespace: str, todo_operator: Manager
) -> None:
    await kube_client.create(todo("milk", namespace, "buy milk"))
    await wait_for(kube_client, Todo, "milk", is_ready("Pending"), namespace=namespace)

    def pending_event(events: list[dict[str, Any]]) -> dict[str, Any] | None:
        return next(
            (e for e in events if e["involvedObject"].get("name") == "milk" and e["reason"] == "Pending"),
            None,
        )

    event = await wait_for_list(kube_client, EVENT, pending_event, namespace=namespace)
    assert event["type"] == "Normal"
    assert event["message"] == "'buy milk' is pending"
    assert event["involvedObject"]["kind"] == "Todo"


async def test_the_server_rejects_a_todo_outside_its_schema(
    kube_client: Client, namespace: str, todo_operator: Manager
) -> None:
    with pytest.raises(Invalid) as raised:
        await kube_client.create(todo("bad", namespace, "", priority="urgent"))
    assert {cause["field"] for cause in raised.value.field_errors} == {"spec.title", "spec.priority"}
