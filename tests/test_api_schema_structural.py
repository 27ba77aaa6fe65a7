"""Structural-schema rules: every forbidden construct is reported on its path, worded as upstream."""

from __future__ import annotations

from typing import Any

import pytest

from kubevisor.api import CompiledSchema, Invalid, check_structural

ROOT = "spec.validation.openAPIV3Schema"


def root(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def messages(schema: Any, path: str = ROOT) -> list[str]:
    return [str(e) for e in check_structural(schema, path)]


def test_a_well_formed_schema_with_every_extension_is_structural() -> None:
    schema = root(
        apiVersion={"type": "string"},
        kind={"type": "string"},
        metadata={"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}},
        spec={
            "type": "object",
            "required": ["ports"],
            "properties": {
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "any": {"x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name", "protocol"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "protocol": {"type": "string", "default": "TCP"},
                        },
                    },
                },
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "size": {
                    "type": "string",
                    "allOf": [{"pattern": "^[a-z]+$"}, {"maxLength": 5}],
                    "not": {"enum": ["bad"]},
                },
            },
        },
    )
    assert check_structural(schema) == []
    CompiledSchema.compile(schema)


def test_missing_type_on_a_specified_field_is_required_with_upstreams_message() -> None:
    schema = root(spec={"properties": {"a": {"type": "string"}}})
    assert messages(schema) == [
        f"{ROOT}.properties[spec].type: Required value: must not be empty for specified object fields"
    ]


def test_missing_type_on_array_items_and_at_the_root_are_reported_per_level() -> None:
    assert messages({"properties": {}}) == [f"{ROOT}.type: Required value: must not be empty at the root"]
    schema = root(list={"type": "array", "items": {"properties": {}}})
    assert messages(schema) == [
        f"{ROOT}.properties[list].items.type: Required value: must not be empty for specified array items"
    ]


def test_the_root_must_be_an_object() -> None:
    assert messages({"type": "string"}) == [
        f'{ROOT}.type: Invalid value: "string": must be object at the root'
    ]


def test_an_array_without_items_is_rejected() -> None:
    assert messages(root(a={"type": "array"})) == [
        f"{ROOT}.properties[a].items: Required value: must be specified"
    ]


def test_int_or_string_and_preserve_unknown_fields_nodes_need_no_type() -> None:
    schema = root(a={"x-kubernetes-int-or-string": True}, b={"x-kubernetes-preserve-unknown-fields": True})
    assert messages(schema) == []


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"$ref": "#/definitions/x"}, "properties[a].$ref: Forbidden: $ref is not supported"),
        (
            {"type": "object", "definitions": {"x": {}}},
            "properties[a].definitions: Forbidden: definitions is not supported",
        ),
        (
            {"type": "object", "additionalProperties": False},
            "properties[a].additionalProperties: Forbidden: additionalProperties cannot be set to false",
        ),
        (
            {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "properties[a].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity "
            "becomes quadratic",
        ),
        (
            {
                "type": "object",
                "properties": {"x": {"type": "string"}},
                "additionalProperties": {"type": "string"},
            },
            "properties[a].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
        ),
        (
            {"type": "null"},
            "properties[a].type: Forbidden: type cannot be set to null, use nullable as an alternative",
        ),
        (
            {"type": "array", "items": [{"type": "string"}]},
            "properties[a].items: Forbidden: items must be a schema object and not an array",
        ),
        (
            {"type": "string", "x-kubernetes-preserve-unknown-fields": False},
            "properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined",
        ),
        (
            {"type": "string", "pattern": "(?=x)"},
            'properties[a].pattern: Invalid value: "(?=x)": must be a valid regular expression, but isn\'t: '
            "invalid or unsupported Perl syntax: `(?=`",
        ),
    ],
)
def test_forbidden_constructs_are_named_by_path(node: dict[str, Any], expected: str) -> None:
    assert f"{ROOT}.{expected}" in messages(root(a=node))


def test_additional_properties_are_forbidden_at_the_root() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "string"}}
    assert messages(schema) == [f"{ROOT}.additionalProperties: Forbidden: must not be used at the root"]


def test_root_metadata_may_only_restrict_name_and_generate_name() -> None:
    ok = root(
        metadata={
            "type": "object",
            "properties": {"name": {"type": "string"}, "generateName": {"type": "string"}},
        }
    )
    assert messages(ok) == []
    bad = root(metadata={"type": "object", "properties": {"labels": {"type": "object"}}})
    assert messages(bad) == [
        f"{ROOT}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, "
        "but metadata is implicitly specified"
    ]


def test_kind_and_api_version_must_be_strings_and_metadata_an_object() -> None:
    schema = root(kind={"type": "integer"}, apiVersion={"type": "boolean"}, metadata={"type": "string"})
    assert sorted(messages(schema)) == sorted(
        [
            f'{ROOT}.properties[kind].type: Invalid value: "integer": must be string',
            f'{ROOT}.properties[apiVersion].type: Invalid value: "boolean": must be string',
            f'{ROOT}.properties[metadata].type: Invalid value: "string": must be object',
        ]
    )


def test_junctors_may_hold_value_validations_only() -> None:
    schema = root(
        a={
            "type": "string",
            "anyOf": [{"type": "string", "description": "d", "nullable": True, "default": "x"}],
        }
    )
    assert messages(schema) == [
        f"{ROOT}.properties[a].anyOf[0].type: Forbidden: must be empty to be structural",
        f"{ROOT}.properties[a].anyOf[0].default: Forbidden: must be undefined to be structural",
        f"{ROOT}.properties[a].anyOf[0].description: Forbidden: must be empty to be structural",
        f"{ROOT}.properties[a].anyOf[0].nullable: Forbidden: must be false to be structural",
    ]


