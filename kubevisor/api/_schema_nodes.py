"""Compiled schema nodes: validation, defaulting and pruning of JSON values.

A schema is compiled once into a tree of :class:`Node` objects that hold everything each check
needs in precomputed form (compiled patterns, enum lookup sets, property tables, flags saying
whether a subtree has defaults, rules or transition rules at all), so that the per-write work is
a single walk over the object with no schema interpretation.

Messages follow upstream's wording (``k8s.io/kube-openapi/pkg/validation`` as translated by
``apiextensions-apiserver``): ``<path>: Invalid value: 20: <path> in body should be less than or
equal to 10``.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kubevisor.api._errors import FieldError
from kubevisor.api._schema_formats import FORMATS, go_float, translate_pattern

if TYPE_CHECKING:
    from kubevisor.api._cel import RuleSet

__all__ = ["MISSING", "OBJECT_META_FIELDS", "Node", "build_node", "json_type"]

MISSING: Any = object()
"""Marks an absent value (distinct from JSON ``null``)."""

OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
"""The JSON fields of ``ObjectMeta``: what survives pruning of an embedded resource's metadata."""

_RESOURCE_FIELDS = ("apiVersion", "kind", "metadata")
_JSON_TYPES: dict[type, str] = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    dict: "object",
    list: "array",
    type(None): "null",
}


