"""CEL ``x-kubernetes-validations``: compile-time rejection, evaluation, transition rules."""

from __future__ import annotations

from typing import Any

import pytest

from kubevisor.api import CompiledSchema, FieldError, Invalid

ROOT = "spec.validation.openAPIV3Schema"


def with_spec(spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"metadata": {"type": "object"}, "spec": spec}}


def compiled(spec: dict[str, Any]) -> CompiledSchema:
    return CompiledSchema.compile(with_spec(spec))


def errors(schema: CompiledSchema, spec: Any, old_spec: Any = None) -> list[str]:
    old = None if old_spec is None else {"metadata": {"name": "a"}, "spec": old_spec}
    return [str(e) for e in schema.validate({"metadata": {"name": "a"}, "spec": spec}, old)]


def compile_problems(spec: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(Invalid) as caught:
        compiled(spec)
    return caught.value.causes


REPLICAS = {
    "type": "object",
    "x-kubernetes-validations": [
        {
            "rule": "self.minReplicas <= self.replicas",
            "message": "replicas should be greater than or equal to minReplicas",
        },
        {"rule": "self.replicas <= self.maxReplicas"},
    ],
    "properties": {
        "minReplicas": {"type": "integer"},
        "replicas": {"type": "integer"},
        "maxReplicas": {"type": "integer"},
    },
}


def test_a_passing_rule_reports_nothing() -> None:
    assert errors(compiled(REPLICAS), {"minReplicas": 1, "replicas": 2, "maxReplicas": 3}) == []


def test_a_failing_rule_reports_its_message_on_the_node_with_the_node_type_as_value() -> None:
    assert errors(compiled(REPLICAS), {"minReplicas": 5, "replicas": 2, "maxReplicas": 3}) == [
        'spec: Invalid value: "object": replicas should be greater than or equal to minReplicas'
    ]


def test_a_rule_without_message_reports_the_failed_rule() -> None:
    assert errors(compiled(REPLICAS), {"minReplicas": 1, "replicas": 9, "maxReplicas": 3}) == [
        'spec: Invalid value: "object": failed rule: self.replicas <= self.maxReplicas'
    ]


def test_rules_on_scalars_and_list_items_see_that_value_as_self() -> None:
    spec = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('app-')"}]},
            "ports": {
                "type": "array",
                "items": {
                    "type": "integer",
                    "x-kubernetes-validations": [{"rule": "self > 0 && self < 65536"}],
                },
            },
        },
    }
    assert errors(compiled(spec), {"name": "db", "ports": [80, 0]}) == [
        "spec.name: Invalid value: \"string\": failed rule: self.startsWith('app-')",
        'spec.ports[1]: Invalid value: "integer": failed rule: self > 0 && self < 65536',
    ]


def test_message_expression_builds_the_message_from_the_object() -> None:
    spec = {
        "type": "object",
        "properties": {"replicas": {"type": "integer"}},
        "x-kubernetes-validations": [
            {
                "rule": "self.replicas <= 5",
                "message": "static",
                "messageExpression": "'replicas ' + string(self.replicas) + ' exceeds 5'",
            }
        ],
    }
    assert errors(compiled(spec), {"replicas": 7}) == ['spec: Invalid value: "object": replicas 7 exceeds 5']


def test_a_message_expression_that_fails_falls_back_to_the_message() -> None:
    spec = {
        "type": "object",
        "properties": {"replicas": {"type": "integer"}},
        "x-kubernetes-validations": [
            {"rule": "self.replicas <= 5", "message": "too many", "messageExpression": "string(1 / 0)"}
        ],
    }
    assert errors(compiled(spec), {"replicas": 7}) == ['spec: Invalid value: "object": too many']


def test_reason_selects_the_error_type_and_field_path_extends_the_path() -> None:
    spec = {
        "type": "object",
        "properties": {"limits": {"type": "object", "properties": {"cpu": {"type": "integer"}}}},
        "x-kubernetes-validations": [
            {
                "rule": "has(self.limits)",
                "reason": "FieldValueRequired",
                "fieldPath": ".limits",
                "message": "set it",
            },
            {
                "rule": "false",
                "reason": "FieldValueForbidden",
                "fieldPath": ".limits.cpu",
                "message": "never",
            },
        ],
    }
    found = compiled(spec).validate({"metadata": {}, "spec": {}})
    assert [(e.type, e.field, e.detail) for e in found] == [
        (FieldError.REQUIRED, "spec.limits", "set it"),
        (FieldError.FORBIDDEN, "spec.limits.cpu", "never"),
    ]
    assert [str(e) for e in found] == [
        "spec.limits: Required value: set it",
        "spec.limits.cpu: Forbidden: never",
    ]


