"""Discovery and OpenAPI documents: their shape, and real kubectl (oldest and newest) reading them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kubevisor.api import ResourceInfo
from kubevisor.api._builtins import builtin_definitions, builtin_resources
from kubevisor.server._discovery import (
    api_group_list,
    api_resource_list,
    api_versions,
    sort_versions,
    version_info,
)
from kubevisor.server._openapi import (
    document_hash,
    group_version_key,
    openapi_v2,
    openapi_v3_document,
    openapi_v3_index,
)
from kubevisor.server._openapi_pb import MEDIA_TYPE as OPENAPI_V2_PROTOBUF
from kubevisor.server._openapi_pb import openapi_v2_protobuf

TODO = ResourceInfo(
    group="example.com",
    version="v1",
    kind="Todo",
    plural="todos",
    singular="todo",
    namespaced=True,
    short_names=("td",),
    categories=("all",),
    subresources=("status",),
    schema={
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "description": "What there is to do."},
                    "done": {"type": "boolean"},
                },
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
)


def served() -> tuple[ResourceInfo, ...]:
    return (*builtin_resources(), TODO)


def refs(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        if isinstance(schema.get("$ref"), str):
            yield schema["$ref"]
        for value in schema.values():
            yield from refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from refs(value)


def entry(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in document["resources"] if r["name"] == name)
    return found


# -- discovery -----------------------------------------------------------------------------------------


def test_version_reports_1_33_with_a_build_suffix() -> None:
    info = version_info()
    assert (info["major"], info["minor"]) == ("1", "33")
    assert info["gitVersion"].startswith("v1.33.0")
    assert info["gitVersion"] != "v1.33.0"
    assert "/" in info["platform"]


def test_api_lists_the_core_version() -> None:
    assert api_versions() == {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    assert api_versions(server_address="127.0.0.1:6443")["serverAddressByClientCIDRs"] == [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}
    ]


def test_versions_sort_by_stability_then_number() -> None:
    assert sort_versions(["v1beta1", "v1alpha1", "v2", "v1", "v2beta1", "v1beta2", "zeta"]) == [
        "v2",
        "v1",
        "v2beta1",
        "v1beta2",
        "v1beta1",
        "v1alpha1",
        "zeta",
    ]


def test_apis_lists_named_groups_with_the_preferred_version_first() -> None:
    beta = ResourceInfo("example.com", "v1beta1", "Todo", "todos", "todo", True)
    document = api_group_list((*builtin_resources(), beta, TODO))
    groups = {g["name"]: g for g in document["groups"]}
    assert "" not in groups
    assert document["kind"] == "APIGroupList"
    assert groups["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert [v["version"] for v in groups["example.com"]["versions"]] == ["v1", "v1beta1"]
    assert groups["example.com"]["preferredVersion"]["version"] == "v1"
    assert groups["autoscaling"]["preferredVersion"]["groupVersion"] == "autoscaling/v2"


def test_resource_lists_carry_subresources_and_always_a_singular_name() -> None:
    apps = api_resource_list("apps", "v1", builtin_resources())
    assert apps["groupVersion"] == "apps/v1"
    assert entry(apps, "deployments") == {
        "name": "deployments",
        "singularName": "deployment",
        "namespaced": True,
        "kind": "Deployment",
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        "shortNames": ["deploy"],
        "categories": ["all"],
    }
    assert entry(apps, "deployments/scale") == {
        "name": "deployments/scale",
        "singularName": "",
        "namespaced": True,
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
    }
    assert entry(apps, "deployments/status")["kind"] == "Deployment"
    assert all("singularName" in r for r in apps["resources"])
    names = [r["name"] for r in apps["resources"]]
    assert names == sorted(names)

    core = api_resource_list("", "v1", builtin_resources())
    assert core["groupVersion"] == "v1"
    assert entry(core, "namespaces/finalize")["verbs"] == ["update"]
    assert entry(core, "namespaces")["namespaced"] is False
    assert "shortNames" not in entry(core, "secrets")


# -- OpenAPI documents -----------------------------------------------------------------------------


def test_every_resource_has_a_patch_operation_kubectl_recognises_as_supporting_field_validation() -> None:
    resources = served()
    for group, version in {(r.group, r.version) for r in resources}:
        document = openapi_v3_document(group, version, resources, builtin_definitions())
        kinds_with_patch = set()
        for item in document["paths"].values():
            patch = item.get("patch")
            if patch is None:
                continue
            assert patch["x-kubernetes-action"] == "patch"
            names = {p["name"] for p in patch["parameters"] if p["in"] == "query"}
            assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= names
            kinds_with_patch.add(patch["x-kubernetes-group-version-kind"]["kind"])
        expected = {r.kind for r in resources if (r.group, r.version) == (group, version)}
        assert expected <= kinds_with_patch


def test_paths_follow_the_resource_scope_verbs_and_subresources() -> None:
    document = openapi_v3_document("", "v1", builtin_resources(), builtin_definitions())
    paths = document["paths"]
    pods = paths["/api/v1/namespaces/{namespace}/pods/{name}"]
    assert {"get", "put", "patch", "delete"} <= set(pods)
    assert pods["get"]["operationId"] == "readCoreV1NamespacedPod"
    assert paths["/api/v1/pods"]["get"]["operationId"] == "listCoreV1PodForAllNamespaces"
    assert paths["/api/v1/namespaces/{namespace}/pods"]["delete"]["x-kubernetes-action"] == "deletecollection"
    assert "delete" not in paths["/api/v1/namespaces"]  # namespaces have no deletecollection
    assert set(paths["/api/v1/namespaces/{name}/finalize"]) == {"put", "parameters"}
    assert "/api/v1/namespaces/{namespace}/configmaps/{name}/status" not in paths
    strategic = "application/strategic-merge-patch+json"
    assert strategic in pods["patch"]["requestBody"]["content"]

    apps = openapi_v3_document("apps", "v1", builtin_resources(), builtin_definitions())
    scale = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["put"]
    assert scale["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
    }
    assert "io.k8s.api.autoscaling.v1.Scale" in apps["components"]["schemas"]


def test_documents_are_self_contained() -> None:
    resources = served()
    for group, version in {(r.group, r.version) for r in resources}:
        document = openapi_v3_document(group, version, resources, builtin_definitions())
        schemas = document["components"]["schemas"]
        for ref in refs(document):
            assert ref.startswith("#/components/schemas/")
            assert ref.removeprefix("#/components/schemas/") in schemas, (group, version, ref)
    v2 = openapi_v2(resources, builtin_definitions())
    for ref in refs(v2):
        assert ref.removeprefix("#/definitions/") in v2["definitions"], ref


def test_v3_schemas_wrap_references_that_carry_siblings_in_all_of() -> None:
    document = openapi_v3_document("apps", "v1", builtin_resources(), builtin_definitions())
    strategy = document["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"][
        "strategy"
    ]
    assert strategy["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert "$ref" not in strategy


def test_an_inline_schema_is_published_under_its_reversed_group_name() -> None:
    document = openapi_v3_document("example.com", "v1", served(), builtin_definitions())
    schemas = document["components"]["schemas"]
    todo = schemas["com.example.v1.Todo"]
    assert todo["x-kubernetes-group-version-kind"] == [
        {"group": "example.com", "kind": "Todo", "version": "v1"}
    ]
    assert todo["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert todo["properties"]["spec"]["properties"]["title"]["description"] == "What there is to do."
    assert schemas["com.example.v1.TodoList"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/com.example.v1.Todo"
    }
    patch = document["paths"]["/apis/example.com/v1/namespaces/{namespace}/todos/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert "application/merge-patch+json" in patch["requestBody"]["content"]


def test_the_index_names_each_document_by_its_content_hash() -> None:
    resources = served()
    index = openapi_v3_index(resources)
    assert set(index["paths"]) == {group_version_key(r.group, r.version) for r in resources}
    assert "api/v1" in index["paths"] and "apis/apps/v1" in index["paths"]
    url = index["paths"]["apis/example.com/v1"]["serverRelativeURL"]
    document = openapi_v3_document("example.com", "v1", resources, builtin_definitions())
    assert url == f"/openapi/v3/apis/example.com/v1?hash={document_hash(document)}"
    assert openapi_v3_index(resources) == index

    changed = ResourceInfo(
        **{**TODO.__dict__, "schema": {"type": "object", "properties": {"spec": {"type": "object"}}}}
    )
    other = openapi_v3_index((*builtin_resources(), changed))
    assert other["paths"]["apis/example.com/v1"] != index["paths"]["apis/example.com/v1"]
    assert other["paths"]["apis/apps/v1"] == index["paths"]["apis/apps/v1"]


def test_openapi_v2_carries_the_same_operations_and_definitions() -> None:
    document = openapi_v2(served(), builtin_definitions())
    assert document["swagger"] == "2.0"
    patch = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert {p["name"] for p in patch["parameters"]} >= {"body", "fieldValidation", "force"}
    assert "io.k8s.api.apps.v1.Deployment" in document["definitions"]
    assert "com.example.v1.Todo" in document["definitions"]


# -- real kubectl against a small server of these documents -----------------------------------------


def kubectl_versions() -> list[Path]:
    found = shutil.which("kubectl")
    if found is None:
        return []
    directory = Path(os.path.realpath(found)).parent
    versioned = sorted(directory.glob("kubectl.1.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    if not versioned:
        return [Path(found)]
    return sorted({versioned[0], versioned[-1]})


@dataclass
class DocumentServer:
    """Serves discovery and OpenAPI, answers GET of any object with 404 and echoes creations."""

    resources: tuple[ResourceInfo, ...]
    url: str = ""
    created: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/version", self.json(version_info))
        app.router.add_get("/api", self.json(api_versions))
        app.router.add_get("/apis", self.json(lambda: api_group_list(self.resources)))
        app.router.add_get("/openapi/v2", self.openapi_v2)
        app.router.add_get("/openapi/v3", self.openapi_v3_index)
        app.router.add_get("/openapi/v3/{tail:.+}", self.openapi_v3)
        app.router.add_route("*", "/api/{version}", self.api)
        app.router.add_route("*", "/api/{version}/{tail:.+}", self.api)
        app.router.add_route("*", "/apis/{group}/{version}", self.api)
        app.router.add_route("*", "/apis/{group}/{version}/{tail:.+}", self.api)
        return app

    def json(self, build: Callable[[], Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(_: web.Request) -> web.Response:
            return web.json_response(build())

        return handler

    async def openapi_v2(self, request: web.Request) -> web.Response:
        document = openapi_v2(self.resources, builtin_definitions())
        if OPENAPI_V2_PROTOBUF in request.headers.get("Accept", ""):
            body = openapi_v2_protobuf(document)
            return web.Response(body=body, headers={"Content-Type": "application/octet-stream"})
        return web.json_response(document)

    async def openapi_v3_index(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_v3_index(self.resources))

    async def openapi_v3(self, request: web.Request) -> web.Response:
        parts = request.match_info["tail"].split("/")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        return web.json_response(openapi_v3_document(group, version, self.resources, builtin_definitions()))

    async def api(self, request: web.Request) -> web.Response:
        group = request.match_info.get("group", "")
        version = request.match_info["version"]
        if "tail" not in request.match_info and request.method == "GET":
            return web.json_response(api_resource_list(group, version, self.resources))
        if request.method == "POST":
            body = await request.json()
            body.setdefault("metadata", {}).update(
                uid="0b7d3a4e-0000-4000-8000-000000000001", resourceVersion="1"
            )
            self.created.append((request.path, dict(request.query), body))
            return web.json_response(body, status=201)
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "not found",
            "reason": "NotFound",
            "code": 404,
        }
        return web.json_response(status, status=404)


@pytest.fixture
async def document_server() -> AsyncIterator[DocumentServer]:
    server = DocumentServer(served())
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


async def kubectl(binary: Path, home: Path, *args: str, stdin: str | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        str(binary),
        "--cache-dir",
        str(home / "cache"),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(home), "KUBECONFIG": str(home / "config")},
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin else None), timeout=120)
    assert process.returncode == 0, f"{binary.name} {' '.join(args)} failed:\n{err.decode()}"
    return out.decode()


def write_kubeconfig(home: Path, server: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {}}],
        "contexts": [
            {"name": "test", "context": {"cluster": "test", "user": "test", "namespace": "default"}}
        ],
        "current-context": "test",
    }
    (home / "config").write_text(json.dumps(config))


KUBECTLS = kubectl_versions()


@pytest.mark.kubectl
@pytest.mark.parametrize("binary", KUBECTLS or [None], ids=[p.name for p in KUBECTLS] or ["missing"])
async def test_kubectl_reads_discovery_and_explains_fields(
    binary: Path | None, document_server: DocumentServer, tmp_path: Path
) -> None:
    if binary is None:
        pytest.skip("kubectl is not installed (looked for kubectl and kubectl.1.NN beside it)")
    write_kubeconfig(tmp_path, document_server.url)

    listing = await kubectl(binary, tmp_path, "api-resources")
    rows = {tuple(line.split()) for line in listing.splitlines()}
    assert ("deployments", "deploy", "apps/v1", "true", "Deployment") in rows
    assert ("namespaces", "ns", "v1", "false", "Namespace") in rows
    assert ("todos", "td", "example.com/v1", "true", "Todo") in rows

    explained = await kubectl(binary, tmp_path, "explain", "deployment.spec.replicas")
    assert "replicas" in explained
    assert "<integer>" in explained
    assert "Number of desired pods" in explained

    recursive = await kubectl(binary, tmp_path, "explain", "pods", "--recursive")
    assert "containers" in recursive and "readinessProbe" in recursive

    custom = await kubectl(binary, tmp_path, "explain", "todos.spec")
    assert "What there is to do." in custom


DEPLOYMENT_YAML = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx
"""

