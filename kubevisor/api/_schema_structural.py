"""Structural-schema rules for CustomResourceDefinition ``openAPIV3Schema`` documents.

Reproduces upstream's checks (``apiextensions-apiserver``: ``ValidateStructural`` and the CRD
schema validation) with upstream's messages, each naming the offending path, e.g.
``spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for
specified object fields``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kubevisor.api._errors import FieldError
from kubevisor.api._schema_formats import translate_pattern
from kubevisor.api._schema_nodes import MISSING, BuildContext, build_node

__all__ = ["DEFAULT_SCHEMA_PATH", "check_structural"]

DEFAULT_SCHEMA_PATH = "spec.validation.openAPIV3Schema"

_TYPES = ("array", "boolean", "integer", "number", "object", "string")
_SCALARS = ("boolean", "integer", "number", "string")
_ROOT, _FIELD, _ITEM = "root", "field", "item"
_LEVEL_MESSAGES = {
    _ROOT: "must not be empty at the root",
    _ITEM: "must not be empty for specified array items",
    _FIELD: "must not be empty for specified object fields",
}
_UNSUPPORTED = {
    "$ref": "$ref is not supported",
    "definitions": "definitions is not supported",
    "id": "id is not supported",
    "$schema": "$schema is not supported",
    "patternProperties": "patternProperties is not supported",
    "dependencies": "dependencies is not supported",
    "additionalItems": "additionalItems is not supported",
}
_NUMBER_KEYWORDS = ("maximum", "minimum", "multipleOf")
_COUNT_KEYWORDS = ("maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties")
_BOOL_KEYWORDS = (
    "exclusiveMaximum",
    "exclusiveMinimum",
    "nullable",
    "uniqueItems",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-embedded-resource",
)
_JUNCTORS = ("allOf", "anyOf", "oneOf")


def check_structural(schema: Any, path: str = DEFAULT_SCHEMA_PATH) -> list[FieldError]:
    """Every reason ``schema`` is not an acceptable structural schema, as upstream words them.

    Covers the structural invariants (a type on every specified node unless int-or-string or
    preserve-unknown-fields; value validations only under ``allOf``/``anyOf``/``oneOf``/``not``,
    and only for fields also specified outside them; ``metadata`` restricted to ``name`` and
    ``generateName`` at the root), the forbidden constructs (``$ref``, ``definitions``,
    ``additionalProperties: false``, ``uniqueItems: true``, ``properties`` with
    ``additionalProperties``, ...), the Kubernetes extensions' consistency (list types, map
    keys required or defaulted, embedded resources) and defaults (each must validate against its
    node and survive pruning unchanged).  CEL rules are checked by ``CompiledSchema.compile``.
    An empty list means the schema is structural.
    """
    errors: list[FieldError] = []
    if not isinstance(schema, Mapping):
        errors.append(FieldError.invalid(path, _describe(schema), "must be an object"))
        return errors
    _Walker(errors).structural(schema, path, _ROOT)
    if not errors:
        _check_defaults(schema, path, errors, in_metadata=False, root=True)
    return errors


def _describe(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else type(value).__name__


class _Walker:
    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors

    # -- shapes common to structural and nested nodes -------------------------------------------

    def keywords(self, s: Mapping[str, Any], path: str) -> None:
        add = self.errors.append
        for key, message in _UNSUPPORTED.items():
            if key in s:
                add(FieldError.forbidden(f"{path}.{key}", message))
        for key in _NUMBER_KEYWORDS:
            value = s.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                add(FieldError.invalid(f"{path}.{key}", _describe(value), "must be a number"))
        multiple = s.get("multipleOf")
        if isinstance(multiple, int | float) and not isinstance(multiple, bool) and multiple <= 0:
            add(FieldError.invalid(f"{path}.multipleOf", multiple, "must be greater than zero"))
        for key in _COUNT_KEYWORDS:
            value = s.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                add(FieldError.invalid(f"{path}.{key}", _describe(value), "must be an integer"))
            elif value < 0:
                add(FieldError.invalid(f"{path}.{key}", value, "must be greater than or equal to 0"))
        for key in _BOOL_KEYWORDS:
            value = s.get(key)
            if value is not None and not isinstance(value, bool):
                add(FieldError.invalid(f"{path}.{key}", _describe(value), "must be a boolean"))
        if s.get("uniqueItems") is True:
            add(
                FieldError.forbidden(
                    f"{path}.uniqueItems",
                    "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
                )
            )
        required = s.get("required")
        if required is not None and (
            not isinstance(required, list) or not all(isinstance(r, str) for r in required)
        ):
            add(FieldError.invalid(f"{path}.required", _describe(required), "must be a list of strings"))
        enum = s.get("enum")
        if enum is not None and not isinstance(enum, list):
            add(FieldError.invalid(f"{path}.enum", _describe(enum), "must be a list"))
        pattern = s.get("pattern")
        if pattern is not None:
            if not isinstance(pattern, str):
                add(FieldError.invalid(f"{path}.pattern", _describe(pattern), "must be a string"))
            else:
                try:
                    translate_pattern(pattern)
                except ValueError as exc:
                    add(
                        FieldError.invalid(
                            f"{path}.pattern",
                            pattern,
                            f"must be a valid regular expression, but isn't: {exc}",
                        )
                    )
        fmt = s.get("format")
        if fmt is not None and not isinstance(fmt, str):
            add(FieldError.invalid(f"{path}.format", _describe(fmt), "must be a string"))
        for key in ("description", "title"):
            value = s.get(key)
            if value is not None and not isinstance(value, str):
                add(FieldError.invalid(f"{path}.{key}", _describe(value), "must be a string"))
        properties = s.get("properties")
        if properties is not None and not isinstance(properties, Mapping):
            add(FieldError.invalid(f"{path}.properties", _describe(properties), "must be an object"))
        items = s.get("items")
        if isinstance(items, list):
            add(FieldError.forbidden(f"{path}.items", "items must be a schema object and not an array"))
        elif items is not None and not isinstance(items, Mapping):
            add(FieldError.invalid(f"{path}.items", _describe(items), "must be an object"))
        additional = s.get("additionalProperties")
        if additional is False:
            add(
                FieldError.forbidden(
                    f"{path}.additionalProperties", "additionalProperties cannot be set to false"
                )
            )
        elif additional is not None and not isinstance(additional, Mapping | bool):
            add(
                FieldError.invalid(f"{path}.additionalProperties", _describe(additional), "must be an object")
            )
        for key in _JUNCTORS:
            value = s.get(key)
            if value is not None and not isinstance(value, list):
                add(FieldError.invalid(f"{path}.{key}", _describe(value), "must be a list of schemas"))
        negated = s.get("not")
        if negated is not None and not isinstance(negated, Mapping):
            add(FieldError.invalid(f"{path}.not", _describe(negated), "must be an object"))

    # -- the structural part --------------------------------------------------------------------

    def structural(self, s: Any, path: str, level: str) -> None:
        add = self.errors.append
        if not isinstance(s, Mapping):
            add(FieldError.invalid(path, _describe(s), "must be an object"))
            return
        self.keywords(s, path)
        kind = s.get("type")
        int_or_string = s.get("x-kubernetes-int-or-string") is True
        preserve = s.get("x-kubernetes-preserve-unknown-fields")
        embedded = s.get("x-kubernetes-embedded-resource") is True
        properties = s.get("properties") if isinstance(s.get("properties"), Mapping) else None
        additional = s.get("additionalProperties")
        items = s.get("items")

        if kind is not None:
            if not isinstance(kind, str):
                add(FieldError.invalid(f"{path}.type", _describe(kind), "must be a string"))
                kind = None
            elif kind == "null":
                add(
                    FieldError.forbidden(
                        f"{path}.type", "type cannot be set to null, use nullable as an alternative"
                    )
                )
                kind = None
            elif kind == "":
                kind = None
            elif kind not in _TYPES:
                add(FieldError.not_supported(f"{path}.type", kind, _TYPES))

        if kind == "array" and items is None:
            add(FieldError.required(f"{path}.items", "must be specified"))
        if isinstance(items, Mapping):
            self.structural(items, f"{path}.items", _ITEM)
        if properties is not None:
            for key, sub in properties.items():
                self.structural(sub, f"{path}.properties[{key}]", _FIELD)
        if additional is not None and additional is not False:
            if level == _ROOT:
                add(FieldError.forbidden(f"{path}.additionalProperties", "must not be used at the root"))
            if properties and isinstance(additional, Mapping):
                add(
                    FieldError.forbidden(
                        f"{path}.additionalProperties",
                        "additionalProperties and properties are mutual exclusive",
                    )
                )
            if isinstance(additional, Mapping):
                self.structural(additional, f"{path}.additionalProperties", _FIELD)

        if preserve is False:
            add(
                FieldError.invalid(
                    f"{path}.x-kubernetes-preserve-unknown-fields", False, "must be true or undefined"
                )
            )
        if int_or_string and preserve is True:
            add(
                FieldError.invalid(
                    f"{path}.x-kubernetes-preserve-unknown-fields",
                    True,
                    "must be false if x-kubernetes-int-or-string is true",
                )
            )
        if int_or_string and embedded:
            add(
                FieldError.invalid(
                    f"{path}.x-kubernetes-embedded-resource",
                    True,
                    "must be false if x-kubernetes-int-or-string is true",
                )
            )

        if embedded and kind != "object":
            if kind is None:
                add(
                    FieldError.required(
                        f"{path}.type", "must be object if x-kubernetes-embedded-resource is true"
                    )
                )
            else:
                add(
                    FieldError.invalid(
                        f"{path}.type", kind, "must be object if x-kubernetes-embedded-resource is true"
                    )
                )
        elif kind is None and not embedded and not int_or_string and preserve is not True:
            add(FieldError.required(f"{path}.type", _LEVEL_MESSAGES[level]))
        if embedded and additional is not None:
            add(
                FieldError.forbidden(
                    f"{path}.additionalProperties",
                    "must not be used if x-kubernetes-embedded-resource is set",
                )
            )
        if level == _ROOT and kind is not None and kind != "object":
            add(FieldError.invalid(f"{path}.type", kind, "must be object at the root"))
        if level == _ROOT or embedded:
            self.resource_fields(properties or {}, path, root=level == _ROOT)
        if embedded and preserve is not True and not properties:
            add(
                FieldError.required(
                    f"{path}.properties",
                    "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
                )
            )

        self.extensions(s, path, kind)

        any_of_skipped = int_or_string and _int_or_string_any_of(s)
        all_of = s.get("allOf")
        first_all_of_skipped = (
            int_or_string
            and isinstance(all_of, list)
            and bool(all_of)
            and isinstance(all_of[0], Mapping)
            and _int_or_string_any_of(all_of[0])
        )
        self.junctors(s, path, level, any_of_skipped, first_all_of_skipped)
        for key in _JUNCTORS:
            entries = s.get(key)
            if isinstance(entries, list):
                for index, entry in enumerate(entries):
                    if isinstance(entry, Mapping):
                        self.complete(entry, s, path, f"{path}.{key}[{index}]")
        negated = s.get("not")
        if isinstance(negated, Mapping):
            self.complete(negated, s, path, f"{path}.not")

    def resource_fields(self, properties: Mapping[str, Any], path: str, root: bool) -> None:
        add = self.errors.append
        for key in ("kind", "apiVersion"):
            sub = properties.get(key)
            if isinstance(sub, Mapping) and sub.get("type") != "string":
                add(
                    FieldError.invalid(
                        f"{path}.properties[{key}].type", sub.get("type", ""), "must be string"
                    )
                )
        meta = properties.get("metadata")
        if not isinstance(meta, Mapping):
            return
        if meta.get("type") != "object":
            add(
                FieldError.invalid(
                    f"{path}.properties[metadata].type", meta.get("type", ""), "must be object"
                )
            )
        if not root:
            return
        meta_properties = meta.get("properties")
        extra_keys = set(meta) - {"type", "properties", "default"}
        extra_properties = isinstance(meta_properties, Mapping) and bool(
            set(meta_properties) - {"name", "generateName"}
        )
        if (
            extra_keys
            or extra_properties
            or (meta_properties is not None and not isinstance(meta_properties, Mapping))
        ):
            add(
                FieldError.forbidden(
                    f"{path}.properties[metadata]",
                    "must not specify anything other than name and generateName, but metadata is implicitly specified",
                )
            )
        if "default" in meta:
            add(FieldError.forbidden(f"{path}.properties[metadata].default", "must not be set for metadata"))

    def extensions(self, s: Mapping[str, Any], path: str, kind: str | None) -> None:
        add = self.errors.append
        list_type = s.get("x-kubernetes-list-type")
        map_type = s.get("x-kubernetes-map-type")
        keys = s.get("x-kubernetes-list-map-keys")
        items = s.get("items")
        if map_type is not None:
            if kind != "object":
                message = "must be object if x-kubernetes-map-type is specified"
                add(
                    FieldError.required(f"{path}.type", message)
                    if kind is None
                    else FieldError.invalid(f"{path}.type", kind, message)
                )
            if map_type not in ("atomic", "granular"):
                add(
                    FieldError.not_supported(
                        f"{path}.x-kubernetes-map-type", map_type, ("atomic", "granular")
                    )
                )
        if list_type is not None:
            if kind != "array":
                message = "must be array if x-kubernetes-list-type is specified"
                add(
                    FieldError.required(f"{path}.type", message)
                    if kind is None
                    else FieldError.invalid(f"{path}.type", kind, message)
                )
            elif list_type not in ("atomic", "set", "map"):
                add(
                    FieldError.not_supported(
                        f"{path}.x-kubernetes-list-type", list_type, ("atomic", "set", "map")
                    )
                )
        if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
            add(
                FieldError.invalid(
                    f"{path}.x-kubernetes-list-map-keys", _describe(keys), "must be a list of strings"
                )
            )
            keys = None
        if keys and list_type != "map":
            add(
                FieldError.forbidden(
                    f"{path}.x-kubernetes-list-map-keys",
                    "must not be specified if x-kubernetes-list-type is not map",
                )
            )
        if list_type == "map":
            if not keys:
                add(
                    FieldError.required(
                        f"{path}.x-kubernetes-list-map-keys",
                        "must not be empty if x-kubernetes-list-type is map",
                    )
                )
            if items is None:
                add(
                    FieldError.required(
                        f"{path}.items", "must have a schema if x-kubernetes-list-type is map"
                    )
                )
            elif isinstance(items, Mapping):
                item_type = items.get("type")
                if item_type != "object":
                    add(
                        FieldError.invalid(
                            f"{path}.items.type",
                            item_type if item_type is not None else "",
                            "must be object if parent array's x-kubernetes-list-type is map",
                        )
                    )
                else:
                    self.map_keys(items, keys or [], path)
        if list_type == "set" and isinstance(items, Mapping):
            item_type = items.get("type")
            if item_type == "array" and items.get("x-kubernetes-list-type", "atomic") != "atomic":
                add(
                    FieldError.invalid(
                        f"{path}.items.x-kubernetes-list-type",
                        items.get("x-kubernetes-list-type"),
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    )
                )
            if item_type == "object" and items.get("x-kubernetes-map-type") != "atomic":
                add(
                    FieldError.invalid(
                        f"{path}.items.x-kubernetes-map-type",
                        items.get("x-kubernetes-map-type") or "",
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    )
                )

    def map_keys(self, items: Mapping[str, Any], keys: list[str], path: str) -> None:
        add = self.errors.append
        raw_properties = items.get("properties")
        properties: Mapping[str, Any] = raw_properties if isinstance(raw_properties, Mapping) else {}
        raw_required = items.get("required")
        required: list[Any] = raw_required if isinstance(raw_required, list) else []
        seen: set[str] = set()
        for key in keys:
            sub = properties.get(key)
            if isinstance(sub, Mapping):
                if sub.get("type") in ("array", "object"):
                    add(
                        FieldError.invalid(
                            f"{path}.items.properties[{key}].type",
                            sub.get("type"),
                            "must be a scalar type if parent array's x-kubernetes-list-type is map",
                        )
                    )
                if key not in required and sub.get("default") is None:
                    add(
                        FieldError.required(
                            f"{path}.items.properties[{key}]",
                            "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                        )
                    )
            else:
                add(
                    FieldError.invalid(
                        f"{path}.x-kubernetes-list-map-keys",
                        keys,
                        "entries must all be names of item properties",
                    )
                )
            if key in seen:
                add(
                    FieldError.invalid(
                        f"{path}.x-kubernetes-list-map-keys", keys, "must not contain duplicate entries"
                    )
                )
            seen.add(key)

    # -- value validations under logical junctors -----------------------------------------------

    def junctors(
        self, s: Mapping[str, Any], path: str, level: str, skip_any_of: bool, skip_first_all_of_any_of: bool
    ) -> None:
        for key in _JUNCTORS:
            entries = s.get(key)
            if not isinstance(entries, list) or (key == "anyOf" and skip_any_of):
                continue
            for index, entry in enumerate(entries):
                self.nested(
                    entry,
                    f"{path}.{key}[{index}]",
                    level,
                    skip_any_of=key == "allOf" and index == 0 and skip_first_all_of_any_of,
                )
        negated = s.get("not")
        if isinstance(negated, Mapping):
            self.nested(negated, f"{path}.not", level)

    def nested(self, v: Any, path: str, level: str, skip_any_of: bool = False) -> None:
        add = self.errors.append
        if not isinstance(v, Mapping):
            add(FieldError.invalid(path, _describe(v), "must be an object"))
            return
        self.keywords(v, path)
        self.junctors(v, path, level, skip_any_of, False)
        items = v.get("items")
        if isinstance(items, Mapping):
            self.nested(items, f"{path}.items", level)
        properties = v.get("properties")
        if isinstance(properties, Mapping):
            for key, sub in properties.items():
                self.nested(sub, f"{path}.properties[{key}]", _FIELD)
            if "metadata" in properties:
                add(
                    FieldError.forbidden(
                        f"{path}.properties[metadata]", "must not be specified in a nested context"
                    )
                )
        if v.get("type"):
            add(FieldError.forbidden(f"{path}.type", "must be empty to be structural"))
        if v.get("additionalProperties") is not None:
            add(FieldError.forbidden(f"{path}.additionalProperties", "must be undefined to be structural"))
        if v.get("default") is not None:
            add(FieldError.forbidden(f"{path}.default", "must be undefined to be structural"))
        for key in ("title", "description"):
            if v.get(key):
                add(FieldError.forbidden(f"{path}.{key}", "must be empty to be structural"))
        if v.get("nullable") is True:
            add(FieldError.forbidden(f"{path}.nullable", "must be false to be structural"))
        if v.get("x-kubernetes-preserve-unknown-fields") is not None:
            add(
                FieldError.forbidden(
                    f"{path}.x-kubernetes-preserve-unknown-fields", "must be undefined to be structural"
                )
            )
        for key in ("x-kubernetes-embedded-resource", "x-kubernetes-int-or-string"):
            if v.get(key) is True:
                add(FieldError.forbidden(f"{path}.{key}", "must be false to be structural"))
        if v.get("x-kubernetes-list-map-keys"):
            add(FieldError.forbidden(f"{path}.x-kubernetes-list-map-keys", "must be empty to be structural"))
        for key in ("x-kubernetes-list-type", "x-kubernetes-map-type"):
            if v.get(key) is not None:
                add(FieldError.forbidden(f"{path}.{key}", "must be undefined to be structural"))
        if v.get("x-kubernetes-validations"):
            add(FieldError.forbidden(f"{path}.x-kubernetes-validations", "must be empty to be structural"))

    def complete(self, v: Mapping[str, Any], s: Mapping[str, Any] | None, spath: str, vpath: str) -> None:
        """Every field and item a value validation mentions must be specified structurally."""
        add = self.errors.append
        if s is None:
            add(FieldError.required(spath, f"because it is defined in {vpath}"))
            return
        for key in _JUNCTORS:
            entries = v.get(key)
            if isinstance(entries, list):
                for index, entry in enumerate(entries):
                    if isinstance(entry, Mapping):
                        self.complete(entry, s, spath, f"{vpath}.{key}[{index}]")
        negated = v.get("not")
        if isinstance(negated, Mapping):
            self.complete(negated, s, spath, f"{vpath}.not")
        items = v.get("items")
        if isinstance(items, Mapping):
            structural_items = s.get("items")
            self.complete(
                items,
                structural_items if isinstance(structural_items, Mapping) else None,
                f"{spath}.items",
                f"{vpath}.items",
            )
        properties = v.get("properties")
        if isinstance(properties, Mapping):
            raw_structural = s.get("properties")
            structural: Mapping[str, Any] = raw_structural if isinstance(raw_structural, Mapping) else {}
            additional = s.get("additionalProperties")
            for key, sub in properties.items():
                if not isinstance(sub, Mapping):
                    continue
                if key in structural and isinstance(structural[key], Mapping):
                    self.complete(
                        sub, structural[key], f"{spath}.properties[{key}]", f"{vpath}.properties[{key}]"
                    )
                elif isinstance(additional, Mapping):
                    self.complete(
                        sub, additional, f"{spath}.additionalProperties", f"{vpath}.properties[{key}]"
                    )
                else:
                    add(
                        FieldError.required(
                            f"{spath}.properties[{key}]",
                            f"because it is defined in {vpath}.properties[{key}]",
                        )
                    )


def _int_or_string_any_of(s: Mapping[str, Any]) -> bool:
    any_of = s.get("anyOf")
    return (
        isinstance(any_of, list)
        and len(any_of) == 2
        and any_of[0] == {"type": "integer"}
        and any_of[1] == {"type": "string"}
    )


def _check_defaults(
    s: Mapping[str, Any], path: str, errors: list[FieldError], *, in_metadata: bool, root: bool = False
) -> None:
    """Defaults must validate against their own node and be unchanged by pruning."""
    default = s.get("default")
    if default is not None and not in_metadata:
        node = build_node(s, path, BuildContext(with_rules=False), resource=root)
        pruned = copy.deepcopy(default)
        node.prune(pruned)
        if pruned != default:
            errors.append(FieldError.invalid(f"{path}.default", default, "must not have unknown fields"))
        else:
            node.validate(default, f"{path}.default", MISSING, errors)
    properties = s.get("properties")
    if isinstance(properties, Mapping):
        for key, sub in properties.items():
            if isinstance(sub, Mapping):
                _check_defaults(
                    sub,
                    f"{path}.properties[{key}]",
                    errors,
                    in_metadata=in_metadata or (root and key == "metadata"),
                )
    for key in ("items", "additionalProperties"):
        sub = s.get(key)
        if isinstance(sub, Mapping):
            _check_defaults(sub, f"{path}.{key}", errors, in_metadata=in_metadata)
