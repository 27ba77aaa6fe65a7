"""Unknown-field detection for ``fieldValidation``, against upstream OpenAPI v2 definitions.

Upstream decodes a request body into Go structs; a JSON key with no matching struct field is an
"unknown field": rejected with ``fieldValidation=Strict``, reported as a warning with ``Warn`` (the
default) and silently dropped with ``Ignore``.  Either way it never reaches storage.  This module
reproduces that over the definitions: an object schema with ``properties`` knows its fields, one with
``additionalProperties`` is a map, and one with neither (``RawExtension``, ``JSONSchemaProps`` values
and the like) is free-form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SchemaIndex"]

_REF = "#/definitions/"
_LENIENT = ".Quantity"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


_NOT_INT = (bool,)
_ACCEPTS: dict[str, tuple[tuple[type, ...], tuple[type, ...]]] = {
    # JSON schema type -> (Python types a value may have, types it must not have: bool is an int)
    "object": ((dict,), ()),
    "array": ((list,), ()),
    "string": ((str,), ()),
    "boolean": ((bool,), ()),
    "integer": ((int,), _NOT_INT),
    "number": ((int, float), _NOT_INT),
}


class _Node:
    """One schema compiled for walking: what a value must be and where its members' schemas are.

    Children are compiled on first use, which keeps compilation proportional to what requests
    contain and lets recursive definitions (``JSONSchemaProps``) refer to themselves."""

    __slots__ = (
        "accept",
        "additional",
        "expected",
        "index",
        "items",
        "leaf",
        "properties",
        "raw_properties",
        "reject",
    )

    def __init__(self, index: SchemaIndex) -> None:
        self.index = index
        self.accept: tuple[type, ...] | None = None
        self.reject: tuple[type, ...] = ()
        self.expected = ""
        self.properties: dict[str, _Node | None] | None = None
        self.raw_properties: Mapping[str, Mapping[str, Any]] = {}
        self.additional: _Node | None = None
        self.items: _Node | None = None
        self.leaf = True
        """Nothing to walk inside: only the value's own type is checked."""

    def build(self, schema: Mapping[str, Any]) -> None:
        """Compile ``schema`` into this node (registered first, so that a schema may contain
        itself)."""
        index = self.index
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.endswith(_LENIENT):
            return  # Quantity: a string or a bare number; not walked

        schema = index.resolve(schema)
        if not schema or schema.get("x-kubernetes-preserve-unknown-fields"):
            return  # free-form: not walked
        kind = schema.get("type")
        if kind is None and ("properties" in schema or "additionalProperties" in schema):
            kind = "object"
        fmt = schema.get("format")
        if fmt == "int-or-string" or schema.get("x-kubernetes-int-or-string"):
            self.accept, self.reject, self.expected = (str, int), _NOT_INT, "intstr.IntOrString"
        elif isinstance(kind, str) and kind in _ACCEPTS:
            self.accept, self.reject = _ACCEPTS[kind]
            self.expected = {"boolean": "bool", "integer": fmt or "int64", "number": "float64"}.get(
                kind, kind
            )
        properties = schema.get("properties")
        if isinstance(properties, Mapping):
            self.properties = dict.fromkeys(properties)
            self.raw_properties = properties
        additional = schema.get("additionalProperties")
        if self.properties is None and isinstance(additional, Mapping):
            self.additional = index.compile(additional)
        items = schema.get("items")
        if isinstance(items, Mapping):
            self.items = index.compile(items)
        self.leaf = self.properties is None and self.additional is None and self.items is None


