"""The built-in API catalogue: the Kubernetes kinds the embedded server serves out of the box.

The data (upstream Kubernetes v1.33.0 OpenAPI v2 definitions for the served kinds, their
transitive closure and the common meta types, plus each resource's discovery facts) is generated
at build time by ``tools/gen_builtins.py`` into the package data file ``_builtins.json.gz`` and
loaded lazily, once, on first use: about 10 ms and a few MB, instead of the 70 MB of every upstream
schema.

Everything returned here is shared: treat the definitions and schemas as read-only.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import orjson

from kubevisor.api._meta import GroupVersionKind, ResourceInfo

__all__ = [
    "KUBERNETES_VERSION",
    "builtin_definitions",
    "builtin_resources",
    "definition_name",
    "definition_ref",
]

#: The upstream Kubernetes release whose API the built-in catalogue reproduces.
KUBERNETES_VERSION = "1.33.0"

_DATA_FILE = "_builtins.json.gz"
_FORMAT_VERSION = 1
_REF_PREFIX = "#/definitions/"


@cache
def _catalogue() -> dict[str, Any]:
    raw = resources.files("kubevisor.api").joinpath(_DATA_FILE).read_bytes()
    data: dict[str, Any] = orjson.loads(gzip.decompress(raw))
    if data.get("formatVersion") != _FORMAT_VERSION or data.get("kubernetesVersion") != KUBERNETES_VERSION:
        # A stale or foreign data file would silently serve the wrong API: refuse it loudly.
        raise RuntimeError(
            f"kubevisor/api/{_DATA_FILE} is not the v{KUBERNETES_VERSION} catalogue "
            f"(format {data.get('formatVersion')!r}): regenerate it with tools/gen_builtins.py"
        )
    return data


def definition_ref(name: str) -> dict[str, str]:
    """The JSON reference ``{"$ref": "#/definitions/<name>"}`` to an OpenAPI v2 definition."""
    return {"$ref": _REF_PREFIX + name}


@cache
def builtin_resources() -> tuple[ResourceInfo, ...]:
    """Every built-in resource, in a stable order (core group first, then by group and kind).

    Each ``ResourceInfo.schema`` is ``{"$ref": "#/definitions/<definition name>"}``, resolvable in
    :func:`builtin_definitions`.  The tuple is built once and shared.
    """
    infos = []
    for entry in _catalogue()["resources"]:
        infos.append(
            ResourceInfo(
                group=entry["group"],
                version=entry["version"],
                kind=entry["kind"],
                plural=entry["plural"],
                singular=entry["singular"],
                namespaced=entry["namespaced"],
                verbs=tuple(entry["verbs"]),
                short_names=tuple(entry["shortNames"]),
                categories=tuple(entry["categories"]),
                subresources=tuple(entry["subresources"]),
                list_kind=entry["listKind"],
                schema=definition_ref(entry["definition"]),
            )
        )
    return tuple(infos)


@cache
def builtin_definitions() -> Mapping[str, dict[str, Any]]:
    """The OpenAPI v2 definitions by name (``io.k8s.api.apps.v1.Deployment``, ...).

    References inside them use the ``#/definitions/<name>`` form, and every reference resolves
    within this mapping.  The mapping is read-only; the schemas inside it are shared and must not
    be modified either (copy before changing one).
    """
    return MappingProxyType(_catalogue()["definitions"])


@cache
def _names_by_gvk() -> Mapping[GroupVersionKind, str]:
    names: dict[GroupVersionKind, str] = {}
    for name, schema in builtin_definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            names.setdefault(GroupVersionKind(gvk["group"], gvk["version"], gvk["kind"]), name)
    return MappingProxyType(names)


def definition_name(gvk: GroupVersionKind) -> str | None:
    """The definition that describes ``gvk`` (including List kinds, ``Status``, ``DeleteOptions``
    and ``autoscaling/v1`` ``Scale``), or ``None`` if the catalogue does not know the kind."""
    return _names_by_gvk().get(gvk)
