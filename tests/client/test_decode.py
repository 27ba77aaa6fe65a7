"""JSON decoding with the cyclic garbage collector paused: paused only while a large body is decoded,
enabled again afterwards even when decoding fails, left alone when the application disabled it; a
bulk decode moves its objects to the oldest generation without thawing what the application froze.

What the collector does is observed through ``gc.callbacks`` (a collection starting) and
``gc.get_objects(generation)`` (where an object is), with low thresholds so that a decode with the
collector running would certainly trigger collections.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from kubevisor.client._decode import _LARGE, loads, pause, resume

LARGE_BODY = orjson.dumps(
    {
        "kind": "ConfigMapList",
        "items": [
            {"metadata": {"name": f"cm-{i:05d}", "labels": {"app": "demo"}}, "data": {"k": "v" * 16}}
            for i in range(1500)
        ],
    }
)
SMALL_BODY = orjson.dumps(
    {"kind": "ConfigMapList", "items": [{"metadata": {"labels": {}}} for _ in range(100)]}
)
MALFORMED_LARGE_BODY = LARGE_BODY[:-1]  # the closing brace missing: fails only at the very end


@pytest.fixture(autouse=True)
def collector() -> Iterator[None]:
    """Each test starts with the collector enabled, nothing frozen, and leaves it that way."""
    assert gc.isenabled() and gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.enable()
        gc.unfreeze()


class Collections:
    """Counts the collections that start while it is active (a ``gc.callbacks`` entry)."""

    def __init__(self) -> None:
        self.generations: list[int] = []

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.generations.append(info["generation"])

    def __enter__(self) -> Collections:
        gc.set_threshold(50)  # a collection every 50 new containers while the collector runs
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self)


def young(obj: object) -> bool:
    return any(o is obj for generation in (0, 1) for o in gc.get_objects(generation))


def oldest(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects(2))


def tracked(obj: object) -> bool:
    """In some generation: not frozen (frozen objects are in none)."""
    return any(o is obj for o in gc.get_objects())


def test_the_bodies_here_are_on_either_side_of_the_size_that_pauses_the_collector() -> None:
    assert len(SMALL_BODY) < _LARGE <= len(MALFORMED_LARGE_BODY) < len(LARGE_BODY)


def test_a_large_body_is_decoded_without_a_collection_that_a_plain_decode_would_trigger() -> None:
    with Collections() as plain:
        orjson.loads(LARGE_BODY)
    with Collections() as paused:
        decoded = loads(LARGE_BODY)
    assert len(plain.generations) > 10  # the control: the collector would have run
    assert paused.generations == []
    assert gc.isenabled()
    assert len(decoded["items"]) == 1500


def test_the_collector_runs_again_as_soon_as_the_decode_is_over() -> None:
    with Collections() as after:
        loads(LARGE_BODY)
        garbage = [[i] for i in range(500)]  # allocations after the decode: collected as usual
    assert gc.isenabled()
    assert len(after.generations) > 0
    del garbage


def test_a_small_body_is_decoded_with_the_collector_running() -> None:
    with Collections() as running:
        loads(SMALL_BODY)
    assert len(running.generations) > 0


@pytest.mark.parametrize("bulk", [False, True], ids=["plain", "bulk"])
def test_the_collector_is_enabled_again_after_a_decode_that_fails(bulk: bool) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        loads(MALFORMED_LARGE_BODY, bulk=bulk)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("bulk", [False, True], ids=["plain", "bulk"])
def test_a_collector_the_application_disabled_stays_disabled_and_untouched(bulk: bool) -> None:
    gc.disable()
    with Collections() as collections:
        decoded = loads(LARGE_BODY, bulk=bulk)
        assert not gc.isenabled()
        with pytest.raises(orjson.JSONDecodeError):
            loads(MALFORMED_LARGE_BODY, bulk=bulk)
        assert not gc.isenabled()
    assert collections.generations == []  # not even the young collection a bulk decode starts with
    assert young(decoded["items"])  # and nothing promoted


def test_a_pause_within_a_pause_leaves_the_collector_paused_until_the_outer_one_ends() -> None:
    outer = pause()
    try:
        inner = pause(bulk=True)
        resume(inner)
        assert not gc.isenabled()
        with Collections() as collections:
            loads(LARGE_BODY)
            assert not gc.isenabled()
        assert collections.generations == []
    finally:
        resume(outer)
    assert gc.isenabled()


def test_a_bulk_decode_moves_its_objects_to_the_oldest_generation() -> None:
    decoded = loads(LARGE_BODY, bulk=True)
    assert oldest(decoded["items"]) and oldest(decoded["items"][0]["metadata"])
    assert not young(decoded["items"])
    assert gc.get_freeze_count() == 0  # promoted, not left frozen
    assert gc.isenabled()


def test_a_decode_that_is_not_bulk_leaves_its_objects_young() -> None:
    decoded = loads(LARGE_BODY)
    assert young(decoded["items"])


def test_a_bulk_decode_leaves_what_the_application_froze_frozen() -> None:
    settings: dict[str, Any] = {"loaded": [1, 2, 3]}
    gc.freeze()
    frozen = gc.get_freeze_count()
    assert frozen > 0 and not tracked(settings)

    decoded = loads(LARGE_BODY, bulk=True)

    assert gc.get_freeze_count() == frozen  # not thawed, and nothing of ours added to it
    assert not tracked(settings)  # still in the permanent generation
    assert young(decoded["items"])  # nothing promoted: promoting would have thawed the frozen set
    assert gc.isenabled()
