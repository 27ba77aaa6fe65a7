"""JSON decoding tuned for API responses: orjson, with the cyclic garbage collector paused while a
large response is turned into objects, and kept objects moved straight to its oldest generation.

Why pause: decoding a 10,000-object list allocates a few hundred thousand containers; with the
collector running, CPython triggers collections every few hundred of them, each walking the growing
young generations, which makes decoding 2-3x slower.  The decoded objects are trees (no cycles), so
nothing is lost by not examining them while they are built.  The pause is skipped when the
application disabled the collector itself, and never spans an ``await``.

Why promote: objects that are kept (a list's items, an informer's store) are otherwise walked by the
young collections that carry them to the oldest generation, once in the youngest and once in the
middle one, which costs more than decoding them.  Measured with ``gc.callbacks`` on 10,000 kept watch
events (0.9 KB ConfigMaps, about ten tracked containers each): 33 young and 3 middle collections
took 30-40 ms of the watch's 80-100 ms, 3-4 us an event against 2.2 us to decode one.
:func:`pause` and :func:`resume` with ``bulk=True`` move a decoded bulk there in constant time
instead: under 1 ms in the collector for the same watch (see :func:`pause` for why this stays safe
for cyclic garbage, and the alternatives measured).
"""

from __future__ import annotations

import gc
from typing import Any, Final

import orjson

__all__ = ["loads", "pause", "resume"]

_LARGE = 64 * 1024
"""Bodies smaller than this decode too quickly for collections to matter."""

_UNTOUCHED: Final = 0
_PAUSED: Final = 1
_PROMOTING: Final = 2


def pause(bulk: bool = False) -> int:
    """Pause the cyclic garbage collector for a decode that does not ``await``; hand the result to
    :func:`resume` (in a ``finally``) when the decoded objects are complete.

    ``bulk=True`` (a list chunk's items, a watch batch of 8 KiB or more) also moves what the decode
    creates straight to the collector's oldest generation at :func:`resume`, as if two young
    collections had promoted it, at no cost.  Contract that makes this safe for a long-running
    process:

    * First, every object already in the young generations (the application's, since the previous
      bulk) is examined by a young collection (``gc.collect(1)``), as CPython would have examined
      it: its cyclic garbage is freed now, its survivors are promoted and counted towards the next
      full collection as usual.  Cyclic garbage that the application creates while consuming is
      therefore freed by the next bulk at the latest (``tests/client/test_watch_gc.py``: a consumer
      creating a cycle per event has at most 64 awaiting collection over 20,000 events).
    * Then the young generations hold only what the decode creates: trees of dicts, lists and
      strings, which cannot be cyclic garbage, and which :func:`resume` moves to the oldest
      generation with ``gc.freeze()``/``gc.unfreeze()`` (two list splices).  If the application
      later links a promoted object into a cycle, that cycle is freed by a full collection, as for
      any old object.

    Alternatives measured on 10,000 kept watch events: promoting each batch without the young
    collection first is as fast, but promotes the application's young objects unexamined, and
    CPython does not count objects promoted that way towards its next full collection, so their
    cyclic garbage may wait indefinitely (the test consumer's 20,000 cycles all stayed uncollected);
    a young collection right after each decode instead (the batch walked once, while in cache)
    spent 12 ms in the collector instead of under 1 ms.

    The young collection walks the application's young objects, which CPython would walk anyway
    (once or twice) and which it then no longer does; for a few events at a time its fixed cost
    would exceed the saving, hence bulk only.  Not covered: objects that another Python thread
    allocates while the decode runs (the GIL may switch during it), or that finalizers and
    ``gc.callbacks`` run by the young collection allocate, are promoted unexamined too; cyclic
    garbage among them waits for a full collection.

    Without ``bulk``, the decoded objects stay young and are collected as usual.  Nothing is paused
    or promoted when the application disabled the collector; nothing is promoted when it froze
    objects itself (``gc.freeze``), whose frozen set must not be thawed.
    """
    if not gc.isenabled():
        return _UNTOUCHED
    if bulk and gc.get_freeze_count() == 0:
        gc.collect(1)
        gc.disable()
        return _PROMOTING
    gc.disable()
    return _PAUSED


def resume(state: int) -> None:
    """End a :func:`pause`, promoting the decoded objects if it was a bulk one."""
    if state == _PROMOTING:
        gc.freeze()
        gc.unfreeze()
        gc.enable()
    elif state == _PAUSED:
        gc.enable()


def loads(body: bytes, *, bulk: bool = False) -> Any:
    """``orjson.loads``, pausing the collector for large bodies (see :func:`pause` for ``bulk``:
    for a body whose objects are kept).  Raises ``orjson.JSONDecodeError``."""
    if len(body) < _LARGE:
        return orjson.loads(body)
    state = pause(bulk)
    try:
        return orjson.loads(body)
    finally:
        resume(state)
