"""The type information server-side apply needs, compiled from OpenAPI schemas.

Server-side apply only needs to know, at each node of an object, how ownership is tracked: is it a
scalar, a struct or map whose fields are owned one by one (*granular*) or as a whole (*atomic*), or
a list that is atomic, a *set* (items identified by value) or a *map* (items identified by key
fields).  :class:`ApplyType` is that, compiled once from an OpenAPI v2 or v3 schema, the way
kube-openapi's ``schemaconv`` derives structured-merge-diff schemas:

* ``x-kubernetes-list-type`` ``atomic`` / ``set`` / ``map`` (with ``x-kubernetes-list-map-keys``)
  decides a list's kind.  Without it, a list whose ``x-kubernetes-patch-strategy`` includes
  ``merge`` is a map keyed by ``x-kubernetes-patch-merge-key`` (a set when there is no merge key),
  as in the upstream definitions of built-in kinds; every other list is atomic (so custom-resource
  lists are atomic unless their schema says otherwise, since CRD schemas cannot carry patch
  strategies).
* ``x-kubernetes-map-type: atomic`` makes a struct or map atomic; otherwise it is granular.
* Nodes without type information (no ``type``, or ``x-kubernetes-preserve-unknown-fields``) are
  *untyped*: maps granular, lists atomic, as upstream's deduced type.  ``x-kubernetes-int-or-string``
  is a scalar.  An object with neither ``properties`` nor ``additionalProperties`` is a granular map
  of untyped values.

Schemas may ``$ref`` into a definitions mapping (``#/definitions/<name>`` or
``#/components/schemas/<name>``); recursive definitions are fine.  Compiled types are immutable
after construction and may be shared between threads and resources.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "OBJECT_META_SCHEMA",
    "ApplyType",
    "TypeResolver",
    "untyped_resource_type",
]

SCALAR: Final = 0
MAP: Final = 1
LIST: Final = 2
UNTYPED: Final = 3

LIST_ATOMIC: Final = 0
LIST_SET: Final = 1
LIST_MAP: Final = 2

_META_DEFINITION: Final = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

# Defaults of map-list key fields that upstream's generated OpenAPI carries (``+default`` markers)
# but the published OpenAPI v2 definitions omit.  Key defaults decide the identity of list items
# (``k:{"containerPort":80,"protocol":"TCP"}`` for a port applied without a protocol).
_BUILTIN_KEY_DEFAULTS: Final[Mapping[str, Mapping[str, Any]]] = {
    "io.k8s.api.core.v1.ContainerPort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.ServicePort": {"protocol": "TCP"},
}

# Annotation-only keys that may sit beside a single-element allOf without changing its meaning.
_ANNOTATIONS: Final = frozenset({"description", "default", "example", "title", "nullable", "format"})


class ApplyType:
    """How server-side apply tracks ownership at one node of an object.

    ``kind`` is one of ``SCALAR``, ``MAP`` (structs and maps: ``fields`` are the declared fields,
    ``elem`` the type of undeclared ones or ``None`` when undeclared fields are not allowed),
    ``LIST`` (``elem`` the item type, ``list_type`` atomic/set/map, ``keys`` the map keys and
    ``key_defaults`` their defaults) or ``UNTYPED``.  ``atomic`` says the node is owned as a whole.
    """

    __slots__ = ("atomic", "elem", "fields", "key_defaults", "keys", "kind", "list_type", "name")

    def __init__(
        self,
        kind: int,
        *,
        fields: Mapping[str, ApplyType] | None = None,
        elem: ApplyType | None = None,
        atomic: bool = False,
        list_type: int = LIST_ATOMIC,
        keys: tuple[str, ...] = (),
        key_defaults: Mapping[str, Any] | None = None,
        name: str = "",
    ) -> None:
        self.kind = kind
        self.fields: Mapping[str, ApplyType] = fields if fields is not None else {}
        self.elem = elem
        self.atomic = atomic
        self.list_type = list_type
        self.keys = keys
        self.key_defaults: Mapping[str, Any] = key_defaults if key_defaults is not None else {}
        self.name = name

    def _become(self, other: ApplyType) -> None:
        for slot in ApplyType.__slots__:
            if slot != "name":
                setattr(self, slot, getattr(other, slot))

    def __repr__(self) -> str:
        kind = ("scalar", "map", "list", "untyped")[self.kind]
        detail = f" {self.name}" if self.name else ""
        if self.kind == LIST:
            detail += " " + ("atomic", "set", f"map{list(self.keys)}")[self.list_type]
        elif self.kind == MAP:
            detail += " atomic" if self.atomic else f" fields={sorted(self.fields)}"
        return f"<ApplyType {kind}{detail}>"


SCALAR_TYPE: Final = ApplyType(SCALAR)
UNTYPED_TYPE: Final = ApplyType(UNTYPED)
UNTYPED_TYPE.elem = UNTYPED_TYPE
UNTYPED_MAP: Final = ApplyType(MAP, elem=UNTYPED_TYPE)
"""The type an untyped node takes when its value is a map: granular, every key untyped."""


OBJECT_META_SCHEMA: Final[Mapping[str, Any]] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "selfLink": {"type": "string"},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "creationTimestamp": {"type": "string"},
        "deletionTimestamp": {"type": "string"},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "ownerReferences": {
            "type": "array",
            "items": {
                "type": "object",
                "x-kubernetes-map-type": "atomic",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "name": {"type": "string"},
                    "uid": {"type": "string"},
                    "controller": {"type": "boolean"},
                    "blockOwnerDeletion": {"type": "boolean"},
                },
            },
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["uid"],
        },
        "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "managedFields": {"type": "array", "x-kubernetes-list-type": "atomic"},
    },
}
"""ObjectMeta as upstream's definition types it for server-side apply, for schemas (custom
resources) that do not reference the upstream definition: labels and annotations granular maps,
ownerReferences a map list keyed by ``uid`` of atomic items, finalizers a set."""


def _ref_name(ref: str) -> str | None:
    for prefix in ("#/definitions/", "#/components/schemas/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return None


class TypeResolver:
    """Compiles OpenAPI schemas into :class:`ApplyType`, resolving ``$ref`` in ``definitions``.

    Compiled definitions are memoised, so one resolver shared by every resource of a server compiles
    each definition once.  A ``$ref`` to an unknown definition compiles to the untyped type.
    """

    def __init__(self, definitions: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._definitions: Mapping[str, Mapping[str, Any]] = definitions or {}
        self._compiled: dict[str, ApplyType] = {}
        self._object_meta: ApplyType | None = None

    def definition(self, name: str) -> ApplyType:
        """The compiled type of the named definition."""
        found = self._compiled.get(name)
        if found is not None:
            return found
        schema = self._definitions.get(name)
        if schema is None:
            return UNTYPED_TYPE
        # Register a placeholder before compiling the body, so recursive references resolve to it.
        placeholder = ApplyType(UNTYPED, name=name)
        self._compiled[name] = placeholder
        placeholder._become(self._compile(schema, name))
        return placeholder

    def compile(self, schema: Mapping[str, Any] | None) -> ApplyType:
        """The compiled type of any schema node (``None`` compiles to the untyped type)."""
        return self._compile(schema, "")

    def resource(self, schema: Mapping[str, Any] | None) -> ApplyType:
        """The compiled type of a whole resource: ``schema`` (a kind's definition reference or a CRD
        version's ``openAPIV3Schema``) with ``apiVersion`` and ``kind`` declared and ``metadata``
        typed as ObjectMeta when the schema does not type it (CRD schemas do not)."""
        root = self.compile(schema)
        if root.kind == UNTYPED:
            root = UNTYPED_MAP
        if root.kind != MAP:
            return root
        fields = dict(root.fields)
        meta = fields.get("metadata")
        if meta is None or meta.kind != MAP or "labels" not in meta.fields:
            fields["metadata"] = self._meta()
        fields.setdefault("apiVersion", SCALAR_TYPE)
        fields.setdefault("kind", SCALAR_TYPE)
        return ApplyType(MAP, fields=fields, elem=root.elem, atomic=root.atomic, name=root.name)

    def _meta(self) -> ApplyType:
        if self._object_meta is None:
            if _META_DEFINITION in self._definitions:
                self._object_meta = self.definition(_META_DEFINITION)
            else:
                self._object_meta = self.compile(OBJECT_META_SCHEMA)
        return self._object_meta

    def _deref(self, schema: Any) -> tuple[Mapping[str, Any], str]:
        """A schema with a top-level ``$ref`` followed (for reading item properties)."""
        if isinstance(schema, Mapping):
            ref = schema.get("$ref")
            if isinstance(ref, str):
                name = _ref_name(ref)
                if name is not None and name in self._definitions:
                    return self._definitions[name], name
            return schema, ""
        return {}, ""

    def _compile(self, schema: Any, name: str) -> ApplyType:
        if not isinstance(schema, Mapping):
            return UNTYPED_TYPE
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = _ref_name(ref)
            return self.definition(target) if target is not None else UNTYPED_TYPE
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and all_of:
            if len(all_of) == 1 and set(schema) - _ANNOTATIONS <= {"allOf"}:
                return self._compile(all_of[0], name)
            schema = self._flatten_all_of(schema, all_of)
        if schema.get("x-kubernetes-int-or-string") is True:
            return SCALAR_TYPE
        kind = schema.get("type")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        items = schema.get("items")
        if kind == "object" or (kind is None and (properties is not None or additional is not None)):
            # preserve-unknown-fields with declared properties: typed fields, untyped others.
            return self._compile_map(schema, properties, additional, preserve, name)
        if kind == "array" or (kind is None and items is not None):
            return self._compile_list(schema, items, name)
        if kind in ("string", "integer", "number", "boolean"):
            return SCALAR_TYPE
        # No type information (or only x-kubernetes-preserve-unknown-fields): deduce from the value.
        return UNTYPED_TYPE

    def _flatten_all_of(self, schema: Mapping[str, Any], all_of: list[Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        for part in all_of:
            resolved, _ = self._deref(part)
            properties.update(resolved.get("properties") or {})
            merged.update({k: v for k, v in resolved.items() if k != "properties"})
        properties.update(schema.get("properties") or {})
        merged.update({k: v for k, v in schema.items() if k not in ("allOf", "properties")})
        if properties:
            merged["properties"] = properties
        return merged

    def _compile_map(
        self,
        schema: Mapping[str, Any],
        properties: Any,
        additional: Any,
        preserve: bool,
        name: str,
    ) -> ApplyType:
        fields = {key: self._compile(value, "") for key, value in (properties or {}).items()}
        elem: ApplyType | None
        if isinstance(additional, Mapping):
            elem = self._compile(additional, "")
        elif additional is True or preserve or (not fields and additional is None):
            elem = UNTYPED_TYPE
        else:
            elem = None
        atomic = schema.get("x-kubernetes-map-type") == "atomic"
        return ApplyType(MAP, fields=fields, elem=elem, atomic=atomic, name=name)

    def _compile_list(self, schema: Mapping[str, Any], items: Any, name: str) -> ApplyType:
        elem = self._compile(items, "") if isinstance(items, Mapping) else UNTYPED_TYPE
        list_type = LIST_ATOMIC
        keys: tuple[str, ...] = ()
        declared = schema.get("x-kubernetes-list-type")
        if declared == "set":
            list_type = LIST_SET
        elif declared == "map":
            raw_keys = schema.get("x-kubernetes-list-map-keys") or ()
            keys = tuple(k for k in raw_keys if isinstance(k, str))
            list_type = LIST_MAP if keys else LIST_SET
        elif declared is None:
            strategy = schema.get("x-kubernetes-patch-strategy")
            if isinstance(strategy, str) and "merge" in strategy.split(","):
                merge_key = schema.get("x-kubernetes-patch-merge-key")
                if isinstance(merge_key, str) and merge_key:
                    list_type, keys = LIST_MAP, (merge_key,)
                else:
                    list_type = LIST_SET
        key_defaults: dict[str, Any] = {}
        if list_type == LIST_MAP:
            item_schema, item_name = self._deref(items)
            item_properties = item_schema.get("properties") or {}
            for key in keys:
                default = _BUILTIN_KEY_DEFAULTS.get(item_name, {}).get(key)
                if default is None:
                    property_schema, _ = self._deref(item_properties.get(key))
                    default = property_schema.get("default")
                if default is not None:
                    key_defaults[key] = default
        return ApplyType(
            LIST,
            elem=elem,
            atomic=list_type == LIST_ATOMIC,
            list_type=list_type,
            keys=keys,
            key_defaults=key_defaults,
            name=name,
        )


def untyped_resource_type() -> ApplyType:
    """The type of a resource with no schema: every map granular and every list atomic, except
    ``metadata``, which is typed as ObjectMeta."""
    return _UNTYPED_RESOURCE


_UNTYPED_RESOURCE: Final = TypeResolver().resource(None)
