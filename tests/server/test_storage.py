"""Storage: durability, a global monotonic resourceVersion, bounded history like etcd compaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubevisor.api import Expired
from kubevisor.server._storage import (
    ADDED,
    DELETED,
    MODIFIED,
    Event,
    KeyExistsError,
    StaleVersionError,
    Storage,
)

CM = ("", "configmaps")


def cm(name: str, namespace: str = "default", **data: str) -> dict[str, Any]:
    return {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "data": dict(data),
    }


def test_objects_and_resource_version_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    storage = Storage(path)
    storage.create(CM, cm("a", x="1"))
    storage.create(CM, cm("b"))
    storage.delete(CM, "default", "b")
    last = storage.resource_version
    storage.close()

    reopened = Storage(path)
    assert reopened.resource_version == last
    assert [r.name for r in reopened.list_records(CM)] == ["a"]
    record = reopened.get(CM, "default", "a")
    assert record is not None and record.load()["data"] == {"x": "1"}
    assert record.labels == {"app": "a"}
    # A delete advanced the RV too: the next write must be newer than everything seen before.
    assert reopened.create(CM, cm("c")).rv == last + 1
    reopened.close()


def test_resource_version_is_global_and_strictly_increasing() -> None:
    storage = Storage()
    rvs = [
        storage.create(CM, cm("a")).rv,
        storage.create(("apps", "deployments"), cm("a")).rv,
        storage.update(CM, cm("a", v="2")).rv,
        storage.delete(CM, "default", "a").rv,
    ]
    assert rvs == sorted(set(rvs)) and len(rvs) == 4


def test_create_of_an_existing_name_is_rejected() -> None:
    storage = Storage()
    storage.create(CM, cm("a"))
    with pytest.raises(KeyExistsError):
        storage.create(CM, cm("a"))


def test_update_with_a_stale_expected_version_is_rejected() -> None:
    storage = Storage()
    first = storage.create(CM, cm("a"))
    storage.update(CM, cm("a", v="2"), expected_rv=first.rv)
    with pytest.raises(StaleVersionError):
        storage.update(CM, cm("a", v="3"), expected_rv=first.rv)


def test_deleted_event_carries_the_final_state_at_the_deletion_version() -> None:
    storage = Storage()
    events: list[Event] = []
    storage.subscribe(events.append)
    storage.create(CM, cm("a", x="1"))
    deleted = storage.delete(CM, "default", "a")
    assert [e.type for e in events] == [ADDED, DELETED]
    assert deleted.load()["metadata"]["resourceVersion"] == str(deleted.rv)
    assert deleted.load()["data"] == {"x": "1"}


def test_history_beyond_its_bound_is_expired_with_upstreams_message() -> None:
    storage = Storage(history_size=3)
    for i in range(5):
        storage.create(CM, cm(f"o{i}"))
    # Events 3, 4, 5 are retained: resuming from 2 is fine, from 1 is not.
    assert [e.rv for e in storage.events_since(2)] == [3, 4, 5]
    with pytest.raises(Expired) as info:
        storage.events_since(1)
    assert info.value.message == "too old resource version: 1 (2)"
    assert info.value.code == 410


def test_history_starts_empty_at_the_current_version_after_a_restart(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "db")
    storage.create(CM, cm("a"))
    storage.create(CM, cm("b"))
    storage.close()
    reopened = Storage(tmp_path / "db")
    assert reopened.events_since(2) == []
    with pytest.raises(Expired):
        reopened.events_since(1)


def test_exact_version_list_reconstructs_the_state_from_history() -> None:
    storage = Storage()
    storage.create(CM, cm("a", v="1"))
    at = storage.create(CM, cm("b")).rv
    storage.update(CM, cm("a", v="2"))
    storage.delete(CM, "default", "b")
    storage.create(CM, cm("c"))
    past = storage.list_records(CM, at=at)
    assert [(r.name, r.load()["data"]) for r in past] == [("a", {"v": "1"}), ("b", {})]
    assert [r.name for r in storage.list_records(CM)] == ["a", "c"]


def test_lists_are_sorted_by_namespace_and_name_and_page_from_a_start_key() -> None:
    storage = Storage()
    for ns, name in [("b", "x"), ("a", "z"), ("a", "y"), ("c", "w")]:
        storage.create(CM, cm(name, ns))
    assert [(r.namespace, r.name) for r in storage.list_records(CM)] == [
        ("a", "y"),
        ("a", "z"),
        ("b", "x"),
        ("c", "w"),
    ]
    assert [r.name for r in storage.list_records(CM, "a")] == ["y", "z"]
    assert [r.name for r in storage.list_records(CM, start=("a", "z\x00"))] == ["x", "w"]
    assert [r.name for r in storage.list_records(CM, "a", start=("a", "y\x00"))] == ["z"]


def test_modified_event_keeps_the_previous_state() -> None:
    storage = Storage()
    events: list[Event] = []
    storage.create(CM, cm("a", v="1"))
    storage.subscribe(events.append)
    storage.update(CM, cm("a", v="2"))
    assert events[0].type == MODIFIED
    assert events[0].prev is not None and events[0].prev.load()["data"] == {"v": "1"}
