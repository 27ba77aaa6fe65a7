"""Namespace lifecycle over real HTTP (and real kubectl): Terminating, content deletion that honours
finalizers, upstream's conditions, finalization, the default ServiceAccount, and the 403/404 answers
for content in terminating and missing namespaces.

Nothing here measures time: every wait is for a condition, bounded by a generous deadline.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubevisor.api import Forbidden, ResourceInfo
from kubevisor.server import AdmissionRequest, APIServer, ServerOptions, default_controllers
from kubevisor.server._namespaces import CONDITION_TYPES
from tests.server._api import DEADLINE, eventually
from tests.server._api import Api as SharedApi

NAMESPACES = "/api/v1/namespaces"
HOLD = "example.com/hold"
CONTROLLERS = default_controllers()


@pytest.fixture
def server_options() -> ServerOptions:
    return ServerOptions(controllers=CONTROLLERS)


class Api(SharedApi):
    async def namespace(self, name: str, **spec: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"metadata": {"name": name}}
        if spec:
            body["spec"] = spec
        return await self.create(NAMESPACES, body)


@pytest.fixture
async def api(http: aiohttp.ClientSession) -> Api:
    return Api(http)


def cms(ns: str) -> str:
    return f"{NAMESPACES}/{ns}/configmaps"


def conditions(namespace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (namespace.get("status") or {}).get("conditions") or []}


# ---------------------------------------------------------------- creation


async def test_a_new_namespace_is_active_with_the_kubernetes_finalizer(api: Api) -> None:
    created = await api.namespace("team")
    assert created["spec"]["finalizers"] == ["kubernetes"]
    assert created["status"] == {"phase": "Active"}


async def test_every_namespace_gets_a_default_service_account(api: Api) -> None:
    await api.namespace("team")
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease", "team"):
        await eventually(lambda ns=ns: _exists(api, f"{NAMESPACES}/{ns}/serviceaccounts/default"))


async def test_a_deleted_default_service_account_is_created_again(api: Api) -> None:
    path = f"{NAMESPACES}/default/serviceaccounts/default"
    await eventually(lambda: _exists(api, path))
    first = await api.get(path)
    assert first is not None
    status, _ = await api.call("DELETE", path)
    assert status == 200

    async def recreated() -> bool:
        again = await api.get(path)
        return again is not None and again["metadata"]["uid"] != first["metadata"]["uid"]

    await eventually(recreated)


async def _exists(api: Api, path: str) -> bool:
    return await api.get(path) is not None


# ---------------------------------------------------------------- 403 and 404


async def test_creating_content_in_a_missing_namespace_is_not_found(api: Api) -> None:
    status, body = await api.call("POST", cms("nowhere"), {"metadata": {"name": "c"}})
    assert status == 404
    assert body["reason"] == "NotFound" and body["message"] == 'namespaces "nowhere" not found'


async def test_creating_content_in_a_terminating_namespace_is_forbidden(api: Api) -> None:
    await api.namespace("closing")
    await api.create(cms("closing"), {"metadata": {"name": "held", "finalizers": [HOLD]}})
    status, _ = await api.call("DELETE", f"{NAMESPACES}/closing")
    assert status == 200
    status, body = await api.call("POST", cms("closing"), {"metadata": {"name": "late"}})
    assert status == 403
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'configmaps "late" is forbidden: unable to create new content in namespace closing because it is '
        "being terminated"
    )
    assert body["details"]["causes"] == [
        {
            "reason": "NamespaceTerminating",
            "message": "namespace closing is being terminated",
            "field": "metadata.namespace",
        }
    ]
    status, body = await api.call(
        "POST", "/apis/apps/v1/namespaces/closing/deployments", {"metadata": {"name": "web"}}
    )
    assert status == 403 and body["message"].startswith('deployments.apps "web" is forbidden')
    await api.release(f"{cms('closing')}/held")


# ---------------------------------------------------------------- deletion


async def test_deleting_a_namespace_deletes_everything_in_it(api: Api, api_server: APIServer) -> None:
    widgets = ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True)
    api_server.add_resource(widgets)  # a resource added at run time, as a CRD adds one
    await api.namespace("doomed")
    await api.namespace("bystander")
    for ns in ("doomed", "bystander"):
        await api.create(cms(ns), {"metadata": {"name": "settings"}})
        await api.create(f"{NAMESPACES}/{ns}/secrets", {"metadata": {"name": "token"}})
        await api.create(
            f"/apis/example.com/v1/namespaces/{ns}/widgets",
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
        )
        await api.create(
            f"{NAMESPACES}/{ns}/events",
            {
                "metadata": {"name": "e"},
                "involvedObject": {"kind": "ConfigMap", "name": "settings", "namespace": ns},
                "reason": "Created",
                "message": "created",
                "type": "Normal",
            },
        )
    status, body = await api.call("DELETE", f"{NAMESPACES}/doomed")
    assert status == 200
    assert body["metadata"]["deletionTimestamp"] and body["status"]["phase"] == "Terminating"
    await eventually(lambda: api.gone(f"{NAMESPACES}/doomed"))
    for path in ("configmaps/settings", "secrets/token", "serviceaccounts/default", "events/e"):
        assert await api.gone(f"{NAMESPACES}/doomed/{path}")
    assert await api.gone("/apis/example.com/v1/namespaces/doomed/widgets/w")
    assert not await api.gone(f"{cms('bystander')}/settings")
    assert not await api.gone("/apis/events.k8s.io/v1/namespaces/bystander/events/e")
    assert not await api.gone("/apis/example.com/v1/namespaces/bystander/widgets/w")


async def test_finalized_content_holds_the_namespace_in_terminating_until_released(api: Api) -> None:
    await api.namespace("held")
    await api.create(cms("held"), {"metadata": {"name": "keep", "finalizers": [HOLD]}})
    await api.create(cms("held"), {"metadata": {"name": "drop"}})
    await api.call("DELETE", f"{NAMESPACES}/held")

    async def reported() -> bool:
        namespace = await api.get(f"{NAMESPACES}/held")
        assert namespace is not None
        return conditions(namespace).get("NamespaceFinalizersRemaining", {}).get("status") == "True"

    await eventually(reported)
    namespace = await api.get(f"{NAMESPACES}/held")
    assert namespace is not None
    assert namespace["status"]["phase"] == "Terminating"
    assert namespace["spec"]["finalizers"] == ["kubernetes"]
    found = conditions(namespace)
    assert [c["type"] for c in namespace["status"]["conditions"]] == list(CONDITION_TYPES)
    assert found["NamespaceContentRemaining"] | {"lastTransitionTime": ""} == {
        "type": "NamespaceContentRemaining",
        "status": "True",
        "lastTransitionTime": "",
        "reason": "SomeResourcesRemain",
        "message": "Some resources are remaining: configmaps. has 1 resource instances",
    }
    assert found["NamespaceFinalizersRemaining"]["reason"] == "SomeFinalizersRemain"
    assert found["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    )
    assert found["NamespaceDeletionContentFailure"]["status"] == "False"
    assert found["NamespaceDeletionContentFailure"]["reason"] == "ContentDeleted"
    assert found["NamespaceDeletionDiscoveryFailure"]["message"] == "All resources successfully discovered"
    kept = await api.get(f"{cms('held')}/keep")
    assert kept is not None and kept["metadata"]["deletionTimestamp"]
    assert await api.gone(f"{cms('held')}/drop")

    await api.release(f"{cms('held')}/keep")
    await eventually(lambda: api.gone(f"{NAMESPACES}/held"))


async def test_another_spec_finalizer_keeps_the_namespace_after_its_content_is_gone(api: Api) -> None:
    await api.namespace("shared", finalizers=["kubernetes", "example.com/external"])
    await api.create(cms("shared"), {"metadata": {"name": "c"}})
    await api.call("DELETE", f"{NAMESPACES}/shared")

    async def finalized_by_us() -> bool:
        namespace = await api.get(f"{NAMESPACES}/shared")
        assert namespace is not None
        return namespace["spec"]["finalizers"] == ["example.com/external"]

    await eventually(finalized_by_us)
    assert await api.gone(f"{cms('shared')}/c")
    namespace = await api.get(f"{NAMESPACES}/shared")
    assert namespace is not None
    namespace["spec"]["finalizers"] = []
    status, _ = await api.call("PUT", f"{NAMESPACES}/shared/finalize", namespace)
    assert status == 200
    assert await api.gone(f"{NAMESPACES}/shared")


@dataclass
class RefuseDeletes:
    """An admission plugin that refuses to delete objects named ``name`` while ``active``."""

    name: str
    active: bool = True

    async def admit(self, request: AdmissionRequest) -> None:
        if self.active and request.operation == "DELETE" and request.name == self.name:
            raise Forbidden(f'configmaps "{self.name}" is forbidden: refused by test policy')


@pytest.fixture
async def refusing() -> AsyncIterator[tuple[Api, RefuseDeletes]]:
    policy = RefuseDeletes("stuck")
    options = ServerOptions(controllers=CONTROLLERS, admission=(policy,))
    async with APIServer(options) as server, aiohttp.ClientSession(base_url=server.url) as session:
        yield Api(session), policy


async def test_content_that_fails_to_delete_is_reported_and_retried(
    refusing: tuple[Api, RefuseDeletes],
) -> None:
    api, policy = refusing
    await api.namespace("sticky")
    await api.create(cms("sticky"), {"metadata": {"name": "stuck"}})
    await api.call("DELETE", f"{NAMESPACES}/sticky")

    async def failure_reported() -> bool:
        namespace = await api.get(f"{NAMESPACES}/sticky")
        assert namespace is not None
        return conditions(namespace).get("NamespaceDeletionContentFailure", {}).get("status") == "True"

    await eventually(failure_reported)
    namespace = await api.get(f"{NAMESPACES}/sticky")
    assert namespace is not None
    failure = conditions(namespace)["NamespaceDeletionContentFailure"]
    assert failure["reason"] == "ContentDeletionFailed"
    assert failure["message"] == (
        'Failed to delete all resource types, 1 remaining: configmaps "stuck" is forbidden: refused by test policy'
    )
    policy.active = False  # the next retry succeeds
    await eventually(lambda: api.gone(f"{NAMESPACES}/sticky"))


async def test_namespace_deletion_resumes_after_a_restart(tmp_path: Path) -> None:
    async with APIServer(ServerOptions(data_dir=tmp_path, controllers=())) as server:
        async with aiohttp.ClientSession(base_url=server.url) as session:
            api = Api(session)
            await api.namespace("interrupted")
            await api.create(cms("interrupted"), {"metadata": {"name": "c"}})
            await api.call("DELETE", f"{NAMESPACES}/interrupted")
            assert not await api.gone(f"{cms('interrupted')}/c")  # no controller ran
    async with APIServer(ServerOptions(data_dir=tmp_path, controllers=CONTROLLERS)) as server:
        async with aiohttp.ClientSession(base_url=server.url) as session:
            api = Api(session)
            await eventually(lambda: api.gone(f"{NAMESPACES}/interrupted"))
            assert await api.gone(f"{cms('interrupted')}/c")


# ---------------------------------------------------------------- kubectl


def kubectl_binary() -> str | None:
    return os.environ.get("KUBECTL") or shutil.which("kubectl")


Kubectl = Callable[..., Awaitable[str]]


@pytest.fixture
def kubectl(api_server: APIServer, tmp_path: Path) -> Kubectl:
    binary = kubectl_binary()
    if binary is None:
        pytest.skip("kubectl is not installed")
    config = api_server.write_kubeconfig(tmp_path / "kubeconfig")

    async def run(*args: str, stdin: str | None = None) -> str:
        proc = await asyncio.create_subprocess_exec(
            binary,
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "KUBECONFIG": str(config)},
        )
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), DEADLINE)
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
        return out.decode()

    return run


HELD = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: held
  namespace: guarded
  finalizers: [example.com/hold]
data: {a: b}
"""


