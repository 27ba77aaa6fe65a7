"""The Todo operator: a ``Todo`` whose status follows its spec, rendered into a ConfigMap it owns.

Everything an operator needs, in one small file:

* a typed custom resource (:class:`Todo`) that yields its CRD: the title is 1-80 characters, the
  priority one of ``low``/``normal``/``high``, and kubectl shows them as columns;
* a reconcile that registers intent (:func:`reconcile`): the ConfigMap descendant, the status phase,
  a ``Ready`` condition and an event; the framework applies it (server-side apply, owner reference,
  one status patch when it changed) and requeues the object every five minutes;
* a timer (:func:`remind`) recording a reminder event for open todos every hour.

Delete a Todo and the garbage collector deletes its ConfigMap; edit or delete the ConfigMap by hand
and the reconcile puts it back.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kubevisor.api import GroupVersionKind
from kubevisor.operator import Operator
from kubevisor.resource import Condition, ListMap, PrinterColumn, Resource
from kubevisor.runtime import Action, Context, DaemonContext, generation_changed

__all__ = [
    "CONFIG_MAP",
    "REMIND_EVERY",
    "REQUEUE_AFTER",
    "Todo",
    "TodoSpec",
    "TodoStatus",
    "config_map_for",
    "config_map_name",
    "operator",
    "reconcile",
    "remind",
]

CONFIG_MAP = GroupVersionKind("", "v1", "ConfigMap")
REQUEUE_AFTER = 300.0
"""Seconds after which a Todo is reconciled again even if nothing changed (level-triggered safety)."""
REMIND_EVERY = 3600.0
"""Seconds between reminders about an open Todo."""


class TodoSpec(BaseModel):
    """What to do."""

    title: Annotated[str, Field(min_length=1, max_length=80, description="What to do, in a few words.")]
    done: bool = False
    priority: Literal["low", "normal", "high"] = "normal"


class TodoStatus(BaseModel):
    """What the operator observed and did."""

    model_config = ConfigDict(populate_by_name=True)

    phase: Literal["Pending", "Done"] | None = None
    config_map: Annotated[str | None, Field(alias="configMap", description="The rendered ConfigMap.")] = None
    observed_generation: Annotated[int | None, Field(alias="observedGeneration")] = None
    conditions: Annotated[list[Condition], ListMap("type")] = Field(default_factory=list)


class Todo(
    Resource,
    group="example.com",
    version="v1",
    kind="Todo",
    short_names=["td"],
    printer_columns=[
        PrinterColumn("Title", ".spec.title"),
        PrinterColumn("Priority", ".spec.priority"),
        PrinterColumn("Done", ".spec.done", type="boolean"),
        PrinterColumn("Phase", ".status.phase"),
    ],
):
    """A thing to do."""

    spec: TodoSpec
    # A factory rather than ``= TodoStatus()``, which pydantic deep-copies at every use (a Resource
    # rewrites that form into a factory on its own fields, a plain model does not).
    status: TodoStatus = Field(default_factory=TodoStatus)


operator = Operator("todo-operator")


def config_map_name(todo: Todo) -> str:
    """The name of a Todo's ConfigMap."""
    return f"todo-{todo.name}"


def config_map_for(todo: Todo) -> dict[str, Any]:
    """The ConfigMap rendering ``todo``: its fields, and a Markdown line a person can read."""
    box = "x" if todo.spec.done else " "
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": config_map_name(todo), "labels": {"example.com/todo": todo.name or ""}},
        "data": {
            "title": todo.spec.title,
            "priority": todo.spec.priority,
            "done": "true" if todo.spec.done else "false",
            "todo.md": f"- [{box}] {todo.spec.title} ({todo.spec.priority})\n",
        },
    }


@operator.reconciler(Todo, owns=[CONFIG_MAP], predicates=generation_changed())
async def reconcile(todo: Todo, ctx: Context[Todo]) -> Action:
    """Make the world match ``todo``: its ConfigMap rendered, its status following its spec.

    ``generation_changed()`` skips the status-only updates this reconcile itself causes; changes to
    the owned ConfigMap (an edit by hand, a deletion) still reach this Todo through its owner
    reference, and the ConfigMap is applied again.
    """
    ctx.apply(config_map_for(todo))
    phase: Literal["Pending", "Done"] = "Done" if todo.spec.done else "Pending"
    previous = ctx.status.phase
    ctx.status.phase = phase
    ctx.status.config_map = config_map_name(todo)
    ctx.condition(
        "Ready", True, reason="Rendered", message=f"rendered into ConfigMap {config_map_name(todo)}"
    )
    if previous != phase:
        verb = "is done" if phase == "Done" else "is pending"
        ctx.event("Normal", phase, f"{todo.spec.title!r} {verb}")
    return Action.requeue(after=REQUEUE_AFTER)


@operator.timer(Todo, interval=REMIND_EVERY)
async def remind(todo: Todo, ctx: DaemonContext) -> None:
    """Every hour, a reminder event about a Todo still open."""
    if not todo.spec.done:
        ctx.event("Normal", "Reminder", f"{todo.spec.title!r} is still open ({todo.spec.priority} priority)")