def test_evaluation_errors_name_the_rule() -> None:
    spec = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "self.a == 'x'"}],
    }
    assert errors(compiled(spec), {}) == [
        "spec: Invalid value: \"object\": no such key: a evaluating rule: self.a == 'x'"
    ]


def test_has_guards_optional_fields() -> None:
    spec = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "!has(self.a) || self.a.size() > 1"}],
    }
    assert errors(compiled(spec), {}) == []
    assert errors(compiled(spec), {"a": "x"}) == [
        'spec: Invalid value: "object": failed rule: !has(self.a) || self.a.size() > 1'
    ]


def test_macros_and_the_kubernetes_string_and_list_libraries_are_available() -> None:
    spec = {
        "type": "object",
        "properties": {
            "names": {"type": "array", "items": {"type": "string"}},
            "numbers": {"type": "array", "items": {"type": "integer"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "x-kubernetes-validations": [
            {"rule": "self.names.all(n, n.lowerAscii() == n)", "message": "lower"},
            {"rule": "self.numbers.isSorted() && self.numbers.sum() < 10 && self.numbers.max() < 5"},
            {"rule": "self.labels.all(k, k.indexOf('/') == -1)", "message": "no prefix"},
            {"rule": "self.names.exists_one(n, n.split('-').size() == 2)", "message": "one dash"},
            {"rule": "'x'.upperAscii() + ' a '.trim() + 'abc'.substring(1) == 'Xabc'"},
            {"rule": "'a1b2'.findAll('[0-9]').join(',') == '1,2' && 'abc'.find('b.') == 'bc'"},
        ],
    }
    schema = compiled(spec)
    assert errors(schema, {"names": ["a-b", "c"], "numbers": [1, 2, 4], "labels": {"k": "v"}}) == []
    assert errors(schema, {"names": ["A", "c"], "numbers": [3, 1], "labels": {"a/b": "v"}}) == [
        'spec: Invalid value: "object": lower',
        'spec: Invalid value: "object": failed rule: self.numbers.isSorted() && self.numbers.sum() < 10 && '
        "self.numbers.max() < 5",
        'spec: Invalid value: "object": no prefix',
        'spec: Invalid value: "object": one dash',
    ]


def test_property_names_that_are_not_identifiers_are_reachable_escaped() -> None:
    spec = {
        "type": "object",
        "properties": {"max-size": {"type": "integer"}, "namespace": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "self.max__dash__size < 10 && self.__namespace__ != 'x'"}],
    }
    assert errors(compiled(spec), {"max-size": 3, "namespace": "y"}) == []
    assert len(errors(compiled(spec), {"max-size": 30, "namespace": "y"})) == 1


def test_date_time_fields_are_timestamps_and_durations_are_durations() -> None:
    spec = {
        "type": "object",
        "properties": {
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "timeout": {"type": "string", "format": "duration"},
        },
        "x-kubernetes-validations": [{"rule": "self.start < self.end && self.timeout < duration('1h')"}],
    }
    good = {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z", "timeout": "30m"}
    assert errors(compiled(spec), good) == []
    assert len(errors(compiled(spec), {**good, "timeout": "2h"})) == 1


def test_root_rules_see_only_name_and_generate_name_of_metadata() -> None:
    def root_schema(rule: str) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}},
            "x-kubernetes-validations": [{"rule": rule, "message": "bad name"}],
        }

    schema = CompiledSchema.compile(root_schema("self.metadata.name.startsWith('ok-')"))
    found = schema.validate({"metadata": {"name": "nope", "labels": {"a": "b"}}, "spec": {}})
    # The root has an empty path, so the message stands alone.
    assert [str(e) for e in found] == ['Invalid value: "object": bad name']
    with pytest.raises(Invalid, match="undefined field 'labels'"):
        CompiledSchema.compile(root_schema("!has(self.metadata.labels)"))


# -- transition rules ----------------------------------------------------------------------------

IMMUTABLE = {
    "type": "object",
    "properties": {
        "mode": {
            "type": "string",
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "mode is immutable"}],
        },
        "ports": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "port": {
                        "type": "integer",
                        "x-kubernetes-validations": [
                            {"rule": "self >= oldSelf", "message": "may not decrease"}
                        ],
                    },
                },
            },
        },
    },
}


def test_transition_rules_are_skipped_on_create() -> None:
    assert errors(compiled(IMMUTABLE), {"mode": "a", "ports": [{"name": "http", "port": 80}]}) == []


def test_transition_rules_compare_with_the_old_value_on_update() -> None:
    schema = compiled(IMMUTABLE)
    assert errors(schema, {"mode": "a"}, {"mode": "a"}) == []
    assert errors(schema, {"mode": "b"}, {"mode": "a"}) == [
        'spec.mode: Invalid value: "string": mode is immutable'
    ]


def test_transition_rules_are_skipped_when_the_field_is_new() -> None:
    assert errors(compiled(IMMUTABLE), {"mode": "b"}, {}) == []