class SchemaIndex:
    """Walks objects against a set of OpenAPI v2 definitions (read-only, shared)."""

    def __init__(self, definitions: Mapping[str, Mapping[str, Any]]) -> None:
        self._definitions = definitions
        self._compiled: dict[int, _Node] = {}

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """``schema`` with its ``$ref`` chain (and single-``$ref`` ``allOf``) followed; ``{}`` for a
        reference that leads nowhere."""
        seen = 0
        while True:
            ref = schema.get("$ref")
            if ref is None:
                all_of = schema.get("allOf")
                if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
                    schema = all_of[0]
                    continue
                return schema
            if not isinstance(ref, str) or not ref.startswith(_REF) or seen > 32:
                return {}
            schema = self._definitions.get(ref[len(_REF) :], {})
            seen += 1

    def compile(self, schema: Mapping[str, Any]) -> _Node:
        """The compiled form of ``schema`` (a mapping owned by the definitions, hence its identity is
        stable for the index's lifetime), compiled once."""
        node = self._compiled.get(id(schema))
        if node is None:
            node = self._compiled[id(schema)] = _Node(self)
            node.build(schema)
        return node

    def unknown_fields(self, obj: Any, definition: str, *, prune: bool) -> list[str]:
        """The paths of unknown fields in ``obj`` (``spec.template.spec.containers[0].foo``), in
        document order.  With ``prune``, they are also removed from ``obj`` in place."""
        return self.check(obj, definition, prune=prune)[0]

    def check(self, obj: Any, definition: str, *, prune: bool) -> tuple[list[str], list[str]]:
        """``(unknown field paths, type errors)``.  A type error is a value Go's decoder could not
        unmarshal (an array where an object belongs, a string for an integer, ...), worded as Go's
        ``json: cannot unmarshal <json type> into Go struct field <Kind>.<path> of type <type>``."""
        schema = self._definitions.get(definition)
        if schema is None or obj is None:
            return [], []
        walk = _Walk(prune, definition.rsplit(".", 1)[-1])
        walk.value(obj, self.compile(schema))
        return walk.found, walk.errors


class _Walk:
    """One walk of one object.  The path is a stack of raw segments (a property name, a map key as a
    one-tuple, an array index), formatted only for the rare field that is reported."""

    __slots__ = ("errors", "found", "kind", "path", "prune")

    def __init__(self, prune: bool, kind: str) -> None:
        self.prune = prune
        self.kind = kind
        self.found: list[str] = []
        self.errors: list[str] = []
        self.path: list[str | tuple[str] | int] = []

    def format(self) -> str:
        parts: list[str] = []
        for segment in self.path:
            if isinstance(segment, str):
                parts.append(f".{segment}" if parts else segment)
            elif isinstance(segment, int):
                parts.append(f"[{segment}]")
            else:
                parts.append(f"[{segment[0]}]")
        return "".join(parts)

    def mismatch(self, value: Any, node: _Node) -> None:
        self.errors.append(
            f"json: cannot unmarshal {_json_type(value)} into Go struct field "
            f"{self.kind}.{self.format()} of type {node.expected}"
        )

    def value(self, value: Any, node: _Node) -> None:
        """Check ``value`` against ``node`` and walk its members.  Members whose schema is a leaf
        (most of them: strings, numbers, booleans) are checked inline, without a call each."""
        accept = node.accept
        if accept is not None and (not isinstance(value, accept) or isinstance(value, node.reject)):
            self.mismatch(value, node)
            return
        path = self.path
        if isinstance(value, dict):
            properties = node.properties
            if properties is not None:
                unknown: list[str] = []
                for key, item in value.items():
                    if key not in properties:
                        path.append(key)
                        self.found.append(self.format())
                        path.pop()
                        unknown.append(key)
                        continue
                    if item is None:
                        continue
                    child = properties[key]
                    if child is None:
                        child = properties[key] = node.index.compile(node.raw_properties[key])
                    if child.leaf:
                        accept = child.accept
                        if accept is None or (
                            isinstance(item, accept) and not isinstance(item, child.reject)
                        ):
                            continue
                    path.append(key)
                    self.value(item, child)
                    path.pop()
                if unknown and self.prune:
                    for key in unknown:
                        del value[key]
                return
            self.members(value.items(), node.additional, True)
        elif isinstance(value, list):
            self.members(enumerate(value), node.items, False)

    def members(self, pairs: Iterable[tuple[Any, Any]], node: _Node | None, keyed: bool) -> None:
        """Walk the values of a map (``keyed``) or an array against their one schema."""
        if node is None:
            return
        accept, reject, leaf, path = node.accept, node.reject, node.leaf, self.path
        for key, item in pairs:
            if item is None:
                continue
            if leaf and (accept is None or (isinstance(item, accept) and not isinstance(item, reject))):
                continue
            path.append((key,) if keyed else key)
            self.value(item, node)
            path.pop()
