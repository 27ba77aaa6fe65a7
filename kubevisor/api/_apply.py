"""Server-side apply and ``metadata.managedFields``, as kube-apiserver computes them.

Two pure functions are called by the embedded API server on every write:

* :func:`apply` for ``PATCH`` with ``application/apply-patch+yaml``: merges a configuration into the
  live object per the schema, makes the manager's ``Apply`` entry exactly the fields of the
  configuration, removes fields the manager applied before and omits now unless another manager owns
  them, and raises :class:`~kubevisor.api.Conflict` where the configuration changes a field another
  manager owns (unless ``force``);
* :func:`update_managed_fields` for every other write (create, update, patch): records an
  ``Update`` entry for the fields the write changed and takes them away from other managers.

Both follow kube-apiserver's field manager pipeline (``k8s.io/apimachinery/pkg/util/managedfields``
on top of ``sigs.k8s.io/structured-merge-diff``): managers are identified by name, operation,
subresource and (for ``Update``) API version; ``apiVersion``, ``kind``, ``metadata.name`` and the
other server-owned metadata are never owned; timestamps change only when a write changed the
object; at most ten ``Update`` entries are kept (older ones fold into ``ancient-changes``); entries
are ordered ``Apply`` first, then by time, manager, API version and subresource; and ``kubectl``'s
server-side apply takes over fields recorded in the client-side ``last-applied-configuration``
annotation without conflicts and keeps that annotation in step.

Deliberate departures, all for robustness: values that do not fit the schema are treated as leaves
instead of failing the write (validation reports them); invalid stored ``managedFields`` are treated
as absent instead of failing an apply; and a node owned as a whole is not expanded into its fields
when a schema change made it granular (see :func:`~kubevisor.api._apply_walk.reconcile_with_schema`).
Multi-version conversion is not modelled: every manager's set is read against the one schema given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Final

import orjson

from kubevisor.api._apply_types import ApplyType, TypeResolver, untyped_resource_type
from kubevisor.api._apply_walk import (
    compare,
    copy_json,
    ensure_named_fields,
    field_paths,
    format_errors,
    merge,
    reconcile_with_schema,
    remove_paths,
    same_json,
)
from kubevisor.api._errors import BadRequest, Conflict, FieldError, Invalid
from kubevisor.api._fieldset import FieldSet, Path, format_path, json_string
from kubevisor.api._time import format_time, parse_time

__all__ = [
    "LAST_APPLIED_ANNOTATION",
    "MAX_UPDATE_MANAGERS",
    "apply",
    "field_manager_for",
    "manager_from_user_agent",
    "owned_fields",
    "update_managed_fields",
]

LAST_APPLIED_ANNOTATION: Final = "kubectl.kubernetes.io/last-applied-configuration"
"""The annotation classic ``kubectl apply`` keeps its last applied configuration in."""

MAX_UPDATE_MANAGERS: Final = 10
"""Upstream's ``DefaultMaxUpdateManagers``: beyond this many ``Update`` entries the oldest are merged
into one ``ancient-changes`` entry per API version."""

_ANCIENT_CHANGES: Final = "ancient-changes"
_FIELD_MANAGER_MAX_LENGTH: Final = 128
_ANNOTATIONS_SIZE_LIMIT: Final = 256 * 1024

# Paths no manager ever owns (upstream's stripMetaManager): the server sets or guards them.
_STRIPPED: Final[frozenset[Path]] = frozenset(
    {
        ("f:apiVersion",),
        ("f:kind",),
        ("f:metadata",),
        ("f:metadata", "f:name"),
        ("f:metadata", "f:namespace"),
        ("f:metadata", "f:creationTimestamp"),
        ("f:metadata", "f:selfLink"),
        ("f:metadata", "f:uid"),
        ("f:metadata", "f:clusterName"),
        ("f:metadata", "f:generation"),
        ("f:metadata", "f:managedFields"),
        ("f:metadata", "f:resourceVersion"),
    }
)

Ident = tuple[str, str, str, str]
"""A manager's identity: (name, operation, API version for ``Update`` else "", subresource)."""