TODO_YAML = """
apiVersion: example.com/v1
kind: Todo
metadata:
  name: laundry
spec:
  title: Do the laundry
"""


@pytest.mark.kubectl
@pytest.mark.parametrize("binary", KUBECTLS or [None], ids=[p.name for p in KUBECTLS] or ["missing"])
async def test_kubectl_apply_finds_server_side_field_validation(
    binary: Path | None, document_server: DocumentServer, tmp_path: Path
) -> None:
    if binary is None:
        pytest.skip("kubectl is not installed (looked for kubectl and kubectl.1.NN beside it)")
    write_kubeconfig(tmp_path, document_server.url)

    out = await kubectl(binary, tmp_path, "apply", "-f", "-", stdin=DEPLOYMENT_YAML)
    assert "deployment.apps/web created" in out
    out = await kubectl(binary, tmp_path, "apply", "-f", "-", stdin=TODO_YAML)
    assert "todo.example.com/laundry created" in out

    assert [(path, query.get("fieldValidation")) for path, query, _ in document_server.created] == [
        ("/apis/apps/v1/namespaces/default/deployments", "Strict"),
        ("/apis/example.com/v1/namespaces/default/todos", "Strict"),
    ]
    deployment = document_server.created[0][2]
    assert "kubectl.kubernetes.io/last-applied-configuration" in deployment["metadata"]["annotations"]


def test_the_v2_protobuf_encodes_the_swagger_document_deterministically() -> None:
    document = openapi_v2(served(), builtin_definitions())
    body = openapi_v2_protobuf(document)
    assert body.startswith(b"\n\x032.0")  # field 1 (swagger), length 3, "2.0"
    assert b"io.k8s.api.apps.v1.Deployment" in body
    assert b"x-kubernetes-group-version-kind" in body
    assert b"patchAppsV1NamespacedDeployment" in body
    assert openapi_v2_protobuf(openapi_v2(served(), builtin_definitions())) == body
