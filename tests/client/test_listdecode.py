"""The streaming list decoder gives exactly what decoding the whole body gives, however the body is
shaped and chunked (property-based)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevisor.client._listdecode import ListDecoder

INJECT = b'"apiVersion":"v1","kind":"ConfigMap",'
TYPE_FIELDS = {"apiVersion": "v1", "kind": "ConfigMap"}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.text(max_size=20),
    # Text that looks like the cut pattern must not confuse the decoder.
    st.sampled_from(['},{"metadata":', '"items":[', "]", '},{"apiVersion":"v1"', "\\", '"']),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
        # A nested list of objects whose first key is "metadata": a cut candidate inside an item.
        st.lists(st.fixed_dictionaries({"metadata": children, "spec": children}), min_size=1, max_size=3),
    ),
    max_leaves=12,
)
builtin_item = st.fixed_dictionaries(
    {"metadata": st.fixed_dictionaries({"name": st.text(max_size=10)}), "data": values}
)
custom_item = st.fixed_dictionaries(
    {"apiVersion": st.just("example.com/v1"), "kind": st.just("Gadget"), "metadata": values, "spec": values}
)


def envelope(items: list[Any], sorted_keys: bool) -> dict[str, Any]:
    meta = {"resourceVersion": "42", "continue": "abc"}
    if sorted_keys:  # unstructured lists (custom resources): keys sorted, items second
        return {"apiVersion": "example.com/v1", "items": items, "kind": "GadgetList", "metadata": meta}
    return {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": meta, "items": items}


def decode(body: bytes, cuts: list[int], inject: bytes = INJECT) -> tuple[list[Any], dict[str, Any]]:
    decoder = ListDecoder(inject)
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    for start, end in itertools.pairwise(points):
        decoder.feed(body[start:end])
    return decoder.finish()


def expected(document: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    items = [item if "kind" in item else {**TYPE_FIELDS, **item} for item in document["items"]]
    return items, {k: v for k, v in document.items() if k != "items"}


@settings(max_examples=300, deadline=None)
@given(
    items=st.one_of(st.lists(builtin_item, max_size=6), st.lists(custom_item, max_size=6)),
    sorted_keys=st.booleans(),
    pretty=st.booleans(),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
)
def test_streamed_decoding_equals_whole_body_decoding(
    items: list[Any], sorted_keys: bool, pretty: bool, cuts: list[int]
) -> None:
    document = envelope(items, sorted_keys)
    body = json.dumps(document, indent=1).encode() if pretty else orjson.dumps(document)
    got_items, got_envelope = decode(body, cuts)
    want_items, want_envelope = expected(document)
    assert got_items == want_items
    assert got_envelope == want_envelope


def test_items_are_cut_and_decoded_while_the_body_arrives() -> None:
    items = [{"metadata": {"name": f"cm-{i}"}, "data": {"k": str(i)}} for i in range(100)]
    body = orjson.dumps(envelope(items, sorted_keys=False))
    decoder = ListDecoder(INJECT)
    half = len(body) // 2
    decoder.feed(body[:half])
    assert 40 < len(decoder.items) < 50  # half of the items are already objects
    decoder.feed(body[half:])
    got, meta = decoder.finish()
    assert got[0] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm-0"},
        "data": {"k": "0"},
    }
    assert len(got) == 100 and meta["metadata"]["resourceVersion"] == "42"


def test_an_empty_list_and_a_null_items_field() -> None:
    assert decode(orjson.dumps(envelope([], sorted_keys=False)), []) == ([], expected(envelope([], False))[1])
    body = b'{"kind":"ConfigMapList","apiVersion":"v1","metadata":{},"items":null}'
    assert decode(body, [10]) == ([], {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {}})


def test_an_item_carrying_its_own_kind_keeps_it() -> None:
    body = b'{"kind":"List","apiVersion":"v1","metadata":{},"items":[{"metadata":{},"kind":"Secret","apiVersion":"v1"}]}'
    items, _ = decode(body, [])
    assert items == [{"apiVersion": "v1", "kind": "Secret", "metadata": {}}]


def test_a_body_that_is_not_json_raises() -> None:
    import pytest

    with pytest.raises(orjson.JSONDecodeError):
        decode(b'{"kind":"X","items":[{"metadata":', [5])