# The pseudo-manager an update's own changes are computed under before they join the manager's
# entry (upstream's "current-operation"); an empty operation cannot collide with a real entry.
_CURRENT: Final[Ident] = ("current-operation", "", "", "")


@dataclass(frozen=True, slots=True)
class _Owned:
    paths: frozenset[Path]
    api_version: str
    applied: bool


class _Managed:
    __slots__ = ("sets", "times")

    def __init__(self) -> None:
        self.sets: dict[Ident, _Owned] = {}
        self.times: dict[Ident, str] = {}


class _ConflictsFound(Exception):
    def __init__(self, conflicts: dict[Ident, frozenset[Path]]) -> None:
        super().__init__("apply conflicts")
        self.conflicts = conflicts


# --- public API ----------------------------------------------------------------------------------------


def apply(
    live: Mapping[str, Any] | None,
    config: Any,
    *,
    manager: str,
    api_version: str,
    types: ApplyType | Mapping[str, Any] | None,
    force: bool = False,
    subresource: str = "",
    now: datetime,
    reset_fields: FieldSet | None = None,
) -> dict[str, Any]:
    """Server-side apply of ``config`` by ``manager`` to ``live`` (``None``: the object does not exist
    yet and is created from the configuration).

    Returns the new object with ``metadata.managedFields`` updated; neither argument is modified and
    the result shares no mutable state with them.  When the apply changes nothing the result equals
    ``live`` (managed fields included), so the caller can skip the write; the manager's timestamp only
    moves when the object changed.  The caller still sets server-owned metadata (uid,
    resourceVersion, ...), applies defaults and validates the result.

    ``api_version`` is the version the request addressed (the configuration must declare it);
    ``types`` the compiled type of the resource (:meth:`TypeResolver.resource`), a raw schema (compiled
    on every call: cache a compiled type on hot paths) or ``None`` for an untyped resource;
    ``subresource`` names the subresource written (``"status"``), which gets its own entries;
    ``reset_fields`` are paths the endpoint resets and nobody may own there (``status`` on the main
    endpoint of a resource with a status subresource, ``spec`` on ``/status``); ``now`` is the clock.

    Raises :class:`BadRequest` for a configuration that is not an object, declares another version,
    carries ``metadata.managedFields`` or does not fit the schema (``field not declared in schema``:
    prune unknown fields first when field validation is not strict), :class:`Invalid` for an empty
    manager, and :class:`Conflict` (409, reason ``Conflict``, one ``FieldManagerConflict`` cause per
    field, upstream's message) when the configuration changes fields other managers own and
    ``force`` is false.
    """
    if not manager:
        raise Invalid.for_fields(
            "PatchOptions",
            "meta.k8s.io",
            "",
            [FieldError.required("fieldManager", "is required for apply patch")],
        )
    if not isinstance(config, dict):
        raise BadRequest(f"the apply configuration must be a JSON object, got {_json_kind(config)}")
    declared = config.get("apiVersion")
    if declared != api_version:
        raise BadRequest(
            "Incorrect version specified in apply patch. "
            f"Specified patch version: {declared if isinstance(declared, str) else ''}, expected: {api_version}"
        )
    config_meta = config.get("metadata")
    if isinstance(config_meta, dict) and config_meta.get("managedFields") is not None:
        raise BadRequest("metadata.managedFields must be nil")
    t = _resolve(types)
    live_obj = _without_managed_fields(live) if live is not None else {}
    managed = _decode_leniently(_managed_fields_of(live))

    errors: list[tuple[Path, str]] = []
    config_paths = frozenset(field_paths(config, t, errors))
    if errors:
        raise BadRequest(
            f"failed to create typed patch object ({_describe(config)}): {format_errors(errors)}"
        )

    ident: Ident = (manager, "Apply", "", subresource)
    try:
        result, sets, changed = _apply_once(
            live_obj, config, config_paths, ident, managed.sets, t, api_version, force, reset_fields
        )
    except _ConflictsFound as found:
        if manager != "kubectl" or force:
            raise _conflict_error(found.conflicts) from None
        # kubectl upgrading from client-side apply: fields its last-applied annotation recorded
        # (with the values still live) are taken over instead of conflicting.
        allowed = _allowed_by_last_applied(live_obj, t, api_version)
        remaining = {
            owner: frozenset(p for p in paths if allowed is None or p not in allowed)
            for owner, paths in found.conflicts.items()
        }
        remaining = {owner: paths for owner, paths in remaining.items() if paths}
        if remaining:
            raise _conflict_error(remaining) from None
        result, sets, changed = _apply_once(
            live_obj, config, config_paths, ident, managed.sets, t, api_version, True, reset_fields
        )

    managed.sets = sets
    _strip(managed, ident)
    if changed:
        managed.times[ident] = format_time(now)
    if manager == "kubectl":
        _sync_last_applied(result, config)
    _store(result, managed)
    return result


