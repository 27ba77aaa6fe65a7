"""The Operator: declarations become runtime controllers, CRDs and RBAC rules; misdeclarations name
the declaration; an operator runs end to end on the embedded server (reconcile, status, cleanup,
timer, mapped watches, namespace scope)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from pydantic import BaseModel

from kubevisor.api import GroupVersionKind, ResourceInfo
from kubevisor.client import Client
from kubevisor.operator import Declaration, Operator, PolicyRule
from kubevisor.resource import Resource
from kubevisor.runtime import Action, Context, ControllerOptions, DaemonContext, DeclarationError, ObjectRef
from kubevisor.supervisor import Restart
from kubevisor.testing import running, wait_for, wait_gone

from .conftest import Gizmo, gizmo

HERE = os.path.relpath(__file__)  # declarations name files relative to the working directory
CONFIG_MAP = GroupVersionKind("", "v1", "ConfigMap")
SECRET = GroupVersionKind("", "v1", "Secret")
NAMESPACE = GroupVersionKind("", "v1", "Namespace")
CLUSTER_ROLE = GroupVersionKind("rbac.authorization.k8s.io", "v1", "ClusterRole")


class NoteSpec(BaseModel):
    text: str


class Note(Resource, group="example.com", version="v1", kind="Note"):
    spec: NoteSpec


class NoteV2(Note, version="v2", storage=True):
    spec: NoteSpec


class Board(Resource, group="example.com", version="v1", kind="Board", scope="Cluster"):
    spec: NoteSpec


async def nothing(obj: Any, ctx: Any) -> None:
    return None


# -- declarations --------------------------------------------------------------------------------


def test_decorators_return_the_function_unchanged_so_it_stays_testable() -> None:
    operator = Operator("notes")
    assert operator.reconciler(Note)(nothing) is nothing
    assert operator.cleanup(Note)(nothing) is nothing
    assert operator.daemon(Note)(nothing) is nothing
    assert operator.timer(Note, interval=5, name="tick")(nothing) is nothing


def test_a_second_reconciler_for_a_kind_names_both_declarations() -> None:
    operator = Operator("notes")

    @operator.reconciler(Note)
    async def first(note: Note, ctx: Context[Note]) -> None: ...

    with pytest.raises(DeclarationError) as raised:

        @operator.reconciler(Note, owns=[CONFIG_MAP])
        async def second(note: Note, ctx: Context[Note]) -> None: ...

    message = str(raised.value)
    assert message.startswith("@notes.reconciler(Note, owns=[ConfigMap]) on ")
    assert "second" in message and "first" in message and HERE in message


def test_a_declaration_reads_as_decorator_function_and_location() -> None:
    declaration = Declaration.of("@notes.cleanup(Note)", nothing)
    line = nothing.__code__.co_firstlineno
    assert str(declaration) == f"@notes.cleanup(Note) on nothing ({HERE}:{line})"


def test_something_that_is_not_a_kind_is_rejected_where_it_is_declared() -> None:
    operator = Operator("notes")
    with pytest.raises(
        DeclarationError, match=r"@notes.reconciler\('Note'\) on nothing .*'Note' is not a kind"
    ):
        operator.reconciler("Note")(nothing)  # type: ignore[arg-type]


def test_two_timers_with_one_name_are_rejected() -> None:
    operator = Operator("notes")
    operator.timer(Note, interval=5)(nothing)
    with pytest.raises(DeclarationError, match="a daemon or timer named 'nothing' is already declared"):
        operator.daemon(Note)(nothing)


def test_a_timer_with_a_non_positive_interval_is_rejected() -> None:
    with pytest.raises(
        DeclarationError, match=r"@notes.timer\(Note, interval=0\).*interval must be positive"
    ):
        Operator("notes").timer(Note, interval=0)(nothing)


def test_watches_without_a_reconciler_fail_when_the_controllers_are_built() -> None:
    operator = Operator("notes")
    operator.watches(CONFIG_MAP, reconciles=Note)(lambda obj: [])
    with pytest.raises(
        DeclarationError, match=r"@notes.watches\(ConfigMap, reconciles=Note\).*has no reconciler"
    ):
        operator.controllers()


def test_an_operator_that_declares_nothing_cannot_be_built() -> None:
    with pytest.raises(DeclarationError, match="declares nothing"):
        Operator("empty").controllers()


# -- controllers ---------------------------------------------------------------------------------


def test_each_kind_becomes_one_controller_with_its_cleanup_daemons_timers_and_watches() -> None:
    operator = Operator("notes")
    operator.reconciler(Note, owns=[CONFIG_MAP])(nothing)
    operator.cleanup(Note)(nothing)
    operator.daemon(Note, name="follow", restart=Restart.PERMANENT)(nothing)
    operator.timer(Note, interval=60, name="tick")(nothing)
    operator.watches(SECRET, reconciles=Note)(lambda obj: [ObjectRef("a", "b")])
    [controller] = operator.controllers()
    assert controller.kind is Note
    assert controller.reconcile is nothing and controller.cleanup is nothing
    assert [o.kind for o in controller.owns] == [CONFIG_MAP]
    assert [d.id for d in controller.daemons] == ["follow", "tick"]
    assert [w.kind for w in controller.watches] == [SECRET]
    assert controller.field_manager == "notes"  # the operator's name labels its descendants


def test_a_kind_with_only_a_timer_gets_a_controller_that_reconciles_nothing() -> None:
    operator = Operator("notes")
    operator.timer(Note, interval=60)(nothing)
    [controller] = operator.controllers()
    assert [d.id for d in controller.daemons] == ["nothing"]


def test_a_reconcilers_own_options_win_over_the_operators() -> None:
    operator = Operator("notes", options=ControllerOptions(workers=2))
    operator.reconciler(Note, options=ControllerOptions(workers=3, field_manager="scribe"))(nothing)
    operator.reconciler(Board)(nothing)
    note, board = operator.controllers()
    assert (note.options.workers, note.field_manager) == (3, "scribe")
    assert (board.options.workers, board.field_manager) == (2, "notes")


def test_a_namespace_scopes_namespaced_kinds_and_leaves_cluster_scoped_ones_cluster_wide() -> None:
    operator = Operator("notes")
    operator.reconciler(Note)(nothing)
    operator.reconciler(Board)(nothing)
    note, board = operator.controllers(namespace="team-a")
    assert (note.options.namespace, board.options.namespace) == ("team-a", None)


def test_a_cluster_scoped_descendant_of_a_namespaced_owner_is_rejected_naming_the_declaration() -> None:
    operator = Operator("notes")

    @operator.reconciler(Note, owns=[CONFIG_MAP, CLUSTER_ROLE])
    async def reconcile(note: Note, ctx: Context[Note]) -> None: ...

    with pytest.raises(DeclarationError) as raised:
        operator.controllers()
    message = str(raised.value)
    assert message.startswith("@notes.reconciler(Note, owns=[ConfigMap, ClusterRole]) on ")
    assert f"({HERE}:" in message
    assert "ClusterRole is cluster-scoped, so its objects have no namespace" in message


def test_a_cluster_scoped_owner_may_own_namespaced_descendants() -> None:
    operator = Operator("boards")
    operator.reconciler(Board, owns=[CONFIG_MAP, CLUSTER_ROLE])(nothing)
    assert len(operator.controllers()) == 1


def test_a_controller_pinned_to_another_namespace_than_the_operators_is_rejected() -> None:
    operator = Operator("notes")
    operator.reconciler(Note, owns=[CONFIG_MAP], options=ControllerOptions(namespace="team-a"))(nothing)
    assert operator.controllers(namespace="team-a")[0].options.namespace == "team-a"
    with pytest.raises(
        DeclarationError, match="pinned to namespace 'team-a' but the operator runs in namespace"
    ):
        operator.controllers(namespace="team-b")


# -- CRDs and RBAC -------------------------------------------------------------------------------


def test_crds_cover_every_typed_resource_declared_one_crd_per_kind() -> None:
    operator = Operator("notes", resources=[NoteV2])
    operator.reconciler(Note)(nothing)
    operator.watches(Board, reconciles=Note)(lambda obj: [])
    crds = {crd["metadata"]["name"]: crd for crd in operator.crds()}
    assert sorted(crds) == ["boards.example.com", "notes.example.com"]
    versions = crds["notes.example.com"]["spec"]["versions"]
    assert [(v["name"], v["storage"]) for v in versions] == [("v2", True), ("v1", False)]
    assert crds["boards.example.com"]["spec"]["scope"] == "Cluster"
    assert operator.resources == (NoteV2, Note, Board)


def test_rbac_rules_grant_what_the_declarations_use_and_nothing_more() -> None:
    operator = Operator("notes")
    operator.reconciler(Note, owns=[CONFIG_MAP])(nothing)
    operator.cleanup(Note)(nothing)
    operator.watches(SECRET, reconciles=Note)(lambda obj: [])
    rules = {(r.api_group, r.resource): r.verbs for r in operator.rbac_rules()}
    assert rules == {
        ("", "configmaps"): ("create", "delete", "get", "list", "patch", "watch"),
        ("", "secrets"): ("get", "list", "watch"),
        ("", "events"): ("create", "patch"),
        ("coordination.k8s.io", "leases"): ("create", "get", "update"),
        ("example.com", "notes"): ("get", "list", "patch", "watch"),
        ("example.com", "notes/finalizers"): ("update",),
    }
    # Note has no status subresource (no status field): status writes patch the object itself.


def test_rbac_rules_patch_the_status_subresource_when_there_is_one_and_skip_leases_on_request() -> None:
    operator = Operator("gizmos")
    operator.reconciler(Gizmo)(nothing)
    rules = operator.rbac_rules(leader_election=False)
    assert rules == [
        PolicyRule("", "events", ("create", "patch")),
        PolicyRule("test.kubevisor.dev", "gizmos", ("get", "list", "watch")),
        PolicyRule("test.kubevisor.dev", "gizmos/status", ("patch",)),
    ]
    assert rules[1].to_wire() == {
        "apiGroups": ["test.kubevisor.dev"],
        "resources": ["gizmos"],
        "verbs": ["get", "list", "watch"],
    }


def test_rbac_rules_name_a_kind_unknown_offline_by_its_default_plural_or_its_resource_info() -> None:
    operator = Operator("x")
    operator.reconciler(GroupVersionKind("example.com", "v1", "Policy"))(nothing)
    info = ResourceInfo("example.com", "v1", "Octopus", "octopodes", "octopus", True)
    operator.reconciler(info)(nothing)
    resources = {r.resource for r in operator.rbac_rules()}
    assert {"policies", "octopodes"} <= resources


# -- against the embedded server -----------------------------------------------------------------


async def test_check_names_the_declaration_of_a_kind_the_server_does_not_serve(kube_client: Client) -> None:
    operator = Operator("notes")

    @operator.reconciler(CONFIG_MAP)
    async def reconcile(cm: dict[str, Any], ctx: Context[Any]) -> None: ...

    @operator.watches(GroupVersionKind("example.com", "v1", "Gadget"), reconciles=CONFIG_MAP)
    def gadgets(obj: dict[str, Any]) -> list[ObjectRef]:
        return []

    with pytest.raises(DeclarationError) as raised:
        await operator.check(kube_client)
    message = str(raised.value)
    assert message.startswith("@notes.watches(Gadget, reconciles=ConfigMap) on ")
    assert "watched kind Gadget: the server does not serve it (is its CRD installed?)" in message


async def test_check_rejects_a_cluster_scoped_descendant_known_only_to_the_server(
    kube_client: Client,
) -> None:
    # Not in the built-in catalogue offline? Namespaces are: use a ResourceInfo-free GVK the server knows.
    operator = Operator("notes")
    operator.reconciler(CONFIG_MAP, owns=[NAMESPACE])(nothing)
    with pytest.raises(DeclarationError, match="Namespace is cluster-scoped"):
        await operator.check(kube_client)


async def test_an_operator_reconciles_writes_status_runs_timers_and_cleans_up_end_to_end(
    kube_client: Client, namespace: str, gizmos: None
) -> None:
    operator = Operator("gizmo-operator")
    ticks: list[str] = []
    ticked = asyncio.Event()
    cleaned: list[str] = []

    @operator.reconciler(Gizmo)
    async def reconcile(obj: Gizmo, ctx: Context[Gizmo]) -> Action:
        ctx.status.phase = f"size-{obj.spec.size}"
        ctx.condition("Ready", True, reason="Sized")
        return Action.done()

    @operator.cleanup(Gizmo)
    async def forget(obj: Gizmo, ctx: Context[Gizmo]) -> None:
        cleaned.append(obj.name or "")

    @operator.timer(Gizmo, interval=0.01)
    async def tick(obj: Gizmo, ctx: DaemonContext) -> None:
        ticks.append(obj.name or "")
        ticked.set()

    async with running(operator, kube_client, namespace=namespace, install_crds=False):
        await kube_client.create(gizmo("g", namespace, size=2))
        stored = await wait_for(
            kube_client, Gizmo, "g", lambda g: g.status.phase == "size-2", namespace=namespace
        )
        assert stored.status.observedGeneration == 1
        assert stored.metadata.finalizers == ["kubevisor.dev/gizmo.test.kubevisor.dev"]
        await kube_client.patch(Gizmo, "g", {"spec": {"size": 3}}, namespace=namespace)
        await wait_for(kube_client, Gizmo, "g", lambda g: g.status.phase == "size-3", namespace=namespace)
        async with asyncio.timeout(30):  # a hang guard: the timer ticks every 10 ms
            await ticked.wait()
        await kube_client.delete(Gizmo, "g", namespace=namespace)
        await wait_gone(kube_client, Gizmo, "g", namespace=namespace)
    # At least once, as upstream finalizers promise (a cleanup must be idempotent): the key may be
    # handed out again before the cache sees the controller's own finalizer removal.
    assert set(cleaned) == {"g"}
    assert set(ticks) == {"g"}


async def test_a_mapped_watch_reconciles_the_objects_its_function_names(
    kube_client: Client, namespace: str, gizmos: None
) -> None:
    operator = Operator("gizmo-operator")

    @operator.reconciler(Gizmo)
    async def reconcile(obj: Gizmo, ctx: Context[Gizmo]) -> None:
        if ctx.client is not None:
            try:
                cm = await ctx.client.get(CONFIG_MAP, "sizes", namespace=namespace)
            except Exception:
                return
            ctx.status.phase = cm["data"].get(obj.name or "", "unknown")

    @operator.watches(CONFIG_MAP, reconciles=Gizmo)
    def sizes(cm: dict[str, Any]) -> list[tuple[str, str]]:
        return [(cm["metadata"]["namespace"], name) for name in (cm.get("data") or {})]

    async with running(operator, kube_client, namespace=namespace, install_crds=False):
        await kube_client.create(gizmo("g", namespace))
        await kube_client.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "sizes", "namespace": namespace},
                "data": {"g": "huge"},
            }
        )
        await wait_for(kube_client, Gizmo, "g", lambda g: g.status.phase == "huge", namespace=namespace)


async def test_an_operator_run_in_one_namespace_leaves_the_others_alone(
    kube_client: Client, namespace: str, gizmos: None
) -> None:
    seen: list[str] = []
    operator = Operator("gizmo-operator")

    @operator.reconciler(Gizmo)
    async def reconcile(obj: Gizmo, ctx: Context[Gizmo]) -> None:
        seen.append(f"{obj.namespace}/{obj.name}")
        ctx.status.phase = "seen"

    other = f"other-{namespace.split('-')[0]}"
    await kube_client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    try:
        async with running(operator, kube_client, namespace=namespace, install_crds=False):
            await kube_client.create(gizmo("elsewhere", other))
            await kube_client.create(gizmo("here", namespace))
            await wait_for(
                kube_client, Gizmo, "here", lambda g: g.status.phase == "seen", namespace=namespace
            )
        assert set(seen) == {f"{namespace}/here"}  # its own status write reconciles it again
    finally:
        await kube_client.delete(NAMESPACE, other)


async def test_running_an_operator_twice_on_one_server_in_sequence_works(
    kube_client: Client, namespace: str, gizmos: None
) -> None:
    operator = Operator("gizmo-operator")
    operator.reconciler(Gizmo)(nothing)
    for _ in range(2):
        async with running(operator, kube_client, namespace=namespace, install_crds=False) as manager:
            assert manager.ready
    await asyncio.sleep(0)
