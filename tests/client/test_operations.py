"""Every operation, on dicts addressed by GVK, on ResourceInfo, and on typed resources; what goes on
the wire is checked against the upstream API conventions."""

from __future__ import annotations

from typing import Any, Self

import pytest

from kubevisor.api import (
    AlreadyExists,
    Conflict,
    Expired,
    GroupVersionKind,
    Invalid,
    NotFound,
    ResourceInfo,
    UnsupportedMediaType,
)
from kubevisor.client import ALL_NAMESPACES, Client, PatchType, Preconditions, UnknownKind
from tests.client.fakeapi import CONFIGMAP, DEPLOYMENT, NAMESPACE, FakeAPI, Kind, error_response

CM = GroupVersionKind("", "v1", "ConfigMap")
DEPLOY = GroupVersionKind("apps", "v1", "Deployment")
NS = GroupVersionKind("", "v1", "Namespace")


def configmap(name: str, namespace: str | None = None, **data: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


class Widget:
    """A minimal typed resource, as the model layer would provide."""

    def __init__(self, wire: dict[str, Any]) -> None:
        self.wire = wire

    @classmethod
    def resource_info(cls) -> ResourceInfo:
        return ResourceInfo(
            "apps", "v1", "Deployment", "deployments", "deployment", True, subresources=("status", "scale")
        )

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> Self:
        assert obj["kind"] == "Deployment"
        return cls(obj)

    def to_wire(self) -> dict[str, Any]:
        return self.wire

    @property
    def replicas(self) -> int:
        return int(self.wire["spec"]["replicas"])


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas},
    }


# --------------------------------------------------------------------------------------------------
# get / create / replace


async def test_create_then_get_round_trips_in_the_default_namespace(api: FakeAPI, client: Client) -> None:
    created = await client.create(configmap("settings", color="blue"))
    assert created["metadata"]["namespace"] == "default" and created["metadata"]["resourceVersion"]
    assert api.requests[-1].path == "/api/v1/namespaces/default/configmaps"
    fetched = await client.get(CM, "settings")
    assert fetched["data"] == {"color": "blue"}


async def test_object_namespace_is_used_and_must_agree_with_the_argument(
    api: FakeAPI, client: Client
) -> None:
    await client.create(configmap("a", "team-a"))
    assert api.requests[-1].path == "/api/v1/namespaces/team-a/configmaps"
    with pytest.raises(ValueError, match="does not match"):
        await client.create(configmap("b", "team-a"), namespace="team-b")


async def test_cluster_scoped_kinds_use_paths_without_namespace(api: FakeAPI, client: Client) -> None:
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    assert api.requests[-1].path == "/api/v1/namespaces"
    assert (await client.get(NS, "team-a"))["metadata"]["name"] == "team-a"
    with pytest.raises(ValueError, match="cluster-scoped"):
        await client.get(NS, "team-a", namespace="default")


async def test_get_missing_object_raises_not_found_with_the_status(client: Client) -> None:
    with pytest.raises(NotFound) as caught:
        await client.get(CM, "absent")
    assert caught.value.message == 'configmaps "absent" not found'
    assert caught.value.status["details"]["name"] == "absent"


async def test_create_existing_raises_already_exists(client: Client) -> None:
    await client.create(configmap("dup"))
    with pytest.raises(AlreadyExists):
        await client.create(configmap("dup"))


async def test_replace_with_a_stale_resource_version_raises_conflict(client: Client) -> None:
    created = await client.create(configmap("cm", k="1"))
    created["data"] = {"k": "2"}
    updated = await client.replace(created)
    assert updated["data"] == {"k": "2"}
    created["data"] = {"k": "3"}  # still carries the first resourceVersion
    with pytest.raises(Conflict, match="the object has been modified"):
        await client.replace(created)


async def test_writes_send_dry_run_field_manager_and_field_validation(api: FakeAPI, client: Client) -> None:
    await client.create(configmap("dry"), dry_run=True, field_manager="op", field_validation="Strict")
    assert api.requests[-1].query == {"dryRun": "All", "fieldManager": "op", "fieldValidation": "Strict"}
    assert ("", "default", "dry") not in api.objects