def update_managed_fields(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    *,
    manager: str,
    operation: str = "Update",
    api_version: str,
    types: ApplyType | Mapping[str, Any] | None,
    subresource: str = "",
    now: datetime,
    reset_fields: FieldSet | None = None,
) -> dict[str, Any]:
    """The object a non-apply write stores: ``new`` with ``metadata.managedFields`` recording the
    write.  ``old`` is the stored object (``None`` for a create).

    The manager's ``Update`` entry (for this ``api_version`` and ``subresource``) gains the fields the
    write added or changed, and every manager loses the fields the write changed or removed; the
    entry's time is ``now`` only if the write changed something.  ``managedFields`` in ``new`` (other
    than on a subresource) replace the stored ones, as upstream lets clients edit them; ``[]`` or
    ``[{}]`` clears them, and an existing object without managed fields stays without them.  The
    manager name is ``fieldManager`` or, without one, :func:`manager_from_user_agent`.

    Never raises for the object's content: like upstream's ``UpdateNoErrors``, bookkeeping never makes
    a write fail.  ``new`` is not modified; the result is a copy of its top level and metadata.
    """
    if operation != "Update":
        raise ValueError(f"update_managed_fields records Update operations, not {operation!r}")
    t = _resolve(types)
    new_obj = _without_managed_fields(new)
    old_obj = _without_managed_fields(old) if old is not None else {}

    requested = _managed_fields_of(new)
    managed: _Managed | None = None
    if subresource:
        managed = _decode_leniently(_managed_fields_of(old))
    elif _is_reset(requested):
        managed = _Managed()
    else:
        if isinstance(requested, list) and requested:
            try:
                managed = _decode(requested)
            except ValueError:
                managed = None
        if managed is None or not managed.sets:
            managed = _decode_leniently(_managed_fields_of(old))

    if not managed.sets and old is not None:
        # Upstream tracks nothing on an existing object whose managed fields are empty (cleared, or
        # written before managed fields existed): only creates start tracking.
        return new_obj

    sets = _reconciled(managed.sets, t)
    comparison = _update_sets(old_obj, new_obj, sets, _CURRENT, True, t, reset_fields, need_comparison=True)
    assert comparison is not None
    added, modified, removed = comparison
    current = (modified | added) - removed
    if reset_fields:
        current = FieldSet(current).recursive_difference(reset_fields).paths
    current = current - _STRIPPED
    ident: Ident = (manager, "Update", api_version, subresource)
    if current:
        previous = sets.get(ident)
        paths = current | previous.paths if previous is not None else current
        sets[ident] = _Owned(paths, api_version, False)
        managed.times[ident] = format_time(now)
    managed.sets = sets
    _cap_update_managers(managed)
    _store(new_obj, managed)
    return new_obj


def owned_fields(
    obj: Mapping[str, Any], manager: str, operation: str = "Apply", subresource: str = ""
) -> FieldSet:
    """The fields ``manager`` owns in ``obj`` through its entry for ``operation`` and
    ``subresource`` (all API versions of ``Update`` entries together); empty when it owns none."""
    managed = _decode_leniently(_managed_fields_of(obj))
    paths: set[Path] = set()
    for (name, op, _, sub), owned in managed.sets.items():
        if name == manager and op == operation and sub == subresource:
            paths |= owned.paths
    return FieldSet(paths)


