"""Conversion between the served form of a resource and the form it is stored in.

Most resources are stored as served.  core/v1 Events and events.k8s.io/v1 Events are one resource in
upstream (one storage, two API shapes): an Event written through either API is read through both.
They are stored in the core/v1 shape and converted with upstream's field mapping
(``pkg/apis/events/v1/conversion.go``).  The same hook carries version conversion for multi-version
custom resources.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubevisor.api import ResourceInfo

__all__ = [
    "Converter",
    "converter_for",
    "core_event_to_events_v1",
    "events_v1_to_core_event",
    "storage_key",
    "translate_field_label",
]

# core/v1 field → events.k8s.io/v1 field; everything else keeps its name.
_CORE_TO_V1 = {
    "involvedObject": "regarding",
    "message": "note",
    "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount",
    "reportingComponent": "reportingController",
}
_V1_TO_CORE = {v: k for k, v in _CORE_TO_V1.items()}

_EVENTS_V1 = ("events.k8s.io", "events")


def _renamed(obj: Mapping[str, Any], kind: str, api_version: str, names: Mapping[str, str]) -> dict[str, Any]:
    # The metadata dict is shared, not copied: the storage stamps resourceVersion into it and the
    # served object must show it.
    out: dict[str, Any] = {"kind": kind, "apiVersion": api_version, "metadata": obj.get("metadata") or {}}
    for key, value in obj.items():
        if key not in ("kind", "apiVersion", "metadata"):
            out[names.get(key, key)] = value
    return out


def core_event_to_events_v1(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A core/v1 Event as events.k8s.io/v1 shows it."""
    return _renamed(obj, "Event", "events.k8s.io/v1", _CORE_TO_V1)


def events_v1_to_core_event(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event in the core/v1 shape it is stored in."""
    return _renamed(obj, "Event", "v1", _V1_TO_CORE)


@dataclass(frozen=True)
class Converter:
    """``to_storage`` and ``from_storage`` map whole objects; both keep the metadata dict shared."""

    to_storage: Callable[[Mapping[str, Any]], dict[str, Any]]
    from_storage: Callable[[Mapping[str, Any]], dict[str, Any]]


_EVENTS = Converter(to_storage=events_v1_to_core_event, from_storage=core_event_to_events_v1)


def converter_for(info: ResourceInfo) -> Converter | None:
    """The converter of a served resource, or ``None`` when it is stored as served (apart from its
    apiVersion, which readers set)."""
    return _EVENTS if (info.group, info.plural) == _EVENTS_V1 else None


def storage_key(info: ResourceInfo) -> tuple[str, str]:
    """The ``(group, plural)`` under which a resource's objects are stored."""
    return ("", "events") if (info.group, info.plural) == _EVENTS_V1 else (info.group, info.plural)


def translate_field_label(info: ResourceInfo, label: str) -> str:
    """A field-selector label of the served form, as the stored form names it (upstream registers
    these conversions for events.k8s.io: ``regarding.name`` selects on ``involvedObject.name``)."""
    if (info.group, info.plural) != _EVENTS_V1:
        return label
    head, dot, rest = label.partition(".")
    return _V1_TO_CORE.get(head, head) + dot + rest
