"""Properties of defaulting and pruning that must hold for every object, checked with hypothesis."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubevisor.api import CompiledSchema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "default": {},
            "properties": {
                "title": {"type": "string", "maxLength": 8, "default": "untitled"},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 5, "default": 1},
                "ratio": {"type": "number", "nullable": True},
                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "labels": {"type": "object", "additionalProperties": {"type": "string", "default": "x"}},
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "protocol": {"type": "string", "default": "TCP"},
                            "port": {"x-kubernetes-int-or-string": True},
                        },
                    },
                },
                "free": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "inner": {"type": "object", "properties": {"x": {"type": "boolean", "default": True}}}
                    },
                },
                "nested": {
                    "type": "object",
                    "properties": {
                        "deep": {
                            "type": "object",
                            "default": {"level": 1},
                            "properties": {
                                "level": {"type": "integer"},
                                "note": {"type": "string", "default": "n"},
                            },
                        }
                    },
                },
            },
        },
    },
}
COMPILED = CompiledSchema.compile(SCHEMA)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=False, width=32), st.text(max_size=4)
)
any_json = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
junk = st.dictionaries(st.sampled_from(["zz", "other", "x-extra"]), any_json, max_size=2)


def with_junk(core: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(core, junk).map(lambda pair: {**pair[1], **pair[0]})


def optional_fields(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


port = with_junk(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["a", "b", "c"])},
        optional={
            "protocol": st.sampled_from(["TCP", "UDP"]),
            "port": st.one_of(st.integers(1, 9), st.text(max_size=3)),
        },
    )
)
valid_spec = with_junk(
    optional_fields(
        title=st.text(max_size=8),
        replicas=st.integers(0, 5),
        ratio=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
        color=st.sampled_from(["red", "blue"]),
        tags=st.lists(st.text(max_size=3), unique=True, max_size=3),
        labels=st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=3),
        ports=st.lists(port, max_size=3, unique_by=lambda p: p["name"]),
        free=st.dictionaries(st.text(max_size=3), any_json, max_size=3).map(
            lambda d: {k: v for k, v in d.items() if k != "inner"}
        ),
        nested=with_junk(
            optional_fields(deep=with_junk(optional_fields(level=st.integers(), note=st.text(max_size=3))))
        ),
    )
)
valid_objects = st.builds(
    lambda spec, extra: {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "a", "anything": extra},
        "spec": spec,
    },
    valid_spec,
    any_json,
)
arbitrary_objects = st.one_of(
    valid_objects,
    st.builds(lambda spec: {"metadata": {}, "spec": spec}, any_json),
    st.dictionaries(st.sampled_from(["spec", "status", "metadata", "x"]), any_json, max_size=3),
)


def prune_and_default(value: Any) -> Any:
    return COMPILED.default(COMPILED.prune(copy.deepcopy(value)))


@settings(max_examples=300)
@given(arbitrary_objects)
def test_pruning_after_defaulting_is_idempotent(value: Any) -> None:
    once = COMPILED.prune(COMPILED.default(copy.deepcopy(value)))
    twice = COMPILED.prune(COMPILED.default(copy.deepcopy(once)))
    assert twice == once


@settings(max_examples=300)
@given(arbitrary_objects)
def test_defaulting_after_pruning_is_idempotent(value: Any) -> None:
    once = prune_and_default(value)
    assert prune_and_default(once) == once


@settings(max_examples=300)
@given(valid_objects)
def test_generated_objects_are_valid(value: Any) -> None:
    assert COMPILED.validate(value) == []


@settings(max_examples=300)
@given(valid_objects)
def test_an_object_valid_before_pruning_stays_valid_after(value: Any) -> None:
    assert COMPILED.validate(COMPILED.prune(copy.deepcopy(value))) == []


@settings(max_examples=300)
@given(valid_objects)
def test_defaulting_a_valid_object_keeps_it_valid_and_fills_every_default(value: Any) -> None:
    defaulted = COMPILED.default(copy.deepcopy(value))
    assert COMPILED.validate(defaulted) == []
    spec = defaulted["spec"]
    assert {"title", "replicas", "color"} <= spec.keys()
    for item in spec.get("ports", []):
        assert "protocol" in item


@settings(max_examples=300)
@given(arbitrary_objects)
def test_pruning_never_adds_fields_and_keeps_root_metadata(value: Any) -> None:
    pruned = COMPILED.prune(copy.deepcopy(value))
    assert set(pruned) <= set(value)
    if isinstance(value, dict) and "metadata" in value:
        assert pruned["metadata"] == value["metadata"]


@settings(max_examples=200)
@given(arbitrary_objects)
def test_validation_never_raises_on_arbitrary_input(value: Any) -> None:
    assert isinstance(COMPILED.validate(value), list)
