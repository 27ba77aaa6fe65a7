"""Controllers end to end on the embedded API server: the reconcile loop, its status writes, retries,
permanent errors, invalid objects, timeouts, finalizers, mapped watches, predicates, descendants
(applied, restored, pruned) and misdeclarations."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from kubevisor.api import GroupVersionKind, NotFound, UnsupportedMediaType
from kubevisor.client import Client
from kubevisor.runtime import (
    MANAGED_BY_LABEL,
    OWNER_UID_LABEL,
    Action,
    Context,
    Controller,
    ControllerOptions,
    DeclarationError,
    Manager,
    ObjectRef,
    Owns,
    PermanentError,
    Watches,
    default_controller_rate_limiter,
    generation_changed,
)
from tests.runtime.conftest import (
    CONFIGMAP,
    EVENT,
    WIDGET,
    RequestCounter,
    Widget,
    configmap,
    eventually,
    widget,
)


@asynccontextmanager
async def run(
    make_manager: Callable[..., Manager], *controllers: Controller, **options: Any
) -> AsyncIterator[Manager]:
    manager = make_manager(**options)
    for controller in controllers:
        manager.add(controller)
    async with manager:
        yield manager


async def status_of(client: Client, name: str) -> dict[str, Any]:
    obj = await client.get(WIDGET, name, namespace="default")
    status: dict[str, Any] = obj.get("status") or {}
    return status


async def events_about(client: Client, name: str) -> list[dict[str, Any]]:
    items = (await client.list_all(EVENT, namespace="default")).items
    return [e for e in items if e["involvedObject"].get("name") == name]


def condition(status: dict[str, Any], type: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or () if c["type"] == type), None)


@pytest.fixture
async def ssa(client: Client) -> None:
    """Skip unless the embedded server implements server-side apply, which descendants need."""
    try:
        await client.apply(configmap("ssa-probe"), field_manager="probe")
    except UnsupportedMediaType:
        pytest.skip(
            "the embedded APIServer does not implement server-side apply (application/apply-patch+yaml) yet"
        )
    await client.delete(CONFIGMAP, "ssa-probe")


async def test_reconcile_runs_after_create_and_update_and_cleanup_after_delete(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    seen: list[tuple[str, int]] = []
    cleaned: list[str] = []

    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        seen.append((obj.name or "", obj.spec.size))
        ctx.status.phase = f"size-{obj.spec.size}"
        return Action.done()

    async def cleanup(obj: Widget, ctx: Context[Widget]) -> None:
        cleaned.append(obj.name or "")

    controller = Controller(Widget, reconcile, cleanup=cleanup, predicates=generation_changed())
    async with run(make_manager, controller):
        await client.create(widget("w", size=1))
        await eventually(lambda: ("w", 1) in seen)
        stored = await client.get(WIDGET, "w")
        assert controller.finalizer in stored["metadata"]["finalizers"]  # added before the first reconcile
        await eventually(lambda: status_of(client, "w"), message="status written")
        assert (await status_of(client, "w"))["phase"] == "size-1"
        await client.patch(WIDGET, "w", {"spec": {"size": 2}})
        await eventually(lambda: ("w", 2) in seen)
        await eventually(lambda: _phase_is(client, "w", "size-2"))
        assert (await status_of(client, "w"))["observedGeneration"] == 2
        await client.delete(WIDGET, "w")
        await eventually(lambda: cleaned == ["w"])
        await eventually(lambda: _gone(client, "w"))
    assert all(name == "w" for name, _ in seen)


async def _phase_is(client: Client, name: str, phase: str) -> bool:
    return (await status_of(client, name)).get("phase") == phase


async def _gone(client: Client, name: str) -> bool:
    try:
        await client.get(WIDGET, name)
    except NotFound:
        return True
    return False


async def test_cleanup_removes_only_its_own_finalizer(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    async def reconcile(obj: Widget, ctx: Context[Widget]) -> None:
        return None

    async def cleanup(obj: Widget, ctx: Context[Widget]) -> None:
        ctx.event("Normal", "CleanedUp", "bye")

    controller = Controller(Widget, reconcile, cleanup=cleanup)
    async with run(make_manager, controller):
        await client.create(widget("w", finalizers=["example.com/keep"]))
        await eventually(lambda: _has_finalizer(client, "w", controller.finalizer))
        await client.delete(WIDGET, "w")
        await eventually(lambda: _finalizers_are(client, "w", ["example.com/keep"]))
        await eventually(lambda: _reasons(client, "w", "CleanedUp"))


async def _has_finalizer(client: Client, name: str, finalizer: str) -> bool:
    return finalizer in ((await client.get(WIDGET, name))["metadata"].get("finalizers") or [])


async def _finalizers_are(client: Client, name: str, finalizers: list[str]) -> bool:
    return (await client.get(WIDGET, name))["metadata"].get("finalizers") == finalizers


async def _reasons(client: Client, name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in await events_about(client, name) if e["reason"] == reason]


async def test_status_is_written_once_per_object_when_only_status_changes(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    for i in range(5):
        await client.create(widget(f"w{i}", size=i))

    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        ctx.status.phase = "Ready"
        return Action.done()

    controller = Controller(Widget, reconcile)
    manager = make_manager()
    requests = RequestCounter(manager.client)
    manager.add(controller)
    async with manager:
        for i in range(5):
            await eventually(lambda i=i: _phase_is(client, f"w{i}", "Ready"))
        # Each status write comes back as a watch event and reconciles again; that reconcile finds
        # the status as wanted and writes nothing.
        await eventually(lambda: controller.reconciles >= 10)
        await eventually(lambda: len(controller.queue or ()) == 0 and controller.in_flight == 0)
    writes = requests.writes("widgets")
    assert len(writes) == 5
    assert all(method == "PATCH" and path.endswith("/status") for method, path in writes)


class RecordingLimiter:
    """The default controller rate limiter, with every delay it hands out written down."""

    def __init__(self) -> None:
        self._inner = default_controller_rate_limiter()
        self.delays: dict[ObjectRef, list[float]] = defaultdict(list)

    def when(self, key: ObjectRef, now: float) -> float:
        delay = self._inner.when(key, now)
        self.delays[key].append(delay)
        return delay

    def forget(self, key: ObjectRef) -> None:
        self._inner.forget(key)

    def retries(self, key: ObjectRef) -> int:
        return self._inner.retries(key)


async def test_an_exception_in_reconcile_is_retried_with_growing_delays(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    attempts = Counter[str]()

    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        attempts[obj.name or ""] += 1
        if attempts[obj.name or ""] <= 4:
            raise RuntimeError(f"flaky dependency (attempt {attempts[obj.name or '']})")
        ctx.status.phase = "Ready"
        return Action.done()

    limiter = RecordingLimiter()
    controller = Controller(Widget, reconcile, predicates=generation_changed(), rate_limiter=limiter)
    async with run(make_manager, controller) as manager:
        await client.create(widget("flaky"))
        await eventually(lambda: _phase_is(client, "flaky", "Ready"))
        assert attempts["flaky"] == 5
        assert limiter.delays[ObjectRef("default", "flaky")] == [0.005, 0.01, 0.02, 0.04]
        assert manager.metrics.reconcile_errors.labels(controller.name)._value.get() == 4
        errors = await eventually(lambda: _reasons(client, "flaky", "ReconcileError"))
        assert errors[0]["type"] == "Warning" and "flaky dependency" in errors[0]["message"]
        assert controller.queue is not None and controller.queue.retries(ObjectRef("default", "flaky")) == 0


async def test_a_permanent_error_is_recorded_and_not_retried_until_the_object_changes(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    attempts = Counter[int]()

    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        attempts[obj.spec.size] += 1
        if obj.spec.size < 0:
            raise PermanentError("size must not be negative", reason="InvalidSize")
        ctx.status.phase = "Ready"
        return Action.done()

    controller = Controller(Widget, reconcile, predicates=generation_changed())
    async with run(make_manager, controller):
        await client.create(widget("neg", size=-1))
        failed = await eventually(lambda: _condition_is(client, "neg", "Reconciled", "False"))
        assert failed["reason"] == "InvalidSize" and failed["message"] == "size must not be negative"
        [event] = await eventually(lambda: _reasons(client, "neg", "InvalidSize"))
        assert event["type"] == "Warning"
        ref = ObjectRef("default", "neg")
        assert controller.queue is not None
        assert controller.queue.retries(ref) == 0 and controller.queue.waiting_count == 0
        assert attempts[-1] == 1
        await client.patch(WIDGET, "neg", {"spec": {"size": 3}})
        fixed = await eventually(lambda: _condition_is(client, "neg", "Reconciled", "True"))
        assert fixed["reason"] == "Reconciled"
        assert (await status_of(client, "neg"))["phase"] == "Ready"


async def _condition_is(client: Client, name: str, type: str, status: str) -> dict[str, Any] | None:
    found = condition(await status_of(client, name), type)
    return found if found is not None and found["status"] == status else None


async def test_an_object_that_fails_its_typed_model_is_reported_and_skipped(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    reconciled: list[str] = []

    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        reconciled.append(obj.name or "")
        return Action.done()

    controller = Controller(Widget, reconcile)
    bad = widget("bad")
    bad["spec"]["size"] = "huge"  # written with validation off, or before a schema change
    await client.create(bad)
    async with run(make_manager, controller):
        invalid = await eventually(lambda: _condition_is(client, "bad", "Reconciled", "False"))
        assert invalid["reason"] == "InvalidObject" and "size" in invalid["message"]
        await eventually(lambda: _reasons(client, "bad", "InvalidObject"))
        await client.create(widget("good"))
        await eventually(lambda: "good" in reconciled)  # the controller carries on
        assert "bad" not in reconciled


async def test_a_reconcile_that_hangs_is_cancelled_by_the_timeout_and_retried(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    calls = 0

    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.Event().wait()  # hangs forever
        ctx.status.phase = "Ready"
        return Action.done()

    controller = Controller(Widget, reconcile, options=ControllerOptions(reconcile_timeout=0.2))
    async with run(make_manager, controller) as manager:
        await client.create(widget("slow"))
        await eventually(lambda: _phase_is(client, "slow", "Ready"))
        assert manager.metrics.reconcile_total.labels(controller.name, "timeout")._value.get() == 1


async def test_a_watched_kind_reconciles_the_objects_its_mapping_names(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    seen: list[str] = []

    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        seen.append(obj.name or "")
        return Action.done()

    def by_label(cm: dict[str, Any]) -> list[ObjectRef]:
        target = (cm["metadata"].get("labels") or {}).get("widget")
        return [ObjectRef(cm["metadata"]["namespace"], target)] if target else []

    controller = Controller(Widget, reconcile, watches=[Watches(CONFIGMAP, by_label)])
    await client.create(widget("target"))
    await client.create(widget("bystander"))
    async with run(make_manager, controller):
        await eventually(lambda: sorted(seen) == ["bystander", "target"])
        settings = configmap("settings")
        settings["metadata"]["labels"] = {"widget": "target"}
        await client.create(settings)
        await eventually(lambda: seen.count("target") == 2)
        await client.patch(CONFIGMAP, "settings", {"data": {"k": "v"}})
        await eventually(lambda: seen.count("target") == 3)
        assert seen.count("bystander") == 1


async def test_the_generation_predicate_ignores_metadata_and_status_only_changes(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    seen: list[int] = []

    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        seen.append(obj.spec.size)
        return Action.done()

    controller = Controller(Widget, reconcile, predicates=generation_changed())
    async with run(make_manager, controller):
        await client.create(widget("p", size=1))
        await eventually(lambda: seen == [1])
        await client.patch(WIDGET, "p", {"metadata": {"labels": {"x": "y"}}})
        await client.patch(WIDGET, "p", {"status": {"phase": "Manual"}}, subresource="status")
        await client.patch(WIDGET, "p", {"spec": {"size": 2}})
        await eventually(lambda: seen[-1:] == [2])
        assert seen == [1, 2]


async def test_descendants_are_applied_owned_labelled_and_restored_after_a_hand_edit(
    ssa: None, client: Client, make_manager: Callable[..., Manager]
) -> None:
    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        ctx.apply(configmap(f"{obj.name}-config", size=str(obj.spec.size)))
        return Action.done()

    controller = Controller(Widget, reconcile, owns=[CONFIGMAP])
    async with run(make_manager, controller):
        owner = await client.create(widget("parent", size=4))
        child = await eventually(lambda: _get_cm(client, "parent-config"))
        assert child["data"] == {"size": "4"}
        assert child["metadata"]["labels"][MANAGED_BY_LABEL] == controller.field_manager
        assert child["metadata"]["labels"][OWNER_UID_LABEL] == owner["metadata"]["uid"]
        [reference] = child["metadata"]["ownerReferences"]
        assert reference == {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "name": "parent",
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        await client.patch(CONFIGMAP, "parent-config", {"data": {"size": "tampered"}})
        await eventually(lambda: _cm_data_is(client, "parent-config", {"size": "4"}))
        await client.patch(WIDGET, "parent", {"spec": {"size": 5}})
        await eventually(lambda: _cm_data_is(client, "parent-config", {"size": "5"}))


async def _get_cm(client: Client, name: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = await client.get(CONFIGMAP, name)
    except NotFound:
        return None
    return result


async def _cm_data_is(client: Client, name: str, data: dict[str, str]) -> bool:
    found = await _get_cm(client, name)
    return found is not None and found.get("data") == data


async def test_a_descendant_no_longer_registered_is_pruned(
    ssa: None, client: Client, make_manager: Callable[..., Manager]
) -> None:
    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        for i in range(obj.spec.size):
            ctx.apply(configmap(f"{obj.name}-{i}"))
        return Action.done()

    controller = Controller(Widget, reconcile, owns=[Owns(CONFIGMAP)])
    async with run(make_manager, controller):
        await client.create(widget("many", size=3))
        for i in range(3):
            await eventually(lambda i=i: _get_cm(client, f"many-{i}"))
        bystander = configmap("many-bystander")  # same owner by hand, not applied by the controller
        owner = await client.get(WIDGET, "many")
        bystander["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "name": "many",
                "uid": owner["metadata"]["uid"],
            }
        ]
        await client.create(bystander)
        await client.patch(WIDGET, "many", {"spec": {"size": 1}})
        await eventually(lambda: _absent(client, "many-1", "many-2"))
        assert await _get_cm(client, "many-0") is not None
        assert await _get_cm(client, "many-bystander") is not None


async def _absent(client: Client, *names: str) -> bool:
    return all([await _get_cm(client, name) is None for name in names])


async def test_a_descendant_of_an_undeclared_kind_is_a_permanent_error(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        ctx.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
        return Action.done()

    controller = Controller(Widget, reconcile, owns=[CONFIGMAP])
    async with run(make_manager, controller):
        await client.create(widget("undeclared"))
        failed = await eventually(lambda: _condition_is(client, "undeclared", "Reconciled", "False"))
        assert failed["reason"] == "UndeclaredDescendant" and "owns=[...]" in failed["message"]


async def test_misdeclared_controllers_fail_at_start_naming_the_declaration(
    make_manager: Callable[..., Manager],
) -> None:
    async def reconcile(obj: Any, ctx: Context[Any]) -> None:
        return None

    unknown = Controller(GroupVersionKind("example.com", "v1", "Gadget"), reconcile)
    with pytest.raises(DeclarationError, match=r"kind .*Gadget.*does not serve"):
        async with run(make_manager, unknown):
            pass
    namespaces = GroupVersionKind("", "v1", "Namespace")
    cluster_child = Controller(Widget, reconcile, owns=[namespaces])
    with pytest.raises(DeclarationError, match=r"owns\[0\] namespaces is cluster-scoped"):
        async with run(make_manager, cluster_child):
            pass
    with pytest.raises(DeclarationError, match="two controllers"):
        manager = make_manager()
        manager.add(Controller(Widget, reconcile))
        manager.add(Controller(Widget, reconcile))


async def test_descendants_once_applied_and_no_longer_registered_are_pruned_but_adopted_ones_are_kept(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    """Pruning on its own (no server-side apply needed): children carrying the owner's UID label and
    controller reference go when not registered; one made by hand without the label stays."""

    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        return Action.done()  # registers no descendant

    owner = await client.create(widget("owner"))
    uid = owner["metadata"]["uid"]
    reference = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "name": "owner",
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    for name, labelled in (("applied-before", True), ("made-by-hand", False)):
        child = configmap(name)
        child["metadata"]["ownerReferences"] = [reference]
        if labelled:
            child["metadata"]["labels"] = {OWNER_UID_LABEL: uid, MANAGED_BY_LABEL: "widget.example.com"}
        await client.create(child)
    controller = Controller(Widget, reconcile, owns=[CONFIGMAP])
    async with run(make_manager, controller):
        await eventually(lambda: _absent(client, "applied-before"))
        await eventually(lambda: controller.reconciles >= 1)
    assert await _get_cm(client, "made-by-hand") is not None
