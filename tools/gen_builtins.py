"""Generate ``kubevisor/api/_builtins.json.gz``: the built-in API catalogue of the embedded server.

Run with the project's virtualenv (``.venv/bin/python tools/gen_builtins.py``); it needs the
``kubernetes-validate`` package, which ships the upstream OpenAPI definitions of every Kubernetes
release in a JSON-Schema form (``$defs``, ``["string", "null"]`` types, ``apiVersion``/``kind``
enums).  This tool turns the definitions of Kubernetes v1.33.0 back into OpenAPI v2 definitions
(the form the upstream ``/openapi/v2`` document uses), keeps only the transitive closure the served
kinds need, and adds the resource facts the definitions lack (plural, singular, scope, short names,
categories, verbs, subresources), which are upstream facts recorded in :data:`RESOURCES` below.

The output is deterministic (sorted keys, a gzip header without name or timestamp), so
regenerating it without an upstream change produces an identical file, and
``tests/test_api_builtins.py`` checks that the committed file equals a fresh generation.

Usage: ``gen_builtins.py [--check] [--source PATH] [--output PATH]``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KUBERNETES_VERSION = "1.33.0"
FORMAT_VERSION = 1

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "kubevisor" / "api" / "_builtins.json.gz"

#: The verbs every ordinary built-in resource serves.
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    """Upstream discovery facts for one served resource (``kubectl api-resources -o wide``)."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def singular(self) -> str:
        return self.kind.lower()


