"""The store's indexes as objects change: an object whose owners, controller, labels or namespace
change moves from one index bucket to the other, an update that changes none of them leaves every
bucket as it was, and a deletion leaves no trace; an informer's store does the same for what the
API server's watch reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubevisor.client import Client
from kubevisor.runtime import (
    CONTROLLER_INDEX,
    NAMESPACE_INDEX,
    OWNER_INDEX,
    Informer,
    InformerCache,
    InformerOptions,
    ObjectRef,
    Store,
)
from tests.runtime.conftest import CONFIGMAP, configmap, eventually

TIER_INDEX = "tier"
NAMESPACES = ("ns", "other")
OWNERS = ("u1", "u2", "u3")
TIERS = ("db", "web")


def tier_index(obj: dict[str, Any]) -> Iterator[str]:
    """A label index that yields its values (an IndexFunc may return any iterable)."""
    tier = ((obj.get("metadata") or {}).get("labels") or {}).get("tier")
    if tier:
        yield tier


def obj(
    name: str,
    *,
    namespace: str = "ns",
    rv: int = 1,
    owners: tuple[str, ...] = (),
    controller: str | None = None,
    tier: str | None = None,
    data: str = "",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "resourceVersion": str(rv)}
    if owners:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "X", "name": uid, "uid": uid, "controller": uid == controller}
            for uid in owners
        ]
    if tier is not None:
        meta["labels"] = {"tier": tier}
    return {"metadata": meta, "data": {"value": data}}


def names(store: Store, index: str, value: str) -> list[str]:
    """The names in one index bucket, read both ways (references and objects), which must agree."""
    by_ref = sorted(ref.name for ref in store.index_keys(index, value))
    by_obj = sorted(o["metadata"]["name"] for o in store.by_index(index, value))
    assert by_ref == by_obj
    return by_ref


def store_with_tiers() -> Store:
    return Store({TIER_INDEX: tier_index})


def test_an_object_whose_owner_changes_moves_to_the_new_owners_bucket() -> None:
    store = Store()
    store.upsert(obj("a", owners=("u1",)))
    store.upsert(obj("b", owners=("u1",)))
    store.upsert(obj("a", rv=2, owners=("u2",)))
    assert names(store, OWNER_INDEX, "u1") == ["b"]
    assert names(store, OWNER_INDEX, "u2") == ["a"]


def test_an_object_that_gains_and_loses_owners_is_in_exactly_its_owners_buckets() -> None:
    store = Store()
    store.upsert(obj("a", owners=("u1",)))
    store.upsert(obj("a", rv=2, owners=("u1", "u2", "u3")))
    assert [names(store, OWNER_INDEX, uid) for uid in OWNERS] == [["a"], ["a"], ["a"]]
    store.upsert(obj("a", rv=3, owners=("u3",)))
    assert [names(store, OWNER_INDEX, uid) for uid in OWNERS] == [[], [], ["a"]]
    store.upsert(obj("a", rv=4))  # orphaned
    assert [names(store, OWNER_INDEX, uid) for uid in OWNERS] == [[], [], []]


def test_the_controller_moving_between_unchanged_owners_moves_only_the_controller_index() -> None:
    store = Store()
    store.upsert(obj("a", owners=("u1", "u2"), controller="u1"))
    store.upsert(obj("a", rv=2, owners=("u1", "u2"), controller="u2"))
    assert names(store, CONTROLLER_INDEX, "u1") == []
    assert names(store, CONTROLLER_INDEX, "u2") == ["a"]
    assert names(store, OWNER_INDEX, "u1") == names(store, OWNER_INDEX, "u2") == ["a"]


def test_an_update_that_changes_no_indexed_field_leaves_every_bucket_as_it_was() -> None:
    store = store_with_tiers()
    store.upsert(obj("a", owners=("u1",), controller="u1", tier="db"))
    store.upsert(obj("a", rv=2, owners=("u1",), controller="u1", tier="db", data="changed"))
    assert names(store, NAMESPACE_INDEX, "ns") == ["a"]
    assert names(store, OWNER_INDEX, "u1") == ["a"]
    assert names(store, CONTROLLER_INDEX, "u1") == ["a"]
    assert names(store, TIER_INDEX, "db") == ["a"]
    assert store.by_index(OWNER_INDEX, "u1")[0]["data"] == {"value": "changed"}  # the new version


def test_an_object_whose_label_changes_moves_to_the_new_label_bucket() -> None:
    store = store_with_tiers()
    store.upsert(obj("a", tier="db"))
    store.upsert(obj("b", tier="db"))
    store.upsert(obj("a", rv=2, tier="web"))
    assert names(store, TIER_INDEX, "db") == ["b"]
    assert names(store, TIER_INDEX, "web") == ["a"]
    store.upsert(obj("a", rv=3))  # the label removed
    assert names(store, TIER_INDEX, "web") == []
    # The label changing with the owners unchanged, and the owners changing with the label unchanged.
    store.upsert(obj("b", rv=2, owners=("u1",), tier="web"))
    store.upsert(obj("b", rv=3, owners=("u2",), tier="web"))
    assert names(store, TIER_INDEX, "web") == ["b"] and names(store, OWNER_INDEX, "u2") == ["b"]


def test_a_custom_index_added_late_follows_later_changes() -> None:
    store = Store()
    store.upsert(obj("a", tier="db"))
    store.add_index(TIER_INDEX, tier_index)
    store.upsert(obj("a", rv=2, tier="web"))
    assert names(store, TIER_INDEX, "db") == []
    assert names(store, TIER_INDEX, "web") == ["a"]


def test_a_deleted_object_is_in_no_bucket_and_others_stay() -> None:
    store = store_with_tiers()
    store.upsert(obj("a", owners=("u1", "u2"), controller="u1", tier="db"))
    store.upsert(obj("b", owners=("u2",), tier="db"))
    store.upsert(obj("a", rv=2, owners=("u1", "u3"), controller="u3", tier="db"))
    store.remove(ObjectRef("ns", "a"))
    assert [names(store, OWNER_INDEX, uid) for uid in OWNERS] == [[], ["b"], []]
    assert names(store, CONTROLLER_INDEX, "u3") == []
    assert names(store, TIER_INDEX, "db") == ["b"]
    assert names(store, NAMESPACE_INDEX, "ns") == ["b"]


def test_a_relist_reindexes_the_objects_it_changes_and_unindexes_those_it_drops() -> None:
    store = store_with_tiers()
    store.replace([obj("a", owners=("u1",), tier="db"), obj("b", owners=("u1",), tier="db")])
    store.replace([obj("a", rv=2, owners=("u2",), tier="web")])
    assert names(store, OWNER_INDEX, "u1") == [] and names(store, OWNER_INDEX, "u2") == ["a"]
    assert names(store, TIER_INDEX, "db") == [] and names(store, TIER_INDEX, "web") == ["a"]


# -- any sequence of changes --

objects = st.builds(
    obj,
    st.sampled_from(["a", "b", "c", "d"]),
    namespace=st.sampled_from(NAMESPACES),
    rv=st.integers(1, 3),
    owners=st.lists(st.sampled_from(OWNERS), max_size=3, unique=True).map(tuple),
    controller=st.one_of(st.none(), st.sampled_from(OWNERS)),
    tier=st.one_of(st.none(), st.sampled_from(TIERS)),
    data=st.sampled_from(["", "x"]),
)
changes = st.one_of(
    st.tuples(st.just("upsert"), objects),
    st.tuples(
        st.just("remove"),
        st.builds(ObjectRef, st.sampled_from(NAMESPACES), st.sampled_from(["a", "b", "c", "d"])),
    ),
    st.tuples(st.just("replace"), st.lists(objects, max_size=4)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(changes, max_size=25))
def test_after_any_changes_every_index_is_what_indexing_the_objects_afresh_gives(
    history: list[tuple[str, Any]],
) -> None:
    live = store_with_tiers()
    for change, argument in history:
        if change == "upsert":
            live.upsert(argument)
        elif change == "remove":
            live.remove(argument)
        else:
            live.replace(argument)

    fresh = store_with_tiers()
    for o in live:
        fresh.upsert(o)
    buckets = [(NAMESPACE_INDEX, ns) for ns in NAMESPACES]
    buckets += [(index, uid) for index in (OWNER_INDEX, CONTROLLER_INDEX) for uid in OWNERS]
    buckets += [(TIER_INDEX, tier) for tier in TIERS]
    for index, value in buckets:
        assert names(live, index, value) == names(fresh, index, value), (index, value)
        assert sorted(map(str, live.index_keys(index, value))) == sorted(
            map(str, fresh.index_keys(index, value))
        )


# -- through an informer --


@asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[None]:
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.wait_synced(), 15)  # a hang guard only
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_informers_owner_index_follows_owner_changes_and_deletions_from_the_server(
    client: Client,
) -> None:
    owner_a = await client.create(configmap("owner-a"))
    owner_b = await client.create(configmap("owner-b"))
    uid_a, uid_b = owner_a["metadata"]["uid"], owner_b["metadata"]["uid"]

    def reference(owner: dict[str, Any]) -> dict[str, Any]:
        meta = owner["metadata"]
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
        }

    child = configmap("child")
    child["metadata"]["ownerReferences"] = [reference(owner_a)]
    await client.create(child)

    cache = InformerCache(client, InformerOptions())
    informer = await cache.informer(CONFIGMAP, namespace="default")
    store = informer.store
    async with running(informer):

        def owned(uid: str) -> list[str]:
            return names(store, OWNER_INDEX, uid)

        await eventually(lambda: owned(uid_a) == ["child"], message="the child under owner-a")
        assert names(store, CONTROLLER_INDEX, uid_a) == ["child"]

        await client.patch(CONFIGMAP, "child", {"metadata": {"ownerReferences": [reference(owner_b)]}})
        await eventually(lambda: owned(uid_b) == ["child"], message="the child moved to owner-b")
        assert owned(uid_a) == [] and names(store, CONTROLLER_INDEX, uid_a) == []
        assert names(store, CONTROLLER_INDEX, uid_b) == ["child"]

        await client.delete(CONFIGMAP, "child")
        await eventually(lambda: ObjectRef("default", "child") not in store, message="the child deleted")
        assert owned(uid_a) == owned(uid_b) == [] and names(store, CONTROLLER_INDEX, uid_b) == []
