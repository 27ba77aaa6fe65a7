"""CustomResourceDefinitions in the embedded server, over real HTTP: a CRD's resource served in
discovery, OpenAPI and REST, its conditions and accepted names, malformed CRDs rejected with
upstream's messages, name clashes, live updates, deletion of every instance, scopes, subresources,
selectable fields, several versions, and persistence across a restart."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubevisor.server import APIServer, ServerOptions

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"

WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
                "color": {"type": "string", "default": "blue"},
                "size": {"type": "string", "enum": ["S", "M", "L"]},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer"},
                "selector": {"type": "string"},
                "phase": {"type": "string"},
            },
        },
    },
}


def crd(
    plural: str = "widgets",
    kind: str = "Widget",
    group: str = "example.com",
    *,
    scope: str = "Namespaced",
    schema: dict[str, Any] | None = None,
    **version: Any,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": copy.deepcopy(schema if schema is not None else WIDGET_SCHEMA)},
    }
    entry.update(version)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": plural, "kind": kind},
            "versions": [entry],
        },
    }


def widget(name: str = "w", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


async def send(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": content_type} if data is not None else {}
    sent.update(headers or {})
    async with http.request(method, path, data=data, headers=sent) as response:
        return response.status, await response.json(content_type=None), response


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy; ``within`` only guards against a hang."""
    async with asyncio.timeout(within):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.01)


async def condition(http: aiohttp.ClientSession, name: str, kind: str) -> dict[str, Any] | None:
    status, obj, _ = await send(http, "GET", f"{CRDS}/{name}")
    assert status == 200, obj
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond["type"] == kind:
            return dict(cond)
    return None


