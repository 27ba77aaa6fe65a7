"""Discovery documents (``/version``, ``/api``, ``/apis``, ``/api/v1``, ``/apis/<group>/<version>``).

Pure functions from a collection of :class:`~kubevisor.api.ResourceInfo` to the JSON documents an
upstream API server sends, in the legacy (non-aggregated) form, which every client falls back to.
No HTTP here: the server mounts these.
"""

from __future__ import annotations

import platform
import re
import sys
from collections.abc import Iterable
from typing import Any

from kubevisor.api import KUBERNETES_VERSION, ResourceInfo, join_api_version

__all__ = [
    "api_group_list",
    "api_resource_list",
    "api_versions",
    "sort_versions",
    "version_info",
]

#: The verbs and kinds of the subresources the server can serve, as upstream lists them.
_SUBRESOURCE_VERBS: dict[str, list[str]] = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
    "finalize": ["update"],
}
_DEFAULT_SUBRESOURCE_VERBS = ["get", "patch", "update"]

_VERSION = re.compile(r"^v([1-9][0-9]*)(?:(alpha|beta)([1-9][0-9]*))?$")
_STABILITY = {None: 0, "beta": 1, "alpha": 2}

_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def version_info(*, git_commit: str = "", build_date: str = "") -> dict[str, Any]:
    """``GET /version``: upstream's ``version.Info``.

    ``gitVersion`` is ``v1.33.0+kubevisor``: build metadata rather than a pre-release suffix, so
    that semantic-version checks (Helm's ``kubeVersion``, client skew warnings) treat the server as
    exactly 1.33.0.  ``platform`` is the host's, in Go's ``<os>/<arch>`` spelling.
    """
    major, minor, _ = KUBERNETES_VERSION.split(".")
    machine = platform.machine().lower()
    return {
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": str(int(minor) - 1),
        "gitVersion": f"v{KUBERNETES_VERSION}+kubevisor",
        "gitCommit": git_commit,
        "gitTreeState": "clean" if git_commit else "",
        "buildDate": build_date,
        "goVersion": f"python{platform.python_version()}",
        "compiler": platform.python_implementation().lower(),
        "platform": f"{sys.platform}/{_ARCHITECTURES.get(machine, machine)}",
    }


def api_versions(*, server_address: str | None = None) -> dict[str, Any]:
    """``GET /api``: the core group's versions.  ``server_address`` (``host:port``) fills
    ``serverAddressByClientCIDRs``, which upstream always sends and clients ignore."""
    addresses = [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}] if server_address else []
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": addresses}


def sort_versions(versions: Iterable[str]) -> list[str]:
    """Versions from most to least preferred, by upstream's rule: GA before beta before alpha,
    higher numbers first within each, then any non-Kubernetes-style version alphabetically."""

    def priority(version: str) -> tuple[int, int, int, int, str]:
        match = _VERSION.match(version)
        if match is None:
            return (1, 0, 0, 0, version)
        major, stability, minor = match.groups()
        return (0, _STABILITY[stability], -int(major), -int(minor or 0), version)

    return sorted(set(versions), key=priority)


def api_group_list(resources: Iterable[ResourceInfo]) -> dict[str, Any]:
    """``GET /apis``: every named group (the core group lives at ``/api``), in order of first
    appearance in ``resources``, each with its versions, most preferred first, and that
    ``preferredVersion``."""
    versions_by_group: dict[str, list[str]] = {}
    for info in resources:
        if info.group:
            versions_by_group.setdefault(info.group, []).append(info.version)
    groups = []
    for group, versions in versions_by_group.items():
        listed = [{"groupVersion": join_api_version(group, v), "version": v} for v in sort_versions(versions)]
        groups.append({"name": group, "versions": listed, "preferredVersion": dict(listed[0])})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(group: str, version: str, resources: Iterable[ResourceInfo]) -> dict[str, Any]:
    """``GET /api/v1`` or ``GET /apis/<group>/<version>``: the resources of one group-version,
    sorted by name, each subresource an extra ``<plural>/<subresource>`` entry (``/scale`` names
    ``autoscaling/v1`` ``Scale``).  ``singularName`` is always present (empty for subresources,
    as upstream); ``shortNames`` and ``categories`` only when non-empty."""
    entries: list[dict[str, Any]] = []
    for info in resources:
        if info.group != group or info.version != version:
            continue
        entry: dict[str, Any] = {
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": list(info.verbs),
        }
        if info.short_names:
            entry["shortNames"] = list(info.short_names)
        if info.categories:
            entry["categories"] = list(info.categories)
        entries.append(entry)
        for sub in info.subresources:
            entries.append(_subresource_entry(info, sub))
    entries.sort(key=lambda entry: entry["name"])
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": join_api_version(group, version),
        "resources": entries,
    }


def _subresource_entry(info: ResourceInfo, sub: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": f"{info.plural}/{sub}",
        "singularName": "",
        "namespaced": info.namespaced,
    }
    if sub == "scale":
        entry.update(group="autoscaling", version="v1", kind="Scale")
    else:
        entry["kind"] = info.kind
    entry["verbs"] = list(_SUBRESOURCE_VERBS.get(sub, _DEFAULT_SUBRESOURCE_VERBS))
    return entry
