"""The REST surface over real HTTP: CRUD semantics, bad input, paging and resourceVersion rules."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from kubevisor.server import APIServer, ServerOptions

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]},
            },
        },
    }


async def send(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    raw: bytes | None = None,
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": content_type} if data is not None else {}
    async with http.request(method, path, data=data, headers=headers) as response:
        payload = await response.json(content_type=None)
        return response.status, payload, response


async def assert_status(
    http: aiohttp.ClientSession, method: str, path: str, body: Any, code: int, reason: str, **kw: Any
) -> dict[str, Any]:
    status, payload, response = await send(http, method, path, body, **kw)
    assert status == code, payload
    assert response.headers["Content-Type"] == "application/json"
    assert payload["kind"] == "Status" and payload["code"] == code and payload["reason"] == reason
    return payload


# ---------------------------------------------------------------- create / get


async def test_create_sets_server_owned_metadata(http: aiohttp.ClientSession) -> None:
    status, obj, _ = await send(http, "POST", DEPLOYS, deployment("web"))
    assert status == 201
    meta = obj["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1 and int(meta["resourceVersion"]) > 0
    status, fetched, _ = await send(http, "GET", f"{DEPLOYS}/web")
    assert status == 200 and fetched == obj


async def test_generate_name_appends_a_random_suffix(http: aiohttp.ClientSession) -> None:
    status, obj, _ = await send(http, "POST", CMS, {"metadata": {"generateName": "job-"}})
    assert status == 201
    name = obj["metadata"]["name"]
    assert name.startswith("job-") and len(name) == len("job-") + 5


async def test_config_maps_have_no_generation(http: aiohttp.ClientSession) -> None:
    _, obj, _ = await send(http, "POST", CMS, configmap("a", k="v"))
    assert "generation" not in obj["metadata"]


async def test_create_of_an_existing_name_is_409_already_exists(http: aiohttp.ClientSession) -> None:
    await send(http, "POST", CMS, configmap("a"))
    body = await assert_status(http, "POST", CMS, configmap("a"), 409, "AlreadyExists")
    assert body["message"] == 'configmaps "a" already exists'


async def test_get_of_a_missing_object_is_404_with_upstreams_message(http: aiohttp.ClientSession) -> None:
    body = await assert_status(http, "GET", f"{DEPLOYS}/nope", None, 404, "NotFound")
    assert body["message"] == 'deployments.apps "nope" not found'


async def test_create_in_a_missing_namespace_is_404_namespace_not_found(http: aiohttp.ClientSession) -> None:
    body = await assert_status(
        http, "POST", "/api/v1/namespaces/ghost/configmaps", configmap("a"), 404, "NotFound"
    )
    assert body["message"] == 'namespaces "ghost" not found'


async def test_default_namespaces_exist_with_the_kubernetes_finalizer(http: aiohttp.ClientSession) -> None:
    _, listed, _ = await send(http, "GET", "/api/v1/namespaces")
    names = {item["metadata"]["name"] for item in listed["items"]}
    assert names >= {"default", "kube-system", "kube-public", "kube-node-lease"}
    _, ns, _ = await send(http, "GET", "/api/v1/namespaces/default")
    assert ns["spec"]["finalizers"] == ["kubernetes"] and ns["status"]["phase"] == "Active"


async def test_secret_string_data_is_merged_into_base64_data_with_default_type(
    http: aiohttp.ClientSession,
) -> None:
    body = {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}, "data": {"user": "YWRtaW4="}}
    status, obj, _ = await send(http, "POST", "/api/v1/namespaces/default/secrets", body)
    assert status == 201
    assert obj["type"] == "Opaque" and "stringData" not in obj
    assert obj["data"] == {"user": "YWRtaW4=", "password": "aHVudGVyMg=="}


async def test_services_get_a_cluster_ip(http: aiohttp.ClientSession) -> None:
    body = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    _, a, _ = await send(http, "POST", "/api/v1/namespaces/default/services", body)
    _, b, _ = await send(
        http, "POST", "/api/v1/namespaces/default/services", {**body, "metadata": {"name": "b"}}
    )
    assert a["spec"]["clusterIP"].startswith("10.9") and a["spec"]["clusterIP"] != b["spec"]["clusterIP"]
    assert a["spec"]["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}


# ---------------------------------------------------------------- bad input


async def test_malformed_json_is_400(http: aiohttp.ClientSession) -> None:
    body = await assert_status(http, "POST", CMS, None, 400, "BadRequest", raw=b'{"metadata": {')
    assert "json parse error" in body["message"]


async def test_malformed_yaml_is_400(http: aiohttp.ClientSession) -> None:
    raw = b"metadata:\n  name: [unclosed\n"
    body = await assert_status(
        http, "POST", CMS, None, 400, "BadRequest", raw=raw, content_type="application/yaml"
    )
    assert "error converting YAML to JSON" in body["message"]


async def test_yaml_bodies_are_accepted(http: aiohttp.ClientSession) -> None:
    raw = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n"
    status, obj, _ = await send(http, "POST", CMS, None, raw=raw, content_type="application/yaml")
    assert status == 201 and obj["data"] == {"k": "v"}


async def test_strict_field_validation_rejects_an_unknown_field_naming_it(
    http: aiohttp.ClientSession,
) -> None:
    bad = deployment("web")
    bad["spec"]["replicaz"] = 3
    body = await assert_status(http, "POST", f"{DEPLOYS}?fieldValidation=Strict", bad, 400, "BadRequest")
    assert 'unknown field "spec.replicaz"' in body["message"]
    status, _, _ = await send(http, "GET", f"{DEPLOYS}/web")
    assert status == 404


async def test_warn_field_validation_drops_the_field_and_sends_a_warning_header(
    http: aiohttp.ClientSession,
) -> None:
    bad = configmap("a")
    bad["bogus"] = 1
    status, obj, response = await send(http, "POST", f"{CMS}?fieldValidation=Warn", bad)
    assert status == 201 and "bogus" not in obj
    assert response.headers.getall("Warning") == ['299 - "unknown field \\"bogus\\""']


async def test_invalid_name_is_422_with_the_field_path(http: aiohttp.ClientSession) -> None:
    body = await assert_status(http, "POST", CMS, configmap("Not_Valid"), 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert body["message"].startswith(
        'ConfigMap "Not_Valid" is invalid: metadata.name: Invalid value: "Not_Valid"'
    )


async def test_invalid_label_is_422_with_the_field_path(http: aiohttp.ClientSession) -> None:
    bad = configmap("a")
    bad["metadata"]["labels"] = {"app": "has spaces"}
    body = await assert_status(http, "POST", CMS, bad, 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.labels"


async def test_namespace_mismatch_between_body_and_url_is_400(http: aiohttp.ClientSession) -> None:
    bad = configmap("a")
    bad["metadata"]["namespace"] = "kube-system"
    body = await assert_status(http, "POST", CMS, bad, 400, "BadRequest")
    assert (
        body["message"]
        == "the namespace of the provided object does not match the namespace sent on the request"
    )


async def test_bodies_over_3_mib_are_413(http: aiohttp.ClientSession) -> None:
    big = configmap("big", blob="x" * (3 * 1024 * 1024 + 1))
    body = await assert_status(http, "POST", CMS, big, 413, "RequestEntityTooLarge")
    assert body["message"] == "Request entity too large: limit is 3145728"


async def test_unknown_resource_is_404(http: aiohttp.ClientSession) -> None:
    await assert_status(http, "GET", "/api/v1/namespaces/default/widgets", None, 404, "NotFound")
    await assert_status(http, "GET", "/apis/nope.example.com/v1/things", None, 404, "NotFound")


async def test_unsupported_verb_is_405(http: aiohttp.ClientSession) -> None:
    # Namespaces have no deletecollection verb.
    await assert_status(http, "DELETE", "/api/v1/namespaces", None, 405, "MethodNotAllowed")


async def test_unsupported_patch_type_is_415(http: aiohttp.ClientSession) -> None:
    await send(http, "POST", CMS, configmap("a"))
    body = await assert_status(
        http, "PATCH", f"{CMS}/a", {"data": {}}, 415, "UnsupportedMediaType", content_type="text/plain"
    )
    assert "accepted media types include" in body["message"]


async def test_stale_update_is_409_conflict(http: aiohttp.ClientSession) -> None:
    _, obj, _ = await send(http, "POST", CMS, configmap("a", v="1"))
    fresh = {**obj, "data": {"v": "2"}}
    status, _, _ = await send(http, "PUT", f"{CMS}/a", fresh)
    assert status == 200
    stale = {**obj, "data": {"v": "3"}}
    body = await assert_status(http, "PUT", f"{CMS}/a", stale, 409, "Conflict")
    assert "the object has been modified" in body["message"]


# Without controllers: the default ServiceAccount controller's writes would move the version.
@pytest.mark.parametrize("server_options", [ServerOptions(controllers=())])
async def test_bad_input_stores_nothing(http: aiohttp.ClientSession, api_server: APIServer) -> None:
    before = api_server.service.storage.resource_version
    await send(http, "POST", CMS, configmap("Bad Name"))
    await send(http, "POST", CMS, None, raw=b"{")
    assert api_server.service.storage.resource_version == before


# ---------------------------------------------------------------- updates, patches, subresources


async def test_generation_moves_with_spec_not_with_metadata_or_status(http: aiohttp.ClientSession) -> None:
    await send(http, "POST", DEPLOYS, deployment("web"))
    merge = "application/merge-patch+json"
    _, obj, _ = await send(
        http, "PATCH", f"{DEPLOYS}/web", {"metadata": {"labels": {"x": "y"}}}, content_type=merge
    )
    assert obj["metadata"]["generation"] == 1
    _, obj, _ = await send(http, "PATCH", f"{DEPLOYS}/web", {"spec": {"replicas": 3}}, content_type=merge)
    assert obj["metadata"]["generation"] == 2
    _, obj, _ = await send(
        http, "PATCH", f"{DEPLOYS}/web/status", {"status": {"readyReplicas": 3}}, content_type=merge
    )
    assert obj["metadata"]["generation"] == 2 and obj["status"] == {"readyReplicas": 3}


async def test_main_endpoint_ignores_status_and_status_endpoint_ignores_spec(
    http: aiohttp.ClientSession,
) -> None:
    await send(http, "POST", DEPLOYS, deployment("web"))
    merge = "application/merge-patch+json"
    _, obj, _ = await send(http, "PATCH", f"{DEPLOYS}/web", {"status": {"replicas": 9}}, content_type=merge)
    assert "status" not in obj
    _, obj, _ = await send(
        http,
        "PATCH",
        f"{DEPLOYS}/web/status",
        {"spec": {"replicas": 9}, "status": {"replicas": 1}},
        content_type=merge,
    )
    assert obj["spec"]["replicas"] == 1 and obj["status"]["replicas"] == 1


async def test_json_merge_and_strategic_patches(http: aiohttp.ClientSession) -> None:
    await send(http, "POST", DEPLOYS, deployment("web"))
    _, obj, _ = await send(
        http,
        "PATCH",
        f"{DEPLOYS}/web",
        [{"op": "replace", "path": "/spec/replicas", "value": 2}],
        content_type="application/json-patch+json",
    )
    assert obj["spec"]["replicas"] == 2
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}}
    _, obj, _ = await send(
        http, "PATCH", f"{DEPLOYS}/web", patch, content_type="application/strategic-merge-patch+json"
    )
    names = [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]
    assert names == ["sidecar", "c"] or names == ["c", "sidecar"]


async def test_a_no_op_update_keeps_the_resource_version(http: aiohttp.ClientSession) -> None:
    _, obj, _ = await send(http, "POST", CMS, configmap("a", v="1"))
    _, same, _ = await send(
        http, "PATCH", f"{CMS}/a", {"data": {"v": "1"}}, content_type="application/merge-patch+json"
    )
    assert same["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


async def test_scale_subresource_reads_and_writes_replicas(http: aiohttp.ClientSession) -> None:
    await send(http, "POST", DEPLOYS, deployment("web", replicas=2))
    _, scale, _ = await send(http, "GET", f"{DEPLOYS}/web/scale")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2} and scale["status"]["selector"] == "app=web"
    scale["spec"]["replicas"] = 4
    status, updated, _ = await send(http, "PUT", f"{DEPLOYS}/web/scale", scale)
    assert status == 200 and updated["spec"]["replicas"] == 4
    _, obj, _ = await send(http, "GET", f"{DEPLOYS}/web")
    assert obj["spec"]["replicas"] == 4 and obj["metadata"]["generation"] == 2


async def test_strategic_merge_patch_on_a_custom_resource_is_415(
    api_server: APIServer, http: aiohttp.ClientSession
) -> None:
    from kubevisor.api import ResourceInfo
    from kubevisor.server import Strategy

    api_server.add_resource(
        ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True),
        Strategy(strategic_merge=False, unconditional_update=False, generation=True),
    )
    status, _, _ = await send(
        http,
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets",
        {"metadata": {"name": "w"}, "spec": {}},
    )
    assert status == 201
    body = await assert_status(
        http,
        "PATCH",
        "/apis/example.com/v1/namespaces/default/widgets/w",
        {"spec": {"a": 1}},
        415,
        "UnsupportedMediaType",
        content_type="application/strategic-merge-patch+json",
    )
    assert body["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


# ---------------------------------------------------------------- delete


async def test_finalizers_hold_an_object_until_the_last_one_is_removed(http: aiohttp.ClientSession) -> None:
    cm = configmap("held")
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    await send(http, "POST", CMS, cm)
    status, obj, _ = await send(http, "DELETE", f"{CMS}/held")
    assert status == 200 and obj["metadata"]["deletionTimestamp"]
    _, still, _ = await send(http, "GET", f"{CMS}/held")
    assert still["metadata"]["finalizers"] == ["example.com/hold"]
    # Adding a finalizer now is forbidden; removing the last one deletes the object.
    add = {"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}}
    await assert_status(
        http, "PATCH", f"{CMS}/held", add, 422, "Invalid", content_type="application/merge-patch+json"
    )
    status, _, _ = await send(
        http,
        "PATCH",
        f"{CMS}/held",
        {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    assert status == 200
    status, _, _ = await send(http, "GET", f"{CMS}/held")
    assert status == 404


async def test_delete_without_finalizers_answers_a_success_status(http: aiohttp.ClientSession) -> None:
    await send(http, "POST", CMS, configmap("a"))
    status, body, _ = await send(http, "DELETE", f"{CMS}/a")
    assert status == 200 and body["kind"] == "Status" and body["status"] == "Success"
    assert body["details"]["name"] == "a" and body["details"]["kind"] == "configmaps"


async def test_delete_precondition_on_uid_is_409(http: aiohttp.ClientSession) -> None:
    await send(http, "POST", CMS, configmap("a"))
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "other"}}
    body = await assert_status(http, "DELETE", f"{CMS}/a", options, 409, "Conflict")
    assert "Precondition failed: UID in precondition: other" in body["message"]


async def test_dry_run_stores_nothing(http: aiohttp.ClientSession, api_server: APIServer) -> None:
    before = api_server.service.storage.resource_version
    status, obj, _ = await send(http, "POST", f"{CMS}?dryRun=All", configmap("dry"))
    assert status == 200 and obj["metadata"]["name"] == "dry"
    assert (await send(http, "GET", f"{CMS}/dry"))[0] == 404
    await send(http, "POST", CMS, configmap("real", v="1"))
    after_create = api_server.service.storage.resource_version
    merge = "application/merge-patch+json"
    _, patched, _ = await send(
        http, "PATCH", f"{CMS}/real?dryRun=All", {"data": {"v": "2"}}, content_type=merge
    )
    assert patched["data"] == {"v": "2"}
    await send(http, "DELETE", f"{CMS}/real?dryRun=All")
    _, real, _ = await send(http, "GET", f"{CMS}/real")
    assert real["data"] == {"v": "1"}
    assert api_server.service.storage.resource_version == after_create > before


async def test_deletecollection_removes_only_selected_objects(http: aiohttp.ClientSession) -> None:
    for name, tier in [("a", "fe"), ("b", "fe"), ("c", "be")]:
        cm = configmap(name)
        cm["metadata"]["labels"] = {"tier": tier}
        await send(http, "POST", CMS, cm)
    status, body, _ = await send(http, "DELETE", f"{CMS}?labelSelector=tier%3Dfe")
    assert status == 200 and {i["metadata"]["name"] for i in body["items"]} == {"a", "b"}
    _, listed, _ = await send(http, "GET", CMS)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["c"]


@pytest.mark.parametrize("server_options", [ServerOptions(controllers=())])
async def test_deleting_a_namespace_marks_it_terminating_and_blocks_new_content(
    http: aiohttp.ClientSession,
) -> None:
    await send(http, "POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    status, ns, _ = await send(http, "DELETE", "/api/v1/namespaces/doomed")
    assert status == 200 and ns["status"]["phase"] == "Terminating"
    body = await assert_status(
        http, "POST", "/api/v1/namespaces/doomed/configmaps", configmap("a"), 403, "Forbidden"
    )
    assert "because it is being terminated" in body["message"]
    # Finalizing clears spec.finalizers; with nothing left holding it, the namespace goes.
    ns["spec"]["finalizers"] = []
    status, _, _ = await send(http, "PUT", "/api/v1/namespaces/doomed/finalize", ns)
    assert status == 200
    assert (await send(http, "GET", "/api/v1/namespaces/doomed"))[0] == 404


# ---------------------------------------------------------------- lists


async def test_label_and_field_selectors_filter_lists(http: aiohttp.ClientSession) -> None:
    for name, tier in [("a", "fe"), ("b", "be"), ("c", "fe")]:
        cm = configmap(name)
        cm["metadata"]["labels"] = {"tier": tier}
        await send(http, "POST", CMS, cm)
    _, listed, _ = await send(http, "GET", f"{CMS}?labelSelector=tier%20in%20(fe),tier!%3Dbe")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "c"]
    _, listed, _ = await send(http, "GET", f"{CMS}?fieldSelector=metadata.name%3Dc")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["c"]


async def test_unsupported_field_selector_is_400(http: aiohttp.ClientSession) -> None:
    body = await assert_status(http, "GET", f"{CMS}?fieldSelector=spec.foo%3Dx", None, 400, "BadRequest")
    assert body["message"] == "field label not supported: spec.foo"


async def test_kind_specific_field_selectors(http: aiohttp.ClientSession) -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}}
    await send(http, "POST", "/api/v1/namespaces/default/pods", pod)
    _, listed, _ = await send(
        http, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1,status.phase%3DPending"
    )
    assert [i["metadata"]["name"] for i in listed["items"]] == ["p"]
    _, listed, _ = await send(http, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dother")
    assert listed["items"] == []


async def test_paging_keeps_one_resource_version_across_pages(http: aiohttp.ClientSession) -> None:
    for i in range(5):
        await send(http, "POST", CMS, configmap(f"cm{i}"))
    _, page1, _ = await send(http, "GET", f"{CMS}?limit=2")
    assert [i["metadata"]["name"] for i in page1["items"]] == ["cm0", "cm1"]
    assert page1["metadata"]["remainingItemCount"] == 3
    rv = page1["metadata"]["resourceVersion"]
    # A write between pages must not show up: the list is a snapshot at the first page's version.
    await send(http, "POST", CMS, configmap("cm15"))
    _, page2, _ = await send(http, "GET", f"{CMS}?limit=2&continue={page1['metadata']['continue']}")
    _, page3, _ = await send(http, "GET", f"{CMS}?limit=2&continue={page2['metadata']['continue']}")
    assert [i["metadata"]["name"] for i in page2["items"] + page3["items"]] == ["cm2", "cm3", "cm4"]
    assert page2["metadata"]["resourceVersion"] == page3["metadata"]["resourceVersion"] == rv
    assert "continue" not in page3["metadata"]


@pytest.mark.parametrize("server_options", [ServerOptions(history_size=2)])
async def test_expired_continue_token_is_410(http: aiohttp.ClientSession) -> None:
    for i in range(3):
        await send(http, "POST", CMS, configmap(f"cm{i}"))
    _, page1, _ = await send(http, "GET", f"{CMS}?limit=1")
    for i in range(3):
        await send(http, "POST", CMS, configmap(f"late{i}"))
    await assert_status(
        http, "GET", f"{CMS}?limit=1&continue={page1['metadata']['continue']}", None, 410, "Expired"
    )


async def test_list_resource_version_semantics(http: aiohttp.ClientSession) -> None:
    _, first, _ = await send(http, "POST", CMS, configmap("a"))
    rv = first["metadata"]["resourceVersion"]
    await send(http, "POST", CMS, configmap("b"))
    # limit + RV=X is an exact read: the list as of X.
    _, exact, _ = await send(http, "GET", f"{CMS}?limit=10&resourceVersion={rv}")
    assert [i["metadata"]["name"] for i in exact["items"]] == ["a"]
    assert exact["metadata"]["resourceVersion"] == rv
    # Without limit, RV=X means "not older than": the current state.
    _, newer, _ = await send(http, "GET", f"{CMS}?resourceVersion={rv}")
    assert [i["metadata"]["name"] for i in newer["items"]] == ["a", "b"]
    _, exact, _ = await send(http, "GET", f"{CMS}?resourceVersion={rv}&resourceVersionMatch=Exact")
    assert [i["metadata"]["name"] for i in exact["items"]] == ["a"]
    await assert_status(http, "GET", f"{CMS}?resourceVersionMatch=Exact", None, 422, "Invalid")
    await assert_status(
        http, "GET", f"{CMS}?resourceVersion=0&resourceVersionMatch=Exact", None, 422, "Invalid"
    )
    await assert_status(http, "GET", f"{CMS}?resourceVersion=1&continue=abc", None, 400, "BadRequest")


@pytest.mark.parametrize("server_options", [ServerOptions(history_size=1)])
async def test_exact_list_older_than_history_is_410(http: aiohttp.ClientSession) -> None:
    _, first, _ = await send(http, "POST", CMS, configmap("a"))
    await send(http, "POST", CMS, configmap("b"))
    await send(http, "POST", CMS, configmap("c"))
    rv = first["metadata"]["resourceVersion"]
    await assert_status(http, "GET", f"{CMS}?limit=5&resourceVersion={rv}", None, 410, "Expired")


async def test_table_lists_carry_upstream_printer_columns(http: aiohttp.ClientSession) -> None:
    await send(http, "POST", DEPLOYS, deployment("web", replicas=3))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    async with http.get(DEPLOYS, headers={"Accept": accept}) as response:
        body = await response.json()
    assert body["kind"] == "Table"
    columns = [c["name"] for c in body["columnDefinitions"]]
    assert columns[:5] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert body["rows"][0]["cells"][:4] == ["web", "0/3", 0, 0]
    assert body["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_protobuf_accept_is_answered_with_json(http: aiohttp.ClientSession) -> None:
    accept = "application/vnd.kubernetes.protobuf, application/json"
    async with http.get("/api/v1/namespaces/default", headers={"Accept": accept}) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "application/json"
        assert (await response.json())["kind"] == "Namespace"


async def test_update_accepts_timestamps_reserialised_by_clients(http: aiohttp.ClientSession) -> None:
    # The official Python client sends datetimes back as "+00:00" rather than "Z"; upstream compares
    # instants (and keeps the stored creationTimestamp), so a replace must not be rejected as immutable.
    _, obj, _ = await send(http, "POST", CMS, configmap("a", v="1"))
    obj["metadata"]["creationTimestamp"] = obj["metadata"]["creationTimestamp"].replace("Z", "+00:00")
    obj["data"] = {"v": "2"}
    status, updated, _ = await send(http, "PUT", f"{CMS}/a", obj)
    assert status == 200, updated
    assert updated["metadata"]["creationTimestamp"].endswith("Z") and updated["data"] == {"v": "2"}


async def test_a_patch_that_loses_a_race_during_admission_is_reapplied() -> None:
    from kubevisor.server import AdmissionRequest, RequestOptions

    interfered: list[bool] = []
    servers: list[APIServer] = []

    class Interferer:
        """On the first update, lets another write land while this one is being admitted."""

        async def admit(self, request: AdmissionRequest) -> None:
            if request.operation == "UPDATE" and not interfered:
                interfered.append(True)
                await servers[0].service.patch(
                    request.info,
                    "default",
                    "a",
                    "application/merge-patch+json",
                    {"data": {"other": "x"}},
                    RequestOptions(),
                )

    async with APIServer(ServerOptions(admission=(Interferer(),))) as server:
        servers.append(server)
        async with aiohttp.ClientSession(base_url=server.url) as http:
            await send(http, "POST", CMS, configmap("a", v="1"))
            status, obj, _ = await send(
                http, "PATCH", f"{CMS}/a", {"data": {"v": "2"}}, content_type="application/merge-patch+json"
            )
    assert status == 200 and obj["data"] == {"v": "2", "other": "x"}


async def test_an_empty_update_strategy_is_defaulted_to_rolling_update(http: aiohttp.ClientSession) -> None:
    body = deployment("web")
    body["spec"]["strategy"] = {}  # what `kubectl create deployment` sends
    _, obj, _ = await send(http, "POST", DEPLOYS, body)
    assert obj["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    recreate = deployment("other")
    recreate["spec"]["strategy"] = {"type": "Recreate"}
    _, obj, _ = await send(http, "POST", DEPLOYS, recreate)
    assert obj["spec"]["strategy"] == {"type": "Recreate"}


async def test_events_written_through_either_api_are_read_through_both(http: aiohttp.ClientSession) -> None:
    v1 = "/apis/events.k8s.io/v1/namespaces/default/events"
    core = "/api/v1/namespaces/default/events"
    regarding = {"kind": "Pod", "name": "web-1", "namespace": "default", "apiVersion": "v1"}
    new_style = {
        "metadata": {"name": "e1"},
        "eventTime": "2024-05-01T12:00:00.000000Z",
        "reportingController": "example.com/ctl",
        "reportingInstance": "ctl-1",
        "action": "Reconcile",
        "reason": "Synced",
        "type": "Normal",
        "note": "all good",
        "regarding": regarding,
    }
    status, created, _ = await send(http, "POST", v1, new_style)
    assert status == 201 and created["apiVersion"] == "events.k8s.io/v1" and created["note"] == "all good"
    _, as_core, _ = await send(http, "GET", f"{core}/e1")
    assert as_core["apiVersion"] == "v1" and as_core["message"] == "all good"
    assert as_core["involvedObject"] == regarding and as_core["reportingComponent"] == "example.com/ctl"
    old_style = {
        "metadata": {"name": "e2"},
        "involvedObject": regarding,
        "reason": "Old",
        "message": "hi",
        "type": "Normal",
    }
    await send(http, "POST", core, old_style)
    _, listed, _ = await send(http, "GET", f"{v1}?fieldSelector=regarding.name%3Dweb-1,reason%3DOld")
    assert [(i["metadata"]["name"], i["note"], i["apiVersion"]) for i in listed["items"]] == [
        ("e2", "hi", "events.k8s.io/v1")
    ]
    async with http.get(f"{v1}?watch=1&timeoutSeconds=1") as stream:
        lines = (await stream.read()).splitlines()
    watched = [json.loads(line)["object"] for line in lines]
    assert {(o["metadata"]["name"], o["apiVersion"]) for o in watched} == {
        ("e1", "events.k8s.io/v1"),
        ("e2", "events.k8s.io/v1"),
    }


async def test_a_malformed_or_forged_continue_token_is_400(http: aiohttp.ClientSession) -> None:
    from kubevisor.server._service import encode_continue

    await assert_status(http, "GET", f"{CMS}?limit=1&continue=not-a-token", None, 400, "BadRequest")
    forged = encode_continue(10**9, ("default", "a\x00"))
    await assert_status(http, "GET", f"{CMS}?limit=1&continue={forged}", None, 400, "BadRequest")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "json: cannot unmarshal array into Go struct field Deployment.spec of type object"),
        (
            {"replicas": "3"},
            "json: cannot unmarshal string into Go struct field Deployment.spec.replicas of type int32",
        ),
        (
            {"paused": "yes"},
            "json: cannot unmarshal string into Go struct field Deployment.spec.paused of type bool",
        ),
    ],
)
async def test_values_of_the_wrong_type_are_400_naming_the_field(
    http: aiohttp.ClientSession, spec: Any, message: str
) -> None:
    body = deployment("web")
    body["spec"] = spec if isinstance(spec, list) else {**body["spec"], **spec}
    payload = await assert_status(http, "POST", DEPLOYS, body, 400, "BadRequest")
    assert payload["message"].endswith(message)


async def test_quantities_and_int_or_strings_accept_both_forms(http: aiohttp.ClientSession) -> None:
    body = deployment("web")
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"cpu": 1, "memory": "64Mi"}}
    body["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "50%"},
    }
    status, _, _ = await send(http, "POST", DEPLOYS, body)
    assert status == 201
