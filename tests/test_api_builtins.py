"""The built-in catalogue: regenerable, self-consistent, and faithful to upstream's facts."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from kubevisor.api import GroupVersionKind, ResourceInfo
from kubevisor.api._builtins import (
    KUBERNETES_VERSION,
    builtin_definitions,
    builtin_resources,
    definition_name,
)

ROOT = Path(__file__).resolve().parent.parent
DATA_FILE = ROOT / "kubevisor" / "api" / "_builtins.json.gz"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_builtins", ROOT / "tools" / "gen_builtins.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def resource(plural: str, group: str = "") -> ResourceInfo:
    matches = [r for r in builtin_resources() if r.plural == plural and r.group == group]
    assert len(matches) == 1, (plural, group)
    return matches[0]


def refs(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        if isinstance(schema.get("$ref"), str):
            yield schema["$ref"]
        for value in schema.values():
            yield from refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from refs(value)


def test_the_committed_data_file_equals_a_fresh_generation() -> None:
    pytest.importorskip("kubernetes_validate", reason="kubernetes-validate provides the upstream definitions")
    generator = load_generator()
    fresh = generator.encode(generator.generate(generator.default_source()))
    assert gzip.decompress(DATA_FILE.read_bytes()) == fresh, "run: .venv/bin/python tools/gen_builtins.py"


def test_the_data_file_is_written_deterministically() -> None:
    generator = load_generator()
    payload = b'{"a":1}'
    assert generator.compress(payload) == generator.compress(payload)
    assert gzip.decompress(generator.compress(payload)) == payload


def test_the_catalogue_reproduces_kubernetes_1_33() -> None:
    assert KUBERNETES_VERSION == "1.33.0"


def test_every_requested_kind_is_served_once() -> None:
    served = {(r.group, r.version, r.kind) for r in builtin_resources()}
    assert len(served) == len(builtin_resources()) == 32
    assert {
        ("", "v1", "Namespace"),
        ("", "v1", "Event"),
        ("events.k8s.io", "v1", "Event"),
        ("discovery.k8s.io", "v1", "EndpointSlice"),
        ("apps", "v1", "ControllerRevision"),
        ("autoscaling", "v2", "HorizontalPodAutoscaler"),
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration"),
        ("storage.k8s.io", "v1", "StorageClass"),
    } <= served


@pytest.mark.parametrize(
    ("plural", "group", "namespaced", "short_names", "categories", "subresources"),
    [
        ("deployments", "apps", True, ("deploy",), ("all",), ("scale", "status")),
        ("statefulsets", "apps", True, ("sts",), ("all",), ("scale", "status")),
        ("daemonsets", "apps", True, ("ds",), ("all",), ("status",)),
        ("namespaces", "", False, ("ns",), (), ("finalize", "status")),
        ("services", "", True, ("svc",), ("all",), ("status",)),
        ("pods", "", True, ("po",), ("all",), ("status",)),
        ("events", "", True, ("ev",), (), ()),
        ("configmaps", "", True, ("cm",), (), ()),
        (
            "customresourcedefinitions",
            "apiextensions.k8s.io",
            False,
            ("crd", "crds"),
            ("api-extensions",),
            ("status",),
        ),
        ("leases", "coordination.k8s.io", True, (), (), ()),
        ("clusterroles", "rbac.authorization.k8s.io", False, (), (), ()),
    ],
)
def test_resources_carry_upstreams_discovery_facts(
    plural: str,
    group: str,
    namespaced: bool,
    short_names: tuple[str, ...],
    categories: tuple[str, ...],
    subresources: tuple[str, ...],
) -> None:
    info = resource(plural, group)
    assert info.namespaced is namespaced
    assert info.short_names == short_names
    assert info.categories == categories
    assert info.subresources == subresources
    assert info.singular == info.kind.lower()
    assert info.list_kind == info.kind + "List"


def test_namespaces_cannot_be_deleted_as_a_collection() -> None:
    assert "deletecollection" not in resource("namespaces").verbs
    assert "deletecollection" in resource("deployments", "apps").verbs


def test_each_resource_schema_references_its_kinds_definition() -> None:
    definitions = builtin_definitions()
    for info in builtin_resources():
        assert info.schema is not None
        name = info.schema["$ref"].removeprefix("#/definitions/")
        assert {"group": info.group, "version": info.version, "kind": info.kind} in definitions[name][
            "x-kubernetes-group-version-kind"
        ]
        assert definition_name(GroupVersionKind(info.group, info.version, info.list_kind_name)) is not None


def test_every_reference_resolves_within_the_catalogue() -> None:
    definitions = builtin_definitions()
    for schema in definitions.values():
        for ref in refs(schema):
            assert ref.startswith("#/definitions/")
            assert ref.removeprefix("#/definitions/") in definitions


def test_definitions_are_in_openapi_v2_form() -> None:
    text = json.dumps(dict(builtin_definitions()))
    assert "$defs" not in text
    assert '"null"' not in text
    deployment = builtin_definitions()["io.k8s.api.apps.v1.Deployment"]
    assert "enum" not in deployment["properties"]["apiVersion"]
    assert deployment["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    replicas = builtin_definitions()["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]
    assert replicas == {
        "description": replicas["description"],
        "format": "int32",
        "type": "integer",
    }
    assert (
        builtin_definitions()["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    )
    assert builtin_definitions()["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"] == "string"


def test_patch_metadata_survives_the_conversion() -> None:
    definitions = builtin_definitions()
    containers = definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    volumes = definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"]
    assert volumes["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    strategy = definitions["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    finalizers = definitions["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["finalizers"]
    assert finalizers["x-kubernetes-list-type"] == "set"


@pytest.mark.parametrize(
    ("gvk", "expected"),
    [
        (GroupVersionKind("apps", "v1", "Deployment"), "io.k8s.api.apps.v1.Deployment"),
        (GroupVersionKind("apps", "v1", "DeploymentList"), "io.k8s.api.apps.v1.DeploymentList"),
        (GroupVersionKind("autoscaling", "v1", "Scale"), "io.k8s.api.autoscaling.v1.Scale"),
        (GroupVersionKind("", "v1", "Status"), "io.k8s.apimachinery.pkg.apis.meta.v1.Status"),
        (
            GroupVersionKind("apps", "v1", "DeleteOptions"),
            "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        ),
        (GroupVersionKind("events.k8s.io", "v1", "Event"), "io.k8s.api.events.v1.Event"),
        (GroupVersionKind("", "v1", "Event"), "io.k8s.api.core.v1.Event"),
        (GroupVersionKind("example.com", "v1", "Todo"), None),
        (GroupVersionKind("apps", "v1beta1", "Deployment"), None),
    ],
)
def test_definition_name_finds_a_kinds_definition(gvk: GroupVersionKind, expected: str | None) -> None:
    assert definition_name(gvk) == expected


def test_multi_kind_definitions_name_only_served_group_versions() -> None:
    served = {(r.group, r.version) for r in builtin_resources()} | {("", "v1")}
    for name in ("DeleteOptions", "WatchEvent"):
        gvks = builtin_definitions()[f"io.k8s.apimachinery.pkg.apis.meta.v1.{name}"][
            "x-kubernetes-group-version-kind"
        ]
        assert {(g["group"], g["version"]) for g in gvks} == served


def test_the_catalogue_is_loaded_once_and_shared() -> None:
    assert builtin_resources() is builtin_resources()
    assert builtin_definitions() is builtin_definitions()
    with pytest.raises(TypeError):
        builtin_definitions()["x"] = {}  # type: ignore[index]
