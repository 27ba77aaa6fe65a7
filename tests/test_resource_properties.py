"""Round-trip properties of typed resources against the schema they generate (hypothesis)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubevisor.api import CompiledSchema
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
