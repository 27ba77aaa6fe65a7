"""OpenAPI documents (``/openapi/v2``, ``/openapi/v3``, ``/openapi/v3/<api|apis/group>/<version>``).

Pure functions from the served resources and the OpenAPI v2 definitions (the built-in catalogue's
:func:`~kubevisor.api._builtins.builtin_definitions`) to the documents kubectl reads:

* ``kubectl apply`` (default ``--validate=strict``) looks, in the group-version's v3 document, for
  a PATCH operation whose ``x-kubernetes-group-version-kind`` is the object's kind and whose
  parameters include ``fieldValidation``; for custom resources it checks Namespace's in ``api/v1``;
* ``kubectl explain`` finds the schema carrying the kind in ``x-kubernetes-group-version-kind`` in
  ``components.schemas`` (v3) or ``definitions`` (v2) and follows its references;
* client-side apply reads patch strategies and merge keys from the same schemas.

Every resource gets upstream's paths and operations (``x-kubernetes-action``, the GVK, the query
parameters), restricted to its verbs and subresources; the deprecated ``/watch/`` paths are left
out.  A resource whose ``ResourceInfo.schema`` is an inline schema (a custom resource) is published
as ``<reversed group>.<version>.<Kind>`` (``com.example.v1.Todo``) plus a ``...List`` schema.

Documents are built afresh on each call and share (read-only) schema objects with the definitions
and with each other: serialise them, do not modify them.  The v3 index names each document with
the :func:`document_hash` of its content, so clients may cache by URL.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubevisor.api import KUBERNETES_VERSION, ResourceInfo, builtin_definitions, join_api_version

__all__ = [
    "document_hash",
    "group_version_key",
    "openapi_v2",
    "openapi_v3_document",
    "openapi_v3_index",
]

Schema = dict[str, Any]

_V2_PREFIX = "#/definitions/"
_V3_PREFIX = "#/components/schemas/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_OBJECT_META = _META + "ObjectMeta"
_LIST_META = _META + "ListMeta"
_STATUS = _META + "Status"
_DELETE_OPTIONS = _META + "DeleteOptions"
_PATCH = _META + "Patch"
_WATCH_EVENT = _META + "WatchEvent"
_SCALE = "io.k8s.api.autoscaling.v1.Scale"
_COMMON = (_STATUS, _DELETE_OPTIONS, _PATCH, _WATCH_EVENT, _LIST_META, _OBJECT_META)

_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
_CUSTOM_PATCH_TYPES = tuple(t for t in _PATCH_TYPES if t != "application/strategic-merge-patch+json")

_SCHEMA_KEYWORDS = ("items", "additionalProperties", "not")
_SCHEMA_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf")
_SCHEMA_MAP_KEYWORDS = ("properties", "patternProperties")


# -- parameters -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Param:
    name: str
    type: str
    description: str
    location: str = "query"


_PARAMS = {
    p.name: p
    for p in (
        _Param("name", "string", "name of the resource", "path"),
        _Param("namespace", "string", "object name and auth scope, such as for teams and projects", "path"),
        _Param("pretty", "string", "If 'true', then the output is pretty printed."),
        _Param(
            "allowWatchBookmarks",
            "boolean",
            'allowWatchBookmarks requests watch events with type "BOOKMARK".',
        ),
        _Param(
            "continue",
            "string",
            "The continue option should be set when retrieving more results from the server.",
        ),
        _Param(
            "fieldSelector", "string", "A selector to restrict the list of returned objects by their fields."
        ),
        _Param(
            "labelSelector", "string", "A selector to restrict the list of returned objects by their labels."
        ),
        _Param("limit", "integer", "limit is a maximum number of responses to return for a list call."),
        _Param(
            "resourceVersion",
            "string",
            "resourceVersion sets a constraint on what resource versions a request may be served from.",
        ),
        _Param(
            "resourceVersionMatch",
            "string",
            "resourceVersionMatch determines how resourceVersion is applied to list calls.",
        ),
        _Param(
            "sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with `watch=true`."
        ),
        _Param("timeoutSeconds", "integer", "Timeout for the list/watch call."),
        _Param(
            "watch", "boolean", "Watch for changes to the described resources and return them as a stream."
        ),
        _Param(
            "dryRun",
            "string",
            "When present, indicates that modifications should not be persisted. Valid value: All.",
        ),
        _Param(
            "fieldManager",
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        _Param(
            "fieldValidation",
            "string",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown "
            "or duplicate fields. Valid values are: Ignore, Warn, Strict (the default).",
        ),
        _Param(
            "force",
            "boolean",
            'Force is going to "force" Apply requests; it must be unset for non-apply patch requests.',
        ),
        _Param(
            "gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted."
        ),
        _Param(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "boolean",
            "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.",
        ),
        _Param("orphanDependents", "boolean", "Deprecated: please use the PropagationPolicy."),
        _Param(
            "propagationPolicy",
            "string",
            "Whether and how garbage collection will be performed: Orphan, Background or Foreground.",
        ),
    )
}
_LIST_QUERY = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_WRITE_QUERY = ("dryRun", "fieldManager", "fieldValidation")
_PATCH_QUERY = ("dryRun", "fieldManager", "fieldValidation", "force")
_DELETE_QUERY = (
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
)
_READ_QUERY: tuple[str, ...] = ()


# -- the model: kinds with their schemas, and operations ----------------------------------------------


@dataclass(frozen=True)
class _Kind:
    """One resource with the names of its kind's and list kind's schemas."""

    info: ResourceInfo
    schema: str
    list_schema: str
    custom: bool  # published from an inline schema: no strategic merge patch


@dataclass(frozen=True)
class _Operation:
    method: str
    action: str
    operation_id: str
    description: str
    gvk: Mapping[str, str]
    query: tuple[str, ...]
    response: str
    codes: tuple[str, ...] = ("200",)
    body: str | None = None
    body_types: tuple[str, ...] = ("application/json",)


@dataclass
class _Path:
    params: tuple[str, ...]
    operations: list[_Operation] = field(default_factory=list)


class _Catalogue:
    """The schemas available to a set of resources: the given definitions plus the ones
    synthesised for inline (custom resource) schemas."""

    def __init__(self, resources: Iterable[ResourceInfo], definitions: Mapping[str, Schema]) -> None:
        self.definitions = definitions
        self.extra: dict[str, Schema] = {}
        by_gvk: dict[tuple[str, str, str], str] = {}
        for name, schema in definitions.items():
            for gvk in schema.get("x-kubernetes-group-version-kind") or ():
                by_gvk.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
        self.kinds: list[_Kind] = []
        for info in resources:
            self.kinds.append(self._kind(info, by_gvk))

    def _kind(self, info: ResourceInfo, by_gvk: Mapping[tuple[str, str, str], str]) -> _Kind:
        schema = info.schema
        ref = schema.get("$ref") if isinstance(schema, Mapping) else None
        name = ref.rpartition("/")[2] if isinstance(ref, str) else None
        if name is None and schema is None:
            name = by_gvk.get((info.group, info.version, info.kind))
        if name is not None and name in self.definitions:
            list_name = by_gvk.get((info.group, info.version, info.list_kind_name))
            if list_name is None:
                list_name = self._add_list(info, name)
            return _Kind(info, name, list_name, custom=False)
        name = _custom_schema_name(info.group, info.version, info.kind)
        self.extra[name] = _custom_kind_schema(
            info, schema if isinstance(schema, Mapping) and ref is None else None
        )
        return _Kind(info, name, self._add_list(info, name), custom=True)

    def _add_list(self, info: ResourceInfo, item_name: str) -> str:
        name = _custom_schema_name(info.group, info.version, info.list_kind_name)
        self.extra[name] = {
            "description": f"{info.list_kind_name} is a list of {info.kind}",
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": _API_VERSION_PROPERTY,
                "items": {
                    "description": f"List of {info.plural}.",
                    "type": "array",
                    "items": {"$ref": _V2_PREFIX + item_name},
                },
                "kind": _KIND_PROPERTY,
                "metadata": {"$ref": _V2_PREFIX + _LIST_META, "description": "Standard list metadata."},
            },
            "x-kubernetes-group-version-kind": [_gvk(info.group, info.version, info.list_kind_name)],
        }
        return name

    def get(self, name: str) -> Schema | None:
        schema = self.extra.get(name)
        return schema if schema is not None else self.definitions.get(name)

    def closure(self, roots: Iterable[str]) -> list[str]:
        """The named schemas and everything they reference, sorted by name."""
        seen: set[str] = set()
        pending = list(roots)
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            schema = self.get(name)
            if schema is None:
                continue
            seen.add(name)
            pending.extend(_references(schema))
        return sorted(seen)


_API_VERSION_PROPERTY: Schema = {
    "description": "APIVersion defines the versioned schema of this representation of an object.",
    "type": "string",
}
_KIND_PROPERTY: Schema = {
    "description": "Kind is a string value representing the REST resource this object represents.",
    "type": "string",
}


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


def _custom_schema_name(group: str, version: str, kind: str) -> str:
    """Upstream's name for a custom resource's schema: ``com.example.v1.Todo``."""
    reversed_group = ".".join(reversed(group.split("."))) if group else "core"
    return f"{reversed_group}.{version}.{kind}"


def _custom_kind_schema(info: ResourceInfo, schema: Mapping[str, Any] | None) -> Schema:
    """An inline schema published as a definition: the GVK added, and ``apiVersion``, ``kind`` and
    ``metadata`` declared when the schema leaves them out (as upstream does for CRDs)."""
    published: Schema = (
        dict(schema) if schema else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    )
    properties = dict(published.get("properties") or {})
    properties.setdefault("apiVersion", _API_VERSION_PROPERTY)
    properties.setdefault("kind", _KIND_PROPERTY)
    if "metadata" not in properties or properties["metadata"] in ({}, {"type": "object"}):
        properties["metadata"] = {
            "$ref": _V2_PREFIX + _OBJECT_META,
            "description": "Standard object's metadata.",
        }
    published["properties"] = properties
    published.setdefault("type", "object")
    published["x-kubernetes-group-version-kind"] = [_gvk(info.group, info.version, info.kind)]
    return published


def _references(schema: Any) -> Iterable[str]:
    if isinstance(schema, Mapping):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            yield ref.rpartition("/")[2]
        for value in schema.values():
            yield from _references(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _references(value)


# -- paths and operations ----------------------------------------------------------------------------


def _camel_group_version(group: str, version: str) -> str:
    """``apps``/``v1`` → ``AppsV1``; ``rbac.authorization.k8s.io`` → ``RbacAuthorization``; core → ``Core``."""
    if not group:
        words = ["core"]
    else:
        words = [w for w in re.split(r"[.\-]", group.removesuffix(".k8s.io")) if w]
    return "".join(w[:1].upper() + w[1:] for w in words) + version[:1].upper() + version[1:]


def _paths(kind: _Kind) -> dict[str, _Path]:
    info = kind.info
    prefix = "/api/" + info.version if not info.group else f"/apis/{info.group}/{info.version}"
    gv = _camel_group_version(info.group, info.version)
    scope = "Namespaced" if info.namespaced else ""
    gvk = _gvk(info.group, info.version, info.kind)
    verbs = set(info.verbs)
    collection = (
        f"{prefix}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{prefix}/{info.plural}"
    )
    item = collection + "/{name}"
    scope_params: tuple[str, ...] = ("namespace",) if info.namespaced else ()
    patch_types = _CUSTOM_PATCH_TYPES if kind.custom else _PATCH_TYPES
    paths: dict[str, _Path] = {}

    ops = []
    if "list" in verbs:
        ops.append(
            _Operation(
                "get",
                "list",
                f"list{gv}{scope}{info.kind}",
                f"list or watch objects of kind {info.kind}",
                gvk,
                _LIST_QUERY,
                kind.list_schema,
            )
        )
    if "create" in verbs:
        ops.append(
            _Operation(
                "post",
                "post",
                f"create{gv}{scope}{info.kind}",
                f"create a {info.kind}",
                gvk,
                _WRITE_QUERY,
                kind.schema,
                ("200", "201", "202"),
                kind.schema,
            )
        )
    if "deletecollection" in verbs:
        ops.append(
            _Operation(
                "delete",
                "deletecollection",
                f"delete{gv}Collection{scope}{info.kind}",
                f"delete collection of {info.kind}",
                gvk,
                (*_DELETE_QUERY, *_LIST_QUERY),
                _STATUS,
                body=_DELETE_OPTIONS,
            )
        )
    if ops:
        paths[collection] = _Path((*scope_params, "pretty"), ops)

    ops = []
    if "get" in verbs:
        ops.append(
            _Operation(
                "get",
                "get",
                f"read{gv}{scope}{info.kind}",
                f"read the specified {info.kind}",
                gvk,
                _READ_QUERY,
                kind.schema,
            )
        )
    if "update" in verbs:
        ops.append(
            _Operation(
                "put",
                "put",
                f"replace{gv}{scope}{info.kind}",
                f"replace the specified {info.kind}",
                gvk,
                _WRITE_QUERY,
                kind.schema,
                ("200", "201"),
                kind.schema,
            )
        )
    if "delete" in verbs:
        ops.append(
            _Operation(
                "delete",
                "delete",
                f"delete{gv}{scope}{info.kind}",
                f"delete a {info.kind}",
                gvk,
                _DELETE_QUERY,
                _STATUS,
                ("200", "202"),
                _DELETE_OPTIONS,
            )
        )
    if "patch" in verbs:
        ops.append(
            _Operation(
                "patch",
                "patch",
                f"patch{gv}{scope}{info.kind}",
                f"partially update the specified {info.kind}",
                gvk,
                _PATCH_QUERY,
                kind.schema,
                ("200", "201"),
                _PATCH,
                patch_types,
            )
        )
    if ops:
        paths[item] = _Path(("name", *scope_params, "pretty"), ops)

    if info.namespaced and "list" in verbs:
        paths[f"{prefix}/{info.plural}"] = _Path(
            ("pretty",),
            [
                _Operation(
                    "get",
                    "list",
                    f"list{gv}{info.kind}ForAllNamespaces",
                    f"list or watch objects of kind {info.kind}",
                    gvk,
                    _LIST_QUERY,
                    kind.list_schema,
                )
            ],
        )

    for sub in info.subresources:
        suffix = sub[:1].upper() + sub[1:]
        sub_schema, sub_gvk = (
            (_SCALE, _gvk("autoscaling", "v1", "Scale")) if sub == "scale" else (kind.schema, gvk)
        )
        what = f"{sub} of the specified {info.kind}"
        ops = []
        if sub != "finalize":
            ops.append(
                _Operation(
                    "get",
                    "get",
                    f"read{gv}{scope}{info.kind}{suffix}",
                    f"read {what}",
                    sub_gvk,
                    _READ_QUERY,
                    sub_schema,
                )
            )
        ops.append(
            _Operation(
                "put",
                "put",
                f"replace{gv}{scope}{info.kind}{suffix}",
                f"replace {what}",
                sub_gvk,
                _WRITE_QUERY,
                sub_schema,
                ("200", "201"),
                sub_schema,
            )
        )
        if sub != "finalize":
            ops.append(
                _Operation(
                    "patch",
                    "patch",
                    f"patch{gv}{scope}{info.kind}{suffix}",
                    f"partially update {what}",
                    sub_gvk,
                    _PATCH_QUERY,
                    sub_schema,
                    ("200", "201"),
                    _PATCH,
                    patch_types,
                )
            )
        paths[f"{item}/{sub}"] = _Path(("name", *scope_params, "pretty"), ops)
    return paths


def _tag(group: str, version: str) -> str:
    camel = _camel_group_version(group, "")
    return f"{camel[:1].lower()}{camel[1:]}_{version}"


# -- rendering ---------------------------------------------------------------------------------------


def _v3_parameter(name: str) -> Schema:
    param = _PARAMS[name]
    rendered: Schema = {"name": name, "in": param.location, "description": param.description}
    if param.location == "path":
        rendered["required"] = True
    rendered["schema"] = {"type": param.type, "uniqueItems": True}
    return rendered


def _v2_parameter(name: str) -> Schema:
    param = _PARAMS[name]
    rendered: Schema = {
        "name": name,
        "in": param.location,
        "description": param.description,
        "type": param.type,
    }
    if param.location == "path":
        rendered["required"] = True
    rendered["uniqueItems"] = True
    return rendered


_RESPONSE_TEXT = {"200": "OK", "201": "Created", "202": "Accepted"}


def _v3_operation(op: _Operation, tag: str) -> Schema:
    rendered: Schema = {
        "tags": [tag],
        "description": op.description,
        "operationId": op.operation_id,
        "parameters": [_v3_parameter(name) for name in op.query],
    }
    if op.body is not None:
        rendered["requestBody"] = {
            "content": {media: {"schema": {"$ref": _V3_PREFIX + op.body}} for media in op.body_types},
            "required": op.method != "delete",
        }
    responses: Schema = {
        code: {
            "description": _RESPONSE_TEXT[code],
            "content": {
                media: {"schema": {"$ref": _V3_PREFIX + op.response}}
                for media in ("application/json", "application/yaml")
            },
        }
        for code in op.codes
    }
    responses["401"] = {"description": "Unauthorized"}
    rendered["responses"] = responses
    rendered["x-kubernetes-action"] = op.action
    rendered["x-kubernetes-group-version-kind"] = dict(op.gvk)
    return rendered


def _v2_operation(op: _Operation, tag: str) -> Schema:
    parameters = [_v2_parameter(name) for name in op.query]
    if op.body is not None:
        parameters.insert(
            0,
            {
                "name": "body",
                "in": "body",
                "required": op.method != "delete",
                "schema": {"$ref": _V2_PREFIX + op.body},
            },
        )
    responses: Schema = {
        code: {"description": _RESPONSE_TEXT[code], "schema": {"$ref": _V2_PREFIX + op.response}}
        for code in op.codes
    }
    responses["401"] = {"description": "Unauthorized"}
    return {
        "description": op.description,
        "consumes": list(op.body_types) if op.body is not None else ["*/*"],
        "produces": ["application/json", "application/yaml"],
        "schemes": ["https"],
        "tags": [tag],
        "operationId": op.operation_id,
        "parameters": parameters,
        "responses": responses,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": dict(op.gvk),
    }


def _to_v3(schema: Any) -> Any:
    """An OpenAPI v2 schema in OpenAPI v3 form: references into ``#/components/schemas``, and a
    reference with sibling keywords wrapped in ``allOf`` (siblings of ``$ref`` are ignored in v3)."""
    if not isinstance(schema, Mapping):
        return schema
    out: Schema = {}
    for key, value in schema.items():
        if key == "$ref":
            ref = {"$ref": _V3_PREFIX + str(value).rpartition("/")[2]}
            if len(schema) == 1:
                return ref
            out["allOf"] = [ref]
        elif key in _SCHEMA_KEYWORDS:
            out[key] = _to_v3(value)
        elif key in _SCHEMA_LIST_KEYWORDS:
            out[key] = [_to_v3(item) for item in value]
        elif key in _SCHEMA_MAP_KEYWORDS:
            out[key] = {name: _to_v3(sub) for name, sub in value.items()}
        else:
            out[key] = value
    return out


# Converting the built-in definitions once per process keeps index hashing (which builds every
# document) cheap; the cache only ever holds the shared, immutable built-in catalogue.
_BUILTIN_V3: dict[str, Any] = {}


def _v3_schema(catalogue: _Catalogue, name: str) -> Any:
    if name in catalogue.extra:
        return _to_v3(catalogue.extra[name])
    if catalogue.definitions is builtin_definitions():
        cached = _BUILTIN_V3.get(name)
        if cached is None:
            cached = _BUILTIN_V3[name] = _to_v3(catalogue.definitions[name])
        return cached
    return _to_v3(catalogue.definitions[name])


def _document_roots(kinds: Iterable[_Kind]) -> list[str]:
    roots = list(_COMMON)
    for kind in kinds:
        roots += [kind.schema, kind.list_schema]
        if kind.info.has_subresource("scale"):
            roots.append(_SCALE)
    return roots


def _info(title: str) -> Schema:
    return {"title": title, "version": f"v{KUBERNETES_VERSION}"}


# -- public API --------------------------------------------------------------------------------------


def openapi_v3_document(
    group: str, version: str, resources: Iterable[ResourceInfo], definitions: Mapping[str, Schema]
) -> dict[str, Any]:
    """``GET /openapi/v3/api/v1`` or ``/openapi/v3/apis/<group>/<version>``: an OpenAPI 3.0 document
    with the paths of the group-version's resources and the schemas they need (``definitions``
    is the v2 definitions mapping their ``$ref`` schemas resolve in)."""
    catalogue = _Catalogue([r for r in resources if r.group == group and r.version == version], definitions)
    tag = _tag(group, version)
    paths: Schema = {}
    for kind in catalogue.kinds:
        for path, item in _paths(kind).items():
            rendered: Schema = {op.method: _v3_operation(op, tag) for op in item.operations}
            rendered["parameters"] = [_v3_parameter(name) for name in item.params]
            paths[path] = rendered
    schemas = {
        name: _v3_schema(catalogue, name) for name in catalogue.closure(_document_roots(catalogue.kinds))
    }
    return {
        "openapi": "3.0.0",
        "info": _info("Kubernetes"),
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                }
            },
        },
        "security": [{"BearerToken": []}],
    }


def openapi_v3_index(
    resources: Iterable[ResourceInfo], definitions: Mapping[str, Schema] | None = None
) -> dict[str, Any]:
    """``GET /openapi/v3``: one entry per served group-version (``api/v1``, ``apis/apps/v1``),
    whose ``serverRelativeURL`` carries the :func:`document_hash` of the document that
    :func:`openapi_v3_document` builds from the same arguments (``definitions`` defaults to the
    built-in catalogue)."""
    resources = tuple(resources)
    definitions = builtin_definitions() if definitions is None else definitions
    group_versions = sorted({(r.group, r.version) for r in resources}, key=lambda gv: (gv[0] != "", gv))
    paths = {}
    for group, version in group_versions:
        key = group_version_key(group, version)
        digest = document_hash(openapi_v3_document(group, version, resources, definitions))
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}


def openapi_v2(resources: Iterable[ResourceInfo], definitions: Mapping[str, Schema]) -> dict[str, Any]:
    """``GET /openapi/v2``: one Swagger 2.0 document with every resource's paths and the
    definitions they need."""
    catalogue = _Catalogue(resources, definitions)
    paths: Schema = {}
    for kind in catalogue.kinds:
        tag = _tag(kind.info.group, kind.info.version)
        for path, item in _paths(kind).items():
            rendered: Schema = {op.method: _v2_operation(op, tag) for op in item.operations}
            rendered["parameters"] = [_v2_parameter(name) for name in item.params]
            paths[path] = rendered
    names = catalogue.closure(_document_roots(catalogue.kinds))
    return {
        "swagger": "2.0",
        "info": _info("Kubernetes"),
        "paths": dict(sorted(paths.items())),
        "definitions": {name: catalogue.get(name) for name in names},
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "type": "apiKey",
                "name": "authorization",
                "in": "header",
            }
        },
        "security": [{"BearerToken": []}],
    }


def document_hash(document: Mapping[str, Any]) -> str:
    """Upstream's content hash for OpenAPI documents: the upper-case hex SHA-512 of the
    document's canonical JSON (sorted keys), stable across processes."""
    return hashlib.sha512(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest().upper()


def group_version_key(group: str, version: str) -> str:
    """The index key (and URL tail) of a group-version's v3 document: ``api/v1``, ``apis/apps/v1``."""
    return f"api/{version}" if not group else f"apis/{join_api_version(group, version)}"
