"""Unknown-field detection for ``fieldValidation``, against upstream OpenAPI v2 definitions.

Upstream decodes a request body into Go structs; a JSON key with no matching struct field is an
"unknown field": rejected with ``fieldValidation=Strict``, reported as a warning with ``Warn`` (the
default) and silently dropped with ``Ignore``.  Either way it never reaches storage.  This module
reproduces that over the definitions: an object schema with ``properties`` knows its fields, one with
``additionalProperties`` is a map, and one with neither (``RawExtension``, ``JSONSchemaProps`` values
and the like) is free-form.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def _type_mismatch(value: Any, schema: Mapping[str, Any]) -> str | None:
    """The Go type ``value`` cannot be decoded into, or ``None`` when it fits."""
    kind = schema.get("type")
    if kind is None:
        if "properties" in schema or "additionalProperties" in schema:
            kind = "object"
        else:
            return None
    fmt = schema.get("format")
    if fmt == "int-or-string" or schema.get("x-kubernetes-int-or-string"):
        ok = isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
        return None if ok else "intstr.IntOrString"
    if kind == "object":
        return None if isinstance(value, dict) else "object"
    if kind == "array":
        return None if isinstance(value, list) else "array"
    if kind == "string":
        return None if isinstance(value, str) else "string"
    if kind == "boolean":
        return None if isinstance(value, bool) else "bool"
    if kind == "integer":
        return None if isinstance(value, int) and not isinstance(value, bool) else (fmt or "int64")
    if kind == "number":
        return None if isinstance(value, int | float) and not isinstance(value, bool) else "float64"
    return None


class SchemaIndex:
    """Walks objects against a set of OpenAPI v2 definitions (read-only, shared)."""

    def __init__(self, definitions: Mapping[str, Mapping[str, Any]]) -> None:
        self._definitions = definitions

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        # Definitions chain through $ref (and allOf with a single $ref in some generators).
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

    def unknown_fields(self, obj: Any, definition: str, *, prune: bool) -> list[str]:
        """The paths of unknown fields in ``obj`` (``spec.template.spec.containers[0].foo``), in
        document order.  With ``prune``, they are also removed from ``obj`` in place."""
        return self.check(obj, definition, prune=prune)[0]

    def check(self, obj: Any, definition: str, *, prune: bool) -> tuple[list[str], list[str]]:
        """``(unknown field paths, type errors)``.  A type error is a value Go's decoder could not
        unmarshal (an array where an object belongs, a string for an integer, ...), worded as Go's
        ``json: cannot unmarshal <json type> into Go struct field <Kind>.<path> of type <type>``."""
        schema = self._definitions.get(definition)
        if schema is None:
            return [], []
        found: list[str] = []
        errors: list[str] = []
        kind = definition.rsplit(".", 1)[-1]
        self._walk(obj, schema, "", found, prune, errors, kind)
        return found, errors

    def _walk(
        self,
        value: Any,
        schema: Mapping[str, Any],
        path: str,
        found: list[str],
        prune: bool,
        errors: list[str] | None = None,
        kind: str = "",
    ) -> None:
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.endswith(_LENIENT):
            return  # Quantity: a string or a bare number
        schema = self._resolve(schema)
        if not schema or schema.get("x-kubernetes-preserve-unknown-fields"):
            return
        if errors is not None and value is not None:
            expected = _type_mismatch(value, schema)
            if expected is not None:
                errors.append(
                    f"json: cannot unmarshal {_json_type(value)} into Go struct field {kind}.{path} of type {expected}"
                )
                return
        if isinstance(value, dict):
            properties = schema.get("properties")
            if isinstance(properties, Mapping):
                unknown: list[str] = []
                for key, item in value.items():
                    child = properties.get(key)
                    sub = f"{path}.{key}" if path else key
                    if child is None:
                        found.append(sub)
                        unknown.append(key)
                    elif item is not None:
                        self._walk(item, child, sub, found, prune, errors, kind)
                if prune:
                    for key in unknown:
                        del value[key]
                return
            additional = schema.get("additionalProperties")
            if isinstance(additional, Mapping):
                for key, item in value.items():
                    if item is not None:
                        self._walk(item, additional, f"{path}[{key}]", found, prune, errors, kind)
        elif isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, Mapping):
                for index, item in enumerate(value):
                    if item is not None:
                        self._walk(item, items, f"{path}[{index}]", found, prune, errors, kind)