@pytest.mark.kubectl
async def test_kubectl_sees_finalized_content_hold_a_namespace_then_waits_for_it_to_go(
    api: Api, kubectl: Kubectl
) -> None:
    await kubectl("create", "namespace", "guarded")
    await kubectl("apply", "-f", "-", stdin=HELD)
    await kubectl("delete", "namespace", "guarded", "--wait=false")

    async def reported() -> bool:
        namespace = await api.get(f"{NAMESPACES}/guarded")
        assert namespace is not None
        return conditions(namespace).get("NamespaceFinalizersRemaining", {}).get("status") == "True"

    await eventually(reported)
    assert await kubectl("get", "namespace", "guarded", "-o", "jsonpath={.status.phase}") == "Terminating"
    described = await kubectl("describe", "namespace", "guarded")
    assert "SomeFinalizersRemain" in described
    await kubectl(
        "patch",
        "configmap",
        "held",
        "-n",
        "guarded",
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    await kubectl("wait", "--for=delete", "namespace/guarded", "--timeout=20s")
    assert await api.gone(f"{NAMESPACES}/guarded")


@pytest.mark.kubectl
async def test_kubectl_delete_namespace_returns_once_it_is_gone(api: Api, kubectl: Kubectl) -> None:
    await kubectl("create", "namespace", "scratch")
    await kubectl("create", "configmap", "settings", "-n", "scratch", "--from-literal=a=b")
    await kubectl("create", "deployment", "web", "-n", "scratch", "--image=nginx:1.25")
    await eventually(lambda: _exists(api, f"{NAMESPACES}/scratch/serviceaccounts/default"))
    assert "serviceaccount/default" in await kubectl("get", "serviceaccounts", "-n", "scratch", "-o", "name")
    output = await kubectl("delete", "namespace", "scratch")
    assert 'namespace "scratch" deleted' in output
    assert await api.gone(f"{NAMESPACES}/scratch")
    assert await api.gone(f"{cms('scratch')}/settings")