def test_fields_in_junctors_must_also_be_specified_outside_them() -> None:
    schema = root(
        a={
            "type": "object",
            "properties": {"x": {"type": "string"}},
            "oneOf": [{"required": ["x"]}, {"properties": {"y": {"minLength": 1}}}],
        }
    )
    assert messages(schema) == [
        f"{ROOT}.properties[a].properties[y]: Required value: because it is defined in "
        f"{ROOT}.properties[a].oneOf[1].properties[y]"
    ]


def test_metadata_is_forbidden_in_a_nested_context() -> None:
    schema = root(
        a={
            "type": "object",
            "properties": {"metadata": {"type": "object"}},
            "allOf": [{"properties": {"metadata": {}}}],
        }
    )
    assert (
        f"{ROOT}.properties[a].allOf[0].properties[metadata]: Forbidden: must not be specified in a nested context"
        in (messages(schema))
    )


def test_int_or_string_patterns_may_carry_types_inside_any_of_and_all_of() -> None:
    any_of = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    all_of = {
        "x-kubernetes-int-or-string": True,
        "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^[0-9]+%?$"}],
    }
    assert messages(root(a=any_of, b=all_of)) == []


def test_list_type_map_needs_keys_that_name_required_or_defaulted_scalar_properties() -> None:
    schema = root(
        a={
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name", "nested", "missing"],
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "nested": {"type": "object"}},
                "required": ["nested"],
            },
        }
    )
    assert messages(schema) == [
        f"{ROOT}.properties[a].items.properties[name]: Required value: this property is in "
        "x-kubernetes-list-map-keys, so it must have a default or be a required property",
        f'{ROOT}.properties[a].items.properties[nested].type: Invalid value: "object": must be a scalar type if '
        "parent array's x-kubernetes-list-type is map",
        f'{ROOT}.properties[a].x-kubernetes-list-map-keys: Invalid value: []string{{"name", "nested", "missing"}}: entries must all be names of '
        "item properties",
    ]


def test_list_map_keys_require_list_type_map() -> None:
    schema = root(a={"type": "array", "items": {"type": "string"}, "x-kubernetes-list-map-keys": ["x"]})
    assert messages(schema) == [
        f"{ROOT}.properties[a].x-kubernetes-list-map-keys: Forbidden: must not be specified if "
        "x-kubernetes-list-type is not map"
    ]


def test_list_type_on_a_non_array_and_unknown_list_types_are_rejected() -> None:
    assert messages(root(a={"type": "string", "x-kubernetes-list-type": "set"})) == [
        f'{ROOT}.properties[a].type: Invalid value: "string": must be array if x-kubernetes-list-type is specified'
    ]
    assert messages(
        root(a={"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "bag"})
    ) == [
        f'{ROOT}.properties[a].x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", '
        '"map"'
    ]


def test_embedded_resources_must_be_objects_with_properties_or_preserving_unknown_fields() -> None:
    assert messages(root(a={"type": "string", "x-kubernetes-embedded-resource": True}))[0] == (
        f'{ROOT}.properties[a].type: Invalid value: "string": must be object if x-kubernetes-embedded-resource is true'
    )
    assert messages(root(a={"type": "object", "x-kubernetes-embedded-resource": True})) == [
        f"{ROOT}.properties[a].properties: Required value: must not be empty if x-kubernetes-embedded-resource "
        "is true without x-kubernetes-preserve-unknown-fields"
    ]


def test_defaults_must_validate_against_their_node() -> None:
    schema = root(a={"type": "integer", "maximum": 10, "default": 20})
    assert messages(schema) == [
        f"{ROOT}.properties[a].default: Invalid value: 20: {ROOT}.properties[a].default in body should be less "
        "than or equal to 10"
    ]


def test_defaults_must_not_carry_fields_pruning_would_drop() -> None:
    schema = root(
        a={"type": "object", "properties": {"x": {"type": "string"}}, "default": {"x": "a", "y": "b"}}
    )
    assert messages(schema) == [
        f'{ROOT}.properties[a].default: Invalid value: map[string]interface {{}}{{"x":"a", "y":"b"}}: must not have unknown fields'
    ]


def test_a_custom_path_prefixes_every_message() -> None:
    path = "spec.versions[0].schema.openAPIV3Schema"
    assert messages(root(a={}), path) == [
        f"{path}.properties[a].type: Required value: must not be empty for specified object fields"
    ]


def test_compile_raises_invalid_naming_the_crd_and_every_problem() -> None:
    schema = root(
        a={"properties": {}},
        b={"type": "string", "x-kubernetes-validations": [{"rule": "self.size( > 1"}]},
    )
    with pytest.raises(Invalid) as caught:
        CompiledSchema.compile(schema, name="todos.example.com")
    error = caught.value
    assert error.code == 422
    assert error.message.startswith(
        'CustomResourceDefinition.apiextensions.k8s.io "todos.example.com" is invalid: ['
    )
    fields = [cause["field"] for cause in error.causes]
    assert fields == [f"{ROOT}.properties[a].type", f"{ROOT}.properties[b].x-kubernetes-validations[0].rule"]


def test_a_schema_that_is_not_an_object_is_rejected() -> None:
    assert messages("nope") == [f'{ROOT}: Invalid value: "nope": must be an object']