async def established(http: aiohttp.ClientSession, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        cond = await condition(http, name, "Established")
        return cond if cond and cond["status"] == "True" else None

    result: dict[str, Any] = await eventually(check)
    return result


async def install(http: aiohttp.ClientSession, definition: dict[str, Any]) -> dict[str, Any]:
    status, obj, _ = await send(http, "POST", CRDS, definition)
    assert status == 201, obj
    await established(http, definition["metadata"]["name"])
    return dict(obj)


# ------------------------------------------------------------------------------- serving


async def test_creating_a_crd_serves_its_resource_in_discovery_openapi_and_rest_at_once(
    http: aiohttp.ClientSession,
) -> None:
    definition = crd(subresources={"status": {}})
    definition["spec"]["names"].update(shortNames=["wd"], categories=["all"])
    status, created, _ = await send(http, "POST", CRDS, definition)
    assert status == 201
    assert created["spec"]["names"]["singular"] == "widget"
    assert created["spec"]["names"]["listKind"] == "WidgetList"
    assert created["status"]["storedVersions"] == ["v1"]
    # Served by the time the create returned: no polling.
    status, resources, _ = await send(http, "GET", "/apis/example.com/v1")
    assert status == 200
    entry = next(r for r in resources["resources"] if r["name"] == "widgets")
    assert entry["kind"] == "Widget" and entry["namespaced"] is True
    assert entry["shortNames"] == ["wd"] and entry["categories"] == ["all"]
    assert any(r["name"] == "widgets/status" for r in resources["resources"])
    _, groups, _ = await send(http, "GET", "/apis")
    assert any(g["name"] == "example.com" for g in groups["groups"])
    _, index, _ = await send(http, "GET", "/openapi/v3")
    assert "apis/example.com/v1" in index["paths"]
    _, document, _ = await send(http, "GET", "/openapi/v3/apis/example.com/v1")
    assert "com.example.v1.Widget" in document["components"]["schemas"]
    status, obj, _ = await send(http, "POST", WIDGETS, widget(replicas=1))
    assert status == 201 and obj["spec"] == {"replicas": 1, "color": "blue"}


async def test_a_crd_gets_names_accepted_and_established_conditions_and_accepted_names(
    http: aiohttp.ClientSession,
) -> None:
    definition = crd()
    definition["spec"]["names"]["shortNames"] = ["wd"]
    await send(http, "POST", CRDS, definition)
    cond = await established(http, "widgets.example.com")
    assert (
        cond["reason"] == "InitialNamesAccepted" and cond["message"] == "the initial names have been accepted"
    )
    names = await condition(http, "widgets.example.com", "NamesAccepted")
    assert names is not None
    assert (names["status"], names["reason"], names["message"]) == (
        "True",
        "NoConflicts",
        "no conflicts found",
    )
    _, obj, _ = await send(http, "GET", f"{CRDS}/widgets.example.com")
    assert obj["status"]["acceptedNames"] == {
        "plural": "widgets",
        "singular": "widget",
        "shortNames": ["wd"],
        "kind": "Widget",
        "listKind": "WidgetList",
    }


async def test_a_cluster_scoped_crd_serves_a_cluster_scoped_resource(http: aiohttp.ClientSession) -> None:
    await install(http, crd("gizmos", "Gizmo", scope="Cluster"))
    gizmo = {"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "g"}, "spec": {}}
    status, obj, _ = await send(http, "POST", "/apis/example.com/v1/gizmos", gizmo)
    assert status == 201 and "namespace" not in obj["metadata"]
    status, _, _ = await send(http, "POST", "/apis/example.com/v1/namespaces/default/gizmos", gizmo)
    assert status == 404


# ----------------------------------------------------------------------------- bad CRDs


def _without_schema() -> dict[str, Any]:
    definition = crd()
    del definition["spec"]["versions"][0]["schema"]
    return definition


def _with(path: list[str | int], value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    definition = base or crd()
    target: Any = definition
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return definition


def _two_versions(first_storage: bool, second_storage: bool, same_name: bool = False) -> dict[str, Any]:
    definition = crd()
    second = copy.deepcopy(definition["spec"]["versions"][0])
    second["name"] = "v1" if same_name else "v2"
    definition["spec"]["versions"][0]["storage"] = first_storage
    second["storage"] = second_storage
    definition["spec"]["versions"].append(second)
    return definition


BAD_CRDS = [
    pytest.param(
        _with(["metadata", "name"], "gadgets.example.com"),
        'metadata.name: Invalid value: "gadgets.example.com": must be spec.names.plural+"."+spec.group',
        id="name-not-plural-dot-group",
    ),
    pytest.param(
        crd(group="example"),
        'spec.group: Invalid value: "example": should be a domain with at least one dot',
        id="group-without-dot",
    ),
    pytest.param(
        _with(["spec", "scope"], "Global"),
        'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"',
        id="unknown-scope",
    ),
    pytest.param(
        crd("Widgets", "Widget"),
        'spec.names.plural: Invalid value: "Widgets": a DNS-1035 label must consist of lower case alphanumeric',
        id="plural-not-dns-label",
    ),
    pytest.param(
        _with(["spec", "names", "listKind"], "Widget"),
        'spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same',
        id="kind-equals-list-kind",
    ),
    pytest.param(
        _with(["spec", "names", "shortNames"], ["Bad_Name"]),
        'spec.names.shortNames[0]: Invalid value: "Bad_Name"',
        id="bad-short-name",
    ),
    pytest.param(
        _two_versions(True, True),
        "spec.versions: Invalid value:",
        id="two-storage-versions",
    ),
    pytest.param(
        _two_versions(False, False),
        "must have exactly one version marked as storage version",
        id="no-storage-version",
    ),
    pytest.param(
        _two_versions(True, False, same_name=True),
        "must contain unique version names",
        id="duplicate-versions",
    ),
    pytest.param(
        _without_schema(),
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
        id="missing-schema",
    ),
    pytest.param(
        crd(schema={"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}),
        "spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields",
        id="not-structural",
    ),
    pytest.param(
        crd(
            schema={
                "type": "object",
                "properties": {"spec": {"type": "object", "additionalProperties": False}},
            }
        ),
        "spec.validation.openAPIV3Schema.properties[spec].additionalProperties: Forbidden",
        id="additional-properties-false",
    ),
    pytest.param(
        crd(
            schema={
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "x-kubernetes-validations": [{"rule": "self.replicas >"}],
                        "properties": {"replicas": {"type": "integer"}},
                    }
                },
            }
        ),
        "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value:",
        id="cel-does-not-compile",
    ),
    pytest.param(
        crd(additionalPrinterColumns=[{"name": "X", "type": "float", "jsonPath": ".spec.x"}]),
        'spec.additionalPrinterColumns[0].type: Invalid value: "float": must be one of boolean,date,integer,number,string',
        id="printer-column-type",
    ),
    pytest.param(
        crd(
            subresources={
                "scale": {"specReplicasPath": ".status.replicas", "statusReplicasPath": ".status.replicas"}
            }
        ),
        'spec.subresources.scale.specReplicasPath: Invalid value: ".status.replicas": should be a json path under .spec',
        id="scale-path-outside-spec",
    ),
    pytest.param(
        crd(selectableFields=[{"jsonPath": ".spec"}]),
        'spec.versions[0].selectableFields[0].jsonPath: Invalid value: ".spec": must point to a field of type string, boolean or integer',
        id="selectable-field-object",
    ),
    pytest.param(
        crd(group="widgets.k8s.io"),
        'metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation "api-approved.kubernetes.io"',
        id="protected-group",
    ),
]


@pytest.mark.parametrize(("definition", "message"), BAD_CRDS)
async def test_malformed_crds_are_rejected_with_upstreams_message_and_not_stored(
    http: aiohttp.ClientSession, definition: dict[str, Any], message: str
) -> None:
    status, body, _ = await send(http, "POST", CRDS, definition)
    assert status == 422, body
    assert body["reason"] == "Invalid" and body["details"]["kind"] == "CustomResourceDefinition"
    assert message in body["message"], body["message"]
    assert body["message"].startswith(
        f'CustomResourceDefinition.apiextensions.k8s.io "{definition["metadata"]["name"]}" is invalid: '
    )
    _, listing, _ = await send(http, "GET", CRDS)
    assert listing["items"] == []


async def test_names_clashing_with_another_crd_are_not_accepted_until_the_other_goes(
    http: aiohttp.ClientSession,
) -> None:
    await install(http, crd("widgets", "Widget"))
    status, _, _ = await send(http, "POST", CRDS, crd("gadgets", "Widget"))
    assert status == 201  # stored, but not served

    async def kind_conflict() -> dict[str, Any] | None:
        cond = await condition(http, "gadgets.example.com", "NamesAccepted")
        return cond if cond and cond["status"] == "False" else None

    cond = await eventually(kind_conflict)
    # Kind and listKind both clash; upstream reports the last check that failed.
    assert cond["reason"] == "ListKindConflict" and cond["message"] == '"WidgetList" is already in use'
    not_established = await condition(http, "gadgets.example.com", "Established")
    assert not_established is not None and not_established["status"] == "False"
    assert not_established["reason"] == "NotAccepted"
    status, _, _ = await send(http, "GET", "/apis/example.com/v1/namespaces/default/gadgets")
    assert status == 404
    await send(http, "DELETE", f"{CRDS}/widgets.example.com")
    await established(http, "gadgets.example.com")
    status, _, _ = await send(http, "GET", "/apis/example.com/v1/namespaces/default/gadgets")
    assert status == 200


async def test_a_short_name_in_use_by_another_crd_of_the_group_is_a_conflict(
    http: aiohttp.ClientSession,
) -> None:
    first = crd("widgets", "Widget")
    first["spec"]["names"]["shortNames"] = ["w"]
    await install(http, first)
    second = crd("gadgets", "Gadget")
    second["spec"]["names"]["shortNames"] = ["w"]
    await send(http, "POST", CRDS, second)

    async def conflict() -> dict[str, Any] | None:
        cond = await condition(http, "gadgets.example.com", "NamesAccepted")
        return cond if cond and cond["status"] == "False" else None

    cond = await eventually(conflict)
    assert (cond["reason"], cond["message"]) == ("ShortNamesConflict", '"w" is already in use')


async def test_immutable_crd_fields_cannot_change(http: aiohttp.ClientSession) -> None:
    created = await install(http, crd())
    _, current, _ = await send(http, "GET", f"{CRDS}/widgets.example.com")
    current["spec"]["scope"] = "Cluster"
    status, body, _ = await send(http, "PUT", f"{CRDS}/widgets.example.com", current)
    assert status == 422 and 'spec.scope: Invalid value: "Cluster": field is immutable' in body["message"]
    assert created["metadata"]["uid"] == current["metadata"]["uid"]


async def test_a_status_update_of_a_crd_changes_only_its_status(http: aiohttp.ClientSession) -> None:
    await install(http, crd())
    _, current, _ = await send(http, "GET", f"{CRDS}/widgets.example.com")
    current["spec"]["names"]["shortNames"] = ["ignored"]
    current["status"]["conditions"].append(
        {
            "type": "Custom",
            "status": "True",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "reason": "R",
            "message": "m",
        }
    )
    status, updated, _ = await send(http, "PUT", f"{CRDS}/widgets.example.com/status", current)
    assert status == 200, updated
    assert "shortNames" not in updated["spec"]["names"]
    assert any(c["type"] == "Custom" for c in updated["status"]["conditions"])


# ------------------------------------------------------------------------------ updates


async def test_updating_a_crd_changes_validation_and_printer_columns_live(
    http: aiohttp.ClientSession,
) -> None:
    await install(http, crd())
    status, _, _ = await send(http, "POST", WIDGETS, widget("big", replicas=8))
    assert status == 201
    _, current, _ = await send(http, "GET", f"{CRDS}/widgets.example.com")
    version = current["spec"]["versions"][0]
    version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"]["maximum"] = 5
    version["additionalPrinterColumns"] = [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}
    ]
    status, body, _ = await send(http, "PUT", f"{CRDS}/widgets.example.com", current)
    assert status == 200, body
    status, body, _ = await send(http, "POST", WIDGETS, widget("bigger", replicas=8))
    assert status == 422
    assert (
        "spec.replicas: Invalid value: 8: spec.replicas in body should be less than or equal to 5"
        in body["message"]
    )
    _, table, _ = await send(
        http, "GET", WIDGETS, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    )
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Replicas"]
    assert table["rows"][0]["cells"] == ["big", 8]


async def test_a_default_added_to_the_schema_shows_on_objects_stored_before(
    http: aiohttp.ClientSession,
) -> None:
    await install(http, crd())
    await send(http, "POST", WIDGETS, widget("old", replicas=1))
    _, current, _ = await send(http, "GET", f"{CRDS}/widgets.example.com")
    spec_schema = current["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec_schema["properties"]["size"]["default"] = "M"
    status, _, _ = await send(http, "PUT", f"{CRDS}/widgets.example.com", current)
    assert status == 200
    _, obj, _ = await send(http, "GET", f"{WIDGETS}/old")
    assert obj["spec"] == {"replicas": 1, "color": "blue", "size": "M"}
    _, listing, _ = await send(http, "GET", WIDGETS)
    assert listing["items"][0]["spec"]["size"] == "M"


# ----------------------------------------------------------------------------- deletion


async def test_deleting_a_crd_deletes_every_instance_and_then_the_crd(http: aiohttp.ClientSession) -> None:
    await install(http, crd())
    for name in ("a", "b"):
        await send(http, "POST", WIDGETS, widget(name))
    held = widget("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await send(http, "POST", WIDGETS, held)
    status, deleting, _ = await send(http, "DELETE", f"{CRDS}/widgets.example.com")
    assert status == 200
    assert "customresourcecleanup.apiextensions.k8s.io" in deleting["metadata"]["finalizers"]
    terminating = [c for c in deleting["status"]["conditions"] if c["type"] == "Terminating"]
    assert terminating and terminating[0]["reason"] == "InstanceDeletionInProgress"

    async def only_held_left() -> bool:
        _, listing, _ = await send(http, "GET", WIDGETS)
        return [i["metadata"]["name"] for i in listing["items"]] == ["held"]

    await eventually(only_held_left)
    # Creating instances is refused while the CRD terminates; the instance with a finalizer holds it.
    status, body, _ = await send(http, "POST", WIDGETS, widget("new"))
    assert (
        status == 405
        and body["message"] == "create not allowed while custom resource definition is terminating"
    )
    status, _, _ = await send(http, "GET", f"{CRDS}/widgets.example.com")
    assert status == 200
    await send(
        http,
        "PATCH",
        f"{WIDGETS}/held",
        {"metadata": {"finalizers": []}},
        content_type="application/merge-patch+json",
    )

    async def crd_gone() -> bool:
        status, _, _ = await send(http, "GET", f"{CRDS}/widgets.example.com")
        return status == 404

    await eventually(crd_gone)
    status, _, _ = await send(http, "GET", "/apis/example.com/v1")
    assert status == 404


# ----------------------------------------------------------------------- custom resources


async def test_unknown_fields_are_400_when_strict_a_warning_by_default_and_silent_when_ignored(
    http: aiohttp.ClientSession,
) -> None:
    await install(http, crd())
    body = widget("u", replicas=1, foo=1)
    status, error, _ = await send(http, "POST", f"{WIDGETS}?fieldValidation=Strict", body)
    assert status == 400
    assert (
        error["message"]
        == 'Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.foo"'
    )
    status, obj, response = await send(http, "POST", WIDGETS, body)
    assert status == 201 and "foo" not in obj["spec"]
    assert response.headers.getall("Warning") == ['299 - "unknown field \\"spec.foo\\""']
    body["metadata"]["name"] = "u2"
    status, obj, response = await send(http, "POST", f"{WIDGETS}?fieldValidation=Ignore", body)
    assert status == 201 and "foo" not in obj["spec"] and "Warning" not in response.headers


async def test_an_invalid_custom_resource_is_422_with_one_cause_per_field_and_never_stored(
    http: aiohttp.ClientSession,
) -> None:
    await install(http, crd())
    status, body, _ = await send(http, "POST", WIDGETS, widget("bad", replicas=-1, size="XL"))
    assert status == 422
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
            "field": "spec.replicas",
        },
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "XL": supported values: "S", "M", "L"',
            "field": "spec.size",
        },
    ]
    status, _, _ = await send(http, "GET", f"{WIDGETS}/bad")
    assert status == 404


async def test_cel_rules_run_on_writes_and_transition_rules_see_the_old_object(
    http: aiohttp.ClientSession,
) -> None:
    schema = copy.deepcopy(WIDGET_SCHEMA)
    schema["properties"]["spec"]["x-kubernetes-validations"] = [
        {"rule": "self.replicas <= 5 || self.size == 'L'", "message": "more than 5 replicas need size L"},
        {"rule": "!has(oldSelf.size) || self.size == oldSelf.size", "message": "size is immutable"},
    ]
    await install(http, crd(schema=schema))
    status, body, _ = await send(http, "POST", WIDGETS, widget("c", replicas=6, size="S"))
    assert status == 422
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "object": more than 5 replicas need size L',
            "field": "spec",
        }
    ]
    status, _, _ = await send(http, "POST", WIDGETS, widget("c", replicas=1, size="S"))
    assert status == 201
    status, body, _ = await send(
        http, "PATCH", f"{WIDGETS}/c", {"spec": {"size": "M"}}, content_type="application/merge-patch+json"
    )
    assert status == 422 and 'spec: Invalid value: "object": size is immutable' in body["message"]


