"""The reconcile contract as plain functions: a reconcile runs against a Context with no server and
its registered intent is inspected; condition rules; the status the controller would write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubevisor.runtime import Action, Context, PermanentError, RecordedEvent, set_condition
from tests.runtime.conftest import Widget, WidgetStatus

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def stored_widget(size: int = 2, status: dict[str, Any] | None = None, generation: int = 3) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {
            "name": "w",
            "namespace": "ns",
            "uid": "u-1",
            "generation": generation,
            "resourceVersion": "9",
        },
        "spec": {"size": size},
    }
    if status is not None:
        wire["status"] = status
    return wire


async def reconcile(widget: Widget, ctx: Context[Widget]) -> Action:
    """What an operator author writes: registers intent, performs no I/O."""
    if widget.spec.size < 0:
        raise PermanentError("size must not be negative", reason="InvalidSize")
    ctx.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{widget.name}-config"},
            "data": {"size": str(widget.spec.size)},
        }
    )
    ctx.status.phase = "Big" if widget.spec.size > 1 else "Small"
    ctx.condition("Ready", True, reason="Reconciled", message="all good")
    ctx.event("Normal", "Reconciled", f"widget {widget.name} is {ctx.status.phase}")
    return Action.requeue(after=300)


async def test_a_reconcile_is_unit_tested_as_a_plain_function_with_no_server() -> None:
    widget = Widget.from_wire(stored_widget())
    ctx = Context.for_object(widget, clock=Clock())
    action = await reconcile(widget, ctx)
    assert action == Action(requeue_after=300.0)
    assert [d["metadata"]["name"] for d in ctx.descendants] == ["w-config"]
    assert ctx.status.phase == "Big"
    assert widget.status.phase is None  # the reconcile's object is untouched: ctx.status is a copy
    assert ctx.events == [RecordedEvent("Normal", "Reconciled", "widget w is Big")]
    assert ctx.desired_status() == {
        "phase": "Big",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Reconciled",
                "message": "all good",
                "lastTransitionTime": "2024-05-01T12:00:00Z",
                "observedGeneration": 3,
            }
        ],
        "observedGeneration": 3,
    }


async def test_a_permanent_error_surfaces_from_the_plain_function() -> None:
    widget = Widget.from_wire(stored_widget(size=-1))
    with pytest.raises(PermanentError) as raised:
        await reconcile(widget, Context.for_object(widget))
    assert raised.value.reason == "InvalidSize"


def test_actions_done_requeue_after_and_rate_limited_requeue() -> None:
    assert Action.done() == Action() and Action.done().requeue_after is None
    assert Action.requeue(after=5) == Action(requeue_after=5.0)
    assert Action.requeue() == Action(requeue_after=0.0, rate_limited=True)
    with pytest.raises(ValueError):
        Action.requeue(after=-1)


def test_condition_transition_time_moves_only_when_the_status_changes() -> None:
    conditions: list[dict[str, Any]] = []
    assert set_condition(conditions, "Ready", "False", reason="Waiting", transition_time="t1")
    assert set_condition(
        conditions, "Ready", "False", reason="StillWaiting", message="m", transition_time="t2"
    )
    assert conditions[0]["lastTransitionTime"] == "t1" and conditions[0]["reason"] == "StillWaiting"
    assert not set_condition(
        conditions, "Ready", "False", reason="StillWaiting", message="m", transition_time="t3"
    )
    assert set_condition(
        conditions, "Ready", "True", reason="Done", observed_generation=4, transition_time="t4"
    )
    assert conditions == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Done",
            "message": "",
            "lastTransitionTime": "t4",
            "observedGeneration": 4,
        }
    ]


def test_a_registered_condition_keeps_the_stored_transition_time_when_its_status_is_unchanged() -> None:
    stored = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Old",
                "message": "",
                "lastTransitionTime": "2024-01-01T00:00:00Z",
            }
        ],
        "observedGeneration": 3,
    }
    clock = Clock()
    clock.now = T0 + timedelta(days=1)
    ctx = Context.for_object(stored_widget(status=stored), clock=clock)
    ctx.condition("Ready", True, reason="Reconciled")
    [ready] = ctx.desired_status()["conditions"]  # type: ignore[index]
    assert ready["lastTransitionTime"] == "2024-01-01T00:00:00Z" and ready["reason"] == "Reconciled"


def test_an_untouched_status_is_left_alone_unless_its_observed_generation_is_stale() -> None:
    current = stored_widget(status={"phase": "Big", "observedGeneration": 3})
    assert Context.for_object(current).desired_status() is None
    stale = stored_widget(status={"phase": "Big", "observedGeneration": 2})
    assert Context.for_object(stale).desired_status() == {"phase": "Big", "observedGeneration": 3}
    assert Context.for_object(stored_widget()).desired_status() is None


def test_a_typed_status_writes_back_what_came_from_the_server_and_what_was_set_nothing_else() -> None:
    widget = Widget.from_wire(stored_widget(status={"phase": "Big", "observedGeneration": 3}))
    ctx = Context.for_object(widget)
    assert ctx.status.phase == "Big"  # read, unchanged
    assert ctx.desired_status() == {"phase": "Big", "observedGeneration": 3}
    ctx.status = WidgetStatus(phase="Small")
    assert ctx.desired_status() == {"phase": "Small", "observedGeneration": 3}


def test_a_dict_object_has_a_dict_status() -> None:
    ctx = Context.for_object(stored_widget(status={"phase": "Big"}))
    ctx.status["phase"] = "Small"
    assert ctx.desired_status() == {"phase": "Small", "observedGeneration": 3}


def test_registering_bad_intent_fails_at_the_call_that_registered_it() -> None:
    ctx = Context.for_object(stored_widget())
    with pytest.raises(ValueError, match="apiVersion and kind"):
        ctx.apply({"metadata": {"name": "x"}})
    with pytest.raises(ValueError, match=r"metadata\.name"):
        ctx.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "x-"}})
    ctx.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    with pytest.raises(ValueError, match="twice"):
        ctx.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    with pytest.raises(ValueError, match="Normal"):
        ctx.event("Info", "Reason", "message")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ctx.condition("Ready", "Maybe", reason="R")
    with pytest.raises(ValueError, match="deleted"):
        Context.for_object(stored_widget(), deleting=True).apply(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}}
        )


def test_a_registered_descendant_is_a_copy_taken_at_registration() -> None:
    ctx = Context.for_object(stored_widget())
    child = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}}
    ctx.apply(child)
    child["data"]["a"] = "2"
    assert ctx.descendants[0]["data"] == {"a": "1"}