def manager_from_user_agent(user_agent: str) -> str:
    """The field manager upstream derives from a User-Agent when a write names none
    (``prefixFromUserAgent``): the text before the first ``/``, without unprintable characters,
    cut to 128 bytes.  ``kubectl/v1.33.0 (linux/amd64) kubernetes/abc`` gives ``kubectl``,
    ``OpenAPI-Generator/33.1.0/python`` (the official Python client) ``OpenAPI-Generator``.  (kubectl
    itself names its manager for most commands: ``kubectl-client-side-apply``, ``kubectl-edit``,
    ``kubectl-create``, ``kubectl`` for ``apply --server-side``.)"""
    head = user_agent.split("/", 1)[0]
    out: list[str] = []
    size = 0
    for char in head:
        if not char.isprintable():
            continue
        width = len(char.encode())
        if size + width > _FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(char)
        size += width
    return "".join(out)


def field_manager_for(field_manager: str | None, user_agent: str | None) -> str:
    """The manager of a non-apply write: the ``fieldManager`` parameter, else derived from the
    User-Agent (upstream's ``managerOrUserAgent``)."""
    if field_manager:
        return field_manager
    return manager_from_user_agent(user_agent or "")


# --- the updater ---------------------------------------------------------------------------------------


def _apply_once(
    live: dict[str, Any],
    config: dict[str, Any],
    config_paths: frozenset[Path],
    ident: Ident,
    stored: dict[Ident, _Owned],
    t: ApplyType,
    api_version: str,
    force: bool,
    reset_fields: FieldSet | None,
) -> tuple[dict[str, Any], dict[Ident, _Owned], bool]:
    """Structured-merge-diff's ``Updater.Apply``: merge, take ownership, prune, resolve conflicts."""
    sets = _reconciled(stored, t)
    merged: dict[str, Any] = merge(live, config, t)
    last = sets.get(ident)
    new_paths = config_paths
    if reset_fields:
        new_paths = FieldSet(config_paths).recursive_difference(reset_fields).paths
    sets[ident] = _Owned(new_paths, api_version, True)
    # Pruning can only remove something the manager applied before and not now.
    if last is not None and last.paths and not last.paths <= new_paths:
        merged = _prune(merged, sets, last.paths, t)
    _update_sets(live, merged, sets, ident, force, t, reset_fields, need_comparison=False)
    return merged, sets, not same_json(live, merged)


def _update_sets(
    old: Any,
    new: Any,
    sets: dict[Ident, _Owned],
    ident: Ident,
    force: bool,
    t: ApplyType,
    reset_fields: FieldSet | None,
    *,
    need_comparison: bool,
) -> tuple[frozenset[Path], frozenset[Path], frozenset[Path]] | None:
    """Structured-merge-diff's ``Updater.update``: every manager but ``ident`` loses the fields the
    write removed and, when ``force``, those it changed; without ``force`` changed fields owned by
    another manager raise :class:`_ConflictsFound`.  Mutates ``sets``; returns the comparison."""
    others = [owner for owner in sets if owner != ident]
    comparison = None
    if others or need_comparison:
        raw = compare(old, new, t)
        added, modified, removed = frozenset(raw.added), frozenset(raw.modified), frozenset(raw.removed)
        comparison = (added, modified, removed)
        if reset_fields:
            added = FieldSet(added).recursive_difference(reset_fields).paths
            modified = FieldSet(modified).recursive_difference(reset_fields).paths
            removed = FieldSet(removed).recursive_difference(reset_fields).paths
        changed = modified | added
        conflicts: dict[Ident, frozenset[Path]] = {}
        if changed:
            for owner in others:
                overlap = sets[owner].paths & changed
                if overlap:
                    conflicts[owner] = overlap
        if conflicts and not force:
            raise _ConflictsFound(conflicts)
        for owner in others:
            owned = sets[owner]
            paths = owned.paths
            if owner in conflicts:
                paths = paths - conflicts[owner]
            if removed:
                paths = paths - removed
            if paths is not owned.paths:
                sets[owner] = _Owned(paths, owned.api_version, owned.applied)
    for owner in [owner for owner, owned in sets.items() if not owned.paths]:
        del sets[owner]
    return comparison


