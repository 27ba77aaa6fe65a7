"""Server-side apply and managedFields, scenario by scenario, against upstream's recorded behaviour."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubevisor.api import (
    LAST_APPLIED_ANNOTATION,
    BadRequest,
    Conflict,
    FieldSet,
    Invalid,
    TypeResolver,
    apply,
    builtin_definitions,
    definition_ref,
    field_manager_for,
    format_path,
    format_time,
    manager_from_user_agent,
    owned_fields,
    update_managed_fields,
)

T0 = datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
T2 = T0 + timedelta(minutes=2)

RESOLVER = TypeResolver(builtin_definitions())
DEPLOYMENT = RESOLVER.resource(definition_ref("io.k8s.api.apps.v1.Deployment"))
CONFIGMAP = RESOLVER.resource(definition_ref("io.k8s.api.core.v1.ConfigMap"))

WIDGET = TypeResolver().resource(
    {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer"},
                    "image": {"type": "string"},
                    "config": {"type": "object", "additionalProperties": {"type": "string"}},
                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "items": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                        },
                    },
                    "selector": {
                        "type": "object",
                        "x-kubernetes-map-type": "atomic",
                        "properties": {"app": {"type": "string"}, "tier": {"type": "string"}},
                    },
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            },
            "status": {
                "type": "object",
                "properties": {"phase": {"type": "string"}, "ready": {"type": "integer"}},
            },
        },
    }
)


def widget(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", **meta},
    }
    if spec is not None:
        obj["spec"] = spec
    return obj


def apply_widget(
    live: dict[str, Any] | None, config: dict[str, Any], manager: str, **kw: Any
) -> dict[str, Any]:
    kw.setdefault("now", T0)
    return apply(live, config, manager=manager, api_version="example.com/v1", types=WIDGET, **kw)


def nginx(replicas: int = 3, image: str = "nginx:1.14.2") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx-deployment", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    }


def apply_deployment(
    live: dict[str, Any] | None, config: dict[str, Any], manager: str, **kw: Any
) -> dict[str, Any]:
    kw.setdefault("now", T0)
    return apply(live, config, manager=manager, api_version="apps/v1", types=DEPLOYMENT, **kw)


def entries(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (e.get("manager", ""), e["operation"], e.get("subresource", ""))
        for e in obj["metadata"]["managedFields"]
    ]


def owned(obj: dict[str, Any], manager: str, operation: str = "Apply", subresource: str = "") -> set[str]:
    return {format_path(p) for p in owned_fields(obj, manager, operation, subresource)}


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- apply: creation, idempotence, the recorded entry ------------------------------------------------


def test_applying_to_a_missing_object_creates_it_with_the_apply_entry_kubectl_records() -> None:
    created = apply_deployment(None, nginx(), "kubectl")
    assert created["spec"] == nginx()["spec"]
    assert created["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": "2024-05-06T07:08:09Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": json.loads(
                r'{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}'
            ),
        }
    ]


def test_applying_the_same_configuration_twice_changes_nothing_not_even_the_time() -> None:
    first = apply_deployment(None, nginx(), "kubectl", now=T0)
    second = apply_deployment(first, nginx(), "kubectl", now=T1)
    assert second == first


def test_an_apply_that_changes_the_object_moves_the_managers_time() -> None:
    first = apply_deployment(None, nginx(), "kubectl", now=T0)
    second = apply_deployment(first, nginx(replicas=4), "kubectl", now=T1)
    assert second["spec"]["replicas"] == 4
    assert second["metadata"]["managedFields"][0]["time"] == "2024-05-06T07:09:09Z"


def test_apply_never_modifies_its_arguments_nor_shares_containers_with_them() -> None:
    live = apply_deployment(None, nginx(), "kubectl")
    live_before, config = copy.deepcopy(live), nginx(replicas=5)
    config_before = copy.deepcopy(config)
    result = apply_deployment(live, config, "kubectl")
    result["spec"]["template"]["spec"]["containers"][0]["ports"].append({"containerPort": 1})
    result["metadata"]["labels"]["x"] = "y"
    assert live == live_before
    assert config == config_before


def test_a_second_manager_applying_identical_values_shares_ownership_without_conflict() -> None:
    live = apply_widget(None, widget({"replicas": 2, "image": "a"}), "alice")
    shared = apply_widget(live, widget({"replicas": 2}), "bob", now=T1)
    assert owned(shared, "alice") >= {".spec.replicas", ".spec.image"}
    assert owned(shared, "bob") == {".spec.replicas"}
    # Nothing changed, so bob's new entry carries no time, as upstream leaves it (and, timeless, sorts first).
    assert [(e["manager"], e.get("time")) for e in shared["metadata"]["managedFields"]] == [
        ("bob", None),
        ("alice", "2024-05-06T07:08:09Z"),
    ]


# --- conflicts ---------------------------------------------------------------------------------------


def test_two_appliers_conflict_on_replicas_with_upstreams_status() -> None:
    live = apply_deployment(None, nginx(), "kubectl")
    scale = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx-deployment"},
        "spec": {"replicas": 5},
    }
    with pytest.raises(Conflict) as caught:
        apply_deployment(live, scale, "autoscaler")
    assert caught.value.status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas',
        "reason": "Conflict",
        "details": {
            "causes": [
                {
                    "reason": "FieldManagerConflict",
                    "message": 'conflict with "kubectl"',
                    "field": ".spec.replicas",
                }
            ]
        },
        "code": 409,
    }


def test_force_takes_ownership_from_the_other_manager() -> None:
    live = apply_deployment(None, nginx(), "kubectl")
    scale = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx-deployment"},
        "spec": {"replicas": 5},
    }
    taken = apply_deployment(live, scale, "autoscaler", force=True, now=T1)
    assert taken["spec"]["replicas"] == 5
    assert owned(taken, "autoscaler") == {".spec.replicas"}
    assert ".spec.replicas" not in owned(taken, "kubectl")
    # kubectl now leaves replicas out of its configuration, as the docs advise, without conflict or removal.
    config = nginx()
    del config["spec"]["replicas"]
    again = apply_deployment(taken, config, "kubectl", now=T2)
    assert again["spec"]["replicas"] == 5


def test_a_conflict_with_an_update_manager_names_its_api_version() -> None:
    live = update_managed_fields(
        None, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"key": "old"}},
        manager="kubectl", api_version="v1", types=CONFIGMAP, now=T0,
    )  # fmt: skip
    with pytest.raises(Conflict) as caught:
        apply(live, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"key": "new"}},
              manager="other", api_version="v1", types=CONFIGMAP, now=T1)  # fmt: skip
    assert caught.value.message == 'Apply failed with 1 conflict: conflict with "kubectl" using v1: .data.key'
    assert caught.value.causes == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl" using v1',
            "field": ".data.key",
        }
    ]


def test_several_conflicts_are_grouped_by_manager_in_upstreams_order() -> None:
    live = apply_widget(None, widget({"replicas": 1, "image": "a", "config": {"k": "v"}}), "zed")
    live = apply_widget(live, widget({"tags": ["x"]}, labels={"team": "a"}), "amy", now=T1)
    clash = widget({"replicas": 2, "image": "b", "tags": ["x"]}, labels={"team": "b"})
    with pytest.raises(Conflict) as caught:
        apply_widget(live, clash, "newcomer", now=T2)
    assert caught.value.message == (
        "Apply failed with 3 conflicts: "
        'conflicts with "amy":\n- .metadata.labels.team\n'
        'conflicts with "zed":\n- .spec.image\n- .spec.replicas'
    )
    assert [c["field"] for c in caught.value.causes] == [
        ".metadata.labels.team",
        ".spec.image",
        ".spec.replicas",
    ]
    assert caught.value.code == 409 and caught.value.reason == "Conflict"


def test_a_conflict_on_a_subresource_entry_names_the_subresource() -> None:
    live = apply_widget(None, widget({"replicas": 1}), "op")
    status = widget() | {"status": {"phase": "Ready"}}
    live = apply_widget(live, status, "controller", subresource="status", now=T1)
    with pytest.raises(Conflict) as caught:
        apply_widget(
            live, widget() | {"status": {"phase": "Broken"}}, "meddler", subresource="status", now=T2
        )
    assert caught.value.message == (
        'Apply failed with 1 conflict: conflict with "controller" with subresource "status": .status.phase'
    )


# --- removing fields a manager stops applying --------------------------------------------------------


def test_a_field_the_manager_stops_applying_is_removed() -> None:
    live = apply_widget(None, widget({"replicas": 1, "image": "a"}), "op")
    after = apply_widget(live, widget({"replicas": 1}), "op", now=T1)
    assert after["spec"] == {"replicas": 1}
    assert owned(after, "op") == {".spec.replicas"}


def test_a_field_another_applier_also_owns_is_kept() -> None:
    live = apply_widget(None, widget({"replicas": 1, "image": "a"}), "op")
    live = apply_widget(live, widget({"image": "a"}), "friend", now=T1)
    after = apply_widget(live, widget({"replicas": 1}), "op", now=T2)
    assert after["spec"] == {"replicas": 1, "image": "a"}
    assert owned(after, "friend") == {".spec.image"}


def test_a_field_an_update_manager_took_over_is_kept() -> None:
    live = apply_widget(None, widget({"replicas": 1, "image": "a"}), "op")
    edited = copy.deepcopy(live)
    edited["spec"]["image"] = "b"
    live = update_managed_fields(
        live, edited, manager="kubectl-edit", api_version="example.com/v1", types=WIDGET, now=T1
    )
    after = apply_widget(live, widget({"replicas": 1}), "op", now=T2)
    assert after["spec"] == {"replicas": 1, "image": "b"}


def test_removing_every_field_removes_the_struct_nobody_else_owns() -> None:
    live = apply_widget(None, widget({"replicas": 1}, labels={"a": "1"}), "op")
    after = apply_widget(live, widget(), "op", now=T1)
    assert "spec" not in after
    assert "labels" not in after["metadata"]
    assert after["metadata"] == {"name": "w"}
    assert "managedFields" not in after["metadata"]


def test_unowned_fields_set_by_the_server_survive_pruning() -> None:
    live = apply_widget(None, widget({"replicas": 1, "image": "a"}), "op")
    live["metadata"] |= {"uid": "u-1", "resourceVersion": "7", "creationTimestamp": "2024-01-01T00:00:00Z"}
    live["status"] = {"phase": "Ready"}
    after = apply_widget(live, widget({"replicas": 1}), "op", now=T1)
    assert after["metadata"]["uid"] == "u-1" and after["status"] == {"phase": "Ready"}


# --- list semantics ----------------------------------------------------------------------------------


def test_containers_are_merged_by_name_and_each_manager_owns_its_own() -> None:
    live = apply_deployment(None, nginx(), "kubectl")
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx-deployment"},
        "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy"}]}}},
    }
    merged = apply_deployment(live, sidecar, "mesh-injector", now=T1)
    containers = merged["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["nginx", "proxy"]
    assert containers[0]["ports"] == [{"containerPort": 80}]
    assert owned(merged, "mesh-injector") == {
        '.spec.template.spec.containers[name="proxy"]',
        '.spec.template.spec.containers[name="proxy"].name',
        '.spec.template.spec.containers[name="proxy"].image',
    }
    # The injector stops injecting: only its container goes.
    sidecar["spec"]["template"]["spec"]["containers"] = []
    removed = apply_deployment(merged, sidecar, "mesh-injector", now=T2)
    assert [c["name"] for c in removed["spec"]["template"]["spec"]["containers"]] == ["nginx"]


def test_map_list_items_take_the_applied_order_with_live_only_items_kept_in_between() -> None:
    live = apply_widget(None, widget({"items": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}), "one")
    live = apply_widget(live, widget({"items": [{"name": "x"}]}), "two", now=T1)
    assert [i["name"] for i in live["spec"]["items"]] == ["a", "b", "c", "x"]
    reordered = apply_widget(
        live, widget({"items": [{"name": "c"}, {"name": "b"}, {"name": "a"}]}), "one", now=T2
    )
    # Upstream's merge walks both lists: x, only live, stays right after c, the live item before it.
    assert [i["name"] for i in reordered["spec"]["items"]] == ["c", "x", "b", "a"]


def test_set_items_are_owned_by_value_and_merged_from_several_managers() -> None:
    live = apply_widget(None, widget({"tags": ["a", "b"]}), "one")
    live = apply_widget(live, widget({"tags": ["b", "c"]}), "two", now=T1)
    assert live["spec"]["tags"] == ["a", "b", "c"]
    assert owned(live, "two") == {'.spec.tags[="b"]', '.spec.tags[="c"]'}
    after = apply_widget(live, widget({"tags": ["a"]}), "two", now=T2)
    assert after["spec"]["tags"] == ["a", "b"]


def test_finalizers_are_a_set_so_two_controllers_keep_their_own() -> None:
    meta_only = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx-deployment"}}
    live = apply_deployment(
        None, meta_only | {"metadata": {"name": "nginx-deployment", "finalizers": ["a.io/x"]}}, "a"
    )
    live = apply_deployment(
        live, meta_only | {"metadata": {"name": "nginx-deployment", "finalizers": ["b.io/y"]}}, "b"
    )
    assert live["metadata"]["finalizers"] == ["a.io/x", "b.io/y"]
    done = apply_deployment(live, meta_only, "a", now=T1)
    assert done["metadata"]["finalizers"] == ["b.io/y"]


def test_atomic_lists_are_replaced_whole_and_owned_as_one_field() -> None:
    live = apply_widget(None, widget({"args": ["--a", "--b"]}), "one")
    assert owned(live, "one") == {".spec.args"}
    with pytest.raises(Conflict) as caught:
        apply_widget(live, widget({"args": ["--c"]}), "two", now=T1)
    assert caught.value.causes[0]["field"] == ".spec.args"
    replaced = apply_widget(live, widget({"args": ["--c"]}), "two", force=True, now=T1)
    assert replaced["spec"]["args"] == ["--c"]
    assert owned(replaced, "one") == set()


def test_atomic_maps_are_replaced_whole() -> None:
    live = apply_widget(None, widget({"selector": {"app": "a", "tier": "web"}}), "one")
    replaced = apply_widget(live, widget({"selector": {"app": "b"}}), "one", now=T1)
    assert replaced["spec"]["selector"] == {"app": "b"}
    assert owned(replaced, "one") == {".spec.selector"}


def test_preserved_unknown_fields_are_owned_key_by_key() -> None:
    live = apply_widget(None, widget({"extra": {"a": {"deep": 1}, "b": [1, 2]}}), "one")
    assert owned(live, "one") == {".spec.extra.a", ".spec.extra.a.deep", ".spec.extra.b"}
    encoded = live["metadata"]["managedFields"][0]["fieldsV1"]
    assert encoded == {"f:spec": {"f:extra": {"f:a": {".": {}, "f:deep": {}}, "f:b": {}}}}


# --- subresources ------------------------------------------------------------------------------------


def test_status_applied_through_the_subresource_is_owned_separately() -> None:
    main_reset = FieldSet([("f:status",)])
    status_reset = FieldSet([("f:spec",)])
    live = apply_widget(None, widget({"replicas": 1}), "op", reset_fields=main_reset)
    status = widget() | {"status": {"phase": "Ready", "ready": 1}}
    live = apply_widget(live, status, "op", subresource="status", reset_fields=status_reset, now=T1)
    assert live["status"] == {"phase": "Ready", "ready": 1}
    assert entries(live) == [("op", "Apply", ""), ("op", "Apply", "status")]
    assert owned(live, "op") == {".spec.replicas"}
    assert owned(live, "op", subresource="status") == {".status.phase", ".status.ready"}
    # Re-applying the main configuration does not prune the status the same manager applied via /status.
    again = apply_widget(live, widget({"replicas": 2}), "op", reset_fields=main_reset, now=T2)
    assert again["status"] == {"phase": "Ready", "ready": 1}


def test_status_sent_to_the_main_endpoint_is_not_owned_when_reset() -> None:
    live = apply_widget(
        None,
        widget({"replicas": 1}) | {"status": {"phase": "X"}},
        "op",
        reset_fields=FieldSet([("f:status",)]),
    )
    assert owned(live, "op") == {".spec.replicas"}


# --- bad apply configurations ------------------------------------------------------------------------


def test_managed_fields_in_an_apply_configuration_are_rejected_as_upstream_does() -> None:
    config = widget({"replicas": 1})
    config["metadata"]["managedFields"] = [{"manager": "x"}]
    with pytest.raises(BadRequest) as caught:
        apply_widget(None, config, "op")
    assert caught.value.message == "metadata.managedFields must be nil"
    config["metadata"]["managedFields"] = None
    assert apply_widget(None, config, "op")["spec"] == {"replicas": 1}


def test_a_configuration_for_another_version_is_rejected() -> None:
    with pytest.raises(BadRequest) as caught:
        apply(
            None,
            widget() | {"apiVersion": "example.com/v2"},
            manager="op",
            api_version="example.com/v1",
            types=WIDGET,
            now=T0,
        )
    assert caught.value.message == (
        "Incorrect version specified in apply patch. Specified patch version: example.com/v2, expected: example.com/v1"
    )


def test_a_field_the_schema_does_not_declare_is_rejected_with_its_path() -> None:
    with pytest.raises(BadRequest) as caught:
        apply_widget(None, widget({"replicas": 1, "bogus": True}, namespace="ns"), "op")
    assert caught.value.code == 400
    assert caught.value.message == (
        "failed to create typed patch object (ns/w; example.com/v1, Kind=Widget): .spec.bogus: field not declared in schema"
    )


def test_duplicate_map_list_items_in_a_configuration_are_rejected() -> None:
    with pytest.raises(BadRequest) as caught:
        apply_widget(None, widget({"items": [{"name": "a"}, {"name": "a"}]}), "op")
    assert caught.value.message.endswith('.spec.items: duplicate entries for key [name="a"]')


def test_an_apply_configuration_that_is_not_an_object_or_lacks_a_manager_is_rejected() -> None:
    with pytest.raises(BadRequest):
        apply_widget(None, ["not", "an", "object"], "op")  # type: ignore[arg-type]
    with pytest.raises(Invalid) as caught:
        apply_widget(None, widget(), "")
    assert caught.value.message == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    )


# --- kubectl: client-side apply, edits, and the upgrade to server-side apply -------------------------


def test_server_side_apply_then_a_client_side_edit_by_another_manager() -> None:
    live = apply_deployment(None, nginx(), "kubectl")
    edited = copy.deepcopy(live)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.25"
    edited = update_managed_fields(
        live, edited, manager="kubectl-edit", api_version="apps/v1", types=DEPLOYMENT, now=T1
    )
    assert entries(edited) == [("kubectl", "Apply", ""), ("kubectl-edit", "Update", "")]
    assert owned(edited, "kubectl-edit", "Update") == {'.spec.template.spec.containers[name="nginx"].image'}
    assert '.spec.template.spec.containers[name="nginx"].image' not in owned(edited, "kubectl")
    with pytest.raises(Conflict) as caught:
        apply_deployment(edited, nginx(), "kubectl", now=T2)
    assert caught.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: '
        '.spec.template.spec.containers[name="nginx"].image'
    )
    forced = apply_deployment(edited, nginx(), "kubectl", force=True, now=T2)
    assert forced["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.14.2"
    assert entries(forced) == [("kubectl", "Apply", "")]


def client_side_applied(config: dict[str, Any]) -> dict[str, Any]:
    """A Deployment as classic `kubectl apply` creates it: annotation plus an Update entry."""
    annotated = copy.deepcopy(config)
    annotated["metadata"]["annotations"] = {
        LAST_APPLIED_ANNOTATION: json.dumps(config, sort_keys=True) + "\n"
    }
    return update_managed_fields(
        None, annotated, manager="kubectl-client-side-apply", api_version="apps/v1", types=DEPLOYMENT, now=T0
    )


def test_kubectl_upgrading_from_client_side_apply_takes_over_without_conflicts() -> None:
    live = client_side_applied(nginx())
    assert entries(live) == [("kubectl-client-side-apply", "Update", "")]
    upgraded = apply_deployment(live, nginx(replicas=4), "kubectl", now=T1)
    assert upgraded["spec"]["replicas"] == 4
    assert ".spec.replicas" in owned(upgraded, "kubectl")
    # kubectl keeps the client-side annotation in step with what it applied server-side.
    recorded = json.loads(upgraded["metadata"]["annotations"][LAST_APPLIED_ANNOTATION])
    assert recorded["spec"]["replicas"] == 4
    assert upgraded["metadata"]["annotations"][LAST_APPLIED_ANNOTATION].endswith("\n")


def test_other_managers_get_no_such_pass_on_client_side_applied_fields() -> None:
    live = client_side_applied(nginx())
    with pytest.raises(Conflict) as caught:
        apply_deployment(live, nginx(replicas=4), "argocd", now=T1)
    assert caught.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )


def test_kubectl_still_conflicts_on_fields_its_last_applied_annotation_does_not_hold() -> None:
    live = client_side_applied(nginx())
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 9
    scaled = update_managed_fields(
        live, scaled, manager="autoscaler", api_version="apps/v1", types=DEPLOYMENT, now=T1
    )
    with pytest.raises(Conflict) as caught:
        apply_deployment(scaled, nginx(replicas=4), "kubectl", now=T2)
    assert caught.value.causes == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "autoscaler" using apps/v1',
            "field": ".spec.replicas",
        }
    ]


# --- update_managed_fields ---------------------------------------------------------------------------


def test_a_create_records_an_update_entry_with_dots_for_the_maps_it_created() -> None:
    created = update_managed_fields(
        None, widget({"replicas": 1, "config": {"k": "v"}}, labels={"a": "b"}),
        manager="kubectl-create", api_version="example.com/v1", types=WIDGET, now=T0,
    )  # fmt: skip
    assert created["metadata"]["managedFields"] == [
        {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "example.com/v1",
            "time": "2024-05-06T07:08:09Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
                "f:spec": {".": {}, "f:config": {".": {}, "f:k": {}}, "f:replicas": {}},
            },
        }
    ]


def test_an_update_takes_changed_fields_from_other_managers_and_merges_into_its_own_entry() -> None:
    live = apply_widget(None, widget({"replicas": 1, "image": "a"}), "op")
    edit = copy.deepcopy(live)
    edit["spec"]["replicas"] = 2
    first = update_managed_fields(
        live, edit, manager="ed", api_version="example.com/v1", types=WIDGET, now=T1
    )
    edit2 = copy.deepcopy(first)
    edit2["spec"]["image"] = "b"
    second = update_managed_fields(
        first, edit2, manager="ed", api_version="example.com/v1", types=WIDGET, now=T2
    )
    assert owned(second, "ed", "Update") == {".spec.replicas", ".spec.image"}
    assert "op" not in {e["manager"] for e in second["metadata"]["managedFields"]}
    assert second["metadata"]["managedFields"][0]["time"] == "2024-05-06T07:10:09Z"


def test_an_update_that_changes_nothing_keeps_entries_and_times() -> None:
    live = apply_widget(None, widget({"replicas": 1}), "op")
    same = update_managed_fields(
        live, copy.deepcopy(live), manager="ed", api_version="example.com/v1", types=WIDGET, now=T1
    )
    assert same == live


def test_removing_a_field_in_an_update_takes_it_from_its_owner() -> None:
    live = apply_widget(None, widget({"replicas": 1, "image": "a"}), "op")
    edit = copy.deepcopy(live)
    del edit["spec"]["image"]
    after = update_managed_fields(
        live, edit, manager="ed", api_version="example.com/v1", types=WIDGET, now=T1
    )
    assert owned(after, "op") == {".spec.replicas"}
    assert entries(after) == [("op", "Apply", "")]


def test_managed_fields_set_to_a_single_empty_entry_are_cleared_for_good() -> None:
    live = apply_widget(None, widget({"replicas": 1}), "op")
    cleared = copy.deepcopy(live)
    cleared["metadata"]["managedFields"] = [{}]
    cleared = update_managed_fields(
        live, cleared, manager="ed", api_version="example.com/v1", types=WIDGET, now=T1
    )
    assert "managedFields" not in cleared["metadata"]
    # Later updates of an object without managed fields do not start tracking again.
    edit = copy.deepcopy(cleared)
    edit["spec"]["replicas"] = 5
    later = update_managed_fields(
        cleared, edit, manager="ed", api_version="example.com/v1", types=WIDGET, now=T2
    )
    assert "managedFields" not in later["metadata"]


def test_managed_fields_sent_in_an_update_replace_the_stored_ones() -> None:
    live = apply_widget(None, widget({"replicas": 1, "image": "a"}), "op")
    rewritten = copy.deepcopy(live)
    rewritten["metadata"]["managedFields"] = [
        {"manager": "someone", "operation": "Apply", "apiVersion": "example.com/v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:image": {}}}}
    ]  # fmt: skip
    after = update_managed_fields(
        live, rewritten, manager="ed", api_version="example.com/v1", types=WIDGET, now=T1
    )
    assert entries(after) == [("someone", "Apply", "")]


def test_managed_fields_left_out_of_an_update_are_kept() -> None:
    live = apply_widget(None, widget({"replicas": 1}), "op")
    edit = copy.deepcopy(live)
    del edit["metadata"]["managedFields"]
    after = update_managed_fields(
        live, edit, manager="ed", api_version="example.com/v1", types=WIDGET, now=T1
    )
    assert after["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_a_status_update_is_recorded_under_the_subresource() -> None:
    live = apply_widget(None, widget({"replicas": 1}), "op")
    status = copy.deepcopy(live)
    status["status"] = {"phase": "Ready"}
    after = update_managed_fields(
        live, status, manager="controller", api_version="example.com/v1", types=WIDGET, subresource="status",
        now=T1, reset_fields=FieldSet([("f:spec",)]),
    )  # fmt: skip
    assert after["metadata"]["managedFields"][1] == {
        "manager": "controller",
        "operation": "Update",
        "apiVersion": "example.com/v1",
        "time": "2024-05-06T07:09:09Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:status": {".": {}, "f:phase": {}}},
        "subresource": "status",
    }


def test_entries_are_ordered_apply_first_then_by_time() -> None:
    live = update_managed_fields(
        None, widget({"replicas": 1}), manager="z-create", api_version="example.com/v1", types=WIDGET, now=T2
    )
    live = apply_widget(live, widget({"image": "a"}), "b-apply", now=T1)
    edit = copy.deepcopy(live)
    edit["spec"]["args"] = ["x"]
    live = update_managed_fields(
        live, edit, manager="a-edit", api_version="example.com/v1", types=WIDGET, now=T0
    )
    assert entries(live) == [("b-apply", "Apply", ""), ("a-edit", "Update", ""), ("z-create", "Update", "")]


def test_more_than_ten_update_managers_fold_the_oldest_into_ancient_changes() -> None:
    live = apply_widget(None, widget({"config": {"seed": "0"}}), "op")
    for i in range(12):
        edit = copy.deepcopy(live)
        edit["spec"]["config"][f"k{i}"] = str(i)
        live = update_managed_fields(
            live,
            edit,
            manager=f"m{i:02d}",
            api_version="example.com/v1",
            types=WIDGET,
            now=T0 + timedelta(seconds=i),
        )
    updaters = [
        (e["manager"], e["time"]) for e in live["metadata"]["managedFields"] if e["operation"] == "Update"
    ]
    # The bucket carries the time of the newest entry folded into it, so it sorts where that one did.
    assert updaters == [("ancient-changes", "2024-05-06T07:08:11Z")] + [
        (f"m{i:02d}", format_time(T0 + timedelta(seconds=i))) for i in range(3, 12)
    ]
    assert owned(live, "ancient-changes", "Update") == {
        ".spec.config.k0",
        ".spec.config.k1",
        ".spec.config.k2",
    }


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        ("kubectl/v1.33.0 (linux/amd64) kubernetes/8adc0f0", "kubectl"),
        ("OpenAPI-Generator/33.1.0/python", "OpenAPI-Generator"),
        (
            "kube-controller-manager/v1.33.0 (linux/amd64) kubernetes/x/system:serviceaccount:kube-system:foo",
            "kube-controller-manager",
        ),
        ("tab\there/1", "tabhere"),
        ("", ""),
        ("x" * 200, "x" * 128),
    ],
)
def test_the_manager_of_an_unnamed_write_comes_from_the_user_agent(user_agent: str, expected: str) -> None:
    assert manager_from_user_agent(user_agent) == expected


def test_a_named_field_manager_wins_over_the_user_agent() -> None:
    assert field_manager_for("kubectl-edit", "kubectl/v1.33.0") == "kubectl-edit"
    assert field_manager_for(None, "kubectl/v1.33.0") == "kubectl"


def test_a_configmap_apply_records_data_keys() -> None:
    live = apply(
        None, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "test-cm", "labels": {"test-label": "test"}},
               "data": {"key": "some value"}},
        manager="kubectl", api_version="v1", types=CONFIGMAP, now=T0,
    )  # fmt: skip
    assert compact(live["metadata"]["managedFields"][0]["fieldsV1"]) == (
        '{"f:data":{"f:key":{}},"f:metadata":{"f:labels":{"f:test-label":{}}}}'
    )


# --- robustness and schema changes -------------------------------------------------------------------


def test_owned_fields_below_a_node_the_schema_made_atomic_become_the_node() -> None:
    granular = TypeResolver().resource({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "sel": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}}}}})  # fmt: skip
    atomic = TypeResolver().resource({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "sel": {"type": "object", "x-kubernetes-map-type": "atomic",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}}}}})  # fmt: skip
    config = widget({"sel": {"a": "1", "b": "2"}})
    live = apply(None, config, manager="op", api_version="example.com/v1", types=granular, now=T0)
    assert owned(live, "op") == {".spec.sel.a", ".spec.sel.b"}
    other = widget({"sel": {"a": "9"}})
    with pytest.raises(Conflict) as caught:
        apply(live, other, manager="new", api_version="example.com/v1", types=atomic, now=T1)
    assert [c["field"] for c in caught.value.causes] == [".spec.sel"]
    again = apply(live, config, manager="op", api_version="example.com/v1", types=atomic, now=T1)
    assert owned(again, "op") == {".spec.sel"}


def test_invalid_stored_managed_fields_do_not_break_an_apply() -> None:
    live = widget({"replicas": 1})
    live["metadata"]["managedFields"] = [{"manager": "x", "operation": "Apply", "fieldsType": "FieldsV2"}]
    after = apply_widget(live, widget({"replicas": 2}), "op")
    assert entries(after) == [("op", "Apply", "")]


def test_invalid_managed_fields_in_an_update_fall_back_to_the_stored_ones() -> None:
    live = apply_widget(None, widget({"replicas": 1}), "op")
    edit = copy.deepcopy(live)
    edit["metadata"]["managedFields"] = [{"manager": "x", "fieldsType": "FieldsV1", "fieldsV1": {"f:a": []}}]
    after = update_managed_fields(
        live, edit, manager="ed", api_version="example.com/v1", types=WIDGET, now=T1
    )
    assert after["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_a_subresource_write_cannot_rewrite_managed_fields() -> None:
    live = apply_widget(None, widget({"replicas": 1}), "op")
    status = copy.deepcopy(live)
    status["metadata"]["managedFields"] = [{}]
    status["status"] = {"phase": "Ready"}
    after = update_managed_fields(
        live, status, manager="ctl", api_version="example.com/v1", types=WIDGET, subresource="status", now=T1
    )
    assert entries(after) == [("op", "Apply", ""), ("ctl", "Update", "status")]


def test_an_untyped_resource_treats_maps_granularly_and_lists_atomically() -> None:
    config = {"apiVersion": "x/v1", "kind": "Thing", "metadata": {"name": "t", "finalizers": ["a/b"]},
              "spec": {"m": {"k": "v"}, "l": [1, 2]}}  # fmt: skip
    live = apply(None, config, manager="op", api_version="x/v1", types=None, now=T0)
    assert owned(live, "op") == {
        '.metadata.finalizers[="a/b"]',
        ".spec",
        ".spec.m",
        ".spec.m.k",
        ".spec.l",
    }


def test_a_raw_schema_is_accepted_as_types() -> None:
    schema = {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}},
    }
    live = apply(None, widget({"x": "1"}), manager="op", api_version="example.com/v1", types=schema, now=T0)
    assert owned(live, "op") == {".spec.x"}


def test_duplicate_items_in_a_stored_list_survive_an_unrelated_apply() -> None:
    live = apply_widget(None, widget({"replicas": 1}), "op")
    live["spec"]["items"] = [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]
    after = apply_widget(live, widget({"replicas": 2}), "op", now=T1)
    assert after["spec"]["items"] == [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]


def test_an_untyped_value_changing_shape_is_recorded_as_modified() -> None:
    live = apply_widget(None, widget({"extra": {"x": {"deep": 1}}}), "op")
    with pytest.raises(Conflict) as caught:
        apply_widget(live, widget({"extra": {"x": "flat"}}), "other", now=T1)
    # The map became a string: the node is modified (a conflict), what was below it removed (none).
    assert [c["field"] for c in caught.value.causes] == [".spec.extra.x"]
    taken = apply_widget(live, widget({"extra": {"x": "flat"}}), "other", force=True, now=T1)
    assert taken["spec"]["extra"] == {"x": "flat"}
    assert owned(taken, "other") == {".spec.extra.x"}
    assert owned(taken, "op") == set()
