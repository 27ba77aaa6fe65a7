"""Predicates filter events, per event kind, and compose."""

from __future__ import annotations

from typing import Any

from kubevisor.runtime import (
    Predicate,
    annotations_changed,
    generation_changed,
    labels_changed,
    matching,
    resource_version_changed,
)


def obj(generation: int = 1, rv: str = "1", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "a", "generation": generation, "resourceVersion": rv, **meta}}


def test_generation_changed_passes_spec_changes_creates_and_deletes_but_not_status_writes() -> None:
    p = generation_changed()
    assert p.create(obj()) and p.delete(obj())
    assert p.update(obj(1), obj(2))
    assert not p.update(obj(1, rv="1"), obj(1, rv="2"))


def test_labels_and_annotations_changed_compare_those_maps_only() -> None:
    assert labels_changed().update(obj(labels={"a": "1"}), obj(labels={"a": "2"}))
    assert not labels_changed().update(obj(labels={}), obj(rv="2"))
    assert annotations_changed().update(obj(), obj(annotations={"x": "y"}))
    assert not annotations_changed().update(obj(labels={"a": "1"}), obj(labels={"a": "2"}))


def test_resource_version_changed_drops_resyncs() -> None:
    same = obj()
    assert not resource_version_changed().update(same, same)
    assert resource_version_changed().update(obj(rv="1"), obj(rv="2"))


def test_predicates_compose_with_and_or_and_not() -> None:
    either = generation_changed() | labels_changed()
    both = generation_changed() & labels_changed()
    assert either.update(obj(1), obj(1, labels={"a": "b"}))
    assert not both.update(obj(1), obj(1, labels={"a": "b"}))
    assert both.update(obj(1), obj(2, labels={"a": "b"}))
    assert (~generation_changed()).update(obj(1), obj(1))
    assert not (~Predicate()).create(obj())
    assert "generation_changed" in repr(either)


def test_matching_filters_every_event_kind_by_the_object() -> None:
    big = matching(lambda o: o["metadata"].get("labels", {}).get("size") == "big")
    assert big.create(obj(labels={"size": "big"}))
    assert not big.delete(obj(labels={"size": "small"}))
    assert big.update(obj(), obj(labels={"size": "big"}))