def test_transition_rules_correlate_map_list_items_by_key_not_position() -> None:
    schema = compiled(IMMUTABLE)
    old = {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}
    reordered = {"ports": [{"name": "https", "port": 443}, {"name": "http", "port": 80}]}
    assert errors(schema, reordered, old) == []
    lowered = {
        "ports": [{"name": "https", "port": 443}, {"name": "http", "port": 79}, {"name": "new", "port": 1}]
    }
    assert errors(schema, lowered, old) == ['spec.ports[1].port: Invalid value: "integer": may not decrease']


def test_old_self_under_uncorrelatable_list_items_is_rejected() -> None:
    spec = {
        "type": "object",
        "properties": {
            "tags": {
                "type": "array",
                "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]},
            }
        },
    }
    [problem] = compile_problems(spec)
    assert (
        problem["field"] == f"{ROOT}.properties[spec].properties[tags].items.x-kubernetes-validations[0].rule"
    )
    assert problem["message"] == (
        'Invalid value: "self == oldSelf": oldSelf cannot be used on the uncorrelatable portion of the schema '
        f"within {ROOT}.properties[spec].properties[tags]"
    )


# -- compile-time rejection ----------------------------------------------------------------------


def test_a_rule_with_a_syntax_error_rejects_the_schema() -> None:
    spec = {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.a >"}],
        "properties": {"a": {"type": "integer"}},
    }
    [problem] = compile_problems(spec)
    assert problem["field"] == f"{ROOT}.properties[spec].x-kubernetes-validations[0].rule"
    assert problem["message"].startswith('Invalid value: "self.a >": compilation failed: ERROR: <input>:1:')
    assert "Syntax error" in problem["message"]


def test_a_rule_selecting_an_undeclared_field_rejects_the_schema() -> None:
    spec = {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.replica > 1"}],
        "properties": {"replicas": {"type": "integer"}},
    }
    [problem] = compile_problems(spec)
    assert problem["message"] == (
        "Invalid value: \"self.replica > 1\": compilation failed: ERROR: <input>:1:5: undefined field 'replica'\n"
        " | self.replica > 1\n"
        " | ....^"
    )


def test_undeclared_variables_and_functions_reject_the_schema() -> None:
    spec = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "other == 1"}, {"rule": "self.a.shout()"}],
    }
    found = [c["message"] for c in compile_problems(spec)]
    assert "undeclared reference to 'other'" in found[0]
    assert "undeclared reference to 'shout'" in found[1]


def test_selecting_a_field_of_a_scalar_rejects_the_schema() -> None:
    spec = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "self.a.b == 1"}],
    }
    [problem] = compile_problems(spec)
    assert "type 'string' does not support field selection" in problem["message"]


def test_preserved_and_map_nodes_allow_any_field_at_compile_time() -> None:
    spec = {
        "type": "object",
        "properties": {
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "x-kubernetes-validations": [{"rule": "!has(self.free.anything) && !has(self.labels.app)"}],
    }
    assert errors(compiled(spec), {"free": {}, "labels": {}}) == []


def test_rule_shape_problems_are_reported_on_their_fields() -> None:
    spec = {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": ""},
            {"rule": "true", "message": "two\nlines"},
            {"rule": "true", "reason": "Bogus"},
            {"rule": "true", "fieldPath": ".nope"},
            {"rule": "true", "messageExpression": "self +"},
        ],
    }
    found = [
        (c["field"].removeprefix(f"{ROOT}.properties[spec]."), c["message"]) for c in compile_problems(spec)
    ]
    assert found == [
        ("x-kubernetes-validations[0].rule", "Required value: rule is not specified"),
        (
            "x-kubernetes-validations[1].message",
            'Invalid value: "two\\nlines": message must not contain line breaks',
        ),
        (
            "x-kubernetes-validations[2].reason",
            'Unsupported value: "Bogus": supported values: "FieldValueInvalid", "FieldValueForbidden", '
            '"FieldValueRequired", "FieldValueDuplicate"',
        ),
        (
            "x-kubernetes-validations[3].fieldPath",
            'Invalid value: ".nope": fieldPath must be a valid path: does not refer to a valid field: .nope',
        ),
        (
            "x-kubernetes-validations[4].messageExpression",
            found[4][1],
        ),
    ]
    assert found[4][1].startswith(
        'Invalid value: "self +": messageExpression compilation failed: ERROR: <input>:1:'
    )


def test_rules_are_forbidden_inside_junctors() -> None:
    spec = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "anyOf": [{"x-kubernetes-validations": [{"rule": "true"}]}],
    }
    [problem] = compile_problems(spec)
    assert problem["field"] == f"{ROOT}.properties[spec].anyOf[0].x-kubernetes-validations"
    assert problem["message"] == "Forbidden: must be empty to be structural"
