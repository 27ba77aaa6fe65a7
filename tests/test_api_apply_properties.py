"""The properties of server-side apply the issue requires, checked on generated configurations:

* applying the same configuration twice is a no-op;
* two managers owning disjoint fields never conflict;
* removing a field from a manager's configuration removes it from the object exactly when no other
  manager owns it.

Configurations range over a custom resource with scalars, a granular map, a set, a map list keyed
by name, an atomic list and labels, so each list and map semantics takes part.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubevisor.api import Conflict, FieldSet, TypeResolver, apply, update_managed_fields
from kubevisor.api._apply_walk import _ABSENT, compare, field_paths
from kubevisor.api._fieldset import Path, key_element, value_element

T0 = datetime(2024, 1, 1, tzinfo=UTC)

TYPES = TypeResolver().resource(
    {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    **{name: {"type": "string"} for name in ("a", "b", "c", "d", "e", "f")},
                    "config": {"type": "object", "additionalProperties": {"type": "string"}},
                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "items": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                        },
                    },
                },
            }
        },
    }
)

SCALARS = ("a", "b", "c", "d", "e", "f")
CONFIG_KEYS = ("k1", "k2", "k3", "k4")
TAGS = ("t1", "t2", "t3", "t4")
ITEMS = ("i1", "i2", "i3", "i4")
LABELS = ("l1", "l2", "l3", "l4")
VALUES = st.sampled_from(["x", "y", "z"])


@dataclass(frozen=True)
class Universe:
    """The parts of the resource a manager's configurations may set."""

    scalars: tuple[str, ...] = SCALARS
    config: tuple[str, ...] = CONFIG_KEYS
    tags: tuple[str, ...] = TAGS
    items: tuple[str, ...] = ITEMS
    labels: tuple[str, ...] = LABELS
    args: bool = True


EVERYTHING = Universe()


def subset(options: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(options), unique=True) if options else st.just([])


@st.composite
def configs(draw: st.DrawFn, universe: Universe = EVERYTHING) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for name in draw(subset(universe.scalars)):
        spec[name] = draw(VALUES)
    config = {key: draw(VALUES) for key in draw(subset(universe.config))}
    if config:
        spec["config"] = config
    tags = draw(subset(universe.tags))
    if tags:
        spec["tags"] = tags
    items = [{"name": name, "value": draw(VALUES)} for name in draw(subset(universe.items))]
    if items:
        spec["items"] = items
    if universe.args and draw(st.booleans()):
        spec["args"] = draw(st.lists(VALUES, min_size=1, max_size=3))
    obj: dict[str, Any] = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    labels = {key: draw(VALUES) for key in draw(subset(universe.labels))}
    if labels:
        obj["metadata"]["labels"] = labels
    if spec:
        obj["spec"] = spec
    return obj


def do_apply(
    live: dict[str, Any] | None, config: dict[str, Any], manager: str, force: bool, step: int
) -> dict[str, Any]:
    return apply(
        live,
        config,
        manager=manager,
        api_version="example.com/v1",
        types=TYPES,
        force=force,
        now=T0 + timedelta(minutes=step),
    )


def owned_by_others(obj: dict[str, Any], manager: str) -> set[Path]:
    paths: set[Path] = set()
    for entry in obj["metadata"].get("managedFields", []):
        if (entry.get("manager"), entry["operation"]) != (manager, "Apply"):
            paths |= FieldSet.from_fields_v1(entry["fieldsV1"]).paths
    return paths


HISTORY = st.lists(st.tuples(st.sampled_from(["alice", "bob", "carol"]), configs()), min_size=1, max_size=4)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(history=HISTORY, manager=st.sampled_from(["alice", "bob", "dave"]), config=configs())
def test_applying_the_same_configuration_twice_is_a_no_op(
    history: list[tuple[str, dict[str, Any]]], manager: str, config: dict[str, Any]
) -> None:
    live: dict[str, Any] | None = None
    for step, (who, cfg) in enumerate(history):
        live = do_apply(live, cfg, who, True, step)
    once = do_apply(live, config, manager, True, 10)
    twice = do_apply(once, config, manager, False, 20)
    assert twice == once


# The two managers split every part of the resource between them.
LEFT = Universe(SCALARS[:3], CONFIG_KEYS[:2], TAGS[:2], ITEMS[:2], LABELS[:2], args=True)
RIGHT = Universe(SCALARS[3:], CONFIG_KEYS[2:], TAGS[2:], ITEMS[2:], LABELS[2:], args=False)