async def test_put_of_a_custom_resource_without_resource_version_is_invalid(
    http: aiohttp.ClientSession,
) -> None:
    await install(http, crd())
    await send(http, "POST", WIDGETS, widget("p"))
    status, body, _ = await send(http, "PUT", f"{WIDGETS}/p", widget("p", replicas=2))
    assert status == 422
    assert body["message"] == (
        'Widget.example.com "p" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update'
    )


async def test_strategic_merge_patch_of_a_custom_resource_is_415(http: aiohttp.ClientSession) -> None:
    await install(http, crd())
    await send(http, "POST", WIDGETS, widget("s"))
    status, body, _ = await send(
        http, "PATCH", f"{WIDGETS}/s", {"spec": {}}, content_type="application/strategic-merge-patch+json"
    )
    assert status == 415
    assert body["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


async def test_server_side_apply_of_a_custom_resource_defaults_and_validates(
    http: aiohttp.ClientSession,
) -> None:
    await install(http, crd())
    path = f"{WIDGETS}/ssa?fieldManager=m"
    status, obj, _ = await send(
        http, "PATCH", path, widget("ssa", replicas=2), content_type="application/apply-patch+yaml"
    )
    assert status == 201 and obj["spec"] == {"replicas": 2, "color": "blue"}
    owned = obj["metadata"]["managedFields"][0]["fieldsV1"]
    assert owned == {"f:spec": {"f:replicas": {}}}  # defaults are not the applier's
    status, body, _ = await send(
        http, "PATCH", path, widget("ssa", replicas=99), content_type="application/apply-patch+yaml"
    )
    assert status == 422 and "spec.replicas" in body["message"]


async def test_status_subresource_splits_spec_and_status_writes(http: aiohttp.ClientSession) -> None:
    await install(http, crd(subresources={"status": {}}))
    body = widget("st", replicas=1)
    body["status"] = {"phase": "Ignored"}
    _, created, _ = await send(http, "POST", WIDGETS, body)
    assert "status" not in created and created["metadata"]["generation"] == 1
    created["status"] = {"phase": "Ready"}
    created["spec"]["replicas"] = 5
    _, updated, _ = await send(http, "PUT", f"{WIDGETS}/st/status", created)
    assert updated["status"] == {"phase": "Ready"} and updated["spec"]["replicas"] == 1
    assert updated["metadata"]["generation"] == 1
    updated["spec"]["replicas"] = 3
    updated["status"] = {"phase": "Lost"}
    _, main, _ = await send(http, "PUT", f"{WIDGETS}/st", updated)
    assert main["spec"]["replicas"] == 3 and main["status"] == {"phase": "Ready"}
    assert main["metadata"]["generation"] == 2


async def test_scale_subresource_reads_and_writes_the_crds_paths(http: aiohttp.ClientSession) -> None:
    scale = {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    await install(http, crd(subresources={"status": {}, "scale": scale}))
    await send(http, "POST", WIDGETS, widget("sc", replicas=2))
    _, obj, _ = await send(http, "GET", f"{WIDGETS}/sc")
    obj["status"] = {"replicas": 1, "selector": "app=sc"}
    await send(http, "PUT", f"{WIDGETS}/sc/status", obj)
    status, current, _ = await send(http, "GET", f"{WIDGETS}/sc/scale")
    assert status == 200
    assert current["spec"] == {"replicas": 2} and current["status"] == {"replicas": 1, "selector": "app=sc"}
    current["spec"]["replicas"] = 4
    status, written, _ = await send(http, "PUT", f"{WIDGETS}/sc/scale", current)
    assert status == 200 and written["spec"]["replicas"] == 4
    _, obj, _ = await send(http, "GET", f"{WIDGETS}/sc")
    assert obj["spec"]["replicas"] == 4


async def test_selectable_fields_filter_lists_and_other_fields_are_rejected(
    http: aiohttp.ClientSession,
) -> None:
    await install(http, crd(selectableFields=[{"jsonPath": ".spec.color"}]))
    await send(http, "POST", WIDGETS, widget("blue"))
    await send(http, "POST", WIDGETS, widget("red", color="red"))
    _, listing, _ = await send(http, "GET", f"{WIDGETS}?fieldSelector=spec.color=red")
    assert [i["metadata"]["name"] for i in listing["items"]] == ["red"]
    status, body, _ = await send(http, "GET", f"{WIDGETS}?fieldSelector=spec.size=S")
    assert status == 400 and body["message"] == "field label not supported: spec.size"


async def test_printer_columns_appear_in_tables_with_types_priorities_and_ages(
    http: aiohttp.ClientSession,
) -> None:
    columns = [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {
            "name": "Color",
            "type": "string",
            "jsonPath": ".spec.color",
            "priority": 1,
            "description": "Paint.",
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    schema = copy.deepcopy(WIDGET_SCHEMA)
    schema["properties"]["status"]["properties"]["conditions"] = {
        "type": "array",
        "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}}},
    }
    await install(http, crd(schema=schema, additionalPrinterColumns=columns))
    body = widget("t", replicas=3)
    body["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    await send(http, "POST", WIDGETS, body)
    _, table, _ = await send(
        http, "GET", WIDGETS, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    )
    definitions = table["columnDefinitions"]
    assert [(c["name"], c["type"], c["priority"]) for c in definitions] == [
        ("Name", "string", 0),
        ("Replicas", "integer", 0),
        ("Ready", "string", 0),
        ("Color", "string", 1),
        ("Age", "date", 0),
    ]
    assert definitions[3]["description"] == "Paint."
    name, replicas, ready, color, age = table["rows"][0]["cells"]
    assert (name, replicas, ready, color) == ("t", 3, "True", "blue")
    assert age.endswith("s")


async def test_without_printer_columns_a_table_has_name_and_age(http: aiohttp.ClientSession) -> None:
    await install(http, crd())
    await send(http, "POST", WIDGETS, widget("n"))
    _, table, _ = await send(
        http, "GET", WIDGETS, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    )
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Age", "date"),
    ]
    assert table["rows"][0]["cells"][0] == "n"


async def test_several_versions_share_one_storage_version_and_rewrite_api_version(
    api_server: APIServer, http: aiohttp.ClientSession
) -> None:
    definition = crd()
    beta = copy.deepcopy(definition["spec"]["versions"][0])
    beta.update(name="v1beta1", storage=False)
    beta["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["legacy"] = {"type": "string"}
    definition["spec"]["versions"].append(beta)
    await install(http, definition)
    beta_path = "/apis/example.com/v1beta1/namespaces/default/widgets"
    old = {
        "apiVersion": "example.com/v1beta1",
        "kind": "Widget",
        "metadata": {"name": "m"},
        "spec": {"legacy": "x"},
    }
    status, created, _ = await send(http, "POST", beta_path, old)
    assert status == 201 and created["apiVersion"] == "example.com/v1beta1"
    record = api_server.service.storage.get(("example.com", "widgets"), "default", "m")
    assert record is not None and json.loads(record.data)["apiVersion"] == "example.com/v1"
    _, as_v1, _ = await send(http, "GET", f"{WIDGETS}/m")
    assert as_v1["apiVersion"] == "example.com/v1" and as_v1["spec"]["legacy"] == "x"
    _, as_beta, _ = await send(http, "GET", f"{beta_path}/m")
    assert as_beta["apiVersion"] == "example.com/v1beta1"
    # Moving the storage version records both in storedVersions.
    _, current, _ = await send(http, "GET", f"{CRDS}/widgets.example.com")
    current["spec"]["versions"][0]["storage"] = False
    current["spec"]["versions"][1]["storage"] = True
    _, updated, _ = await send(http, "PUT", f"{CRDS}/widgets.example.com", current)
    assert updated["status"]["storedVersions"] == ["v1", "v1beta1"]


async def test_crds_and_their_objects_are_served_again_after_a_restart(tmp_path: Path) -> None:
    options = ServerOptions(data_dir=tmp_path)
    async with APIServer(options) as first, aiohttp.ClientSession(base_url=first.url) as http:
        await install(
            http,
            crd(
                additionalPrinterColumns=[
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}
                ]
            ),
        )
        await send(http, "POST", WIDGETS, widget("kept", replicas=2))
    async with APIServer(options) as second, aiohttp.ClientSession(base_url=second.url) as http:
        status, obj, _ = await send(http, "GET", f"{WIDGETS}/kept")
        assert status == 200 and obj["spec"]["replicas"] == 2
        status, body, _ = await send(http, "POST", WIDGETS, widget("bad", replicas=99))
        assert status == 422, body
        _, table, _ = await send(
            http, "GET", WIDGETS, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
        )
        assert table["rows"][0]["cells"] == ["kept", 2]