# Upstream facts for Kubernetes v1.33.  Only the subresources the embedded server serves are listed
# (upstream also has e.g. pods/log, pods/exec, serviceaccounts/token).  Namespaces are the one kind
# here without deletecollection.
RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    Resource("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    Resource("", "v1", "Event", "events", True, ("ev",)),
    Resource(
        "",
        "v1",
        "Namespace",
        "namespaces",
        False,
        ("ns",),
        subresources=("finalize", "status"),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    Resource("", "v1", "Node", "nodes", False, ("no",), subresources=("status",)),
    Resource(
        "", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), subresources=("status",)
    ),
    Resource("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), subresources=("status",)),
    Resource("", "v1", "Pod", "pods", True, ("po",), ("all",), ("status",)),
    Resource("", "v1", "Secret", "secrets", True),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    Resource("", "v1", "Service", "services", True, ("svc",), ("all",), ("status",)),
    Resource(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        False,
        categories=("api-extensions",),
    ),
    Resource(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        False,
        categories=("api-extensions",),
    ),
    Resource(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
        ("api-extensions",),
        ("status",),
    ),
    Resource("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    Resource("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("all",), ("status",)),
    Resource("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",), ("scale", "status")),
    Resource("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("all",), ("scale", "status")),
    Resource("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("all",), ("scale", "status")),
    Resource(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        True,
        ("hpa",),
        ("all",),
        ("status",),
    ),
    Resource("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("all",), ("status",)),
    Resource("batch", "v1", "Job", "jobs", True, (), ("all",), ("status",)),
    Resource("coordination.k8s.io", "v1", "Lease", "leases", True),
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    Resource("events.k8s.io", "v1", "Event", "events", True, ("ev",)),
    Resource("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), subresources=("status",)),
    Resource(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        True,
        ("pdb",),
        subresources=("status",),
    ),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    Resource("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
)

#: Definitions served besides the kinds and their lists: the meta types every API server document
#: uses, and the autoscaling/v1 Scale of the scale subresource.
EXTRA_DEFINITIONS = (
    "io.k8s.api.autoscaling.v1.Scale",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIResource",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
    "io.k8s.apimachinery.pkg.version.Info",
)

# The JSON-Schema form expresses these two as oneOf string/number, losing upstream's OpenAPI shape
# (and description); upstream publishes them as strings, IntOrString with format int-or-string.
REPLACED_DEFINITIONS: dict[str, dict[str, Any]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": (
            "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
            "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you "
            "to have, for example, a JSON field that can accept a name or number."
        ),
        "format": "int-or-string",
        "type": "string",
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "description": (
            "Quantity is a fixed-point representation of a number, serialized as a string: a signed "
            "decimal number followed by an optional suffix, either a binary SI suffix (Ki, Mi, Gi, "
            "Ti, Pi, Ei), a decimal SI suffix (m, k, M, G, T, P, E) or a decimal exponent (e3, E6). "
            "No quantity may be larger than 2^63-1 in magnitude nor have more than 3 decimal places; "
            "more precise values are rounded up (0.1m becomes 1m)."
        ),
        "type": "string",
    },
}

SOURCE_REF_PREFIX = "#/$defs/"
TARGET_REF_PREFIX = "#/definitions/"

# Keywords whose values are a single schema, a list of schemas, or a name-to-schema mapping.
_SCHEMA_KEYWORDS = ("items", "additionalProperties", "not")
_SCHEMA_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf")
_SCHEMA_MAP_KEYWORDS = ("properties", "patternProperties")


def default_source() -> Path:
    """The v1.33.0 definitions shipped by the installed ``kubernetes-validate``."""
    import kubernetes_validate  # imported here: an optional, generator-only dependency

    package = Path(kubernetes_validate.__file__).parent
    return package / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}-local" / "_definitions.json"


def _convert_schema(schema: Any, *, property_name: str | None = None) -> Any:
    """One JSON-Schema-ised schema node back to OpenAPI v2 form (a new object)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref":
            if not value.startswith(SOURCE_REF_PREFIX):
                raise ValueError(f"unexpected $ref {value!r}")
            out[key] = TARGET_REF_PREFIX + value[len(SOURCE_REF_PREFIX) :]
        elif key == "type":
            out[key] = _convert_type(value)
        elif key == "enum" and property_name in ("apiVersion", "kind"):
            # Added by the JSON-Schema conversion to pin each kind; upstream has no such enum.
            continue
        elif key in _SCHEMA_KEYWORDS:
            out[key] = _convert_schema(value)
        elif key in _SCHEMA_LIST_KEYWORDS:
            out[key] = [_convert_schema(item) for item in value]
        elif key in _SCHEMA_MAP_KEYWORDS:
            out[key] = {name: _convert_schema(sub, property_name=name) for name, sub in value.items()}
        else:
            out[key] = value
    return out


def _convert_type(value: Any) -> Any:
    if isinstance(value, list):
        types = [item for item in value if item != "null"]
        if len(types) == 1:
            return types[0]
        return types
    return value


def _references(schema: Any) -> Iterable[str]:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(TARGET_REF_PREFIX):
            yield ref[len(TARGET_REF_PREFIX) :]
        for value in schema.values():
            yield from _references(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _references(value)


def _closure(definitions: Mapping[str, Any], roots: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        if name not in definitions:
            raise KeyError(f"definition {name!r} is referenced but not defined")
        seen.add(name)
        pending.extend(_references(definitions[name]))
    return seen


def _gvks(definition: Mapping[str, Any]) -> list[dict[str, str]]:
    return list(definition.get("x-kubernetes-group-version-kind") or [])


def _definition_for(definitions: Mapping[str, Any], group: str, version: str, kind: str) -> str:
    wanted = {"group": group, "version": version, "kind": kind}
    names = [name for name, schema in definitions.items() if wanted in _gvks(schema)]
    if len(names) != 1:
        raise LookupError(f"expected one definition for {group}/{version} {kind}, found {names}")
    return names[0]


def generate(source: Path) -> dict[str, Any]:
    """The catalogue as a JSON-ready mapping (see :func:`encode` for the bytes written)."""
    raw = json.loads(source.read_text(encoding="utf-8"))["$defs"]
    converted = {name: _convert_schema(schema) for name, schema in raw.items()}
    converted.update(REPLACED_DEFINITIONS)

    served_group_versions = {("", "v1")} | {(r.group, r.version) for r in RESOURCES}
    resources: list[dict[str, Any]] = []
    roots = list(EXTRA_DEFINITIONS)
    for resource in sorted(RESOURCES, key=lambda r: (r.group, r.version, r.kind)):
        name = _definition_for(converted, resource.group, resource.version, resource.kind)
        list_name = _definition_for(converted, resource.group, resource.version, resource.kind + "List")
        roots += [name, list_name]
        resources.append(
            {
                "group": resource.group,
                "version": resource.version,
                "kind": resource.kind,
                "listKind": resource.kind + "List",
                "plural": resource.plural,
                "singular": resource.singular,
                "namespaced": resource.namespaced,
                "verbs": list(resource.verbs),
                "shortNames": list(resource.short_names),
                "categories": list(resource.categories),
                "subresources": sorted(resource.subresources),
                "definition": name,
            }
        )

    kept: dict[str, Any] = {}
    for name in sorted(_closure(converted, roots)):
        schema = dict(converted[name])
        gvks = _gvks(schema)
        if len(gvks) > 1:
            # DeleteOptions and WatchEvent name every group-version upstream serves; keep the ones
            # this catalogue serves so that the data is self-consistent.
            schema["x-kubernetes-group-version-kind"] = [
                gvk for gvk in gvks if (gvk["group"], gvk["version"]) in served_group_versions
            ]
        kept[name] = schema
    return {
        "formatVersion": FORMAT_VERSION,
        "kubernetesVersion": KUBERNETES_VERSION,
        "resources": resources,
        "definitions": kept,
    }


def encode(catalogue: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes of the catalogue (sorted keys, compact separators)."""
    return json.dumps(catalogue, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def compress(payload: bytes) -> bytes:
    """Gzip with a fixed header (no file name, mtime 0) so the bytes depend only on the payload."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as stream:
        stream.write(payload)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="upstream _definitions.json")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="fail if the output is not up to date")
    args = parser.parse_args(argv)

    payload = encode(generate(args.source or default_source()))
    if args.check:
        current = gzip.decompress(args.output.read_bytes()) if args.output.exists() else b""
        if current != payload:
            print(f"{args.output} is out of date: run tools/gen_builtins.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_bytes(compress(payload))
    print(f"wrote {args.output} ({len(payload)} bytes of JSON)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