def _prune(merged: Any, sets: dict[Ident, _Owned], last: frozenset[Path], t: ApplyType) -> Any:
    """Structured-merge-diff's ``prune``: remove what the manager applied last time and not now,
    unless another manager (or the manager's new configuration) still owns it; a removed node that
    held fields owned by others keeps those (``addBackOwnedItems``), and nothing the manager never
    owned is removed (``addBackDanglingItems``)."""
    last_named = ensure_named_fields(last, t)
    pruned = remove_paths(merged, last_named, t, keep_emptied=True)
    managed: set[Path] = set()
    for owned in sets.values():
        managed |= owned.paths
    merged_set = ensure_named_fields(field_paths(merged, t), t)
    pruned_set = ensure_named_fields(field_paths(pruned, t), t)
    managed_named = ensure_named_fields(managed, t)
    pruned = remove_paths(merged, merged_set - (pruned_set | managed_named), t, keep_emptied=True)
    pruned_set = ensure_named_fields(field_paths(pruned, t), t)
    return remove_paths(merged, (merged_set - pruned_set) & last_named, t, keep_emptied=False)


def _reconciled(stored: Mapping[Ident, _Owned], t: ApplyType) -> dict[Ident, _Owned]:
    out: dict[Ident, _Owned] = {}
    for owner, owned in stored.items():
        adjusted = _reconcile(t, owned.paths)
        out[owner] = owned if adjusted is None else _Owned(adjusted, owned.api_version, owned.applied)
    return out


@lru_cache(maxsize=4096)
def _reconcile(t: ApplyType, paths: frozenset[Path]) -> frozenset[Path] | None:
    # Stored sets are decoded through a cache too, so a steady stream of writes to objects with the
    # same ownership reconciles each distinct set once per type.
    return reconcile_with_schema(paths, t, {})


def _strip(managed: _Managed, ident: Ident) -> None:
    owned = managed.sets.get(ident)
    if owned is None:
        return
    paths = owned.paths - _STRIPPED
    if not paths:
        del managed.sets[ident]
    elif len(paths) != len(owned.paths):
        managed.sets[ident] = _Owned(paths, owned.api_version, owned.applied)


def _cap_update_managers(managed: _Managed) -> None:
    """Upstream's ``capUpdateManagers``: fold the oldest ``Update`` entries into one
    ``ancient-changes`` entry per API version until at most :data:`MAX_UPDATE_MANAGERS` remain."""
    updaters = [owner for owner, owned in managed.sets.items() if not owned.applied]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda owner: (_seconds(managed.times.get(owner)), _identifier_json(owner)))
    first_by_version: dict[str, Ident] = {}
    length = len(updaters)
    for owner in updaters:
        if length <= MAX_UPDATE_MANAGERS:
            break
        owned = managed.sets[owner]
        version = owned.api_version
        bucket: Ident = (_ANCIENT_CHANGES, "Update", version, "")
        if owner == bucket:
            first_by_version.setdefault(version, owner)
            continue
        if version not in first_by_version:
            first_by_version[version] = owner
            continue
        if bucket not in managed.sets:
            managed.sets[bucket] = managed.sets.pop(first_by_version[version])
        merged = managed.sets[bucket].paths | owned.paths
        managed.sets[bucket] = _Owned(merged, version, False)
        del managed.sets[owner]
        length -= 1
        time = managed.times.get(owner)
        if time is not None:
            managed.times[bucket] = time
        else:
            managed.times.pop(bucket, None)


# --- client-side apply interplay ----------------------------------------------------------------------


def _allowed_by_last_applied(live: dict[str, Any], t: ApplyType, api_version: str) -> frozenset[Path] | None:
    """The fields kubectl's client-side apply recorded in the live object's last-applied annotation
    and that still hold those values (upstream's ``allowedConflictsFromLastApplied``)."""
    annotations = (live.get("metadata") or {}).get("annotations")
    text = annotations.get(LAST_APPLIED_ANNOTATION) if isinstance(annotations, dict) else None
    if not isinstance(text, str) or not text:
        return None
    try:
        last = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != api_version:
        return None
    paths = frozenset(field_paths(last, t))
    changes = compare(last, live, t)
    return paths - frozenset(changes.modified) - frozenset(changes.added) - frozenset(changes.removed)


