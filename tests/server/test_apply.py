"""Server-side apply and managedFields in the embedded server's write path, over real HTTP: apply
creating and updating objects, conflicts and force, fields a manager stops applying, Update entries
for every other write (per subresource), and bad apply bodies rejected as upstream does."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from kubevisor.api import ResourceInfo
from kubevisor.server import APIServer

APPLY = "application/apply-patch+yaml"
CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
GADGETS = "/apis/example.com/v1/namespaces/default/gadgets"


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


async def send(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    raw: str | None = None,
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    data = raw.encode() if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": content_type} if data is not None else {}
    async with http.request(method, path, data=data, headers=headers) as response:
        return response.status, await response.json(content_type=None), response


async def apply(
    http: aiohttp.ClientSession, path: str, config: Any, manager: str | None = "m", **query: str
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    params = dict(query)
    if manager is not None:
        params["fieldManager"] = manager
    suffix = "&".join(f"{k}={v}" for k, v in params.items())
    return await send(http, "PATCH", f"{path}?{suffix}" if suffix else path, config, content_type=APPLY)


def entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["metadata"].get("managedFields") or [])


def entry(
    obj: dict[str, Any], manager: str, operation: str = "Apply", subresource: str = ""
) -> dict[str, Any]:
    found = [
        e
        for e in entries(obj)
        if e.get("manager") == manager
        and e["operation"] == operation
        and e.get("subresource", "") == subresource
    ]
    assert len(found) == 1, entries(obj)
    return found[0]


# --------------------------------------------------------------------------------------- apply


async def test_apply_creates_a_missing_object_with_201_and_an_apply_entry(
    http: aiohttp.ClientSession,
) -> None:
    status, obj, _ = await apply(http, f"{CMS}/a", configmap("a", k="v"), manager="alice")
    assert status == 201
    assert obj["data"] == {"k": "v"} and obj["metadata"]["uid"]
    owned = entry(obj, "alice")
    assert owned["apiVersion"] == "v1" and owned["fieldsType"] == "FieldsV1"
    assert owned["fieldsV1"] == {"f:data": {"f:k": {}}}
    status, fetched, _ = await send(http, "GET", f"{CMS}/a")
    assert fetched["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


async def test_an_apply_body_may_be_yaml(http: aiohttp.ClientSession) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n"
    status, obj, _ = await send(http, "PATCH", f"{CMS}/y?fieldManager=m", raw=text, content_type=APPLY)
    assert status == 201 and obj["data"] == {"k": "v"}


async def test_applying_the_same_configuration_twice_writes_nothing(http: aiohttp.ClientSession) -> None:
    _, first, _ = await apply(http, f"{CMS}/same", configmap("same", k="v"))
    status, second, _ = await apply(http, f"{CMS}/same", configmap("same", k="v"))
    assert status == 200
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert second["metadata"]["managedFields"] == first["metadata"]["managedFields"]


async def test_a_conflicting_apply_is_409_naming_the_field_and_its_manager(
    http: aiohttp.ClientSession,
) -> None:
    await apply(http, f"{CMS}/c", configmap("c", k="v"), manager="alice")
    status, body, _ = await apply(http, f"{CMS}/c", configmap("c", k="w"), manager="bob")
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == 'Apply failed with 1 conflict: conflict with "alice": .data.k'
    assert body["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.k"}
    ]
    _, unchanged, _ = await send(http, "GET", f"{CMS}/c")
    assert unchanged["data"] == {"k": "v"}


async def test_force_takes_ownership_from_the_other_manager(http: aiohttp.ClientSession) -> None:
    await apply(http, f"{CMS}/f", configmap("f", k="v", mine="a"), manager="alice")
    status, obj, _ = await apply(http, f"{CMS}/f", configmap("f", k="w"), manager="bob", force="true")
    assert status == 200 and obj["data"] == {"k": "w", "mine": "a"}
    assert entry(obj, "bob")["fieldsV1"] == {"f:data": {"f:k": {}}}
    assert entry(obj, "alice")["fieldsV1"] == {"f:data": {"f:mine": {}}}


async def test_two_managers_applying_the_same_value_share_the_field(http: aiohttp.ClientSession) -> None:
    await apply(http, f"{CMS}/s", configmap("s", k="v"), manager="alice")
    status, obj, _ = await apply(http, f"{CMS}/s", configmap("s", k="v"), manager="bob")
    assert status == 200
    assert entry(obj, "alice")["fieldsV1"] == entry(obj, "bob")["fieldsV1"] == {"f:data": {"f:k": {}}}


async def test_a_field_dropped_from_the_configuration_is_removed_unless_another_manager_owns_it(
    http: aiohttp.ClientSession,
) -> None:
    await apply(http, f"{CMS}/r", configmap("r", a="1", b="2", shared="x"), manager="alice")
    await apply(http, f"{CMS}/r", configmap("r", shared="x"), manager="bob")
    _, obj, _ = await apply(http, f"{CMS}/r", configmap("r", a="1"), manager="alice")
    assert obj["data"] == {"a": "1", "shared": "x"}


async def test_an_apply_carrying_a_stale_resource_version_is_a_conflict(http: aiohttp.ClientSession) -> None:
    _, obj, _ = await apply(http, f"{CMS}/rv", configmap("rv", k="v"))
    await send(
        http, "PATCH", f"{CMS}/rv", {"data": {"k": "other"}}, content_type="application/merge-patch+json"
    )
    config = configmap("rv", k="v2")
    config["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
    status, body, _ = await apply(http, f"{CMS}/rv", config, force="true")
    assert status == 409 and "the object has been modified" in body["message"]


async def test_apply_with_dry_run_stores_nothing(http: aiohttp.ClientSession) -> None:
    status, obj, _ = await apply(http, f"{CMS}/dry", configmap("dry", k="v"), dryRun="All")
    assert status == 200 and obj["data"] == {"k": "v"}
    status, _, _ = await send(http, "GET", f"{CMS}/dry")
    assert status == 404


async def test_apply_merges_container_lists_by_name_for_built_in_kinds(http: aiohttp.ClientSession) -> None:
    def deployment(containers: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}},
            },
        }

    await apply(http, f"{DEPLOYS}/web", deployment([{"name": "app", "image": "app:1"}]), manager="team")
    status, obj, _ = await apply(
        http, f"{DEPLOYS}/web", deployment([{"name": "sidecar", "image": "proxy:1"}]), manager="mesh"
    )
    assert status == 200, obj
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "sidecar"]
    # Defaults still apply to what apply creates.
    assert containers[0]["imagePullPolicy"] == "IfNotPresent"
    assert obj["metadata"]["generation"] == 2


async def test_apply_to_status_changes_only_the_status_and_records_its_subresource(
    http: aiohttp.ClientSession,
) -> None:
    await send(http, "POST", "/api/v1/namespaces", {"metadata": {"name": "applied"}})
    config = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "applied", "labels": {"ignored": "yes"}},
        "status": {"conditions": [{"type": "Example", "status": "True"}]},
    }
    status, obj, _ = await apply(http, "/api/v1/namespaces/applied/status", config, manager="ctl")
    assert status == 200, obj
    assert obj["status"]["conditions"] == [{"type": "Example", "status": "True"}]
    assert "ignored" not in obj["metadata"]["labels"]
    assert "f:status" in entry(obj, "ctl", subresource="status")["fieldsV1"]


async def test_apply_on_the_main_endpoint_ignores_status_when_a_status_subresource_exists(
    http: aiohttp.ClientSession,
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "plain", "labels": {"team": "a"}},
        "status": {"phase": "Terminating"},
    }
    status, obj, _ = await apply(http, "/api/v1/namespaces/plain", config)
    assert status == 201 and obj["status"]["phase"] == "Active"
    assert entry(obj, "m")["fieldsV1"] == {"f:metadata": {"f:labels": {"f:team": {}}}}


# ------------------------------------------------------------------------------ Update entries


async def test_create_records_an_update_entry_for_the_field_manager_or_the_user_agent(
    http: aiohttp.ClientSession,
) -> None:
    _, named, _ = await send(http, "POST", f"{CMS}?fieldManager=creator", configmap("u1", k="v"))
    assert entry(named, "creator", "Update")["fieldsV1"] == {"f:data": {".": {}, "f:k": {}}}
    async with http.post(
        CMS, json=configmap("u2", k="v"), headers={"User-Agent": "kubectl/v1.33.0 (linux/amd64)"}
    ) as response:
        by_agent = await response.json()
    assert entry(by_agent, "kubectl", "Update")["apiVersion"] == "v1"


async def test_update_and_patch_record_their_own_entries_and_take_changed_fields(
    http: aiohttp.ClientSession,
) -> None:
    await apply(http, f"{CMS}/t", configmap("t", a="1", b="2"), manager="applier")
    status, patched, _ = await send(
        http,
        "PATCH",
        f"{CMS}/t?fieldManager=editor",
        {"data": {"a": "9"}},
        content_type="application/merge-patch+json",
    )
    assert status == 200
    assert entry(patched, "editor", "Update")["fieldsV1"] == {"f:data": {"f:a": {}}}
    assert entry(patched, "applier")["fieldsV1"] == {"f:data": {"f:b": {}}}
    # The applier now conflicts on the field the editor took.
    status, body, _ = await apply(http, f"{CMS}/t", configmap("t", a="1", b="2"), manager="applier")
    assert status == 409 and body["details"]["causes"][0]["message"] == 'conflict with "editor" using v1'


async def test_a_status_update_is_recorded_under_the_status_subresource(http: aiohttp.ClientSession) -> None:
    await send(http, "POST", "/api/v1/namespaces", {"metadata": {"name": "st"}})
    _, ns, _ = await send(http, "GET", "/api/v1/namespaces/st")
    ns["status"]["conditions"] = [{"type": "X", "status": "True"}]
    status, updated, _ = await send(http, "PUT", "/api/v1/namespaces/st/status?fieldManager=ctl", ns)
    assert status == 200
    owned = entry(updated, "ctl", "Update", subresource="status")["fieldsV1"]
    assert owned == {
        "f:status": {"f:conditions": {".": {}, 'k:{"type":"X"}': {".": {}, "f:status": {}, "f:type": {}}}}
    }


async def test_a_write_that_changes_nothing_moves_no_timestamp(http: aiohttp.ClientSession) -> None:
    _, created, _ = await send(http, "POST", f"{CMS}?fieldManager=w", configmap("n", k="v"))
    status, same, _ = await send(http, "PUT", f"{CMS}/n?fieldManager=w", created)
    assert status == 200 and same["metadata"]["managedFields"] == created["metadata"]["managedFields"]
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_managed_fields_set_to_one_empty_entry_are_cleared(http: aiohttp.ClientSession) -> None:
    _, created, _ = await send(http, "POST", f"{CMS}?fieldManager=w", configmap("clear", k="v"))
    created["metadata"]["managedFields"] = [{}]
    _, cleared, _ = await send(http, "PUT", f"{CMS}/clear", created)
    assert "managedFields" not in cleared["metadata"]


# ------------------------------------------------------------------------------------ bad input


async def test_apply_without_a_field_manager_is_invalid(http: aiohttp.ClientSession) -> None:
    status, body, _ = await apply(http, f"{CMS}/x", configmap("x"), manager=None)
    assert status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value: is required for apply patch",
            "field": "fieldManager",
        }
    ]


async def test_force_on_a_patch_that_is_not_an_apply_is_invalid(http: aiohttp.ClientSession) -> None:
    await send(http, "POST", CMS, configmap("nf"))
    status, body, _ = await send(
        http, "PATCH", f"{CMS}/nf?force=true", {"data": {}}, content_type="application/merge-patch+json"
    )
    assert status == 422
    assert body["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch'
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (["a", "list"], "json: cannot unmarshal array into Go value of type map[string]interface {}"),
        ("text", "json: cannot unmarshal string into Go value of type map[string]interface {}"),
        ({"metadata": {"name": "x"}}, "invalid object type: /, Kind="),
        (
            {"apiVersion": "v1", "metadata": {"name": "x"}},
            "invalid object type: /v1, Kind=, expected /v1, Kind=ConfigMap",
        ),
        (
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}},
            "invalid object type: /v1, Kind=Secret, expected /v1, Kind=ConfigMap",
        ),
        (configmap("other"), "the name of the object (other) does not match the name on the URL (x)"),
        (
            {**configmap("x"), "metadata": {"name": "x", "managedFields": [{"manager": "m"}]}},
            "metadata.managedFields must be nil",
        ),
        (
            {**configmap("x"), "metadata": {"name": "x", "namespace": "elsewhere"}},
            "the namespace of the object (elsewhere) does not match the namespace on the request (default)",
        ),
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}},
            "the name of the object (x based on URL) was undeterminable: name must be provided",
        ),
    ],
)
async def test_bad_apply_bodies_are_400_with_upstreams_message(
    http: aiohttp.ClientSession, config: Any, message: str
) -> None:
    status, body, _ = await apply(http, f"{CMS}/x", config)
    assert status == 400, body
    assert message in body["message"]
    status, _, _ = await send(http, "GET", f"{CMS}/x")
    assert status == 404


async def test_unknown_fields_in_an_apply_are_400_when_strict_and_pruned_with_a_warning_otherwise(
    http: aiohttp.ClientSession,
) -> None:
    config = {**configmap("unknown", k="v"), "extra": {"x": 1}}
    status, body, _ = await apply(http, f"{CMS}/unknown", config, fieldValidation="Strict")
    assert status == 400
    assert ".extra: field not declared in schema" in body["message"]
    status, obj, response = await apply(http, f"{CMS}/unknown", config, fieldValidation="Warn")
    assert status == 201 and "extra" not in obj
    assert response.headers.getall("Warning") == ['299 - "unknown field \\"extra\\""']


# ------------------------------------------------------------------------------ custom resources


GADGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                    },
                },
                "tags": {"type": "array", "items": {"type": "string"}},
            },
        }
    },
}


@pytest.fixture
def gadgets(api_server: APIServer) -> ResourceInfo:
    info = ResourceInfo("example.com", "v1", "Gadget", "gadgets", "gadget", True, schema=GADGET_SCHEMA)
    api_server.add_resource(info)
    return info


def gadget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": spec}


async def test_map_lists_of_a_custom_resource_merge_by_key_and_atomic_lists_conflict(
    http: aiohttp.ClientSession, gadgets: ResourceInfo
) -> None:
    await apply(http, f"{GADGETS}/g", gadget(ports=[{"name": "http", "port": 80}], tags=["a"]), manager="one")
    status, obj, _ = await apply(
        http, f"{GADGETS}/g", gadget(ports=[{"name": "admin", "port": 9000}]), manager="two"
    )
    assert status == 200, obj
    assert [p["name"] for p in obj["spec"]["ports"]] == ["http", "admin"]
    status, body, _ = await apply(http, f"{GADGETS}/g", gadget(tags=["b"]), manager="two")
    assert status == 409 and body["details"]["causes"][0]["field"] == ".spec.tags"
