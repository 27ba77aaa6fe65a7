"""The informer store: references, built-in and custom indexes, relist diffs."""

from __future__ import annotations

from typing import Any

import pytest

from kubevisor.runtime import CONTROLLER_INDEX, NAMESPACE_INDEX, OWNER_INDEX, ObjectRef, Store


def obj(name: str, namespace: str = "ns", rv: str = "1", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": rv, **meta}}


def owner(uid: str, controller: bool = False) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "X", "name": uid, "uid": uid, "controller": controller}


def test_object_ref_prints_and_parses_like_client_go_cache_keys() -> None:
    assert str(ObjectRef("ns", "a")) == "ns/a"
    assert str(ObjectRef("", "node-1")) == "node-1"
    assert ObjectRef.parse("ns/a") == ObjectRef("ns", "a")
    assert ObjectRef.parse("node-1") == ObjectRef("", "node-1")
    assert ObjectRef.of(obj("a")) == ObjectRef("ns", "a")
    with pytest.raises(ValueError):
        ObjectRef.of({"metadata": {}})


def test_namespace_owner_and_controller_indexes_follow_upserts_and_removals() -> None:
    store = Store()
    store.upsert(obj("a", ownerReferences=[owner("u1", controller=True), owner("u2")]))
    store.upsert(obj("b", namespace="other", ownerReferences=[owner("u2")]))
    assert [o["metadata"]["name"] for o in store.by_index(NAMESPACE_INDEX, "ns")] == ["a"]
    assert sorted(o["metadata"]["name"] for o in store.by_index(OWNER_INDEX, "u2")) == ["a", "b"]
    assert store.index_keys(CONTROLLER_INDEX, "u1") == [ObjectRef("ns", "a")]
    store.upsert(obj("a", rv="2", ownerReferences=[owner("u2")]))  # the controller reference went away
    assert store.by_index(CONTROLLER_INDEX, "u1") == []
    assert store.remove(ObjectRef("other", "b")) is not None
    assert [o["metadata"]["name"] for o in store.by_index(OWNER_INDEX, "u2")] == ["a"]
    assert store.remove(ObjectRef("other", "b")) is None


def test_a_custom_index_added_late_indexes_existing_objects() -> None:
    store = Store()
    store.upsert(obj("a", labels={"tier": "db"}))
    store.upsert(obj("b", labels={"tier": "web"}))

    def tier(o: dict[str, Any]) -> list[str]:
        return [o["metadata"].get("labels", {}).get("tier", "")]

    store.add_index("tier", tier)
    store.add_index("tier", tier)  # the same function again: a no-op, as shared informers need
    assert [o["metadata"]["name"] for o in store.by_index("tier", "db")] == ["a"]
    with pytest.raises(ValueError, match="already exists"):
        store.add_index("tier", lambda o: [])


def test_replace_reports_added_changed_and_deleted_objects_only() -> None:
    store = Store()
    store.replace([obj("a"), obj("b"), obj("c")])
    added, updated, deleted = store.replace([obj("a"), obj("b", rv="2"), obj("d")])
    assert [o["metadata"]["name"] for o in added] == ["d"]
    assert [
        (old["metadata"]["resourceVersion"], new["metadata"]["resourceVersion"]) for old, new in updated
    ] == [("1", "2")]
    assert [o["metadata"]["name"] for o in deleted] == ["c"]
    assert sorted(str(k) for k in store.keys()) == ["ns/a", "ns/b", "ns/d"]
    assert len(store.list("ns")) == 3 and store.list("elsewhere") == []