def _sync_last_applied(obj: dict[str, Any], config: dict[str, Any]) -> None:
    """kubectl's server-side apply keeps an existing last-applied annotation in step with what it
    applied, so a later client-side apply computes its three-way merge from the right base."""
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict) or not annotations.get(LAST_APPLIED_ANNOTATION):
        return
    annotations[LAST_APPLIED_ANNOTATION] = _last_applied_value(config)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items() if isinstance(v, str))
    if size > _ANNOTATIONS_SIZE_LIMIT:
        del annotations[LAST_APPLIED_ANNOTATION]


def _last_applied_value(config: dict[str, Any]) -> str:
    """The configuration as upstream encodes it for the annotation: without the annotation itself,
    keys sorted, HTML characters escaped, a trailing newline."""
    recorded = copy_json(config)
    meta = recorded.get("metadata")
    if isinstance(meta, dict) and "annotations" in meta:
        annotations = meta["annotations"]
        if isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values()):
            meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED_ANNOTATION}
        else:
            del meta["annotations"]
    text = orjson.dumps(recorded, option=orjson.OPT_SORT_KEYS).decode()
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text + "\n"


# --- conflicts -----------------------------------------------------------------------------------------


def _identifier_json(ident: Ident) -> str:
    """The manager identifier as upstream builds it (``BuildManagerIdentifier``): the entry's JSON
    without fields and time; conflicts and capping order managers by it."""
    name, operation, version, subresource = ident
    parts = []
    if name:
        parts.append('"manager":' + json_string(name))
    if operation:
        parts.append('"operation":' + json_string(operation))
    if version:
        parts.append('"apiVersion":' + json_string(version))
    if subresource:
        parts.append('"subresource":' + json_string(subresource))
    return "{" + ",".join(parts) + "}"


def _print_manager(ident: Ident) -> str:
    name, operation, version, subresource = ident
    text = json_string(name)
    if subresource:
        text += f" with subresource {json_string(subresource)}"
    if operation == "Update":
        text += f" using {version}"
    return text


def _conflict_error(conflicts: Mapping[Ident, frozenset[Path]]) -> Conflict:
    """Upstream's ``NewConflictError``: 409 ``Conflict`` with one ``FieldManagerConflict`` cause per
    field, managers in identifier order and fields in upstream's set order."""
    listed: list[tuple[Ident, Path]] = []
    for owner in sorted(conflicts, key=_identifier_json):
        listed.extend((owner, path) for path in FieldSet(conflicts[owner]).iter_upstream())
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {_print_manager(owner)}",
            "field": format_path(path),
        }
        for owner, path in listed
    ]
    if len(listed) == 1:
        owner, path = listed[0]
        message = f"Apply failed with 1 conflict: conflict with {_print_manager(owner)}: {format_path(path)}"
    else:
        lines: list[str] = []
        current: Ident | None = None
        for owner, path in listed:
            if owner != current:
                lines.append(f"conflicts with {_print_manager(owner)}:")
                current = owner
            lines.append(f"- {format_path(path)}")
        message = f"Apply failed with {len(listed)} conflicts: " + "\n".join(lines)
    return Conflict(message, details={"causes": causes})


# --- managedFields encoding ----------------------------------------------------------------------------


def _resolve(types: ApplyType | Mapping[str, Any] | None) -> ApplyType:
    if isinstance(types, ApplyType):
        return types
    if types is None:
        return untyped_resource_type()
    return TypeResolver().resource(types)


def _managed_fields_of(obj: Mapping[str, Any] | None) -> Any:
    if obj is None:
        return None
    meta = obj.get("metadata")
    return meta.get("managedFields") if isinstance(meta, Mapping) else None