async def test_objects_without_apiversion_kind_or_name_are_rejected_naming_the_field(client: Client) -> None:
    with pytest.raises(ValueError, match="apiVersion/kind"):
        await client.create({"metadata": {"name": "x"}})
    with pytest.raises(ValueError, match=r"metadata\.name"):
        await client.replace({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        await client.get(CM, "")


async def test_unknown_kind_raises_unknown_kind_with_client_go_wording(client: Client) -> None:
    with pytest.raises(UnknownKind, match=r'no matches for kind "Gadget" in version "example\.com/v1"'):
        await client.get(GroupVersionKind("example.com", "v1", "Gadget"), "x")


async def test_invalid_carries_the_field_causes(api: FakeAPI, client: Client) -> None:
    causes = [{"reason": "FieldValueInvalid", "message": "Invalid value: -1", "field": "spec.replicas"}]
    api.inject(
        lambda r: r.method == "POST",
        lambda: error_response(
            422,
            "Invalid",
            'Deployment.apps "d" is invalid: spec.replicas: Invalid value: -1',
            name="d",
            kind="Deployment",
            causes=causes,
        ),
    )
    with pytest.raises(Invalid) as caught:
        await client.create(deployment("d", replicas=-1))
    assert caught.value.field_errors == causes


# --------------------------------------------------------------------------------------------------
# lists


async def test_list_pages_with_limit_and_continue_without_resending_resource_version(
    api: FakeAPI, client: Client
) -> None:
    for i in range(7):
        api.put(CONFIGMAP, configmap(f"cm-{i}", "default"))
    pager = client.list(CM, limit=3, resource_version="0")
    names = [obj["metadata"]["name"] async for obj in pager]
    assert names == [f"cm-{i}" for i in range(7)]
    lists = [r for r in api.requests if r.path == "/api/v1/namespaces/default/configmaps"]
    assert [r.query.get("limit") for r in lists] == ["3", "3", "3"]
    assert lists[0].query["resourceVersion"] == "0" and "continue" not in lists[0].query
    assert all("resourceVersion" not in r.query and r.query["continue"] for r in lists[1:])
    assert pager.resource_version == str(api.rv)


async def test_list_items_carry_api_version_and_kind(api: FakeAPI, client: Client) -> None:
    api.put(CONFIGMAP, configmap("a", "default"))
    listing = await client.list_all(CM)
    assert listing.items[0]["apiVersion"] == "v1" and listing.items[0]["kind"] == "ConfigMap"


async def test_list_all_returns_items_and_the_list_resource_version(api: FakeAPI, client: Client) -> None:
    for i in range(5):
        api.put(CONFIGMAP, configmap(f"cm-{i}", "default"))
    listing = await client.list_all(CM, limit=2)
    assert len(listing) == 5
    assert listing.resource_version == str(api.rv)


async def test_list_all_falls_back_to_a_full_list_when_the_continue_token_expires(
    api: FakeAPI, client: Client
) -> None:
    for i in range(5):
        api.put(CONFIGMAP, configmap(f"cm-{i}", "default"))
    api.continue_tokens_expired = True
    listing = await client.list_all(CM, limit=2)
    assert len(listing) == 5
    assert "limit" not in api.requests[-1].query


async def test_list_iteration_raises_expired_when_the_continue_token_expires(
    api: FakeAPI, client: Client
) -> None:
    for i in range(5):
        api.put(CONFIGMAP, configmap(f"cm-{i}", "default"))
    api.continue_tokens_expired = True
    with pytest.raises(Expired):
        async for _ in client.list(CM, limit=2):
            pass


async def test_list_across_all_namespaces_with_selectors(api: FakeAPI, client: Client) -> None:
    api.put(
        CONFIGMAP,
        {**configmap("a", "one"), "metadata": {"name": "a", "namespace": "one", "labels": {"app": "x"}}},
    )
    api.put(
        CONFIGMAP,
        {**configmap("b", "two"), "metadata": {"name": "b", "namespace": "two", "labels": {"app": "y"}}},
    )
    listing = await client.list_all(
        CM, namespace=ALL_NAMESPACES, label_selector="app=x", field_selector="metadata.name=a"
    )
    assert [o["metadata"]["name"] for o in listing.items] == ["a"]
    assert api.requests[-1].path == "/api/v1/configmaps"
    assert api.requests[-1].query["labelSelector"] == "app=x"
    assert api.requests[-1].query["fieldSelector"] == "metadata.name=a"


# --------------------------------------------------------------------------------------------------
# patch / apply


async def test_merge_patch_sends_its_content_type(api: FakeAPI, client: Client) -> None:
    await client.create(configmap("cm", a="1", b="2"))
    patched = await client.patch(CM, "cm", {"data": {"a": None, "c": "3"}})
    assert patched["data"] == {"b": "2", "c": "3"}
    assert api.requests[-1].headers["Content-Type"] == "application/merge-patch+json"


async def test_json_patch_is_a_list_of_operations(api: FakeAPI, client: Client) -> None:
    await client.create(configmap("cm", a="1"))
    patched = await client.patch(
        CM, "cm", [{"op": "add", "path": "/data/b", "value": "2"}], patch_type=PatchType.JSON
    )
    assert patched["data"] == {"a": "1", "b": "2"}
    assert api.requests[-1].headers["Content-Type"] == "application/json-patch+json"
    with pytest.raises(ValueError, match="list of operations"):
        await client.patch(CM, "cm", {"data": {}}, patch_type=PatchType.JSON)


async def test_strategic_merge_patch_on_a_custom_resource_surfaces_415(api: FakeAPI, client: Client) -> None:
    gadget = Kind("example.com", "v1", "Gadget", "gadgets")
    api.kinds.append(gadget)
    api.put(gadget, {"metadata": {"name": "g", "namespace": "default"}})
    with pytest.raises(UnsupportedMediaType):
        await client.patch(
            GroupVersionKind("example.com", "v1", "Gadget"), "g", {"spec": {}}, patch_type=PatchType.STRATEGIC
        )


async def test_server_side_apply_sends_field_manager_force_and_strips_managed_fields(
    api: FakeAPI, client: Client
) -> None:
    obj = configmap("applied", a="1")
    obj["metadata"]["managedFields"] = [{"manager": "someone"}]
    result = await client.apply(obj, field_manager="my-operator", force=True)
    assert result["data"] == {"a": "1"}
    sent = api.requests[-1]
    assert sent.method == "PATCH" and sent.headers["Content-Type"] == "application/apply-patch+yaml"
    assert sent.query == {"fieldManager": "my-operator", "force": "true"}
    assert "managedFields" not in sent.json()["metadata"]
    assert "managedFields" in obj["metadata"]  # the caller's object is untouched


async def test_apply_requires_a_field_manager_and_force_only_applies_to_apply(client: Client) -> None:
    with pytest.raises(ValueError, match="field_manager"):
        await client.apply(configmap("x"), field_manager="")
    with pytest.raises(ValueError, match="force"):
        await client.patch(CM, "x", {}, force=True)


# --------------------------------------------------------------------------------------------------
# delete


async def test_delete_sends_delete_options_and_returns_the_final_object(api: FakeAPI, client: Client) -> None:
    created = await client.create(configmap("doomed"))
    result = await client.delete(
        CM,
        "doomed",
        propagation_policy="Foreground",
        grace_period_seconds=0,
        preconditions=Preconditions(
            uid=created["metadata"]["uid"], resource_version=created["metadata"]["resourceVersion"]
        ),
    )
    assert result["metadata"]["name"] == "doomed"
    assert api.requests[-1].json() == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "propagationPolicy": "Foreground",
        "gracePeriodSeconds": 0,
        "preconditions": {
            "uid": created["metadata"]["uid"],
            "resourceVersion": created["metadata"]["resourceVersion"],
        },
    }
    with pytest.raises(NotFound):
        await client.get(CM, "doomed")


async def test_delete_with_a_failed_precondition_raises_conflict(client: Client) -> None:
    await client.create(configmap("kept"))
    with pytest.raises(Conflict):
        await client.delete(CM, "kept", preconditions=Preconditions(resource_version="1"))


async def test_delete_of_an_object_with_finalizers_returns_it_pending(api: FakeAPI, client: Client) -> None:
    obj = configmap("held")
    obj["metadata"]["finalizers"] = ["example.com/cleanup"]
    await client.create(obj)
    pending = await client.delete(CM, "held")
    assert pending["metadata"]["deletionTimestamp"]


async def test_dry_run_delete_sends_dry_run_all(api: FakeAPI, client: Client) -> None:
    await client.create(configmap("stays"))
    await client.delete(CM, "stays", dry_run=True)
    assert api.requests[-1].json()["dryRun"] == ["All"]
    assert (await client.get(CM, "stays"))["metadata"]["name"] == "stays"


async def test_delete_collection_with_a_label_selector(api: FakeAPI, client: Client) -> None:
    api.put(CONFIGMAP, {"metadata": {"name": "a", "namespace": "default", "labels": {"tier": "cache"}}})
    api.put(CONFIGMAP, {"metadata": {"name": "b", "namespace": "default", "labels": {"tier": "db"}}})
    result = await client.delete_collection(CM, label_selector="tier=cache", propagation_policy="Background")
    assert [o["metadata"]["name"] for o in result["items"]] == ["a"]
    assert api.requests[-1].method == "DELETE" and api.requests[-1].query == {"labelSelector": "tier=cache"}
    assert [o["metadata"]["name"] for o in (await client.list_all(CM)).items] == ["b"]


# --------------------------------------------------------------------------------------------------
# subresources


async def test_status_subresource_replace_and_patch(api: FakeAPI, client: Client) -> None:
    created = await client.create(deployment("web"))
    created["status"] = {"readyReplicas": 1}
    created["spec"]["replicas"] = 99  # ignored by the status endpoint
    updated = await client.replace_status(created)
    assert api.requests[-1].path == "/apis/apps/v1/namespaces/default/deployments/web/status"
    assert updated["status"] == {"readyReplicas": 1} and updated["spec"]["replicas"] == 1
    patched = await client.patch_status(DEPLOY, "web", {"status": {"readyReplicas": 2}})
    assert patched["status"]["readyReplicas"] == 2
    assert api.requests[-1].path.endswith("/deployments/web/status")


async def test_scale_subresource_get_replace_and_scale(api: FakeAPI, client: Client) -> None:
    await client.create(deployment("web", replicas=2))
    scale = await client.get_scale(DEPLOY, "web")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    scale["spec"]["replicas"] = 4
    assert (await client.replace_scale(DEPLOY, "web", scale))["spec"]["replicas"] == 4
    assert (await client.scale(DEPLOY, "web", 5))["spec"]["replicas"] == 5
    assert api.requests[-1].headers["Content-Type"] == "application/merge-patch+json"
    assert (await client.get(DEPLOY, "web"))["spec"]["replicas"] == 5


# --------------------------------------------------------------------------------------------------
# typed resources and ResourceInfo


async def test_typed_resources_round_trip_through_every_operation(api: FakeAPI, client: Client) -> None:
    created = await client.create(Widget(deployment("typed", replicas=2)))
    assert isinstance(created, Widget) and created.replicas == 2
    fetched = await client.get(Widget, "typed")
    assert isinstance(fetched, Widget)
    patched = await client.patch(Widget, "typed", {"spec": {"replicas": 3}})
    assert patched.replicas == 3
    applied = await client.apply(Widget(deployment("typed", replicas=4)), field_manager="m")
    assert isinstance(applied, Widget) and applied.replicas == 4
    listing = await client.list_all(Widget)
    assert all(isinstance(item, Widget) for item in listing.items)
    # A typed kind never consults discovery.
    assert not any(r.path.startswith("/apis/apps/v1") and r.path.count("/") == 3 for r in api.requests)


async def test_resource_info_addresses_without_discovery(api: FakeAPI, client: Client) -> None:
    info = ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True)
    await client.create(configmap("direct"))
    discovery_calls = len(api.requests_to("/api/v1"))
    assert (await client.get(info, "direct"))["metadata"]["name"] == "direct"
    assert len(api.requests_to("/api/v1")) == discovery_calls


