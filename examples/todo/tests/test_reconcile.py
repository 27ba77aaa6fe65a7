"""The Todo reconcile as a plain function: no server, only what it registers on its Context."""

from __future__ import annotations

from typing import Any

import pytest

from kubevisor.api import CompiledSchema
from kubevisor.runtime import Action, Context

from ..operator import REQUEUE_AFTER, Todo, TodoStatus, config_map_for, operator, reconcile


def make_todo(title: str = "buy milk", *, status: dict[str, Any] | None = None, **spec: Any) -> Todo:
    wire: dict[str, Any] = {
        "apiVersion": "example.com/v1",
        "kind": "Todo",
        "metadata": {"name": "milk", "namespace": "home", "uid": "u-1", "generation": 1},
        "spec": {"title": title, **spec},
    }
    if status is not None:
        wire["status"] = status
    return Todo.from_wire(wire)


async def test_a_new_todo_is_pending_and_rendered_into_its_config_map() -> None:
    todo = make_todo(priority="high")
    ctx = Context.for_object(todo)
    await reconcile(todo, ctx)
    assert ctx.descendants == [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "todo-milk", "labels": {"example.com/todo": "milk"}},
            "data": {
                "title": "buy milk",
                "priority": "high",
                "done": "false",
                "todo.md": "- [ ] buy milk (high)\n",
            },
        }
    ]
    assert ctx.status.phase == "Pending"
    assert ctx.status.config_map == "todo-milk"


async def test_a_done_todo_is_done_and_its_config_map_ticks_the_box() -> None:
    todo = make_todo(done=True)
    ctx = Context.for_object(todo)
    await reconcile(todo, ctx)
    assert ctx.status.phase == "Done"
    assert ctx.descendants[0]["data"]["done"] == "true"
    assert ctx.descendants[0]["data"]["todo.md"] == "- [x] buy milk (normal)\n"


async def test_the_reconcile_requeues_the_todo_after_five_minutes() -> None:
    todo = make_todo()
    assert await reconcile(todo, Context.for_object(todo)) == Action.requeue(after=REQUEUE_AFTER)


async def test_the_status_written_has_the_phase_the_ready_condition_and_the_observed_generation() -> None:
    todo = make_todo()
    ctx = Context.for_object(todo)
    await reconcile(todo, ctx)
    desired = ctx.desired_status()
    assert desired is not None
    assert desired["phase"] == "Pending"
    assert desired["configMap"] == "todo-milk"
    assert desired["observedGeneration"] == 1
    [ready] = desired["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "Rendered")
    assert ready["message"] == "rendered into ConfigMap todo-milk"


async def test_an_event_is_recorded_when_the_phase_changes() -> None:
    todo = make_todo(done=True, status={"phase": "Pending"})
    ctx = Context.for_object(todo)
    await reconcile(todo, ctx)
    assert [(e.type, e.reason, e.message) for e in ctx.events] == [("Normal", "Done", "'buy milk' is done")]


async def test_no_event_is_recorded_when_the_phase_stays() -> None:
    todo = make_todo(status={"phase": "Pending", "configMap": "todo-milk"})
    ctx = Context.for_object(todo)
    await reconcile(todo, ctx)
    assert ctx.events == []


async def test_a_reconcile_that_changes_nothing_leaves_the_status_as_stored() -> None:
    first = make_todo()
    ctx = Context.for_object(first)
    await reconcile(first, ctx)
    stored = ctx.desired_status()
    assert stored is not None
    again = make_todo(status=stored)
    ctx = Context.for_object(again)
    await reconcile(again, ctx)
    assert ctx.desired_status() == stored  # so the controller writes nothing


def test_the_config_map_is_named_after_the_todo() -> None:
    assert config_map_for(make_todo())["metadata"]["name"] == "todo-milk"


def test_a_fresh_status_has_no_phase_until_reconciled() -> None:
    assert TodoStatus().phase is None


@pytest.fixture(scope="module")
def schema() -> CompiledSchema:
    [crd] = operator.crds()
    return CompiledSchema.compile(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def errors(schema: CompiledSchema, spec: dict[str, Any]) -> list[str]:
    obj = {"apiVersion": "example.com/v1", "kind": "Todo", "metadata": {"name": "t"}, "spec": spec}
    return [error.field for error in schema.validate(schema.default(obj))]


def test_the_crd_defaults_priority_to_normal_and_done_to_false(schema: CompiledSchema) -> None:
    obj = schema.default({"apiVersion": "example.com/v1", "kind": "Todo", "spec": {"title": "x"}})
    assert obj["spec"] == {"title": "x", "done": False, "priority": "normal"}


def test_the_crd_rejects_an_empty_title_and_an_unknown_priority(schema: CompiledSchema) -> None:
    assert errors(schema, {"title": "", "priority": "urgent"}) == ["spec.title", "spec.priority"]


def test_the_crd_rejects_a_title_longer_than_80_characters(schema: CompiledSchema) -> None:
    assert errors(schema, {"title": "x" * 81}) == ["spec.title"]
    assert errors(schema, {"title": "x" * 80}) == []