def _without_managed_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the top level and metadata of ``obj``, without ``metadata.managedFields``."""
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, Mapping):
        meta = dict(meta)
        meta.pop("managedFields", None)
        out["metadata"] = meta
    return out


def _is_reset(entries: Any) -> bool:
    """``managedFields: []`` or ``[{}]``: the client asks to clear managed fields."""
    if not isinstance(entries, list):
        return False
    return not entries or (len(entries) == 1 and entries[0] == {})


@lru_cache(maxsize=4096)
def _parse_fields(raw: bytes) -> frozenset[Path]:
    return FieldSet.from_fields_v1(orjson.loads(raw)).paths


@lru_cache(maxsize=4096)
def _encode_fields(paths: frozenset[Path]) -> bytes:
    return orjson.dumps(FieldSet(paths).to_fields_v1())


def _decode(entries: Any) -> _Managed:
    """Decode stored ``managedFields``; ``ValueError`` naming the first invalid entry."""
    managed = _Managed()
    if entries is None:
        return managed
    if not isinstance(entries, list):
        raise ValueError("managedFields must be a list")
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ValueError(f"managed fields entry {index} is not an object")
        fields_type = entry.get("fieldsType") or ""
        if fields_type == "":
            raise ValueError(f"missing fieldsType in managed fields entry {index}")
        if fields_type != "FieldsV1":
            raise ValueError(f'invalid fieldsType "{fields_type}" in managed fields entry {index}')
        name = entry.get("manager") or ""
        operation = entry.get("operation") or ""
        version = entry.get("apiVersion") or ""
        subresource = entry.get("subresource") or ""
        if not all(isinstance(v, str) for v in (name, operation, version, subresource)):
            raise ValueError(f"managed fields entry {index} has a non-string manager, operation or version")
        fields = entry.get("fieldsV1")
        try:
            paths = _parse_fields(orjson.dumps(fields)) if fields is not None else frozenset()
        except (ValueError, TypeError) as exc:
            raise ValueError(f"error decoding set in managed fields entry {index}: {exc}") from exc
        ident: Ident = (name, operation, "" if operation == "Apply" else version, subresource)
        managed.sets[ident] = _Owned(paths, version, operation == "Apply")
        time = entry.get("time")
        if isinstance(time, str) and time:
            managed.times[ident] = time
        else:
            managed.times.pop(ident, None)
    return managed


def _decode_leniently(entries: Any) -> _Managed:
    try:
        return _decode(entries)
    except ValueError:
        return _Managed()


@lru_cache(maxsize=1024)
def _seconds(time: str | None) -> int:
    if not time:
        return 0
    try:
        return int(parse_time(time).timestamp())
    except ValueError:
        return 0


def _entry_order(entry: dict[str, Any]) -> tuple[str, int, str, str, str]:
    return (
        entry.get("operation", ""),
        _seconds(entry.get("time")),
        entry.get("manager", ""),
        entry.get("apiVersion", ""),
        entry.get("subresource", ""),
    )


def _store(obj: dict[str, Any], managed: _Managed) -> None:
    """Write ``managed`` into ``obj``'s metadata (which must be a private copy), or remove the key
    when no manager is left."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        if not managed.sets:
            return
        meta = obj["metadata"] = {}
    if not managed.sets:
        meta.pop("managedFields", None)
        return
    entries = []
    for ident, owned in managed.sets.items():
        name, operation, _, subresource = ident
        entry: dict[str, Any] = {}
        if name:
            entry["manager"] = name
        entry["operation"] = "Apply" if owned.applied else (operation or "Update")
        if owned.api_version:
            entry["apiVersion"] = owned.api_version
        time = managed.times.get(ident)
        if time:
            entry["time"] = time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = orjson.loads(_encode_fields(owned.paths))
        if subresource:
            entry["subresource"] = subresource
        entries.append(entry)
    entries.sort(key=_entry_order)
    meta["managedFields"] = entries


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return type(value).__name__


def _describe(config: dict[str, Any]) -> str:
    """``<namespace>/<name>; <group>/<version>, Kind=<kind>``, as upstream names the object."""
    meta = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    api_version = config.get("apiVersion") or ""
    group, _, version = str(api_version).rpartition("/")
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}; {group}/{version}, Kind={config.get('kind') or ''}"
