"""The REST semantics of the API server, independent of HTTP.

:class:`ObjectService` implements get, list, create, update, patch, delete and deletecollection with
upstream's rules (generation, status/scale subresources, finalizers, preconditions, dry run,
resourceVersion semantics of lists, unknown-field validation).  The HTTP handlers only parse requests
and encode answers; in-process components (the built-in controllers of issue 3) call this layer
directly.

The write path is one fixed pipeline, so that every later concern has one place to plug in::

    decode/check body → unknown fields (pruned) → server-owned metadata → strategy.prepare_*
    (defaults) → generation → managedFields → validation → admission plugins (mutating, then
    validating) → storage

Server-side apply (``PATCH`` with ``application/apply-patch+yaml``) enters the same pipeline with
the merged object :func:`~kubevisor.api.apply` computed; its managedFields are already final, so
only the bookkeeping step is skipped.  Every other write records an ``Update`` entry with
:func:`~kubevisor.api.update_managed_fields`.

Every write runs on the event loop; the read-modify-write window is closed by passing the expected
resourceVersion to storage, so an admission plugin that awaits cannot cause a lost update.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from kubevisor.api import (
    AlreadyExists,
    ApplyType,
    BadRequest,
    Clock,
    Conflict,
    Expired,
    FieldError,
    FieldSelector,
    FieldSet,
    Forbidden,
    Invalid,
    LabelSelector,
    NotFound,
    ResourceInfo,
    ServerTimeout,
    TypeResolver,
    UnsupportedMediaType,
    apply,
    apply_json_patch,
    apply_merge_patch,
    builtin_definitions,
    definition_name,
    field_manager_for,
    finalizer_warnings,
    format_time,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_valid_path_segment_name,
    now,
    parse_time,
    strategic_merge_patch,
    untyped_resource_type,
    update_managed_fields,
    validate_object_meta,
    validate_object_meta_update,
)
from kubevisor.server._conversion import converter_for, storage_key, translate_field_label
from kubevisor.server._registry import ResourceRegistry, Strategy, lookup_path
from kubevisor.server._schema import SchemaIndex
from kubevisor.server._storage import (
    KeyExistsError,
    KeyNotFoundError,
    Record,
    ResourceKey,
    StaleVersionError,
    Storage,
)

__all__ = [
    "AdmissionPlugin",
    "AdmissionRequest",
    "ListResult",
    "ObjectService",
    "RequestOptions",
    "resource_key",
]

NAMESPACES: ResourceKey = ("", "namespaces")
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)

_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can start a "
    "new list without the continue parameter, or use the continue token in this response to retrieve "
    "the remainder of the results. Continuing with the provided token results in an inconsistent list "
    "- objects that were created, modified, or deleted between the time the first chunk was returned "
    "and now may show up in the list."
)


_PATCH_ATTEMPTS = 5


class _LostRace(Conflict):
    """The object changed between our read and our write (another write won while we awaited)."""


def resource_key(info: ResourceInfo) -> ResourceKey:
    """Objects of every served version of a resource (and both Event APIs) share one storage key."""
    return storage_key(info)


@dataclass
class RequestOptions:
    """What one request asks of the write path.

    ``field_validation``: ``Strict`` (unknown fields → 400), ``Warn`` (upstream's default: dropped,
    with a warning) or ``Ignore`` (dropped silently).  ``warnings`` collects the texts to send in
    ``Warning: 299`` headers.
    """

    dry_run: bool = False
    field_validation: str = "Warn"
    field_manager: str | None = None
    user_agent: str = ""
    force: bool = False
    """Server-side apply only: take ownership of conflicting fields instead of failing with 409."""
    warnings: list[str] = field(default_factory=list)
    created: bool = False
    """Set by the write path when a PATCH (server-side apply) created the object (answered 201)."""


@dataclass
class AdmissionRequest:
    """What an admission plugin sees.  ``obj`` may be mutated by mutating plugins."""

    operation: str  # CREATE | UPDATE | DELETE
    info: ResourceInfo
    namespace: str
    name: str
    obj: dict[str, Any]
    old: dict[str, Any] | None
    subresource: str
    options: RequestOptions


class AdmissionPlugin(Protocol):
    """One admission step (defaulting, validation, managedFields, webhooks).  Raise an
    :class:`~kubevisor.api.ApiError` to reject the request."""

    async def admit(self, request: AdmissionRequest) -> None: ...


@dataclass(slots=True)
class ListResult:
    """One page of a list: the records, the RV it was built at and the continue token."""

    resource_version: int
    records: list[Record]
    continue_token: str = ""
    remaining: int | None = None


def _parse_rv(value: str | None, what: str = "resourceVersion") -> int | None:
    if value is None or value == "":
        return None
    try:
        rv = int(value)
    except ValueError:
        raise BadRequest(f'invalid {what} "{value}"') from None
    if rv < 0:
        raise BadRequest(f'invalid {what} "{value}"')
    return rv


def encode_continue(rv: int, start: tuple[str, str]) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": f"{start[0]}/{start[1]}\x00"}
    return base64.urlsafe_b64encode(orjson.dumps(token)).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        rv = int(data["rv"])
        namespace, _, name = str(data["start"]).partition("/")
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("continue key is not valid: continue key is not valid") from None
    if data.get("v") != "meta.k8s.io/v1" or rv <= 0:
        raise BadRequest(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        )
    return rv, (namespace, name)


def _selector_string(selector: Any) -> str:
    """A ``metav1.LabelSelector`` as the label-selector text Scale.status.selector carries."""
    if not isinstance(selector, Mapping):
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or ():
        key, op = expr.get("key", ""), expr.get("operator", "")
        values = ",".join(sorted(expr.get("values") or ()))
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _without(obj: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


_STATUS_FIELDS = FieldSet([("f:status",)])
_SPEC_FIELDS = FieldSet([("f:spec",)])


def _reset_key(info: ResourceInfo, subresource: str) -> str | None:
    """The top-level field an endpoint resets, which therefore nobody owns through it (upstream's
    ``GetResetFields``): ``status`` on the main endpoint of a kind with a status subresource,
    ``spec`` on ``/status``."""
    if subresource == "status":
        return "spec"
    if not subresource and info.has_subresource("status"):
        return "status"
    return None


def reset_fields(info: ResourceInfo, subresource: str) -> FieldSet | None:
    """:func:`_reset_key` as the field set server-side apply takes."""
    key = _reset_key(info, subresource)
    return None if key is None else _SPEC_FIELDS if key == "spec" else _STATUS_FIELDS


class _GoHex(int):
    """An unsigned integer as Go's ``%#v`` prints it in a field error (``0x0``)."""

    def __repr__(self) -> str:
        return hex(self)


