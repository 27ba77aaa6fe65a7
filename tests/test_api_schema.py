"""Validation, defaulting and pruning of objects against a compiled structural schema.

The expected messages are upstream's (``kubectl apply`` against a real cluster prints them).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubevisor.api import CompiledSchema, FieldError


def crd_schema(spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            **extra,
        },
    }


def obj(spec: Any, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "a"}, "spec": spec, **extra}


def errors_for(field: dict[str, Any], value: Any) -> list[str]:
    compiled = CompiledSchema.compile(crd_schema({"type": "object", "properties": {"f": field}}))
    return [str(e) for e in compiled.validate(obj({"f": value}))]


# -- types and formats ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "value", "actual"),
    [
        ("integer", "3", "string"),
        ("integer", 1.5, "number"),
        ("string", 3, "integer"),
        ("boolean", "true", "string"),
        ("object", [], "array"),
        ("array", {}, "object"),
        ("number", None, "null"),
    ],
)
def test_a_value_of_the_wrong_type_is_reported_with_the_actual_type(
    declared: str, value: Any, actual: str
) -> None:
    field: dict[str, Any] = {"type": declared}
    if declared == "array":
        field["items"] = {"type": "string"}
    assert errors_for(field, value) == [
        f'spec.f: Invalid value: "{actual}": spec.f in body must be of type {declared}: "{actual}"'
    ]


def test_integral_floats_are_integers_and_integers_are_numbers() -> None:
    assert errors_for({"type": "integer"}, 3.0) == []
    assert errors_for({"type": "number"}, 3) == []


def test_a_type_error_stops_further_checks_on_that_field() -> None:
    assert errors_for({"type": "string", "minLength": 3, "enum": ["abc"]}, 1) == [
        'spec.f: Invalid value: "integer": spec.f in body must be of type string: "integer"'
    ]


def test_null_is_accepted_only_for_nullable_fields() -> None:
    assert errors_for({"type": "string", "nullable": True}, None) == []
    assert errors_for({"type": "string"}, None) == [
        'spec.f: Invalid value: "null": spec.f in body must be of type string: "null"'
    ]


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2024-02-29T12:30:00Z", "2024-02-30T12:30:00Z"),
        ("date", "2024-02-29", "24-02-29"),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000", "123e4567"),
        ("byte", "aGVsbG8=", "not base64!"),
        ("ipv4", "10.0.0.1", "10.0.0.256"),
        ("ipv6", "::1", "1::2::3"),
        ("cidr", "10.0.0.0/8", "10.0.0.0"),
        ("hostname", "example.com", "-bad-.com"),
        ("email", "a@example.com", "not-an-email"),
        ("duration", "1h30m", "soon"),
        ("mac", "00:1a:2b:3c:4d:5e", "00:1a"),
    ],
)
def test_string_formats_are_checked(fmt: str, good: str, bad: str) -> None:
    assert errors_for({"type": "string", "format": fmt}, good) == []
    assert errors_for({"type": "string", "format": fmt}, bad) == [
        f'spec.f: Invalid value: "{bad}": spec.f in body must be of type {fmt}: "{bad}"'
    ]


def test_number_formats_and_unknown_formats_are_not_enforced_as_upstream() -> None:
    assert errors_for({"type": "integer", "format": "int32"}, 2**40) == []
    assert errors_for({"type": "number", "format": "double"}, 1.5) == []
    assert errors_for({"type": "string", "format": "no-such-format"}, "x") == []


# -- numbers -------------------------------------------------------------------------------------


def test_maximum_is_reported_as_upstream() -> None:
    assert errors_for({"type": "integer", "maximum": 10}, 20) == [
        "spec.f: Invalid value: 20: spec.f in body should be less than or equal to 10"
    ]


def test_exclusive_bounds_exclude_the_bound() -> None:
    field = {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1, "exclusiveMaximum": True}
    assert errors_for(field, 0.5) == []
    assert errors_for(field, 0) == ["spec.f: Invalid value: 0: spec.f in body should be greater than 0"]
    assert errors_for(field, 1) == ["spec.f: Invalid value: 1: spec.f in body should be less than 1"]


def test_minimum_is_inclusive_by_default() -> None:
    assert errors_for({"type": "integer", "minimum": 1}, 1) == []
    assert errors_for({"type": "integer", "minimum": 1}, 0) == [
        "spec.f: Invalid value: 0: spec.f in body should be greater than or equal to 1"
    ]


def test_bounds_are_printed_as_go_prints_floats() -> None:
    assert errors_for({"type": "integer", "maximum": 1000000}, 2000000) == [
        "spec.f: Invalid value: 2000000: spec.f in body should be less than or equal to 1e+06"
    ]


def test_multiple_of_accepts_exact_multiples_including_decimal_factors() -> None:
    assert errors_for({"type": "integer", "multipleOf": 5}, 15) == []
    assert errors_for({"type": "number", "multipleOf": 0.1}, 0.3) == []
    assert errors_for({"type": "integer", "multipleOf": 5}, 7) == [
        "spec.f: Invalid value: 7: spec.f in body should be a multiple of 5"
    ]


# -- strings -------------------------------------------------------------------------------------


def test_string_lengths_count_characters() -> None:
    field = {"type": "string", "minLength": 2, "maxLength": 3}
    assert errors_for(field, "äöü") == []
    assert errors_for(field, "a") == [
        'spec.f: Invalid value: "a": spec.f in body should be at least 2 chars long'
    ]
    assert errors_for(field, "abcd") == ["spec.f: Too long: may not be more than 3 bytes"]


def test_pattern_is_matched_unanchored() -> None:
    field = {"type": "string", "pattern": "[0-9]"}
    assert errors_for(field, "abc1") == []
    assert errors_for(field, "abc") == ["spec.f: Invalid value: \"abc\": spec.f in body should match '[0-9]'"]


def test_cron_example_from_the_crd_documentation() -> None:
    schema = crd_schema(
        {
            "type": "object",
            "properties": {
                "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
            },
        }
    )
    compiled = CompiledSchema.compile(schema)
    found = [str(e) for e in compiled.validate(obj({"cronSpec": "* * * *", "replicas": 15}))]
    assert found == [
        'spec.cronSpec: Invalid value: "* * * *": spec.cronSpec in body should match '
        "'^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'",
        "spec.replicas: Invalid value: 15: spec.replicas in body should be less than or equal to 10",
    ]
    assert compiled.validate(obj({"cronSpec": "*/5 * * * *", "replicas": 3})) == []


# -- enums ---------------------------------------------------------------------------------------


def test_enum_lists_the_supported_values() -> None:
    assert errors_for({"type": "string", "enum": ["red", "blue"]}, "pink") == [
        'spec.f: Unsupported value: "pink": supported values: "red", "blue"'
    ]


def test_enum_compares_json_values_not_python_truthiness() -> None:
    field = {"x-kubernetes-preserve-unknown-fields": True, "enum": [1, "a"]}
    assert errors_for(field, 1.0) == []
    assert errors_for(field, True) == ['spec.f: Unsupported value: true: supported values: "1", "a"']


# -- objects -------------------------------------------------------------------------------------


def test_missing_required_fields_are_reported_one_each() -> None:
    schema = crd_schema(
        {
            "type": "object",
            "required": ["title", "owner"],
            "properties": {"title": {"type": "string"}, "owner": {"type": "string"}},
        }
    )
    compiled = CompiledSchema.compile(schema)
    assert [str(e) for e in compiled.validate(obj({}))] == [
        "spec.title: Required value",
        "spec.owner: Required value",
    ]
    assert [e.cause() for e in compiled.validate(obj({"title": "x"}))] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.owner"}
    ]


def test_a_required_top_level_field_is_named_without_a_prefix() -> None:
    schema = crd_schema({"type": "object"})
    schema["required"] = ["spec"]
    compiled = CompiledSchema.compile(schema)
    assert [str(e) for e in compiled.validate({"metadata": {}})] == ["spec: Required value"]


def test_property_counts_are_bounded() -> None:
    field = {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "minProperties": 1,
        "maxProperties": 2,
    }
    assert errors_for(field, {"a": "1"}) == []
    assert errors_for(field, {}) == [
        "spec.f: Invalid value: 0: spec.f in body should have at least 1 properties"
    ]
    assert errors_for(field, {"a": "1", "b": "2", "c": "3"}) == [
        "spec.f: Too many: 3: must have at most 2 items"
    ]


def test_additional_properties_validate_every_value_and_name_the_key() -> None:
    field = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}
    assert errors_for(field, {"a": 1, "b": -1}) == [
        "spec.f.b: Invalid value: -1: spec.f.b in body should be greater than or equal to 0"
    ]


def test_unknown_fields_are_not_validation_errors() -> None:
    assert errors_for({"type": "object", "properties": {"x": {"type": "string"}}}, {"y": 1}) == []


def test_embedded_resources_need_api_version_and_kind() -> None:
    field = {
        "type": "object",
        "x-kubernetes-embedded-resource": True,
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert errors_for(field, {"apiVersion": "v1", "kind": "Pod", "spec": {}}) == []
    assert errors_for(field, {"metadata": {"name": "x"}}) == [
        "spec.f.apiVersion: Required value: must not be empty",
        "spec.f.kind: Required value: must not be empty",
    ]
    assert errors_for(field, {"apiVersion": "a/b/c", "kind": ""}) == [
        'spec.f.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c',
        'spec.f.kind: Invalid value: "": must not be empty',
    ]


# -- arrays --------------------------------------------------------------------------------------


def test_item_counts_are_bounded() -> None:
    field = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2}
    assert errors_for(field, []) == ["spec.f: Invalid value: 0: spec.f in body should have at least 1 items"]
    assert errors_for(field, ["a", "b", "c"]) == ["spec.f: Too many: 3: must have at most 2 items"]


def test_items_are_validated_with_their_index() -> None:
    field = {"type": "array", "items": {"type": "integer", "maximum": 3}}
    assert errors_for(field, [1, 5]) == [
        "spec.f[1]: Invalid value: 5: spec.f[1] in body should be less than or equal to 3"
    ]


def test_set_lists_reject_duplicates() -> None:
    field = {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
    assert errors_for(field, ["a", "b"]) == []
    assert errors_for(field, ["a", "b", "a"]) == ['spec.f[2]: Duplicate value: "a"']


def test_map_lists_reject_duplicate_keys() -> None:
    field = {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name", "protocol"],
        "items": {
            "type": "object",
            "required": ["name", "protocol"],
            "properties": {"name": {"type": "string"}, "protocol": {"type": "string"}},
        },
    }
    ok = [{"name": "a", "protocol": "TCP"}, {"name": "a", "protocol": "UDP"}]
    assert errors_for(field, ok) == []
    duplicated = [*ok, {"name": "a", "protocol": "TCP"}]
    found = CompiledSchema.compile(crd_schema({"type": "object", "properties": {"f": field}})).validate(
        obj({"f": duplicated})
    )
    assert [(e.type, e.field, e.value) for e in found] == [
        (FieldError.DUPLICATE, "spec.f[2]", {"name": "a", "protocol": "TCP"})
    ]


# -- int-or-string and preserved fields ----------------------------------------------------------


def test_int_or_string_accepts_either_and_nothing_else() -> None:
    field = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert errors_for(field, 80) == []
    assert errors_for(field, "http") == []
    assert errors_for(field, [80]) == [
        'spec.f: Invalid value: "array": spec.f in body must be of type integer,string: "array"'
    ]


def test_int_or_string_with_a_pattern_checks_strings_only() -> None:
    field = {
        "x-kubernetes-int-or-string": True,
        "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^[0-9]+%$"}],
    }
    assert errors_for(field, 5) == []
    assert errors_for(field, "50%") == []
    found = errors_for(field, "half")
    assert found[0] == "spec.f: Invalid value: \"half\": spec.f in body should match '^[0-9]+%$'"
    assert found[-1] == 'spec.f: Invalid value: "": spec.f in body must validate all the schemas (allOf)'


def test_preserved_fields_accept_anything_but_declared_properties_are_validated() -> None:
    field = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {"n": {"type": "integer"}},
    }
    assert errors_for(field, {"x": {"deep": [1, "a"]}, "n": 1}) == []
    assert errors_for(field, {"n": "1"}) == [
        'spec.f.n: Invalid value: "string": spec.f.n in body must be of type integer: "string"'
    ]


def test_junctors_one_of_any_of_and_not() -> None:
    field = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
    }
    assert errors_for(field, {"a": "x"}) == []
    assert errors_for(field, {"a": "x", "b": "y"}) == [
        'spec.f: Invalid value: "": spec.f in body must validate one and only one schema (oneOf). '
        "Found 2 valid alternatives"
    ]
    assert errors_for({"type": "string", "anyOf": [{"maxLength": 1}, {"pattern": "^x"}]}, "yy") == [
        'spec.f: Invalid value: "": spec.f in body must validate at least one schema (anyOf)'
    ]
    assert errors_for({"type": "string", "not": {"enum": ["no"]}}, "no") == [
        'spec.f: Invalid value: "": spec.f in body must not validate the schema (not)'
    ]


# -- defaulting ----------------------------------------------------------------------------------

DEFAULTED = crd_schema(
    {
        "type": "object",
        "default": {},
        "properties": {
            "replicas": {"type": "integer", "default": 1},
            "strategy": {
                "type": "object",
                "default": {"type": "Rolling"},
                "properties": {
                    "type": {"type": "string"},
                    "maxSurge": {"type": "integer", "default": 25},
                },
            },
            "optional": {"type": "string", "nullable": True, "default": "x"},
            "ports": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "protocol": {"type": "string", "default": "TCP"},
                        "port": {"type": "integer"},
                    },
                },
            },
            "labels": {"type": "object", "additionalProperties": {"type": "string", "default": "on"}},
        },
    }
)


def test_defaults_fill_missing_fields_recursively_including_inside_applied_defaults() -> None:
    compiled = CompiledSchema.compile(DEFAULTED)
    result = compiled.default({"metadata": {"name": "a"}})
    assert result["spec"] == {
        "replicas": 1,
        "strategy": {"type": "Rolling", "maxSurge": 25},
        "optional": "x",
    }


def test_defaults_apply_inside_existing_objects_and_list_items() -> None:
    compiled = CompiledSchema.compile(DEFAULTED)
    result = compiled.default(obj({"replicas": 3, "strategy": {"type": "Recreate"}, "ports": [{"port": 80}]}))
    assert result["spec"]["replicas"] == 3
    assert result["spec"]["strategy"] == {"type": "Recreate", "maxSurge": 25}
    assert result["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]


def test_null_in_a_non_nullable_field_is_replaced_by_its_default_while_nullable_null_stays() -> None:
    compiled = CompiledSchema.compile(DEFAULTED)
    result = compiled.default(obj({"replicas": None, "optional": None, "labels": {"a": None}}))
    assert result["spec"]["replicas"] == 1
    assert result["spec"]["optional"] is None
    assert result["spec"]["labels"] == {"a": "on"}


def test_defaults_are_copies_not_shared_between_objects() -> None:
    compiled = CompiledSchema.compile(DEFAULTED)
    first = compiled.default(obj({}))
    first["spec"]["strategy"]["type"] = "Changed"
    second = compiled.default(obj({}))
    assert second["spec"]["strategy"]["type"] == "Rolling"


def test_defaulting_a_schema_without_defaults_leaves_the_object_alone() -> None:
    compiled = CompiledSchema.compile(crd_schema({"type": "object", "properties": {"a": {"type": "string"}}}))
    original = obj({"a": "x"})
    assert compiled.default(copy.deepcopy(original)) == original


# -- pruning -------------------------------------------------------------------------------------

PRUNED = crd_schema(
    {
        "type": "object",
        "properties": {
            "known": {"type": "string"},
            "nested": {"type": "object", "properties": {"a": {"type": "integer"}}},
            "free": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"strict": {"type": "object", "properties": {"x": {"type": "string"}}}},
            },
            "map": {
                "type": "object",
                "additionalProperties": {"type": "object", "properties": {"v": {"type": "string"}}},
            },
            "list": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "properties": {"spec": {"type": "object", "properties": {"image": {"type": "string"}}}},
            },
            "required": {"type": "string"},
        },
    },
    status={"type": "object", "properties": {"phase": {"type": "string"}}},
)


def test_pruning_drops_unknown_fields_at_every_level() -> None:
    compiled = CompiledSchema.compile(PRUNED)
    pruned = compiled.prune(
        obj(
            {
                "known": "k",
                "unknown": 1,
                "nested": {"a": 1, "b": 2},
                "map": {"x": {"v": "1", "w": "2"}},
                "list": [{"k": "1", "junk": True}],
            },
            status={"phase": "Up", "extra": 1},
            extraTopLevel={"x": 1},
        )
    )
    assert pruned == obj(
        {"known": "k", "nested": {"a": 1}, "map": {"x": {"v": "1"}}, "list": [{"k": "1"}]},
        status={"phase": "Up"},
    )


def test_pruning_keeps_preserved_subtrees_but_resumes_under_declared_properties() -> None:
    compiled = CompiledSchema.compile(PRUNED)
    pruned = compiled.prune(obj({"free": {"anything": {"deep": [1]}, "strict": {"x": "1", "y": "2"}}}))
    assert pruned["spec"]["free"] == {"anything": {"deep": [1]}, "strict": {"x": "1"}}


def test_pruning_never_touches_root_api_version_kind_and_metadata() -> None:
    compiled = CompiledSchema.compile({"type": "object", "properties": {"spec": {"type": "object"}}})
    original = {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "a", "labels": {"x": "y"}, "weird": 1},
        "spec": {},
    }
    assert compiled.prune(copy.deepcopy(original)) == original


def test_embedded_resources_keep_api_version_kind_and_object_meta_fields_only() -> None:
    compiled = CompiledSchema.compile(PRUNED)
    template = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}, "bogus": 1},
        "spec": {"image": "nginx", "bogus": 2},
        "other": 3,
    }
    pruned = compiled.prune(obj({"template": template}))
    assert pruned["spec"]["template"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}},
        "spec": {"image": "nginx"},
    }


def test_pruning_drops_nulls_of_non_nullable_fields_without_defaults() -> None:
    compiled = CompiledSchema.compile(PRUNED)
    pruned = compiled.prune(obj({"known": None, "required": "x"}))
    assert pruned["spec"] == {"required": "x"}


def test_validate_does_not_change_its_input() -> None:
    compiled = CompiledSchema.compile(DEFAULTED)
    original = obj({"replicas": "x", "extra": 1})
    snapshot = copy.deepcopy(original)
    compiled.validate(original)
    assert original == snapshot
