"""The resource registry: which resources the server serves, and how each kind behaves.

The registry is dynamic: CustomResourceDefinitions (issue 3) add and remove resources at run time.
Every change bumps :attr:`ResourceRegistry.generation` and calls the change listeners, which is how the
discovery and OpenAPI caches know to rebuild.

A :class:`Strategy` holds what is specific to a kind in the write path (upstream's ``RESTStrategy``):
defaulting, generation rules, the status subresource split, selectable fields, validation.  The REST
layer (``_service.py``) calls these hooks in one fixed order, so behaviour added later (admission,
managedFields, structural-schema defaulting for CRDs) has exactly one place to plug in.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubevisor.api import FieldError, GroupVersionKind, ResourceInfo

__all__ = ["ResourceRegistry", "Strategy", "field_value", "lookup_path"]


def lookup_path(obj: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (``spec.nodeName``), or ``None`` where any step is missing."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def field_value(value: Any) -> str:
    """How a field-selector compares a value: strings as-is, booleans lower-case, missing as ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Strategy:
    """Per-kind behaviour.  The defaults describe a plain namespaced or cluster-scoped kind without
    spec/status split (like ConfigMap); subclasses override hooks.

    ``generation``: whether ``metadata.generation`` is tracked (1 on create, bumped on changes outside
    ``metadata`` and, with a status subresource, outside ``status``).
    ``unconditional_update``: whether a PUT without ``metadata.resourceVersion`` is allowed (true for
    built-in kinds, false for custom resources).
    ``strategic_merge``: whether strategic merge patch is accepted (built-in kinds only).
    ``selectable_fields``: field-selector labels beyond ``metadata.name``/``metadata.namespace``,
    mapped to the dotted path they read.
    ``return_deleted_object``: whether DELETE answers with the deleted object rather than a Success
    Status (upstream: pods and a few others).
    ``name_format``: ``"subdomain"`` (DNS-1123 subdomain), ``"label"`` (DNS-1123 label) or
    ``"path"`` (any path segment, as RBAC kinds allow).
    """

    generation: bool = False
    unconditional_update: bool = True
    strategic_merge: bool = True
    selectable_fields: Mapping[str, str] | None = None
    return_deleted_object: bool = False
    name_format: str = "subdomain"
    reset_status_on_create: bool = True

    def field_values(self, obj: Mapping[str, Any]) -> dict[str, str]:
        """The selectable fields of ``obj``.  Empty values are left out (a selector reads a missing
        field as ``""``) and values are interned: they repeat across thousands of objects."""
        meta = obj.get("metadata") or {}
        values = {"metadata.name": field_value(meta.get("name"))}
        namespace = field_value(meta.get("namespace"))
        if namespace:
            values["metadata.namespace"] = sys.intern(namespace)
        for label, path in (self.selectable_fields or {}).items():
            value = field_value(lookup_path(obj, path))
            if value:
                values[label] = sys.intern(value) if len(value) <= 64 else value
        return values

    def supports_field(self, label: str) -> bool:
        return label in ("metadata.name", "metadata.namespace") or label in (self.selectable_fields or {})

    def prepare_create(self, obj: dict[str, Any], info: ResourceInfo) -> None:
        """Server-side defaulting and normalisation of a new object (mutates ``obj``)."""

    def prepare_update(self, obj: dict[str, Any], old: Mapping[str, Any], info: ResourceInfo) -> None:
        """Normalisation of an updated object against the stored one (mutates ``obj``)."""

    def validate(
        self, obj: Mapping[str, Any], old: Mapping[str, Any] | None, info: ResourceInfo
    ) -> list[FieldError]:
        """Kind-specific validation beyond object metadata; ``old`` is ``None`` on create."""
        return []

    def unknown_fields(self, obj: dict[str, Any], *, prune: bool) -> list[str] | None:
        """The paths of fields of a decoded body that the kind's own schema does not declare
        (``spec.foo``), removed in place with ``prune``; ``None`` when the kind has no schema of its
        own and the server checks the upstream definition instead (built-in kinds)."""
        return None

    def check_create(self, info: ResourceInfo) -> None:
        """Raise an :class:`~kubevisor.api.ApiError` when creating objects of ``info`` is not
        allowed right now (custom resources whose definition is being deleted)."""

    def normalize(self, obj: dict[str, Any]) -> None:
        """Structural pruning and defaulting of an object about to be written, whatever the
        endpoint (custom resources; mutates ``obj``).  Runs before ``prepare_*``."""

    def prepare_delete(self, obj: dict[str, Any], info: ResourceInfo) -> None:
        """Called on the first DELETE of an object, before the server decides whether finalizers
        hold it: may add finalizers or conditions (mutates ``obj``)."""

    def defaults_on_read(self, rv: int) -> bool:
        """Whether an object stored at resourceVersion ``rv`` needs :meth:`default_stored` applied
        when read (custom resources stored before their schema gained defaults)."""
        return False

    def default_stored(self, obj: dict[str, Any]) -> None:
        """Defaulting of a stored object as it is read (mutates ``obj``)."""

    def storage_api_version(self, info: ResourceInfo) -> str:
        """The apiVersion objects of ``info`` are stored under (a custom resource's storage
        version); served versions are rewritten to it on write and back on read."""
        return info.api_version

    def printer(self) -> Any:
        """``(columns, cells)`` of the kind's Table printer (see ``_tables``), or ``None`` for the
        built-in printers."""
        return None

    def scale_paths(self) -> tuple[str, str, str | None] | None:
        """``(specReplicasPath, statusReplicasPath, labelSelectorPath)`` of a custom resource's
        scale subresource (dotted, without the leading dot), or ``None`` for the built-in
        ``spec.replicas`` / ``status.replicas`` / ``spec.selector`` layout."""
        return None


