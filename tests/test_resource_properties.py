"""Round-trip properties of typed resources against the schema they generate (hypothesis)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, PrivateAttr

from kubevisor.api import CompiledSchema
from kubevisor.resource import Resource
from tests.test_resource import Color, Limits, Port, Widget, WidgetSpec, WidgetStatus

COMPILED = CompiledSchema.compile(Widget.openapi_schema())

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
ports = st.lists(
    st.builds(
        Port,
        name=st.text("abc", min_size=1, max_size=2),
        port=st.integers(1, 65535),
        protocol=st.sampled_from(["TCP", "UDP"]),
    ),
    max_size=3,
    unique_by=lambda p: p.name,
)
specs = st.builds(
    WidgetSpec,
    replicas=st.sampled_from([0, 2, 4, 10]),
    ratio=st.floats(0.01, 0.99),
    step=st.integers(-3, 3).map(lambda n: n * 5),
    color=st.sampled_from(list(Color)),
    size=st.sampled_from(["S", "M", "L"]),
    port=st.one_of(st.integers(1, 9), st.text(max_size=3)),
    name_pattern=st.text("xyz", min_size=1, max_size=4),
    ports=ports,
    tags=st.lists(st.text(max_size=3), unique=True, max_size=3),
    labels=st.dictionaries(st.text(max_size=2), st.text(max_size=2), max_size=2),
    anything=st.dictionaries(st.text(max_size=3), json_values, max_size=3),
    raw=json_values,
    note=st.one_of(st.none(), st.text(max_size=4)),
    limits=st.builds(Limits, min=st.integers(0, 3), max=st.integers(3, 6)),
)
widgets = st.builds(
    lambda spec, status, name: Widget(metadata={"name": name}, spec=spec, status=status),
    specs,
    st.builds(WidgetStatus, replicas=st.integers(0, 3)),
    st.text("abcdef", min_size=1, max_size=5),
)


def stored(wire: dict[str, Any]) -> dict[str, Any]:
    return COMPILED.default(COMPILED.prune(copy.deepcopy(wire)))


@settings(max_examples=200)
@given(widgets)
def test_the_wire_form_of_any_valid_widget_passes_the_generated_schema(widget: Widget) -> None:
    assert COMPILED.validate(stored(widget.to_wire())) == []


@settings(max_examples=200)
@given(widgets)
def test_a_stored_widget_round_trips_through_the_model_unchanged(widget: Widget) -> None:
    wire = stored(widget.to_wire())
    assert Widget.from_wire(copy.deepcopy(wire)).to_wire() == wire


@settings(max_examples=200)
@given(widgets)
def test_the_model_reads_back_what_it_wrote(widget: Widget) -> None:
    assert Widget.from_wire(stored(widget.to_wire())) == widget


# -- model-instance defaults are copied as deepcopy copies them -----------------------------------


class Box(BaseModel):
    model_config = ConfigDict(extra="allow")

    value: Any = None
    _notes: list[Any] = PrivateAttr(default_factory=list)


def _box(value: Any, extra: dict[str, Any], notes: list[Any], unset: bool) -> Box:
    box = Box(**extra) if unset else Box(value=value, **extra)
    box._notes.extend(notes)
    return box


plain_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.datetimes(),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.sampled_from(list(Color)),
    st.frozensets(st.integers(0, 9), max_size=3),
)
plain_data = st.recursive(
    plain_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=2), inner, max_size=3),
        st.sets(st.text(max_size=2), max_size=3),
        st.builds(
            _box,
            inner,
            st.dictionaries(st.sampled_from(["x", "y"]), inner, max_size=2),
            st.lists(inner, max_size=2),
            st.booleans(),
        ),
    ),
    max_leaves=12,
)


def _state(value: Any) -> Any:
    """``value`` as nested tuples that compare equal only for equal types, contents and, for
    models, equal fields set, extra fields and private attributes."""
    if isinstance(value, BaseModel):
        return (
            type(value),
            _state(value.__dict__),
            frozenset(value.model_fields_set),
            _state(value.__pydantic_extra__),
            _state(value.__pydantic_private__),
        )
    if isinstance(value, list | tuple):
        return (type(value), *(_state(item) for item in value))
    if isinstance(value, dict):
        return (dict, tuple((key, _state(item)) for key, item in value.items()))
    return (type(value), value)


def _mutable_ids(value: Any) -> set[int]:
    found: set[int] = set()
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, BaseModel):
            found.add(id(item))
            pending += [item.__dict__, item.__pydantic_extra__, item.__pydantic_private__]
        elif isinstance(item, list | dict | set):
            found.add(id(item))
            pending += list(item.values() if isinstance(item, dict) else item)
        elif isinstance(item, tuple):
            pending += list(item)
    return found


@settings(max_examples=200, deadline=None)
@given(plain_data, st.lists(plain_data, max_size=2))
def test_a_model_instance_default_of_plain_data_is_copied_as_deepcopy_copies_it(
    value: Any, notes: list[Any]
) -> None:
    default = _box(value, {}, notes, unset=False)

    class Holder(Resource, group="example.com", version="v1", kind="Holder"):
        spec: Box = default

    assert Holder.model_fields["spec"].default_factory is not None
    first, second = Holder().spec, Holder().spec
    assert _state(first) == _state(second) == _state(copy.deepcopy(default))
    assert not _mutable_ids(first) & _mutable_ids(default)
    assert not _mutable_ids(first) & _mutable_ids(second)
