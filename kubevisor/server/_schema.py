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
        schema = self._definitions.get(definition)
        if schema is None:
            return []
        found: list[str] = []
        self._walk(obj, schema, "", found, prune)
        return found

    def _walk(self, value: Any, schema: Mapping[str, Any], path: str, found: list[str], prune: bool) -> None:
        schema = self._resolve(schema)
        if not schema or schema.get("x-kubernetes-preserve-unknown-fields"):
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
                        self._walk(item, child, sub, found, prune)
                if prune:
                    for key in unknown:
                        del value[key]
                return
            additional = schema.get("additionalProperties")
            if isinstance(additional, Mapping):
                for key, item in value.items():
                    if item is not None:
                        self._walk(item, additional, f"{path}[{key}]", found, prune)
        elif isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, Mapping):
                for index, item in enumerate(value):
                    if item is not None:
                        self._walk(item, items, f"{path}[{index}]", found, prune)
