"""API discovery with a per-group-version cache.

Only the group-versions actually used are fetched (``/api/v1``, ``/apis/{group}/{version}``): a
kind lookup costs one request the first time and none after.  The cache is refreshed for a
group-version whenever a kind is asked for that it does not list (a CRD installed after start), and
dropped when a request on a known path answers 404 for the path itself (a CRD deleted or a version
no longer served).  Legacy (unaggregated) discovery is used: every API server serves it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from kubevisor.api import ApiError, GroupVersionKind, NotFound, ResourceInfo
from kubevisor.client._errors import UnknownKind
from kubevisor.client._transport import Transport

__all__ = ["APIGroup", "Discovery", "parse_resource_list"]


@dataclass(frozen=True)
class APIGroup:
    """One served API group: its versions, preferred first as the server orders them."""

    name: str
    versions: tuple[str, ...]
    preferred_version: str


def parse_resource_list(document: dict[str, Any], group: str, version: str) -> list[ResourceInfo]:
    """The resources of an ``APIResourceList`` document, with their subresources folded in."""
    entries = document.get("resources") or []
    subresources: dict[str, list[str]] = {}
    for entry in entries:
        name = str(entry.get("name") or "")
        if "/" in name:
            parent, _, sub = name.partition("/")
            subresources.setdefault(parent, []).append(sub)
    infos: list[ResourceInfo] = []
    for entry in entries:
        name = str(entry.get("name") or "")
        if not name or "/" in name:
            continue
        kind = str(entry.get("kind") or "")
        infos.append(
            ResourceInfo(
                group=str(entry.get("group") or group),
                version=str(entry.get("version") or version),
                kind=kind,
                plural=name,
                # Old servers leave singularName empty; kubectl then uses the lower-cased kind.
                singular=str(entry.get("singularName") or kind.lower()),
                namespaced=bool(entry.get("namespaced")),
                verbs=tuple(entry.get("verbs") or ()),
                short_names=tuple(entry.get("shortNames") or ()),
                categories=tuple(entry.get("categories") or ()),
                subresources=tuple(subresources.get(name, ())),
            )
        )
    return infos


@dataclass
class _GroupVersion:
    resources: list[ResourceInfo] = field(default_factory=list)
    by_kind: dict[str, ResourceInfo] = field(default_factory=dict)
    served: bool = True


class Discovery:
    """What the server serves, cached per group-version.  Safe for concurrent use: simultaneous
    lookups of one group-version share a single request."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._cache: dict[tuple[str, str], _GroupVersion] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._groups: list[APIGroup] | None = None

    def invalidate(self, group: str | None = None, version: str | None = None) -> None:
        """Forget one group-version (both given), every version of a group, or everything."""
        if group is None:
            self._cache.clear()
            self._groups = None
            return
        for key in list(self._cache):
            if key[0] == group and (version is None or key[1] == version):
                del self._cache[key]
        self._groups = None

    async def _fetch(self, group: str, version: str) -> _GroupVersion:
        path = (
            "/api/v1"
            if not group and version == "v1"
            else (f"/api/{version}" if not group else f"/apis/{group}/{version}")
        )
        try:
            document = (await self._transport.request("GET", path)).json()
        except NotFound:
            return _GroupVersion(served=False)
        if not isinstance(document, dict):
            raise ApiError(f"discovery document {path} is not an object", code=500)
        resources = parse_resource_list(document, group, version)
        return _GroupVersion(resources, {info.kind: info for info in resources})

    async def _group_version(self, group: str, version: str, *, refresh: bool) -> _GroupVersion:
        key = (group, version)
        cached = self._cache.get(key)
        if cached is not None and not refresh:
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            current = self._cache.get(key)
            if current is not None and current is not cached:
                return current  # someone refreshed while we waited
            fresh = await self._fetch(group, version)
            self._cache[key] = fresh
            return fresh

    async def resources(self, group: str, version: str, *, refresh: bool = False) -> list[ResourceInfo]:
        """The resources served in one group-version (empty when it is not served)."""
        return list((await self._group_version(group, version, refresh=refresh)).resources)

    async def resource_for_kind(self, gvk: GroupVersionKind) -> ResourceInfo:
        """The resource serving ``gvk``; refreshes the group-version once when it is unknown.

        Raises :class:`UnknownKind` (``no matches for kind "X" in version "g/v"``) when the server
        does not serve it even after the refresh.
        """
        cached = await self._group_version(gvk.group, gvk.version, refresh=False)
        info = cached.by_kind.get(gvk.kind)
        if info is None:
            info = (await self._group_version(gvk.group, gvk.version, refresh=True)).by_kind.get(gvk.kind)
        if info is None:
            raise UnknownKind(
                f'no matches for kind "{gvk.kind}" in version "{gvk.api_version}"',
                group=gvk.group,
                version=gvk.version,
                kind=gvk.kind,
            )
        return info

    async def groups(self, *, refresh: bool = False) -> list[APIGroup]:
        """Every served group (the core group is ``""``), from ``/api`` and ``/apis``."""
        if self._groups is not None and not refresh:
            return list(self._groups)
        core = (await self._transport.request("GET", "/api")).json() or {}
        core_versions = tuple(str(v) for v in core.get("versions") or ())
        groups = [APIGroup("", core_versions, core_versions[0] if core_versions else "v1")]
        listing = (await self._transport.request("GET", "/apis")).json() or {}
        for item in listing.get("groups") or []:
            versions = tuple(str(v.get("version")) for v in item.get("versions") or () if v.get("version"))
            preferred = str(
                (item.get("preferredVersion") or {}).get("version") or (versions[0] if versions else "")
            )
            groups.append(APIGroup(str(item.get("name") or ""), versions, preferred))
        self._groups = groups
        return list(groups)

    async def lookup(self, name: str) -> ResourceInfo:
        """Resolve a name as kubectl does: a plural, singular, short name or kind, case-insensitive,
        optionally qualified as ``<name>.<group>`` or ``<name>.<version>.<group>`` (``deploy``,
        ``deployments.apps``, ``Deployment.v1.apps``).  Preferred versions win.  Refreshes once on a
        miss; raises :class:`UnknownKind` when nothing matches.
        """
        for refresh in (False, True):
            found = await self._lookup(name, refresh=refresh)
            if found is not None:
                return found
        raise UnknownKind(f'the server doesn\'t have a resource type "{name}"', kind=name)

    async def _lookup(self, name: str, *, refresh: bool) -> ResourceInfo | None:
        groups = await self.groups(refresh=refresh)
        resource, _, qualifier = name.partition(".")
        wanted_version: str | None = None
        wanted_group: str | None = None
        if qualifier:
            head, _, rest = qualifier.partition(".")
            known_versions = {v for g in groups for v in g.versions}
            if head in known_versions and any(g.name == rest for g in groups):
                wanted_version, wanted_group = head, rest
            else:
                wanted_group = qualifier
        candidates: list[tuple[str, str]] = []
        for group in groups:
            if wanted_group is not None and group.name != wanted_group:
                continue
            if wanted_version is not None:
                candidates.append((group.name, wanted_version))
            else:
                candidates.append((group.name, group.preferred_version))
        # Fetch every candidate group-version concurrently: this is a cold-cache scan.
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self._group_version(g, v, refresh=refresh)) for g, v in candidates]
        lowered = resource.lower()
        for task in tasks:
            for info in task.result().resources:
                if lowered in (info.plural, info.singular, info.kind.lower()) or lowered in info.short_names:
                    return info
        return None