async def test_names_are_percent_encoded_in_paths(api: FakeAPI, client: Client) -> None:
    with pytest.raises(NotFound):
        await client.get(CM, "a/b?c")
    sent = [r for r in api.requests if "configmaps" in r.raw_path]
    assert sent[0].raw_path == "/api/v1/namespaces/default/configmaps/a%2Fb%3Fc"
    with pytest.raises(NotFound):
        await client.get(CM, "system:controller:x")
    assert api.requests[-1].raw_path.endswith("/configmaps/system:controller:x")


async def test_raw_request_and_version(client: Client) -> None:
    assert (await client.version())["gitVersion"] == "v1.33.0-fake"
    assert (await client.request("GET", "/api"))["versions"] == ["v1"]


def test_fake_kinds_used_here_are_distinct() -> None:
    assert len({CONFIGMAP.plural, DEPLOYMENT.plural, NAMESPACE.plural}) == 3


async def test_server_warnings_reach_the_warning_handler(api: FakeAPI, clock: object) -> None:
    from aiohttp import web

    from kubevisor.client import ClientConfig, ClientOptions

    warnings: list[str] = []
    api.inject(
        lambda r: r.method == "POST",
        lambda: web.json_response(
            configmap("warned", "default"),
            status=201,
            headers={"Warning": '299 - "unknown field \\"spec.colour\\""'},
        ),
    )
    options = ClientOptions(warning_handler=warnings.append)
    async with Client(ClientConfig(server=api.url), options) as client:
        await client.create(configmap("warned"), field_validation="Warn")
    assert warnings == ['unknown field "spec.colour"']