class ResourceRegistry:
    """Served resources indexed by (group, version, plural), by kind and by short name.

    Not thread-safe: used from the event loop only.
    """

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceInfo] = {}
        self._strategies: dict[tuple[str, str, str], Strategy] = {}
        self._listeners: list[Callable[[], None]] = []
        self.generation = 0

    # ---------------------------------------------------------------- changes

    def add(self, info: ResourceInfo, strategy: Strategy | None = None) -> None:
        """Serve ``info`` (replacing a resource with the same group/version/plural)."""
        key = (info.group, info.version, info.plural)
        self._by_gvr[key] = info
        self._strategies[key] = strategy or Strategy()
        self._changed()

    def add_all(self, items: Iterable[tuple[ResourceInfo, Strategy]]) -> None:
        for info, strategy in items:
            key = (info.group, info.version, info.plural)
            self._by_gvr[key] = info
            self._strategies[key] = strategy
        self._changed()

    def remove(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        info = self._by_gvr.pop((group, version, plural), None)
        self._strategies.pop((group, version, plural), None)
        if info is not None:
            self._changed()
        return info

    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after every change; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _changed(self) -> None:
        self.generation += 1
        for listener in list(self._listeners):
            listener()

    # ---------------------------------------------------------------- lookups

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_gvr.get((group, version, plural))

    def strategy(self, info: ResourceInfo) -> Strategy:
        return self._strategies.get((info.group, info.version, info.plural)) or Strategy()

    def resources(self) -> tuple[ResourceInfo, ...]:
        return tuple(self._by_gvr.values())

    def by_kind(self, gvk: GroupVersionKind) -> ResourceInfo | None:
        for info in self._by_gvr.values():
            if info.group == gvk.group and info.version == gvk.version and info.kind == gvk.kind:
                return info
        return None

    def by_short_name(self, name: str) -> list[ResourceInfo]:
        return [info for info in self._by_gvr.values() if name in info.short_names]

    def group_versions(self) -> dict[str, list[str]]:
        """Group → served versions, in registration order."""
        out: dict[str, list[str]] = {}
        for info in self._by_gvr.values():
            versions = out.setdefault(info.group, [])
            if info.version not in versions:
                versions.append(info.version)
        return out

    def in_group_version(self, group: str, version: str) -> Sequence[ResourceInfo]:
        return [i for i in self._by_gvr.values() if i.group == group and i.version == version]

    def namespaced_plurals(self, group: str, version: str) -> set[str]:
        return {i.plural for i in self.in_group_version(group, version) if i.namespaced}
