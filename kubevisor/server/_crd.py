"""CustomResourceDefinitions: what kube-apiserver's apiextensions part does, in one module.

* :class:`CustomResourceDefinitionStrategy` is the write path of ``apiextensions.k8s.io/v1``
  CustomResourceDefinitions: upstream's defaults and validation (``_crd_validation.py``: names,
  scope, versions, structural schemas with their CEL rules compiled, subresources, printer columns,
  selectable fields, stored versions, immutable fields, with upstream's messages and paths), and the
  cleanup finalizer on delete.
* :class:`CustomResourceStrategy` is the write path of the custom resources one CRD version
  serves: pruning of unknown fields, defaulting (on write and on read), validation and CEL rules
  (``oldSelf`` on updates), printer columns, the scale subresource, selectable fields and the
  storage version.
* :class:`CustomResourceDefinitions` keeps the registry in step with the stored CRDs.  Every CRD
  write is seen synchronously (a storage listener), so a CRD's resources are served in discovery,
  OpenAPI and REST by the time the request that created it returns; a background task then writes
  the ``NamesAccepted`` / ``Established`` conditions and ``acceptedNames``, and, for a CRD being
  deleted, deletes every instance before removing upstream's
  ``customresourcecleanup.apiextensions.k8s.io`` finalizer.  On start, every stored CRD is served
  again before the server accepts requests.

Name conflicts follow upstream's naming controller: names are checked against the accepted names
of the other CRDs of the same group (and the built-in resources of that group); a CRD whose names
clash is stored, with ``NamesAccepted`` false naming the clash, and is not served until the clash
goes away.  Conversion between versions is upstream's ``None`` strategy: objects are stored under
the storage version's apiVersion and served under the requested one (a ``Webhook`` strategy is
accepted but converts the same way: the embedded server calls no conversion webhooks).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from kubevisor.api import (
    ApiError,
    Clock,
    CompiledSchema,
    Conflict,
    FieldError,
    MethodNotAllowed,
    NotFound,
    ResourceInfo,
    format_time,
    join_api_version,
    now,
    parse_time,
)
from kubevisor.server._crd_validation import (
    compile_schema,
    condition,
    default_crd,
    dict_of,
    has_default,
    list_of,
    schema_of,
    set_condition,
    storage_version,
    str_of,
    validate_crd,
    versions_of,
)
from kubevisor.server._jsonpath import JSONPath, JSONPathError
from kubevisor.server._registry import Strategy
from kubevisor.server._service import ObjectService, RequestOptions
from kubevisor.server._storage import Event, ResourceKey
from kubevisor.server._tables import AGE_DESCRIPTION, NAME_COLUMN, Column, human_duration

__all__ = [
    "CLEANUP_FINALIZER",
    "CRD_KEY",
    "CustomResourceDefinitionStrategy",
    "CustomResourceDefinitions",
    "CustomResourceStrategy",
]

log = logging.getLogger("kubevisor.server")

CRD_GROUP = "apiextensions.k8s.io"
CRD_KEY: ResourceKey = (CRD_GROUP, "customresourcedefinitions")
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
"""Held by a CRD being deleted until every instance of it is gone (upstream's finalizer)."""

_MANAGER = "kube-apiserver"
_RESOURCE_FIELDS = ("apiVersion", "kind", "metadata")


@dataclass(frozen=True)
class CustomResourceDefinitionStrategy(Strategy):
    """The write path of CustomResourceDefinitions themselves.  ``clock`` stamps the conditions
    set on delete."""

    generation: bool = True
    clock: Clock = field(default=now, compare=False)

    def prepare_create(self, obj: dict[str, Any], info: ResourceInfo) -> None:
        default_crd(obj)
        stored = storage_version(dict_of(obj.get("spec")))
        # A new CRD starts with no accepted names and no conditions (upstream's PrepareForCreate).
        obj["status"] = {
            "acceptedNames": {"plural": "", "kind": ""},
            "storedVersions": [stored] if stored else [],
        }

    def prepare_update(self, obj: dict[str, Any], old: Mapping[str, Any], info: ResourceInfo) -> None:
        default_crd(obj)
        stored = storage_version(dict_of(obj.get("spec")))
        status = dict(dict_of(obj.get("status")))  # shared with the stored object: copy before changing
        versions = list(list_of(status.get("storedVersions")))
        if stored and stored not in versions:
            status["storedVersions"] = [*versions, stored]
            obj["status"] = status

    def validate(
        self, obj: Mapping[str, Any], old: Mapping[str, Any] | None, info: ResourceInfo
    ) -> list[FieldError]:
        return validate_crd(obj, old)

    def prepare_delete(self, obj: dict[str, Any], info: ResourceInfo) -> None:
        meta = obj["metadata"]
        finalizers = [f for f in list_of(meta.get("finalizers")) if isinstance(f, str)]
        if CLEANUP_FINALIZER not in finalizers:
            meta["finalizers"] = [*finalizers, CLEANUP_FINALIZER]
        status = obj["status"] = copy.deepcopy(dict_of(obj.get("status")))
        conditions = status.setdefault("conditions", [])
        set_condition(
            conditions,
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            format_time(self.clock()),
        )


# ------------------------------------------------------------------------------------------------
# custom resources


def _unknown(value: Any, schema: Any, path: str, found: list[str], resource: bool) -> None:
    """Collect the paths of fields ``schema`` does not specify (as structural pruning would drop)."""
    if not isinstance(schema, Mapping):
        return
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else None
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    embedded = resource or schema.get("x-kubernetes-embedded-resource") is True
    if isinstance(value, dict):
        for key, item in value.items():
            if embedded and key in _RESOURCE_FIELDS:
                continue
            sub = f"{path}.{key}" if path else key
            child = properties.get(key) if properties is not None else None
            if child is not None:
                # Scalars cannot hold unknown fields: only objects and arrays are walked.
                if isinstance(item, dict | list):
                    _unknown(item, child, sub, found, False)
            elif isinstance(additional, Mapping):
                if isinstance(item, dict | list):
                    _unknown(item, additional, f"{path}[{key}]", found, False)
            elif not preserve and additional is not True:
                found.append(sub)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                if isinstance(item, dict | list):
                    _unknown(item, items, f"{path}[{index}]", found, False)


def _column_cell(kind: str, value: Any, at: datetime) -> Any:
    """Upstream's ``cellForJSONValue`` (strings printed as the JSONPath printer prints them)."""
    if value is None:
        return None
    if kind == "string":
        if isinstance(value, str):
            return value
        return orjson.dumps(value).decode()
    if kind == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        return int(value) if isinstance(value, float) else None
    if kind == "number":
        if isinstance(value, bool):
            return None
        return float(value) if isinstance(value, int | float) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "date":
        if not isinstance(value, str):
            return None
        try:
            return human_duration((at - parse_time(value)).total_seconds())
        except ValueError:
            return "<invalid>"
    return None


@dataclass(frozen=True)
class _Printer:
    """A CRD version's Table printer: Name, then its ``additionalPrinterColumns`` (or Age)."""

    columns: tuple[Column, ...]
    paths: tuple[tuple[str, JSONPath | None], ...]

    @classmethod
    def of(cls, declared: Any) -> _Printer:
        columns: list[Column] = [NAME_COLUMN]
        paths: list[tuple[str, JSONPath | None]] = []
        specs = [c for c in list_of(declared) if isinstance(c, dict)] or [
            {
                "name": "Age",
                "type": "date",
                "jsonPath": ".metadata.creationTimestamp",
                "description": AGE_DESCRIPTION,
            }
        ]
        for spec in specs:
            json_path = str_of(spec.get("jsonPath"))
            description = str_of(spec.get("description")) or (
                f"Custom resource definition column (in JSONPath format): {json_path}"
            )
            raw_priority = spec.get("priority")
            priority = raw_priority if isinstance(raw_priority, int) else 0
            kind = str_of(spec.get("type")) or "string"
            columns.append(
                (str_of(spec.get("name")), kind, str_of(spec.get("format")), priority, description)
            )
            try:
                parsed: JSONPath | None = JSONPath.parse(json_path)
            except JSONPathError:
                parsed = None
            paths.append((kind, parsed))
        return cls(tuple(columns), tuple(paths))

    def cells(self, obj: Mapping[str, Any], at: datetime) -> list[Any]:
        meta = dict_of(obj.get("metadata"))
        row: list[Any] = [meta.get("name", "")]
        for kind, path in self.paths:
            row.append(_column_cell(kind, path.first(obj), at) if path is not None else None)
        return row


@dataclass(frozen=True)
class CustomResourceStrategy(Strategy):
    """The write path of the custom resources one CRD version serves.

    ``schema`` validates, prunes and defaults (``None``: everything is kept, nothing checked);
    ``raw_schema`` is its source; ``schema_rv`` is the CRD's resourceVersion when this schema took
    effect (objects stored at or before it are defaulted again when read); ``storage_version`` the
    apiVersion objects are stored under; ``scale`` the scale subresource's paths; ``terminating``
    refuses creates while the CRD is being deleted.
    """

    generation: bool = True
    unconditional_update: bool = False
    strategic_merge: bool = False
    group: str = ""
    plural: str = ""
    schema: CompiledSchema | None = field(default=None, compare=False)
    raw_schema: Mapping[str, Any] | None = field(default=None, compare=False)
    has_defaults: bool = False
    schema_rv: int = 0
    storage_version: str = ""
    scale: tuple[str, str, str | None] | None = None
    terminating: bool = False
    table_printer: _Printer | None = field(default=None, compare=False)

    def unknown_fields(self, obj: dict[str, Any], *, prune: bool) -> list[str] | None:
        if self.raw_schema is None:
            return []
        found: list[str] = []
        _unknown(obj, self.raw_schema, "", found, True)
        if prune and self.schema is not None:
            self.schema.prune(obj)
        return found

    def normalize(self, obj: dict[str, Any]) -> None:
        if self.schema is not None:
            self.schema.prune(obj)
            self.schema.default(obj)

    def validate(
        self, obj: Mapping[str, Any], old: Mapping[str, Any] | None, info: ResourceInfo
    ) -> list[FieldError]:
        if self.schema is None:
            return []
        return self.schema.validate(
            obj, old if old is not None and self.schema.has_transition_rules else None
        )

    def check_create(self, info: ResourceInfo) -> None:
        if self.terminating:
            details: dict[str, Any] = {"kind": self.plural}
            if self.group:
                details["group"] = self.group
            raise MethodNotAllowed(
                "create not allowed while custom resource definition is terminating", details=details
            )

    def defaults_on_read(self, rv: int) -> bool:
        return self.has_defaults and rv <= self.schema_rv

    def default_stored(self, obj: dict[str, Any]) -> None:
        if self.schema is not None:
            self.schema.default(obj)

    def storage_api_version(self, info: ResourceInfo) -> str:
        return self.storage_version or info.api_version

    def printer(self) -> Any:
        return (self.table_printer.columns, self.table_printer.cells) if self.table_printer else None

    def scale_paths(self) -> tuple[str, str, str | None] | None:
        return self.scale


def _dotted(json_path: str) -> str:
    try:
        return JSONPath.parse(json_path).dotted or json_path.lstrip(".")
    except JSONPathError:
        return json_path.lstrip(".")


def _strategy_for(
    crd_name: str, spec: Mapping[str, Any], version: Mapping[str, Any], schema_rv: int, terminating: bool
) -> CustomResourceStrategy:
    group = str_of(spec.get("group"))
    raw = schema_of(version)
    compiled: CompiledSchema | None = None
    if raw is not None:
        compiled, problems = compile_schema(
            raw, f"spec.versions[{version.get('name')}].schema.openAPIV3Schema"
        )
        if problems:  # pragma: no cover - stored CRDs were validated on write
            log.warning("custom resource schema of %s no longer compiles: %s", crd_name, problems[0])
    subresources = dict_of(version.get("subresources"))
    scale_spec = subresources.get("scale")
    scale = None
    if isinstance(scale_spec, dict):
        selector = str_of(scale_spec.get("labelSelectorPath"))
        scale = (
            _dotted(str_of(scale_spec.get("specReplicasPath"))),
            _dotted(str_of(scale_spec.get("statusReplicasPath"))),
            _dotted(selector) if selector else None,
        )
    selectable = {
        _dotted(str_of(item.get("jsonPath"))): _dotted(str_of(item.get("jsonPath")))
        for item in list_of(version.get("selectableFields"))
        if isinstance(item, dict) and item.get("jsonPath")
    }
    return CustomResourceStrategy(
        selectable_fields=selectable or None,
        group=group,
        plural=str_of(dict_of(spec.get("names")).get("plural")),
        schema=compiled,
        raw_schema=raw,
        has_defaults=has_default(raw),
        schema_rv=schema_rv,
        storage_version=join_api_version(group, storage_version(spec)),
        scale=scale,
        terminating=terminating,
        table_printer=_Printer.of(version.get("additionalPrinterColumns")),
    )


# ------------------------------------------------------------------------------------------------
# serving CRDs


_NAME_FIELDS = ("plural", "singular", "shortNames", "kind", "listKind", "categories")


def _names(value: Any) -> dict[str, Any]:
    """A names object in upstream's field order, empty optional lists left out."""
    raw = dict_of(value)
    out: dict[str, Any] = {}
    for key in _NAME_FIELDS:
        item = raw.get(key)
        if key in ("shortNames", "categories"):
            if item:
                out[key] = list(item)
        else:
            out[key] = str_of(item)
    return out


@dataclass
class _State:
    """What the server currently does for one CRD."""

    group: str
    accepted: dict[str, Any]
    established: bool
    names_condition: tuple[str, str, str] = ("Unknown", "", "")
    keys: set[tuple[str, str, str]] = field(default_factory=set)
    signature: Any = None
    schema_rvs: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    selectable: frozenset[tuple[str, str]] = frozenset()
    instance_key: ResourceKey | None = None
    terminating: bool = False


class CustomResourceDefinitions:
    """Keeps the registry in step with the stored CRDs and maintains their status (see the module
    docstring).  Built on a started :class:`ObjectService`; :meth:`start` before serving requests,
    :meth:`run` as a background task, :meth:`stop` before the storage closes."""

    def __init__(self, service: ObjectService, *, clock: Clock = now) -> None:
        self._service = service
        self._storage = service.storage
        self._registry = service.registry
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._info: ResourceInfo | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Serve every stored CRD (stored status decides who holds contested names, as upstream)
        and follow CRD writes from now on.  Synchronous: done before the server listens."""
        info = self._registry.get(CRD_GROUP, "v1", "customresourcedefinitions")
        if info is None:
            return
        self._info = info
        self._registry.add(info, CustomResourceDefinitionStrategy(clock=self._clock))
        crds = [record.load() for record in self._storage.list_records(CRD_KEY)]
        for crd in crds:
            status = dict_of(crd.get("status"))
            established = condition(list_of(status.get("conditions")), "Established")
            self._states[crd["metadata"]["name"]] = _State(
                group=str_of(dict_of(crd.get("spec")).get("group")),
                accepted=_names(status.get("acceptedNames")),
                established=established is not None and established.get("status") == "True",
            )
        for crd in sorted(
            crds, key=lambda c: (str_of(c["metadata"].get("creationTimestamp")), c["metadata"]["name"])
        ):
            self._sync(crd["metadata"]["name"])
        self._unsubscribe = self._storage.subscribe(self._on_event)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def run(self) -> None:
        """Write statuses and finish deletions as CRDs change; runs until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending, self._pending = self._pending, set()
            retry = False
            for name in sorted(pending):
                try:
                    await self._reconcile(name)
                except (Conflict, NotFound):
                    retry = True  # raced with another write: look again
                    self._pending.add(name)
                except ApiError:
                    log.exception("custom resource definition %s: status update failed", name)
            if retry:
                self._wake.set()
                await asyncio.sleep(0)

    def served_by(self, name: str) -> set[tuple[str, str, str]]:
        """The (group, version, plural) keys the named CRD currently serves."""
        state = self._states.get(name)
        return set(state.keys) if state is not None else set()

    # ------------------------------------------------------------ following writes

    def _on_event(self, event: Event) -> None:
        # A storage listener: synchronous, must not raise and must not write.
        try:
            if event.key == CRD_KEY:
                self._sync(event.record.name)
                return
            for name, state in self._states.items():
                if state.terminating and state.instance_key == event.key:
                    self._enqueue(name)
        except Exception:  # pragma: no cover - a bug here must not break the write that triggered it
            log.exception("custom resource definitions: failed to follow %s", event.record.name)

    def _enqueue(self, name: str) -> None:
        self._pending.add(name)
        self._wake.set()

    def _sync(self, name: str, *, cascade: bool = True) -> None:
        record = self._storage.get(CRD_KEY, "", name)
        state = self._states.get(name)
        if record is None:
            if state is not None:
                self._unregister(state)
                del self._states[name]
                if cascade:
                    self._resync_group(state.group, name)
            return
        crd = record.load()
        spec = dict_of(crd.get("spec"))
        status = dict_of(crd.get("status"))
        if state is None:
            state = self._states[name] = _State(
                group=str_of(spec.get("group")),
                accepted=_names(status.get("acceptedNames")),
                established=False,
            )
        before = state.accepted
        state.accepted, state.names_condition = self._accept_names(name, spec, state)
        if state.names_condition[0] == "True":
            state.established = True
        state.terminating = bool(dict_of(crd.get("metadata")).get("deletionTimestamp"))
        signature = (
            crd["metadata"].get("uid"),
            crd["metadata"].get("generation"),
            orjson.dumps(state.accepted),
            state.terminating,
            state.established,
        )
        if signature != state.signature:
            self._register(name, crd, state, record.rv)
            state.signature = signature
        self._enqueue(name)
        if cascade and before != state.accepted:
            self._resync_group(state.group, name)

    def _resync_group(self, group: str, changed: str) -> None:
        """Names another CRD of ``group`` gave up may now be free for a blocked one."""
        for other, state in list(self._states.items()):
            if other != changed and state.group == group and state.names_condition[0] != "True":
                self._sync(other, cascade=False)

    def _accept_names(
        self, name: str, spec: Mapping[str, Any], state: _State
    ) -> tuple[dict[str, Any], tuple[str, str, str]]:
        """Upstream's naming controller (``calculateNamesAndConditions``): each requested name is
        accepted if it is the one accepted before or nobody else in the group holds it."""
        group = str_of(spec.get("group"))
        resources: set[str] = set()
        kinds: set[str] = set()
        owned: set[tuple[str, str, str]] = set()
        for other, other_state in self._states.items():
            owned |= other_state.keys
            if other == name or other_state.group != group:
                continue
            accepted = other_state.accepted
            resources.update(
                n
                for n in (accepted.get("plural"), accepted.get("singular"), *accepted.get("shortNames", ()))
                if n
            )
            kinds.update(n for n in (accepted.get("kind"), accepted.get("listKind")) if n)
        for info in self._registry.resources():
            if info.group == group and (info.group, info.version, info.plural) not in owned:
                resources.update(n for n in (info.plural, info.singular, *info.short_names) if n)
                kinds.update((info.kind, info.list_kind_name))
        requested = _names(spec.get("names"))
        previous = state.accepted
        new = dict(previous)
        condition = ("Unknown", "", "")

        def fresh(wanted: str, had: str, used: set[str]) -> bool:
            return wanted == had or wanted not in used

        for key, reason in (("plural", "PluralConflict"), ("singular", "SingularConflict")):
            if fresh(requested[key], previous.get(key, ""), resources):
                new[key] = requested[key]
            else:
                condition = ("False", reason, f'"{requested[key]}" is already in use')
        collision = False
        had_short = set(previous.get("shortNames", ()))
        for short in requested.get("shortNames", ()):
            if short not in had_short and short in resources:
                condition = ("False", "ShortNamesConflict", f'"{short}" is already in use')
                collision = True
        if not collision:
            if requested.get("shortNames"):
                new["shortNames"] = list(requested["shortNames"])
            else:
                new.pop("shortNames", None)
        for key, reason in (("kind", "KindConflict"), ("listKind", "ListKindConflict")):
            if fresh(requested[key], previous.get(key, ""), kinds):
                new[key] = requested[key]
            else:
                condition = ("False", reason, f'"{requested[key]}" is already in use')
        if requested.get("categories"):
            new["categories"] = list(requested["categories"])
        else:
            new.pop("categories", None)
        if condition[0] == "Unknown":
            condition = ("True", "NoConflicts", "no conflicts found")
        return _names(new), condition

    def _register(self, name: str, crd: Mapping[str, Any], state: _State, rv: int) -> None:
        spec = dict_of(crd.get("spec"))
        names = state.accepted
        group = str_of(spec.get("group"))
        items: list[tuple[ResourceInfo, Strategy]] = []
        selectable: set[tuple[str, str]] = set()
        if state.established and names.get("plural") and names.get("kind"):
            namespaced = spec.get("scope") == "Namespaced"
            for version in versions_of(spec):
                if version.get("served") is not True:
                    continue
                version_name = str_of(version.get("name"))
                raw = schema_of(version)
                encoded = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
                known = state.schema_rvs.get(version_name)
                schema_rv = known[1] if known is not None and known[0] == encoded else rv
                state.schema_rvs[version_name] = (encoded, schema_rv)
                strategy = _strategy_for(name, spec, version, schema_rv, state.terminating)
                subresources = dict_of(version.get("subresources"))
                info = ResourceInfo(
                    group=group,
                    version=version_name,
                    kind=names["kind"],
                    plural=names["plural"],
                    singular=names.get("singular") or names["kind"].lower(),
                    namespaced=namespaced,
                    short_names=tuple(names.get("shortNames", ())),
                    categories=tuple(names.get("categories", ())),
                    subresources=tuple(
                        s for s in ("status", "scale") if isinstance(subresources.get(s), dict)
                    ),
                    list_kind=names.get("listKind") or names["kind"] + "List",
                    schema=copy.deepcopy(raw) if raw is not None else None,
                )
                items.append((info, strategy))
                selectable.update((version_name, f) for f in strategy.selectable_fields or ())
        keys = {(info.group, info.version, info.plural) for info, _ in items}
        for key in state.keys - keys:
            self._registry.remove(*key)
        if items:
            self._registry.add_all(items)
        state.keys = keys
        state.instance_key = (group, names["plural"]) if names.get("plural") else None
        if state.instance_key is not None and frozenset(selectable) != state.selectable:
            # Stored objects were indexed with the old selectable fields.
            self._storage.reindex(state.instance_key)
        state.selectable = frozenset(selectable)

    def _unregister(self, state: _State) -> None:
        for key in state.keys:
            self._registry.remove(*key)
        state.keys = set()

    # ------------------------------------------------------------ status and deletion

    def _instance_info(self, state: _State) -> ResourceInfo | None:
        for key in sorted(state.keys):
            info = self._registry.get(*key)
            if info is not None:
                return info
        return None

    async def _reconcile(self, name: str) -> None:
        assert self._info is not None
        record = self._storage.get(CRD_KEY, "", name)
        state = self._states.get(name)
        if record is None or state is None:
            return
        crd = record.load()
        status = dict_of(crd.get("status"))
        desired = copy.deepcopy(status)
        at = format_time(self._clock())
        desired["acceptedNames"] = state.accepted
        conditions = desired.setdefault("conditions", [])
        status_value, reason, message = state.names_condition
        set_condition(conditions, "NamesAccepted", status_value, reason, message, at)
        if state.established:
            established = condition(conditions, "Established")
            if established is None or established.get("status") != "True":
                set_condition(
                    conditions,
                    "Established",
                    "True",
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                    at,
                )
        else:
            set_condition(conditions, "Established", "False", "NotAccepted", "not all names are accepted", at)
        finalizers = list_of(crd["metadata"].get("finalizers"))
        deleting = state.terminating and CLEANUP_FINALIZER in finalizers
        remaining = 0
        if deleting:
            info = self._instance_info(state)
            if info is None or state.instance_key is None:
                set_condition(
                    conditions,
                    "Terminating",
                    "False",
                    "NeverEstablished",
                    "resource was never established",
                    at,
                )
            else:
                remaining = await self._delete_instances(info, state.instance_key)
                if remaining:
                    set_condition(
                        conditions,
                        "Terminating",
                        "True",
                        "InstanceDeletionCheck",
                        "could not confirm zero CustomResources remaining: timed out waiting for the condition",
                        at,
                    )
                else:
                    set_condition(
                        conditions,
                        "Terminating",
                        "False",
                        "InstanceDeletionCompleted",
                        "removed all instances",
                        at,
                    )
        if desired != status:
            crd["status"] = desired
            crd = await self._service.update(
                self._info, "", name, crd, RequestOptions(field_manager=_MANAGER), subresource="status"
            )
        if deleting and not remaining:
            meta = crd["metadata"]
            meta["finalizers"] = [f for f in list_of(meta.get("finalizers")) if f != CLEANUP_FINALIZER]
            await self._service.update(self._info, "", name, crd, RequestOptions(field_manager=_MANAGER))

    async def _delete_instances(self, info: ResourceInfo, key: ResourceKey) -> int:
        """Delete every instance not already being deleted (their own finalizers still hold them);
        returns how many remain."""
        for record in self._storage.list_records(key):
            if b'"deletionTimestamp"' in record.data and record.load()["metadata"].get("deletionTimestamp"):
                continue
            try:
                await self._service.delete(
                    info, record.namespace, record.name, {}, RequestOptions(field_manager=_MANAGER)
                )
            except (NotFound, Conflict):
                continue
        return self._storage.count(key)