_UNSET_VERSION = _GoHex(0)

FieldPaths = list[str]
"""Dotted field paths (``spec.template.spec.containers[0].foo``), as unknown-field messages name them."""

_GO_JSON_TYPES = {list: "array", str: "string", bool: "bool", int: "number", float: "number"}


_NAME_VALIDATORS = {
    "subdomain": is_dns1123_subdomain,
    "label": is_dns1123_label,
    "path": is_valid_path_segment_name,
}


class ObjectService:
    """The REST semantics over one :class:`Storage` and one :class:`ResourceRegistry`."""

    def __init__(
        self,
        storage: Storage,
        registry: ResourceRegistry,
        *,
        clock: Clock = now,
        admission: Sequence[AdmissionPlugin] = (),
    ) -> None:
        self.storage = storage
        self.registry = registry
        self.clock = clock
        self.admission: list[AdmissionPlugin] = list(admission)
        self._schemas = SchemaIndex(builtin_definitions())
        self._definition_names: dict[tuple[str, str, str], str | None] = {}
        # Server-side apply types: built-in kinds share one resolver (definitions compile once);
        # the per-resource cache is dropped whenever the registry changes (a CRD's new schema).
        self._builtin_types = TypeResolver(builtin_definitions())
        self._types: dict[tuple[str, str, str], ApplyType] = {}
        registry.on_change(self._types.clear)

    # ------------------------------------------------------------ managed fields

    def apply_type(self, info: ResourceInfo) -> ApplyType:
        """How server-side apply tracks ownership in objects of ``info``: from the upstream
        definition of a built-in kind, from the inline schema of a custom resource, untyped (every
        map granular, every list atomic) when the resource has no schema."""
        key = (info.group, info.version, info.plural)
        found = self._types.get(key)
        if found is None:
            schema = info.schema
            if schema is None:
                found = untyped_resource_type()
            elif "$ref" in schema:
                found = self._builtin_types.resource(schema)
            else:
                found = TypeResolver().resource(schema)
            self._types[key] = found
        return found

    def _track(
        self,
        info: ResourceInfo,
        old: Mapping[str, Any] | None,
        obj: dict[str, Any],
        options: RequestOptions,
        subresource: str,
    ) -> dict[str, Any]:
        """``obj`` with an ``Update`` entry for this write in its managedFields (a new top level and
        metadata dict; the rest shared)."""
        top = _reset_key(info, subresource)
        if top is not None and (top in obj or (old is not None and top in old)):
            # The field the endpoint resets is left out of both sides rather than subtracted from
            # every ownership set afterwards: the same outcome (no changed path can lie under it),
            # without a set difference that cost as much as the rest of the bookkeeping.
            old_view = {k: v for k, v in old.items() if k != top} if old is not None else None
            tracked = update_managed_fields(
                old_view,
                {k: v for k, v in obj.items() if k != top},
                manager=field_manager_for(options.field_manager, options.user_agent),
                api_version=info.api_version,
                types=self.apply_type(info),
                subresource=subresource,
                now=self.clock(),
            )
            return {k: tracked.get(k, v) if k != top else v for k, v in obj.items()}
        return update_managed_fields(
            old,
            obj,
            manager=field_manager_for(options.field_manager, options.user_agent),
            api_version=info.api_version,
            types=self.apply_type(info),
            subresource=subresource,
            now=self.clock(),
        )

    # ------------------------------------------------------------ encoding

    def record_bytes(self, info: ResourceInfo, record: Record) -> bytes:
        """A stored object's JSON as ``info`` serves it."""
        return self.served_bytes(info, record.data, record.rv)

    def served_bytes(self, info: ResourceInfo, data: bytes, rv: int | None = None) -> bytes:
        """Stored JSON (stored at ``rv``, when known) as ``info`` serves it: as is when it is already
        in that form (the common case, recognised by its leading kind and apiVersion), otherwise
        converted; defaulted again when it predates its schema's defaults (custom resources)."""
        strategy = self.registry.strategy(info)
        if rv is not None and strategy.defaults_on_read(rv):
            obj = self._served(info, orjson.loads(data))
            strategy.default_stored(obj)
            return orjson.dumps(obj)
        prefix = f'{{"kind":"{info.kind}","apiVersion":"{info.api_version}"'.encode()
        if data.startswith(prefix):
            return data
        return orjson.dumps(self._served(info, orjson.loads(data)))

    def record_object(self, info: ResourceInfo, record: Record) -> dict[str, Any]:
        """A fresh parse of a stored object, as ``info`` serves it (defaulted, for a custom
        resource stored before its schema's current defaults)."""
        obj = self._served(info, record.load())
        strategy = self.registry.strategy(info)
        if strategy.defaults_on_read(record.rv):
            strategy.default_stored(obj)
        return obj

    @staticmethod
    def _served(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        converter = converter_for(info)
        if converter is not None and obj.get("apiVersion") != info.api_version:
            return converter.from_storage(obj)
        obj["apiVersion"] = info.api_version
        return obj

    def _stored(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """The storage form of a served object (a custom resource under its storage version); its
        metadata dict is shared, so the resourceVersion the storage stamps shows in ``obj`` too."""
        converter = converter_for(info)
        if converter is not None:
            return converter.to_storage(obj)
        stored_as = self.registry.strategy(info).storage_api_version(info)
        if stored_as == info.api_version:
            return obj
        out = {"kind": obj.get("kind", info.kind), "apiVersion": stored_as}
        out.update((k, v) for k, v in obj.items() if k not in out)
        return out

    @staticmethod
    def _normalise(info: ResourceInfo, body: dict[str, Any]) -> dict[str, Any]:
        # kind and apiVersion first: record_bytes recognises the stored version by its prefix.
        out = {"kind": info.kind, "apiVersion": info.api_version, "metadata": body.get("metadata") or {}}
        for key, value in body.items():
            if key not in out:
                out[key] = value
        return out

    # ------------------------------------------------------------ reads

    def get(
        self, info: ResourceInfo, namespace: str, name: str, resource_version: str | None = None
    ) -> Record:
        """The current object (any RV satisfies ``resourceVersion``: the store is always newest)."""
        rv = _parse_rv(resource_version)
        if rv is not None and rv > self.storage.resource_version:
            raise self._too_large(rv)
        record = self.storage.get(resource_key(info), namespace if info.namespaced else "", name)
        if record is None:
            raise NotFound.for_resource(info.plural, info.group, name)
        return record

    def _too_large(self, rv: int) -> ServerTimeout:
        return ServerTimeout(
            f"Too large resource version: {rv}, current: {self.storage.resource_version}",
            details={
                "causes": [
                    {
                        "reason": "ResourceVersionTooLarge",
                        "message": "Too large resource version",
                    }
                ],
                "retryAfterSeconds": 1,
            },
        )

    def selectors(
        self, info: ResourceInfo, label_selector: str | None, field_selector: str | None
    ) -> tuple[LabelSelector | None, FieldSelector | None, str | None]:
        """Parse list/watch selectors; the third value is a ``metadata.name=`` equality, which
        lets lists and watches of one object skip scanning."""
        labels = LabelSelector.parse(label_selector) if label_selector else None
        if labels is not None and labels.empty:
            labels = None
        fields = None
        name: str | None = None
        if field_selector:
            fields = FieldSelector.parse(field_selector)
            strategy = self.registry.strategy(info)
            for label, _, _ in fields.requirements:
                if not strategy.supports_field(label):
                    raise BadRequest(f"field label not supported: {label}")
            name = fields.exact_value("metadata.name")
            if converter_for(info) is not None:
                # Labels of the served form name fields of the stored one (regarding.* → involvedObject.*).
                fields = FieldSelector(
                    tuple((translate_field_label(info, f), op, v) for f, op, v in fields.terms)
                )
            if fields.empty:
                fields = None
        return labels, fields, name

    def list(
        self,
        info: ResourceInfo,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> ListResult:
        """A (page of a) list with the resourceVersion semantics of reference §2."""
        labels, fields, name = self.selectors(info, label_selector, field_selector)
        storage = self.storage
        current = storage.resource_version
        rv = _parse_rv(resource_version)
        start: tuple[str, str] | None = None
        at: int | None = None
        if continue_token:
            if resource_version not in (None, "", "0"):
                raise BadRequest("specifying resource version is not allowed when using continue")
            at, start = decode_continue(continue_token)
            if at < storage.compacted:
                raise Expired(_CONTINUE_TOO_OLD)
            if at > current:
                raise BadRequest("continue key is not valid: resource version is in the future")
        else:
            match = resource_version_match or ""
            if match and match not in ("Exact", "NotOlderThan"):
                raise _invalid_list_options(
                    FieldError.not_supported("resourceVersionMatch", match, ["Exact", "NotOlderThan"])
                )
            if match and rv is None:
                raise _invalid_list_options(
                    FieldError.forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    )
                )
            if match == "Exact" and rv == 0:
                raise _invalid_list_options(
                    FieldError.forbidden(
                        "resourceVersionMatch",
                        'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                    )
                )
            if rv is not None and rv > current:
                raise self._too_large(rv)
            exact = match == "Exact" or (not match and bool(limit) and rv not in (None, 0))
            if exact and rv is not None:
                at = rv
                if at < storage.compacted:
                    raise Expired(f"too old resource version: {at} ({storage.compacted})")
        built_at = at if at is not None else current
        key = resource_key(info)
        ns = namespace if info.namespaced else None
        if name is not None and at is None:
            if ns is not None or not info.namespaced:
                one = storage.get(key, ns or "", name)
                records = [one] if one is not None else []
            else:
                records = [r for r in storage.list_records(key) if r.name == name]
            if start is not None:
                records = [r for r in records if r.sort_key >= start]
        else:
            records = storage.list_records(key, ns, start=start, at=at)
        if labels is not None or fields is not None:
            records = [
                r
                for r in records
                if (labels is None or labels.matches(r.labels))
                and (fields is None or fields.matches(r.fields))
            ]
        token = ""
        remaining: int | None = None
        if limit and limit > 0 and len(records) > limit:
            last = records[limit - 1]
            if labels is None and fields is None:
                remaining = len(records) - limit
            records = records[:limit]
            token = encode_continue(built_at, (last.namespace, last.name + "\x00"))
        return ListResult(built_at, records, token, remaining)

    def list_bytes(self, info: ResourceInfo, result: ListResult) -> bytes:
        """The ``<Kind>List`` JSON for a list result, built from the stored bytes without parsing."""
        return b"".join(self.list_chunks(info, result, chunk_items=len(result.records) + 1))

    def list_chunks(self, info: ResourceInfo, result: ListResult, chunk_items: int = 256) -> Iterator[bytes]:
        """The same JSON in pieces of ``chunk_items`` items, so that a large list is streamed rather
        than materialised as one buffer (a 10 MB allocation per list fragments the heap for good)."""
        meta: dict[str, Any] = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            meta["continue"] = result.continue_token
        if result.remaining is not None:
            meta["remainingItemCount"] = result.remaining
        head = orjson.dumps({"kind": info.list_kind_name, "apiVersion": info.api_version, "metadata": meta})
        yield head[:-1] + b',"items":['
        records = result.records
        for start in range(0, len(records), chunk_items):
            piece = b",".join(self.record_bytes(info, r) for r in records[start : start + chunk_items])
            yield piece if start == 0 else b"," + piece
        yield b"]}"

    # ------------------------------------------------------------ body checks

    def _decode_body(
        self,
        info: ResourceInfo,
        namespace: str,
        body: Any,
        options: RequestOptions,
        *,
        check_unknown: bool = True,
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest(
                f"the body of the request was in an unknown format - expected a JSON or YAML object, got "
                f"{type(body).__name__}"
            )
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version not in (None, "") and api_version != info.api_version:
            raise BadRequest(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({info.api_version})"
            )
        if kind not in (None, "") and kind != info.kind:
            raise BadRequest(
                f'{kind} in version "{info.version}" cannot be handled as a {info.kind}: the kind in the data '
                f"({kind}) does not match the expected kind ({info.kind})"
            )
        meta = body.get("metadata")
        if meta is None:
            meta = body["metadata"] = {}
        if not isinstance(meta, dict):
            raise BadRequest(
                f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                "metadata must be an object"
            )
        if info.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            if namespace:
                meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if check_unknown:
            self._check_unknown_fields(info, body, options)
        return body

    def _definition(self, info: ResourceInfo) -> str | None:
        key = (info.group, info.version, info.kind)
        if key not in self._definition_names:
            self._definition_names[key] = definition_name(info.gvk)
        return self._definition_names[key]

    def _unknown_fields(
        self, info: ResourceInfo, body: dict[str, Any], *, prune: bool, type_errors: bool
    ) -> FieldPaths:
        """Unknown field paths of ``body`` per the kind's own schema (custom resources) or its
        upstream definition; removed in place with ``prune``.  With ``type_errors``, a value Go's
        decoder could not read is a 400 whatever fieldValidation says (built-in kinds only: a
        custom resource's types are checked by its schema's validation, as 422)."""
        found = self.registry.strategy(info).unknown_fields(body, prune=prune)
        if found is not None:
            return found
        definition = self._definition(info)
        if definition is None:
            return []
        unknown, errors = self._schemas.check(body, definition, prune=prune)
        if errors and type_errors:
            raise BadRequest(
                f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: {errors[0]}'
            )
        return unknown

    def _check_unknown_fields(
        self, info: ResourceInfo, body: dict[str, Any], options: RequestOptions
    ) -> None:
        mode = options.field_validation
        unknown = self._unknown_fields(info, body, prune=mode != "Strict", type_errors=True)
        if not unknown:
            return
        listed = ", ".join(f'unknown field "{path}"' for path in unknown)
        if mode == "Strict":
            raise BadRequest(
                f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                f"strict decoding error: {listed}"
            )
        if mode == "Warn":
            options.warnings.extend(f'unknown field "{path}"' for path in unknown)

    def _check_namespace(self, info: ResourceInfo, namespace: str, name: str) -> None:
        if not info.namespaced:
            return
        record = self.storage.get(NAMESPACES, "", namespace)
        if record is None:
            raise NotFound.for_resource("namespaces", "", namespace)
        if record.fields.get("status.phase") == "Terminating":
            raise Forbidden(
                f'{info.qualified} "{name}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated",
                details={
                    "name": name,
                    "group": info.group,
                    "kind": info.plural,
                    "causes": [
                        {
                            "reason": "NamespaceTerminating",
                            "message": f"namespace {namespace} is being terminated",
                            "field": "metadata.namespace",
                        }
                    ],
                },
            )

    def _validate(
        self, info: ResourceInfo, strategy: Strategy, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        meta = obj["metadata"]
        if old is None:
            errors = validate_object_meta(
                meta, namespaced=info.namespaced, name_validator=_NAME_VALIDATORS[strategy.name_format]
            )
        else:
            errors = validate_object_meta_update(meta, old["metadata"])
        errors.extend(strategy.validate(obj, old, info))
        if errors:
            raise Invalid.for_fields(info.kind, info.group, meta.get("name"), errors)

    async def _admit(
        self,
        operation: str,
        info: ResourceInfo,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        subresource: str,
        options: RequestOptions,
    ) -> None:
        if not self.admission:
            return
        meta = obj.get("metadata") or {}
        request = AdmissionRequest(
            operation, info, meta.get("namespace", ""), meta.get("name", ""), obj, old, subresource, options
        )
        for plugin in self.admission:
            await plugin.admit(request)

    # ------------------------------------------------------------ create

    async def create(
        self, info: ResourceInfo, namespace: str, body: Any, options: RequestOptions
    ) -> dict[str, Any]:
        """Create an object; returns it as stored (or as it would be, with ``dry_run``)."""
        strategy = self.registry.strategy(info)
        strategy.check_create(info)
        body = self._decode_body(info, namespace, body, options)
        return await self._commit_create(info, strategy, namespace, self._normalise(info, body), options)

    async def _commit_create(
        self,
        info: ResourceInfo,
        strategy: Strategy,
        namespace: str,
        obj: dict[str, Any],
        options: RequestOptions,
        *,
        applied: bool = False,
    ) -> dict[str, Any]:
        """The create pipeline from server-owned metadata on; ``applied``: ``obj`` comes from
        server-side apply and its managedFields are final."""
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise BadRequest("resourceVersion should not be set on objects to be created")
        generated = not meta.get("name") and bool(meta.get("generateName"))
        if generated and isinstance(meta.get("generateName"), str):
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5)
            )
        name = meta.get("name") if isinstance(meta.get("name"), str) else ""
        if info.namespaced and name:
            self._check_namespace(info, namespace, name)
        for server_owned in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(server_owned, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = format_time(self.clock())
        if strategy.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if strategy.reset_status_on_create and info.has_subresource("status"):
            obj.pop("status", None)
        strategy.normalize(obj)
        strategy.prepare_create(obj, info)
        if not applied:
            obj = self._track(info, None, obj, options, "")
            meta = obj["metadata"]
        self._validate(info, strategy, obj, None)
        options.warnings.extend(finalizer_warnings(meta.get("finalizers")))
        await self._admit("CREATE", info, obj, None, "", options)
        if options.dry_run:
            if self.storage.get(resource_key(info), meta.get("namespace", ""), meta["name"]) is not None:
                raise AlreadyExists.for_resource(info.plural, info.group, meta["name"])
            return obj
        try:
            self.storage.create(resource_key(info), self._stored(info, obj))
        except KeyExistsError:
            raise AlreadyExists.for_resource(info.plural, info.group, meta["name"]) from None
        return obj

    # ------------------------------------------------------------ update

    async def update(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        body: Any,
        options: RequestOptions,
        subresource: str = "",
    ) -> dict[str, Any]:
        """PUT: replace an object (or its ``status`` with ``subresource="status"``)."""
        body = self._decode_body(info, namespace, body, options)
        meta = body["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise BadRequest(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        old_record = self.get(info, namespace, name)
        strategy = self.registry.strategy(info)
        if not meta.get("resourceVersion") and not strategy.unconditional_update:
            raise Invalid.for_fields(
                info.kind,
                info.group,
                name,
                [
                    FieldError.invalid(
                        "metadata.resourceVersion", _UNSET_VERSION, "must be specified for an update"
                    )
                ],
            )
        return await self._commit_update(
            info, strategy, old_record, self._normalise(info, body), options, subresource
        )

    async def _commit_update(
        self,
        info: ResourceInfo,
        strategy: Strategy,
        old_record: Record,
        obj: dict[str, Any],
        options: RequestOptions,
        subresource: str,
        *,
        applied: bool = False,
        tracked_as: str | None = None,
    ) -> dict[str, Any]:
        """The update pipeline shared by PUT, PATCH and apply.  ``applied``: ``obj`` comes from
        server-side apply and its managedFields are final; ``tracked_as`` names the subresource
        the write is recorded under when it differs from ``subresource`` (``scale``)."""
        old = self.record_object(info, old_record)
        meta = obj["metadata"]
        name = old["metadata"]["name"]
        given_rv = meta.get("resourceVersion")
        if given_rv and given_rv != old["metadata"].get("resourceVersion"):
            raise Conflict.stale(info.plural, info.group, name)
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if subresource == "status" or subresource == "finalize":
            # Only status (or, for namespaces/finalize, spec.finalizers) moves; everything else is kept.
            new = dict(old)
            new["metadata"] = dict(old["metadata"])
            if applied:
                # Apply computed the subresource's managedFields: the one metadata change kept.
                if "managedFields" in meta:
                    new["metadata"]["managedFields"] = meta["managedFields"]
                else:
                    new["metadata"].pop("managedFields", None)
            if subresource == "status":
                if "status" in obj:
                    new["status"] = obj["status"]
                else:
                    new.pop("status", None)
            else:
                spec = dict(old.get("spec") or {})
                spec["finalizers"] = list((obj.get("spec") or {}).get("finalizers") or [])
                new["spec"] = spec
            obj = new
            meta = obj["metadata"]
            strategy.normalize(obj)
        else:
            # Server-owned metadata is carried over (upstream's BeforeUpdate): clients echo or omit
            # it, never own it.  Timestamps compare as instants: clients re-serialise them in their
            # own formats ("+00:00" rather than "Z").
            old_meta = old["metadata"]
            for key in ("uid", "deletionGracePeriodSeconds"):
                if key in old_meta:
                    meta.setdefault(key, old_meta[key])
                elif meta.get(key) is None:
                    meta.pop(key, None)
            if "creationTimestamp" in old_meta:
                meta["creationTimestamp"] = old_meta["creationTimestamp"]
            if "deletionTimestamp" in old_meta and _same_instant(meta.get("deletionTimestamp"), old_meta):
                meta["deletionTimestamp"] = old_meta["deletionTimestamp"]
            elif meta.get("deletionTimestamp") is None:
                meta.pop("deletionTimestamp", None)
            meta.pop("selfLink", None)
            if info.has_subresource("status"):
                if "status" in old:
                    obj["status"] = old["status"]
                else:
                    obj.pop("status", None)
            strategy.normalize(obj)
            strategy.prepare_update(obj, old, info)
            if strategy.generation:
                generation = old["metadata"].get("generation") or 1
                ignored = ("metadata", "status") if info.has_subresource("status") else ("metadata",)
                if _without(obj, *ignored) != _without(old, *ignored):
                    generation += 1
                meta["generation"] = generation
            else:
                meta.pop("generation", None)
        if not applied:
            obj = self._track(info, old, obj, options, subresource if tracked_as is None else tracked_as)
            meta = obj["metadata"]
        self._validate(info, strategy, obj, old)
        options.warnings.extend(finalizer_warnings(meta.get("finalizers")))
        await self._admit("UPDATE", info, obj, old, subresource, options)
        if obj == old:
            # A no-op write changes nothing, not even the resourceVersion (upstream skips it too).
            return old
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and not _namespace_finalizers(info, obj)
        ):
            return self._finish_delete(info, old_record, obj, options)
        if options.dry_run:
            return obj
        try:
            self.storage.update(resource_key(info), self._stored(info, obj), expected_rv=old_record.rv)
        except StaleVersionError:
            raise _LostRace.stale(info.plural, info.group, name) from None
        except KeyNotFoundError:
            raise NotFound.for_resource(info.plural, info.group, name) from None
        return obj

    def _finish_delete(
        self, info: ResourceInfo, record: Record, final: dict[str, Any], options: RequestOptions
    ) -> dict[str, Any]:
        if options.dry_run:
            return final
        try:
            self.storage.delete(
                resource_key(info), record.namespace, record.name, record.rv, self._stored(info, final)
            )
        except StaleVersionError:
            raise _LostRace.stale(info.plural, info.group, record.name) from None
        except KeyNotFoundError:
            raise NotFound.for_resource(info.plural, info.group, record.name) from None
        return final

    # ------------------------------------------------------------ patch

    async def patch(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        content_type: str,
        patch: Any,
        options: RequestOptions,
        subresource: str = "",
    ) -> dict[str, Any]:
        """PATCH with a JSON patch, JSON merge patch or (built-in kinds) strategic merge patch.

        A patch that loses a race with another write (possible only while an admission plugin awaits)
        is re-applied to the newer object, as upstream retries patches; a resourceVersion inside the
        patch still makes it conditional (409 when stale)."""
        strategy = self.registry.strategy(info)
        self._check_patch_type(strategy, content_type)
        if options.force and content_type != APPLY_PATCH:
            raise Invalid.for_fields(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [FieldError.forbidden("force", "may not be specified for non-apply patch")],
            )
        if content_type == APPLY_PATCH:
            return await self._apply(info, strategy, namespace, name, patch, options, subresource)
        warnings = len(options.warnings)
        for attempt in range(_PATCH_ATTEMPTS):
            del options.warnings[warnings:]
            old_record = self.get(info, namespace, name)
            original = self.record_object(info, old_record)
            patched = self._apply_patch(info, content_type, original, patch)
            patched = self._decode_body(info, namespace, patched, options)
            pmeta = patched["metadata"]
            if pmeta.get("name") != name:
                raise BadRequest(
                    f"the name of the object ({pmeta.get('name')}) does not match the name on the URL ({name})"
                )
            try:
                return await self._commit_update(
                    info, strategy, old_record, self._normalise(info, patched), options, subresource
                )
            except _LostRace:
                if attempt == _PATCH_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _check_patch_type(strategy: Strategy, content_type: str) -> None:
        accepted = [JSON_PATCH, MERGE_PATCH]
        if strategy.strategic_merge:
            accepted.append(STRATEGIC_PATCH)
        accepted.append(APPLY_PATCH)
        if content_type not in accepted:
            raise UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types include: "
                + ", ".join(accepted)
            )

    def _apply_patch(
        self, info: ResourceInfo, content_type: str, original: dict[str, Any], patch: Any
    ) -> Any:
        if content_type == JSON_PATCH:
            if not isinstance(patch, list):
                raise BadRequest("the server rejected our request due to an error in our request")
            return apply_json_patch(original, patch)
        if not isinstance(patch, dict):
            raise BadRequest("the server rejected our request due to an error in our request")
        if content_type == MERGE_PATCH:
            return apply_merge_patch(original, patch)
        return strategic_merge_patch(original, patch, info.gvk)

    # ------------------------------------------------------------ apply

    def _apply_config(
        self, info: ResourceInfo, namespace: str, name: str, config: Any, options: RequestOptions
    ) -> dict[str, Any]:
        """Check an apply configuration as upstream's apply patcher does, in its order: a JSON
        object, of exactly the endpoint's group, version and kind, naming this object; unknown
        fields pruned unless fieldValidation is Strict (then apply reports them as
        ``field not declared in schema``)."""
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise BadRequest(
                "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
                f"{_GO_JSON_TYPES.get(type(config), 'value')} into Go value of type map[string]interface {{}}"
            )
        api_version, kind = config.get("apiVersion"), config.get("kind")
        if api_version != info.api_version or kind != info.kind:
            group, _, version = str(api_version or "").rpartition("/")
            given = f"{group}/{version}, Kind={kind or ''}"
            if not api_version and not kind:
                raise BadRequest(f"invalid object type: {given}")
            raise BadRequest(
                f"invalid object type: {given}, expected {info.group}/{info.version}, Kind={info.kind}"
            )
        meta = config.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise BadRequest(
                f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                "metadata must be an object"
            )
        meta = meta or {}
        config_name = meta.get("name")
        if config_name not in (None, "") and config_name != name:
            raise BadRequest(
                f"the name of the object ({config_name}) does not match the name on the URL ({name})"
            )
        config_ns = meta.get("namespace")
        if info.namespaced and config_ns not in (None, "") and namespace and config_ns != namespace:
            raise BadRequest(
                f"the namespace of the object ({config_ns}) does not match the namespace on the request "
                f"({namespace})"
            )
        mode = options.field_validation
        if mode != "Strict":
            unknown = self._unknown_fields(info, config, prune=True, type_errors=False)
            if unknown and mode == "Warn":
                options.warnings.extend(f'unknown field "{path}"' for path in unknown)
        return config

    async def _apply(
        self,
        info: ResourceInfo,
        strategy: Strategy,
        namespace: str,
        name: str,
        config: Any,
        options: RequestOptions,
        subresource: str,
    ) -> dict[str, Any]:
        """Server-side apply: merge ``config`` into the live object (creating it when missing, on
        the main endpoint), then run the write pipeline on the result.  An apply that changes
        nothing writes nothing (no new resourceVersion)."""
        config = self._apply_config(info, namespace, name, config, options)
        types = self.apply_type(info)
        # A configuration without the reset field cannot change anything under it (and subtracting
        # it from every ownership set is a large part of an apply's cost).
        top = _reset_key(info, subresource)
        reset = reset_fields(info, subresource) if top is not None and top in config else None
        key = resource_key(info)
        ns = namespace if info.namespaced else ""
        warnings = len(options.warnings)
        for attempt in range(_PATCH_ATTEMPTS):
            del options.warnings[warnings:]
            record = self.storage.get(key, ns, name)
            live = self.record_object(info, record) if record is not None else None
            if live is None and subresource:
                raise NotFound.for_resource(info.plural, info.group, name)
            result = apply(
                live,
                config,
                manager=options.field_manager or "",
                api_version=info.api_version,
                types=types,
                force=options.force,
                subresource=subresource,
                now=self.clock(),
                reset_fields=reset,
            )
            obj = self._normalise(info, result)
            meta = obj["metadata"]
            if info.namespaced and namespace:
                meta["namespace"] = namespace
            elif not info.namespaced:
                meta.pop("namespace", None)
            try:
                if record is None:
                    strategy.check_create(info)
                    if not meta.get("name"):
                        raise BadRequest(
                            f"the name of the object ({name} based on URL) was undeterminable: name must be provided"
                        )
                    if meta.get("uid"):
                        raise Conflict.for_resource(
                            info.plural,
                            info.group,
                            name,
                            f"uid mismatch: the provided object specified uid {meta['uid']}, and no existing "
                            "object was found",
                        )
                    created = await self._commit_create(info, strategy, namespace, obj, options, applied=True)
                    options.created = True
                    return created
                return await self._commit_update(
                    info, strategy, record, obj, options, subresource, applied=True
                )
            except (_LostRace, AlreadyExists):
                # Another write got in first (possible only while admission awaits): apply again
                # to the newer object, as upstream retries.
                if attempt == _PATCH_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------ scale

    def scale_of(self, info: ResourceInfo, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The autoscaling/v1 Scale view of a workload."""
        meta = obj["metadata"]
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        scale_meta = {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        }
        paths = self.registry.strategy(info).scale_paths()
        if paths is not None:
            # A custom resource: replicas and selector wherever its CRD's scale paths say.
            spec_path, status_path, selector_path = paths
            replicas = lookup_path(obj, spec_path)
            current = lookup_path(obj, status_path)
            selector = lookup_path(obj, selector_path) if selector_path else None
            scale_status: dict[str, Any] = {"replicas": current if isinstance(current, int) else 0}
            if isinstance(selector, str) and selector:
                scale_status["selector"] = selector
            return {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": scale_meta,
                "spec": {"replicas": replicas if isinstance(replicas, int) else 0},
                "status": scale_status,
            }
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": scale_meta,
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": {
                "replicas": status.get("replicas", 0),
                "selector": _selector_string(spec.get("selector")),
            },
        }

    def get_scale(self, info: ResourceInfo, namespace: str, name: str) -> dict[str, Any]:
        return self.scale_of(info, self.record_object(info, self.get(info, namespace, name)))

    async def update_scale(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        scale: Any,
        options: RequestOptions,
        *,
        patch_type: str | None = None,
    ) -> dict[str, Any]:
        """PUT or PATCH ``/scale``: only ``spec.replicas`` moves."""
        record = self.get(info, namespace, name)
        obj = self.record_object(info, record)
        if patch_type is not None:
            self._check_patch_type(self.registry.strategy(info), patch_type)
            current = self.scale_of(info, obj)
            if patch_type == JSON_PATCH:
                scale = apply_json_patch(current, scale)
            elif patch_type == MERGE_PATCH:
                scale = apply_merge_patch(current, scale)
            else:
                # Scale has no merge keys: strategic merge of a plain object is a merge patch.
                scale = apply_merge_patch(current, scale)
        if not isinstance(scale, dict):
            raise BadRequest("the body of the request was in an unknown format - expected a Scale object")
        kind = scale.get("kind")
        if kind not in (None, "", "Scale"):
            raise BadRequest(f"the kind in the data ({kind}) does not match the expected kind (Scale)")
        smeta = scale.get("metadata") or {}
        if smeta.get("name") not in (None, "", name):
            raise BadRequest(
                f"the name of the object ({smeta['name']}) does not match the name on the URL ({name})"
            )
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise Invalid.for_fields(
                "Scale",
                "autoscaling",
                name,
                [FieldError.invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
            )
        if smeta.get("resourceVersion") and smeta["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise Conflict.stale(info.plural, info.group, name)
        paths = self.registry.strategy(info).scale_paths()
        parts = paths[0].split(".") if paths is not None else ["spec", "replicas"]
        target = obj
        for part in parts[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        target[parts[-1]] = replicas
        result = await self._commit_update(
            info, self.registry.strategy(info), record, obj, options, "", tracked_as="scale"
        )
        return self.scale_of(info, result)

    # ------------------------------------------------------------ delete

    async def delete(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        delete_options: Mapping[str, Any],
        options: RequestOptions,
    ) -> tuple[dict[str, Any], bool]:
        """DELETE.  Returns ``(object, gone)``: ``gone`` is false while finalizers hold the object.

        ``delete_options`` is a DeleteOptions body (preconditions, propagationPolicy,
        gracePeriodSeconds).  The propagation policy sets the garbage collector's ``orphan`` or
        ``foregroundDeletion`` finalizer; a DELETE of an object already being deleted may replace that
        policy, and completes the deletion when no finalizer is left.  A namespace whose content is
        still being removed refuses another DELETE with 409, as upstream does.
        """
        record = self.get(info, namespace, name)
        obj = self.record_object(info, record)
        meta = obj["metadata"]
        _check_delete_options(delete_options)
        preconditions = delete_options.get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
            raise Conflict.for_resource(
                info.plural,
                info.group,
                name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object meta: "
                f"{meta.get('uid')}",
            )
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != meta.get(
            "resourceVersion"
        ):
            raise Conflict.for_resource(
                info.plural,
                info.group,
                name,
                "Precondition failed: ResourceVersion in precondition: "
                f"{preconditions['resourceVersion']}, ResourceVersion in object meta: {meta.get('resourceVersion')}",
            )
        # The garbage collector's policy finalizers (orphan / foregroundDeletion) follow the request's
        # propagationPolicy; the collector (a built-in controller) acts on them.
        # Imported here: the collector's module builds on this one (RequestOptions).
        from kubevisor.server._gc import deletion_finalizers

        if not meta.get("deletionTimestamp"):
            self.registry.strategy(info).prepare_delete(obj, info)
        current = [f for f in meta.get("finalizers") or () if isinstance(f, str)]
        finalizers = deletion_finalizers(current, delete_options)
        policy_changed = set(finalizers) != set(current)
        if meta.get("deletionTimestamp"):
            if _namespace_finalizers(info, obj):
                raise Conflict.for_resource(
                    info.plural,
                    info.group,
                    name,
                    "The system is ensuring all content is removed from this namespace.  Upon completion, "
                    "this namespace will automatically be purged by the system.",
                )
            # Deletion already pending: finalizers decide when it goes; a new policy may replace the old.
            if not policy_changed:
                return obj, False
            if finalizers:
                meta["finalizers"] = finalizers
            else:
                # The new policy released the last finalizer: nothing holds the object any more.
                meta.pop("finalizers", None)
                return self._finish_delete(info, record, obj, options), True
            if not options.dry_run:
                try:
                    self.storage.update(resource_key(info), self._stored(info, obj), expected_rv=record.rv)
                except StaleVersionError:
                    raise Conflict.stale(info.plural, info.group, name) from None
            return obj, False
        await self._admit("DELETE", info, obj, obj, "", options)
        if policy_changed:
            if finalizers:
                meta["finalizers"] = finalizers
            else:
                meta.pop("finalizers", None)
        namespace_finalizers = _namespace_finalizers(info, obj)
        if meta.get("finalizers") or namespace_finalizers:
            meta["deletionTimestamp"] = format_time(self.clock())
            meta["deletionGracePeriodSeconds"] = 0
            if meta.get("generation"):
                meta["generation"] += 1
            if info.group == "" and info.kind == "Namespace":
                obj["status"] = {**(obj.get("status") or {}), "phase": "Terminating"}
            if not options.dry_run:
                try:
                    self.storage.update(resource_key(info), self._stored(info, obj), expected_rv=record.rv)
                except StaleVersionError:
                    raise Conflict.stale(info.plural, info.group, name) from None
            return obj, False
        return self._finish_delete(info, record, obj, options), True

    async def delete_collection(
        self,
        info: ResourceInfo,
        namespace: str | None,
        delete_options: Mapping[str, Any],
        options: RequestOptions,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ListResult:
        """DELETE on a collection: deletes every matching object; returns the list of them as they
        were after the delete (finalizer-held ones with their deletionTimestamp)."""
        _check_delete_options(delete_options)
        result = self.list(info, namespace, label_selector=label_selector, field_selector=field_selector)
        deleted: list[Record] = []
        for record in result.records:
            try:
                obj, _ = await self.delete(
                    info, record.namespace, record.name, {**delete_options, "preconditions": None}, options
                )
            except NotFound:
                continue
            key = resource_key(info)
            deleted.append(Record(key, record.namespace, record.name, record.rv, orjson.dumps(obj)))
        return ListResult(self.storage.resource_version, deleted)


def _same_instant(value: Any, old_meta: Mapping[str, Any]) -> bool:
    """Whether ``value`` is absent or names the same instant as the stored deletionTimestamp."""
    if value is None or value == old_meta["deletionTimestamp"]:
        return True
    try:
        return isinstance(value, str) and parse_time(value) == parse_time(old_meta["deletionTimestamp"])
    except ValueError:
        return False


def _namespace_finalizers(info: ResourceInfo, obj: Mapping[str, Any]) -> list[str]:
    if info.group == "" and info.kind == "Namespace":
        return list((obj.get("spec") or {}).get("finalizers") or [])
    return []


def _invalid_list_options(error: FieldError) -> Invalid:
    return Invalid.for_fields("ListOptions", "meta.k8s.io", "", [error])


def _check_delete_options(delete_options: Mapping[str, Any]) -> None:
    errors: list[FieldError] = []
    policy = delete_options.get("propagationPolicy")
    if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
        errors.append(
            FieldError.not_supported("propagationPolicy", policy, ["Foreground", "Background", "Orphan"])
        )
    grace = delete_options.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        errors.append(FieldError.invalid("gracePeriodSeconds", grace, "must be an integer"))
    if policy is not None and delete_options.get("orphanDependents") is not None:
        errors.append(
            FieldError.invalid(
                "propagationPolicy", policy, "orphanDependents and deletionPropagation cannot be both set"
            )
        )
    if errors:
        raise Invalid.for_fields("DeleteOptions", "meta.k8s.io", "", errors)
