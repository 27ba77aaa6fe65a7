"""JSON decoding tuned for API responses: orjson, with the cyclic garbage collector paused while a
large response is turned into objects.

Why: decoding a 10,000-object list allocates a few hundred thousand containers; with the collector
running, CPython triggers collections every few hundred of them, each walking the growing young
generations, which makes decoding 2-3x slower.  The decoded objects are trees (no cycles), so
nothing is lost by collecting once afterwards instead.  The pause is skipped when the application
disabled the collector itself, and never spans an ``await``.

Objects that are kept, as a list's items are (an informer's store), are still walked afterwards by
the young collections that promote them to the oldest generation: about as long again as decoding
them.  :func:`settle` moves them there directly instead (see its contract).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from typing import Any

import orjson

__all__ = ["loads", "loads_many", "settle"]

_LARGE = 64 * 1024
"""Bodies smaller than this decode too quickly for collections to matter."""


def loads(body: bytes) -> Any:
    """``orjson.loads``, pausing the collector for large bodies.  Raises ``orjson.JSONDecodeError``."""
    if len(body) < _LARGE or not gc.isenabled():
        return orjson.loads(body)
    gc.disable()
    try:
        return orjson.loads(body)
    finally:
        gc.enable()


def loads_many(lines: Iterable[bytes]) -> list[Any]:
    """Decode several JSON documents (one watch chunk's lines) with one collector pause.
    Raises ``orjson.JSONDecodeError`` for the first malformed one."""
    if not gc.isenabled():
        return [orjson.loads(line) for line in lines]
    gc.disable()
    try:
        return [orjson.loads(line) for line in lines]
    finally:
        gc.enable()


def settle() -> None:
    """Move every object the collector tracks to its oldest generation without walking them
    (``gc.freeze()`` then ``gc.unfreeze()``, two constant-time list splices).

    For use right after decoding objects that the caller keeps: they are trees that no young
    collection could free, and walking them twice on the way to the oldest
    generation (young, then middle) costs about as much as decoding them (a 10,000-object list:
    about 35 ms of 80).  Other young objects of the process are promoted too, so a cyclic garbage
    among them waits for the next full collection instead of the next young one: call this for
    bulk results only (list pages), never per watch event, so that full collections keep coming at
    their usual pace.  Does nothing when the application froze objects itself (``gc.freeze``),
    whose frozen set must not be thawed.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
