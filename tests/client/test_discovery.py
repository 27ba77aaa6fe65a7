"""Discovery: cached per group-version, refreshed for unknown kinds and stale paths."""

from __future__ import annotations

import asyncio

import pytest

from kubevisor.api import GroupVersionKind
from kubevisor.client import Client, UnknownKind
from tests.client.fakeapi import FakeAPI, Kind

CM = GroupVersionKind("", "v1", "ConfigMap")
DEPLOY = GroupVersionKind("apps", "v1", "Deployment")
GADGET = GroupVersionKind("example.com", "v1", "Gadget")


async def test_group_version_documents_are_fetched_once_and_cached(api: FakeAPI, client: Client) -> None:
    for _ in range(3):
        await client.list_all(CM)
    await client.list_all(DEPLOY)
    assert len(api.requests_to("/api/v1")) == 1
    assert len(api.requests_to("/apis/apps/v1")) == 1
    assert not api.requests_to("/apis")  # kind lookups need no group list


async def test_concurrent_lookups_share_one_discovery_request(api: FakeAPI, client: Client) -> None:
    await asyncio.gather(*(client.resource_info(DEPLOY) for _ in range(10)))
    assert len(api.requests_to("/apis/apps/v1")) == 1


async def test_subresources_scope_and_names_come_from_discovery(client: Client) -> None:
    info = await client.resource_info(DEPLOY)
    assert (info.plural, info.singular, info.namespaced) == ("deployments", "deployment", True)
    assert set(info.subresources) == {"status", "scale"}
    assert info.short_names == ("deploy",)
    namespace = await client.resource_info(GroupVersionKind("", "v1", "Namespace"))
    assert not namespace.namespaced


async def test_a_crd_installed_after_start_is_found_by_refreshing(api: FakeAPI, client: Client) -> None:
    with pytest.raises(UnknownKind):
        await client.list_all(GADGET)
    api.kinds.append(Kind("example.com", "v1", "Gadget", "gadgets"))
    assert (await client.list_all(GADGET)).items == []


async def test_a_new_kind_in_a_cached_group_version_is_found_by_refreshing(
    api: FakeAPI, client: Client
) -> None:
    await client.list_all(DEPLOY)
    api.kinds.append(Kind("apps", "v1", "StatefulSet", "statefulsets"))
    assert (
        await client.resource_info(GroupVersionKind("apps", "v1", "StatefulSet"))
    ).plural == "statefulsets"
    assert len(api.requests_to("/apis/apps/v1")) == 2


async def test_a_404_on_a_known_path_refreshes_and_retries_when_the_mapping_changed(
    api: FakeAPI, client: Client
) -> None:
    gadget = Kind("example.com", "v1", "Gadget", "gadgets")
    api.kinds.append(gadget)
    await client.list_all(GADGET)
    # The CRD is recreated under another plural: the cached path now answers 404 for itself.
    gadget.plural = "gizmos"
    assert (await client.list_all(GADGET)).items == []
    assert api.requests[-1].path == "/apis/example.com/v1/namespaces/default/gizmos"


async def test_a_404_on_a_known_path_reports_unknown_kind_once_the_crd_is_gone(
    api: FakeAPI, client: Client
) -> None:
    gadget = Kind("example.com", "v1", "Gadget", "gadgets")
    api.kinds.append(gadget)
    await client.list_all(GADGET)
    api.kinds.remove(gadget)
    with pytest.raises(UnknownKind):
        await client.list_all(GADGET)


async def test_an_object_404_does_not_invalidate_discovery(api: FakeAPI, client: Client) -> None:
    from kubevisor.api import NotFound

    with pytest.raises(NotFound):
        await client.get(CM, "absent")
    with pytest.raises(NotFound):
        await client.get(CM, "absent")
    assert len(api.requests_to("/api/v1")) == 1


@pytest.mark.parametrize(
    ("name", "plural"),
    [
        ("deploy", "deployments"),
        ("deployments.apps", "deployments"),
        ("Deployment.v1.apps", "deployments"),
        ("cm", "configmaps"),
        ("configmap", "configmaps"),
        ("ns", "namespaces"),
    ],
)
async def test_lookup_resolves_names_as_kubectl_does(client: Client, name: str, plural: str) -> None:
    assert (await client.discovery.lookup(name)).plural == plural


async def test_lookup_of_an_unknown_name_says_so(client: Client) -> None:
    with pytest.raises(UnknownKind, match='doesn\'t have a resource type "frobs"'):
        await client.discovery.lookup("frobs")