@PROPERTY
@given(rounds=st.lists(st.tuples(configs(LEFT), configs(RIGHT)), min_size=1, max_size=4))
def test_two_managers_owning_disjoint_fields_never_conflict(
    rounds: list[tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    live: dict[str, Any] | None = None
    for step, (left, right) in enumerate(rounds):
        try:
            live = do_apply(live, left, "left", False, 2 * step)
            live = do_apply(live, right, "right", False, 2 * step + 1)
        except Conflict as conflict:  # pragma: no cover - the property failing
            raise AssertionError(f"disjoint managers conflicted: {conflict.message}") from conflict
    assert live is not None
    # Each manager's latest values are all there.
    last_left, last_right = rounds[-1]
    for source in (last_left, last_right):
        for name, value in source.get("spec", {}).items():
            if name in SCALARS:
                assert live["spec"][name] == value


def removable(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The elements of a configuration that can be left out, as (kind, name)."""
    spec = config.get("spec", {})
    out = [("scalar", name) for name in SCALARS if name in spec]
    out += [("config", key) for key in spec.get("config", {})]
    out += [("tag", tag) for tag in spec.get("tags", [])]
    out += [("item", item["name"]) for item in spec.get("items", [])]
    out += [("label", key) for key in config["metadata"].get("labels", {})]
    return out


def without(config: dict[str, Any], kind: str, name: str) -> tuple[dict[str, Any], Path]:
    """The configuration without one element, and that element's path."""
    out = copy.deepcopy(config)
    spec = out.get("spec", {})
    if kind == "scalar":
        del spec[name]
        path: Path = ("f:spec", "f:" + name)
    elif kind == "config":
        del spec["config"][name]
        path = ("f:spec", "f:config", "f:" + name)
    elif kind == "tag":
        spec["tags"].remove(name)
        path = ("f:spec", "f:tags", value_element(name))
    elif kind == "item":
        spec["items"] = [item for item in spec["items"] if item["name"] != name]
        path = ("f:spec", "f:items", key_element({"name": name}))
    else:
        del out["metadata"]["labels"][name]
        path = ("f:metadata", "f:labels", "f:" + name)
    return out, path


@st.composite
def edits(draw: st.DrawFn, live: dict[str, Any]) -> dict[str, Any]:
    """A client-side edit (an Update): new values for some scalars, config entries and item values."""
    edited = copy.deepcopy(live)
    spec = edited.setdefault("spec", {})
    for name in draw(subset(SCALARS)):
        spec[name] = draw(st.sampled_from(["x", "y", "edited"]))
    for key in draw(subset(CONFIG_KEYS)):
        spec.setdefault("config", {})[key] = draw(st.sampled_from(["x", "edited"]))
    for item in spec.get("items", []):
        if draw(st.booleans()):
            item["value"] = draw(st.sampled_from(["x", "edited"]))
    return edited


@PROPERTY
@given(data=st.data(), alice=configs(), bob=configs(), edit_first=st.booleans())
def test_removing_a_field_from_a_configuration_removes_it_exactly_when_no_other_manager_owns_it(
    data: st.DataObject, alice: dict[str, Any], bob: dict[str, Any], edit_first: bool
) -> None:
    candidates = removable(alice)
    if not candidates:
        return
    live = do_apply(None, alice, "alice", True, 0)
    live = do_apply(live, bob, "bob", True, 1)
    if edit_first:
        edited = data.draw(edits(live))
        live = update_managed_fields(
            live,
            edited,
            manager="editor",
            api_version="example.com/v1",
            types=TYPES,
            now=T0 + timedelta(minutes=2),
        )
    kind, name = data.draw(st.sampled_from(candidates))
    smaller, path = without(alice, kind, name)
    others = owned_by_others(live, "alice")
    after = do_apply(live, smaller, "alice", True, 3)
    present = path in set(field_paths(after, TYPES))
    assert present == (path in others), f"{kind} {name}: present={present}, owned by others={path in others}"


@given(config=configs())
def test_creating_an_object_adds_exactly_the_paths_that_deleting_it_removes(config: dict[str, Any]) -> None:
    # A create takes a walk of its own (nothing to compare against); deleting takes the general
    # comparison.  Both must name every node of the object, children before their containers.
    created = compare(_ABSENT, config, TYPES)
    deleted = compare(config, _ABSENT, TYPES)
    assert created.added == deleted.removed
    assert not created.modified and not created.removed