def json_type(value: Any) -> str:
    """The OpenAPI type name of a decoded JSON value (``"null"`` for ``None``)."""
    name = _JSON_TYPES.get(type(value))
    if name is not None:
        return name
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def canonical(value: Any) -> Any:
    """A hashable key under which JSON-equal values collide (``1`` and ``1.0`` do, ``1`` and
    ``true`` do not) — for enums, sets and list-map keys."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return ("b", value)
    if kind is int or kind is float:
        return ("n", value)
    if value is None:
        return ("z",)
    return ("j", json.dumps(value, sort_keys=True, separators=(",", ":"), default=str))


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_json_integer(number: float) -> bool:
    # go-openapi's swag.IsFloat64AJSONInteger: integral within a relative epsilon of 1e-9.
    if math.isnan(number) or math.isinf(number):
        return False
    nearest = round(number)
    if number == nearest:
        return True
    return abs(number - nearest) / max(abs(number) + abs(nearest), 1e-300) < 1e-9


def _int_or_string_any_of(schema: Mapping[str, Any]) -> bool:
    any_of = schema.get("anyOf")
    return (
        isinstance(any_of, list)
        and len(any_of) == 2
        and any_of[0] == {"type": "integer"}
        and any_of[1] == {"type": "string"}
    )


class Node:
    """One compiled schema node.  Attributes are read-only after :func:`build_node`."""

    __slots__ = (
        "additional",
        "additional_any",
        "all_of",
        "any_of",
        "default",
        "defaulted",
        "defaults_below",
        "embedded",
        "enum",
        "enum_keys",
        "exclusive_maximum",
        "exclusive_minimum",
        "format",
        "format_check",
        "int_or_string",
        "items",
        "list_map_keys",
        "list_type",
        "max_items",
        "max_length",
        "max_properties",
        "maximum",
        "min_items",
        "min_length",
        "min_properties",
        "minimum",
        "multiple_of",
        "needs_old",
        "not_",
        "nullable",
        "number_checks",
        "object_checks",
        "one_of",
        "pattern",
        "pattern_source",
        "preserve",
        "properties",
        "required",
        "resource",
        "rules",
        "rules_below",
        "string_checks",
        "type",
    )

    def __init__(self) -> None:
        self.type: str | None = None
        self.nullable = False
        self.int_or_string = False
        self.preserve = False
        self.embedded = False
        self.resource = False
        self.properties: dict[str, Node] | None = None
        self.additional: Node | None = None
        self.additional_any = False
        self.items: Node | None = None
        self.required: tuple[str, ...] = ()
        self.enum: tuple[Any, ...] | None = None
        self.enum_keys: frozenset[Any] = frozenset()
        self.format: str | None = None
        self.format_check: Callable[[str], bool] | None = None
        self.maximum: float | int | None = None
        self.exclusive_maximum = False
        self.minimum: float | int | None = None
        self.exclusive_minimum = False
        self.multiple_of: float | int | None = None
        self.max_length: int | None = None
        self.min_length: int | None = None
        self.pattern: Any = None
        self.pattern_source = ""
        self.max_items: int | None = None
        self.min_items: int | None = None
        self.max_properties: int | None = None
        self.min_properties: int | None = None
        self.list_type: str | None = None
        self.list_map_keys: tuple[str, ...] = ()
        self.default: Any = MISSING
        self.defaulted: tuple[tuple[str, Node], ...] = ()
        self.defaults_below = False
        self.all_of: tuple[Node, ...] = ()
        self.any_of: tuple[Node, ...] = ()
        self.one_of: tuple[Node, ...] = ()
        self.not_: Node | None = None
        self.rules: RuleSet | None = None
        self.rules_below = False
        self.needs_old = False
        self.string_checks = False
        self.number_checks = False
        self.object_checks = False

    # -- validation ---------------------------------------------------------------------------

    def validate(self, value: Any, path: str, old: Any, errors: list[FieldError]) -> None:
        """Append every violation found in ``value`` (at ``path``) to ``errors``.

        ``old`` is the correlated old value or :data:`MISSING`; it matters only for transition
        rules and is ignored unless :attr:`needs_old`.
        """
        if value is None:
            if self.nullable or (self.type is None and not self.int_or_string):
                return
            expected = "integer,string" if self.int_or_string else self.type
            errors.append(
                FieldError.type_invalid(path, "null", f'{path} in body must be of type {expected}: "null"')
            )
            return
        kind = type(value)
        declared = self.type
        if declared is not None:
            actual = _JSON_TYPES.get(kind) or json_type(value)
            if actual != declared and not (
                (declared == "number" and actual == "integer")
                or (declared == "integer" and actual == "number" and _is_json_integer(value))
            ):
                errors.append(
                    FieldError.type_invalid(
                        path, actual, f'{path} in body must be of type {declared}: "{actual}"'
                    )
                )
                return
        elif self.int_or_string and not (
            kind is str or (kind is int) or (kind is float and value.is_integer())
        ):
            actual = json_type(value)
            errors.append(
                FieldError.type_invalid(
                    path, actual, f'{path} in body must be of type integer,string: "{actual}"'
                )
            )
            return

        if kind is str:
            if self.string_checks:
                self._check_string(value, path, errors)
        elif kind is dict:
            if self.object_checks:
                self._check_object(value, path, old, errors)
        elif kind is list:
            if (
                self.items is not None
                or self.min_items is not None
                or self.max_items is not None
                or self.list_type
            ):
                self._check_array(value, path, old, errors)
        elif kind is not bool and self.number_checks:
            self._check_number(value, path, errors)

        if self.enum is not None and canonical(value) not in self.enum_keys:
            supported = [v if isinstance(v, str) else json.dumps(v) for v in self.enum]
            errors.append(FieldError.not_supported(path, value, supported))
        if self.all_of or self.any_of or self.one_of or self.not_ is not None:
            self._check_junctors(value, path, errors)
        if self.rules is not None:
            self.rules.validate(value, old, old is not MISSING, path, errors)

    def _check_string(self, value: str, path: str, errors: list[FieldError]) -> None:
        if self.max_length is not None and len(value) > self.max_length:
            errors.append(FieldError.too_long(path, value, self.max_length))
        if self.min_length is not None and len(value) < self.min_length:
            errors.append(
                FieldError.invalid(
                    path, value, f"{path} in body should be at least {self.min_length} chars long"
                )
            )
        if self.pattern is not None and self.pattern.search(value) is None:
            errors.append(
                FieldError.invalid(path, value, f"{path} in body should match '{self.pattern_source}'")
            )
        if self.format_check is not None and not self.format_check(value):
            errors.append(
                FieldError.type_invalid(
                    path, value, f"{path} in body must be of type {self.format}: {json.dumps(value)}"
                )
            )

    def _check_number(self, value: float | int, path: str, errors: list[FieldError]) -> None:
        if self.maximum is not None:
            if self.exclusive_maximum and value >= self.maximum:
                errors.append(
                    FieldError.invalid(
                        path, value, f"{path} in body should be less than {go_float(self.maximum)}"
                    )
                )
            elif value > self.maximum:
                errors.append(
                    FieldError.invalid(
                        path,
                        value,
                        f"{path} in body should be less than or equal to {go_float(self.maximum)}",
                    )
                )
        if self.minimum is not None:
            if self.exclusive_minimum and value <= self.minimum:
                errors.append(
                    FieldError.invalid(
                        path, value, f"{path} in body should be greater than {go_float(self.minimum)}"
                    )
                )
            elif value < self.minimum:
                errors.append(
                    FieldError.invalid(
                        path,
                        value,
                        f"{path} in body should be greater than or equal to {go_float(self.minimum)}",
                    )
                )
        factor = self.multiple_of
        if factor is not None:
            if isinstance(value, int) and isinstance(factor, int):
                ok = value % factor == 0
            else:
                ok = _is_json_integer((1 / factor) * value if factor < 1 else value / factor)
            if not ok:
                errors.append(
                    FieldError.invalid(
                        path, value, f"{path} in body should be a multiple of {go_float(factor)}"
                    )
                )

    def _check_object(self, value: dict[str, Any], path: str, old: Any, errors: list[FieldError]) -> None:
        size = len(value)
        if self.max_properties is not None and size > self.max_properties:
            noun = "item" if self.max_properties == 1 else "items"
            errors.append(
                FieldError(FieldError.TOO_MANY, path, size, f"must have at most {self.max_properties} {noun}")
            )
        if self.min_properties is not None and size < self.min_properties:
            errors.append(
                FieldError.invalid(
                    path, size, f"{path} in body should have at least {self.min_properties} properties"
                )
            )
        for key in self.required:
            if key not in value:
                errors.append(FieldError.required(_child(path, key)))
        if self.embedded:
            _check_embedded(value, path, errors)
        properties = self.properties
        additional = self.additional
        track_old = self.needs_old and type(old) is dict
        for key, item in value.items():
            node = properties.get(key) if properties is not None else None
            if node is None:
                node = additional
                if node is None:
                    continue
            node.validate(
                item,
                _child(path, key),
                old.get(key, MISSING) if track_old else MISSING,
                errors,
            )

    def _check_array(self, value: list[Any], path: str, old: Any, errors: list[FieldError]) -> None:
        size = len(value)
        if self.max_items is not None and size > self.max_items:
            noun = "item" if self.max_items == 1 else "items"
            errors.append(
                FieldError(FieldError.TOO_MANY, path, size, f"must have at most {self.max_items} {noun}")
            )
        if self.min_items is not None and size < self.min_items:
            errors.append(
                FieldError.invalid(path, size, f"{path} in body should have at least {self.min_items} items")
            )
        items = self.items
        old_by_key: dict[Any, Any] | None = None
        if self.list_type == "map":
            old_by_key = self._check_list_map(value, path, old, errors)
        elif self.list_type == "set":
            self._check_list_set(value, path, errors)
        if items is None:
            return
        keys = self.list_map_keys
        for index, item in enumerate(value):
            previous = MISSING
            if old_by_key is not None and type(item) is dict:
                previous = old_by_key.get(tuple(canonical(item.get(k)) for k in keys), MISSING)
            items.validate(item, f"{path}[{index}]", previous, errors)

    def _check_list_set(self, value: list[Any], path: str, errors: list[FieldError]) -> None:
        seen: set[Any] = set()
        for index, item in enumerate(value):
            key = canonical(item)
            if key in seen:
                errors.append(FieldError.duplicate(f"{path}[{index}]", item))
            seen.add(key)

    def _check_list_map(
        self, value: list[Any], path: str, old: Any, errors: list[FieldError]
    ) -> dict[Any, Any] | None:
        keys = self.list_map_keys
        seen: set[Any] = set()
        for index, item in enumerate(value):
            if item is None:
                continue
            if type(item) is not dict:
                errors.append(
                    FieldError.invalid(
                        f"{path}[{index}]", item, "must be an object for an array of list-type map"
                    )
                )
                return None
            key = tuple(canonical(item.get(k)) for k in keys)
            if key in seen:
                errors.append(
                    FieldError.duplicate(f"{path}[{index}]", {k: item[k] for k in keys if k in item})
                )
            seen.add(key)
        if not self.needs_old or type(old) is not list:
            return None
        return {tuple(canonical(o.get(k)) for k in keys): o for o in old if type(o) is dict}

    def _check_junctors(self, value: Any, path: str, errors: list[FieldError]) -> None:
        if self.all_of:
            failed = 0
            for node in self.all_of:
                found: list[FieldError] = []
                node.validate(value, path, MISSING, found)
                if found:
                    failed += 1
                    errors.extend(found)
            if failed:
                suffix = ". None validated" if failed == len(self.all_of) else ""
                errors.append(
                    FieldError.invalid(
                        path, "", f"{path} in body must validate all the schemas (allOf){suffix}"
                    )
                )
        if self.any_of and not any(_passes(node, value, path) for node in self.any_of):
            errors.append(
                FieldError.invalid(path, "", f"{path} in body must validate at least one schema (anyOf)")
            )
        if self.one_of:
            passed = sum(1 for node in self.one_of if _passes(node, value, path))
            if passed != 1:
                detail = "Found none valid" if passed == 0 else f"Found {passed} valid alternatives"
                errors.append(
                    FieldError.invalid(
                        path, "", f"{path} in body must validate one and only one schema (oneOf). {detail}"
                    )
                )
        if self.not_ is not None and _passes(self.not_, value, path):
            errors.append(FieldError.invalid(path, "", f"{path} in body must not validate the schema (not)"))

    # -- defaulting ---------------------------------------------------------------------------

    def apply_defaults(self, value: Any) -> None:
        """Fill absent fields (and non-nullable ``null`` fields) that declare a default, in place
        and recursively, including inside defaults just applied (upstream's ``Default``)."""
        kind = type(value)
        if kind is dict:
            for key, defaulted in self.defaulted:
                current = value.get(key, MISSING)
                if current is MISSING or (current is None and not defaulted.nullable):
                    value[key] = copy.deepcopy(defaulted.default)
            properties = self.properties
            additional = self.additional
            node: Node | None
            for key, item in value.items():
                node = properties.get(key) if properties is not None else None
                if node is None:
                    node = additional
                    if node is None:
                        continue
                    if item is None and not node.nullable and node.default is not MISSING:
                        item = value[key] = copy.deepcopy(node.default)
                if node.defaults_below and item is not None:
                    node.apply_defaults(item)
        elif kind is list:
            items = self.items
            if items is None:
                return
            for index, item in enumerate(value):
                if item is None and not items.nullable and items.default is not MISSING:
                    item = value[index] = copy.deepcopy(items.default)
                if items.defaults_below and item is not None:
                    items.apply_defaults(item)

    # -- pruning ------------------------------------------------------------------------------

    def prune(self, value: Any) -> None:
        """Drop unknown fields in place (upstream's ``structuralpruning.Prune``), and ``null``
        values of non-nullable fields that have no default (upstream's
        ``PruneNonNullableNullsWithoutDefaults``, which runs alongside)."""
        if self.preserve:
            self._skip_prune(value)
            return
        kind = type(value)
        if kind is dict:
            properties = self.properties
            additional = self.additional
            embedded = self.embedded or self.resource
            doomed: list[str] | None = None
            for key, item in value.items():
                if embedded and key in _RESOURCE_FIELDS:
                    if key == "metadata" and self.embedded and type(item) is dict:
                        _prune_object_meta(item)
                    continue
                node = properties.get(key) if properties is not None else None
                if node is None:
                    node = additional
                if node is not None:
                    if item is None:
                        if not node.nullable and node.default is MISSING:
                            doomed = doomed or []
                            doomed.append(key)
                    else:
                        node.prune(item)
                elif self.additional_any:
                    _prune_unspecified(item)
                else:
                    doomed = doomed or []
                    doomed.append(key)
            if doomed:
                for key in doomed:
                    del value[key]
        elif kind is list:
            node = self.items
            if node is None:
                for item in value:
                    _prune_unspecified(item)
                return
            for item in value:
                if item is not None:
                    node.prune(item)

    def _skip_prune(self, value: Any) -> None:
        # Preserved subtree: unknown fields stay, declared ones are pruned below them.
        kind = type(value)
        if kind is dict:
            properties = self.properties
            additional = self.additional
            embedded = self.embedded or self.resource
            for key, item in value.items():
                if embedded and key in _RESOURCE_FIELDS:
                    if key == "metadata" and self.embedded and type(item) is dict:
                        _prune_object_meta(item)
                    continue
                node = properties.get(key) if properties is not None else None
                if node is None:
                    node = additional
                if node is not None and item is not None:
                    node.prune(item)
        elif kind is list and self.items is not None:
            for item in value:
                self.items._skip_prune(item)


def _passes(node: Node, value: Any, path: str) -> bool:
    found: list[FieldError] = []
    node.validate(value, path, MISSING, found)
    return not found


def _prune_unspecified(value: Any) -> None:
    # Below ``additionalProperties: true`` nothing is specified: objects lose every field
    # (upstream prunes against a nil schema), scalars stay.
    if type(value) is dict:
        value.clear()
    elif type(value) is list:
        for item in value:
            _prune_unspecified(item)


def _prune_object_meta(meta: dict[str, Any]) -> None:
    for key in [k for k in meta if k not in OBJECT_META_FIELDS]:
        del meta[key]


def _check_embedded(value: dict[str, Any], path: str, errors: list[FieldError]) -> None:
    # Upstream requires apiVersion and kind of an embedded resource, but not metadata.
    api_version = value.get("apiVersion", MISSING)
    if api_version is MISSING:
        errors.append(FieldError.required(_child(path, "apiVersion"), "must not be empty"))
    elif not isinstance(api_version, str):
        errors.append(FieldError.invalid(_child(path, "apiVersion"), api_version, "must be a string"))
    elif not api_version:
        errors.append(FieldError.invalid(_child(path, "apiVersion"), api_version, "must not be empty"))
    elif api_version.count("/") > 1 or api_version.startswith("/") or api_version.endswith("/"):
        errors.append(
            FieldError.invalid(
                _child(path, "apiVersion"), api_version, f"unexpected GroupVersion string: {api_version}"
            )
        )
    kind = value.get("kind", MISSING)
    if kind is MISSING:
        errors.append(FieldError.required(_child(path, "kind"), "must not be empty"))
    elif not isinstance(kind, str):
        errors.append(FieldError.invalid(_child(path, "kind"), kind, "must be a string"))
    elif not kind:
        errors.append(FieldError.invalid(_child(path, "kind"), kind, "must not be empty"))
    meta = value.get("metadata", MISSING)
    if meta is MISSING or meta is None:
        return
    meta_path = _child(path, "metadata")
    if type(meta) is not dict:
        errors.append(FieldError.invalid(meta_path, json_type(meta), "must be an object"))
        return
    for key in ("name", "generateName", "namespace"):
        if key in meta and not isinstance(meta[key], str):
            errors.append(FieldError.invalid(f"{meta_path}.{key}", meta[key], "must be a string"))
    for key in ("labels", "annotations"):
        entries = meta.get(key)
        if entries is None:
            continue
        if type(entries) is not dict or not all(isinstance(v, str) for v in entries.values()):
            errors.append(
                FieldError.invalid(f"{meta_path}.{key}", json_type(entries), "must be a map of strings")
            )


class BuildContext:
    """Carries compile options and the problems found while building nodes."""

    def __init__(self, with_rules: bool) -> None:
        self.with_rules = with_rules
        self.errors: list[FieldError] = []


def build_node(
    schema: Mapping[str, Any],
    path: str,
    context: BuildContext,
    *,
    resource: bool = False,
    nested: bool = False,
    uncorrelatable_within: str | None = None,
) -> Node:
    """Compile ``schema`` (found at ``path``, for messages) into a :class:`Node`.

    Malformed keywords are skipped here; :func:`check_structural` reports them.  CEL rules are
    compiled when ``context.with_rules``, their problems collected in ``context.errors``.
    ``resource`` marks a resource root, ``nested`` a value validation under a logical junctor.
    """
    node = Node()
    node.resource = resource
    declared = schema.get("type")
    node.type = declared if isinstance(declared, str) and declared else None
    node.nullable = schema.get("nullable") is True
    node.int_or_string = schema.get("x-kubernetes-int-or-string") is True
    node.preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    node.embedded = schema.get("x-kubernetes-embedded-resource") is True

    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        node.properties = {
            str(key): build_node(
                sub,
                f"{path}.properties[{key}]",
                context,
                nested=nested,
                uncorrelatable_within=uncorrelatable_within,
            )
            for key, sub in properties.items()
            if isinstance(sub, Mapping)
        }
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        node.additional = build_node(
            additional,
            f"{path}.additionalProperties",
            context,
            nested=nested,
            uncorrelatable_within=uncorrelatable_within,
        )
    elif additional is True and not node.properties:
        node.additional_any = True
    list_type = schema.get("x-kubernetes-list-type")
    node.list_type = list_type if list_type in ("set", "map") else None
    keys = schema.get("x-kubernetes-list-map-keys")
    if node.list_type == "map" and isinstance(keys, list):
        node.list_map_keys = tuple(str(k) for k in keys)
    items = schema.get("items")
    if isinstance(items, Mapping):
        node.items = build_node(
            items,
            f"{path}.items",
            context,
            nested=nested,
            uncorrelatable_within=uncorrelatable_within if node.list_type == "map" else path,
        )
    required = schema.get("required")
    if isinstance(required, list):
        node.required = tuple(str(r) for r in required if isinstance(r, str))

    enum = schema.get("enum")
    if isinstance(enum, list):
        node.enum = tuple(enum)
        node.enum_keys = frozenset(canonical(v) for v in enum)
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in FORMATS and node.type in (None, "string") and fmt != "password":
        node.format = fmt
        node.format_check = FORMATS[fmt]
    node.maximum = _number(schema.get("maximum"))
    node.minimum = _number(schema.get("minimum"))
    node.exclusive_maximum = schema.get("exclusiveMaximum") is True
    node.exclusive_minimum = schema.get("exclusiveMinimum") is True
    multiple = _number(schema.get("multipleOf"))
    node.multiple_of = multiple if multiple is not None and multiple > 0 else None
    node.max_length = _count(schema.get("maxLength"))
    node.min_length = _count(schema.get("minLength"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            node.pattern = translate_pattern(pattern)
            node.pattern_source = pattern
        except ValueError:
            node.pattern = None
    node.max_items = _count(schema.get("maxItems"))
    node.min_items = _count(schema.get("minItems"))
    node.max_properties = _count(schema.get("maxProperties"))
    node.min_properties = _count(schema.get("minProperties"))

    skip_any_of = node.int_or_string and _int_or_string_any_of(schema)
    node.all_of = _junctor_list(
        schema.get("allOf"), f"{path}.allOf", context, skip_first_any_of=node.int_or_string
    )
    node.any_of = () if skip_any_of else _junctor_list(schema.get("anyOf"), f"{path}.anyOf", context)
    node.one_of = _junctor_list(schema.get("oneOf"), f"{path}.oneOf", context)
    negated = schema.get("not")
    node.not_ = (
        build_node(negated, f"{path}.not", context, nested=True) if isinstance(negated, Mapping) else None
    )

    if not nested:
        default = schema.get("default")
        # A JSON null default is no default at all (upstream decodes it to a nil object).
        node.default = MISSING if default is None else copy.deepcopy(default)
        if context.with_rules and "x-kubernetes-validations" in schema:
            # Imported here so that schemas without rules never pay for loading cel-python.
            from kubevisor.api._cel import compile_rules

            rules, problems = compile_rules(
                schema, path, resource_root=resource, uncorrelatable_within=uncorrelatable_within
            )
            node.rules = rules
            context.errors.extend(problems)

    children = [
        *(node.properties or {}).values(),
        *(c for c in (node.additional, node.items) if c is not None),
    ]
    node.defaulted = tuple((k, n) for k, n in (node.properties or {}).items() if n.default is not MISSING)
    node.defaults_below = bool(node.defaulted) or any(
        c.defaults_below or c.default is not MISSING for c in children
    )
    node.rules_below = node.rules is not None or any(c.rules_below for c in children)
    node.needs_old = (node.rules is not None and node.rules.has_transition) or any(
        c.needs_old for c in children
    )
    node.string_checks = (
        node.max_length is not None
        or node.min_length is not None
        or node.pattern is not None
        or node.format_check is not None
    )
    node.number_checks = node.maximum is not None or node.minimum is not None or node.multiple_of is not None
    node.object_checks = bool(
        node.properties
        or node.additional is not None
        or node.required
        or node.embedded
        or node.max_properties is not None
        or node.min_properties is not None
    )
    return node


def _junctor_list(
    raw: Any, path: str, context: BuildContext, *, skip_first_any_of: bool = False
) -> tuple[Node, ...]:
    if not isinstance(raw, list):
        return ()
    built = []
    for index, sub in enumerate(raw):
        if not isinstance(sub, Mapping):
            continue
        if index == 0 and skip_first_any_of and _int_or_string_any_of(sub):
            sub = {k: v for k, v in sub.items() if k != "anyOf"}
        built.append(build_node(sub, f"{path}[{index}]", context, nested=True))
    return tuple(built)
