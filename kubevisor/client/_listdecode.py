"""Streaming decoder for list responses: items are decoded as their bytes arrive, so a large list
never exists twice in memory (raw body plus parse tree plus objects) and decoding overlaps the
transfer.

API servers write lists as compact JSON, ``{"kind":..,"apiVersion":..,"metadata":{..},"items":[..]}``
(custom resources: keys sorted, ``items`` before ``kind`` and ``metadata``), and every item in one
list starts with the same key.  The decoder cuts the body at ``},{"<first key>":`` and decodes each
piece on its own.  That cut can only be wrong inside an item (a nested list of objects starting with
the same key), where the piece is then unbalanced JSON and fails to decode; the decoder then widens
the piece to the next cut.  The tail (last item, closing bracket and any envelope fields after
``items``) is decoded as a JSON array, which also absorbs any whitespace a server might add.  A body
of any other shape is decoded whole.  The result is always exactly ``orjson.loads(body)``'s.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from kubevisor.client._decode import loads as _loads
from kubevisor.client._decode import pause, resume

__all__ = ["ListDecoder"]

_ITEMS = re.compile(rb'"items"\s*:\s*\[')
_FIRST_KEY = re.compile(rb'\s*\{\s*"([A-Za-z0-9_$.\-]*)"\s*:\s*')
_API_VERSION_VALUE = re.compile(rb'"(?:[^"\\]|\\.)*"')
_HEAD_LIMIT = 1 << 20
"""An envelope larger than this before ``items`` is not an API server's list: decode whole."""


class ListDecoder:
    """Feed the body's chunks in order, then :meth:`finish` for ``(items, envelope)`` where the
    envelope is the list without ``items``.

    ``inject`` (e.g. ``b'"apiVersion":"v1","kind":"ConfigMap",'``) is placed first in every item
    that does not start with ``apiVersion``/``kind``: API servers omit them inside lists of built-in
    kinds; an item that carries its own still keeps its own (the later key wins).

    Raises ``orjson.JSONDecodeError`` from :meth:`finish` for a body that is not JSON.
    """

    def __init__(self, inject: bytes = b"") -> None:
        self.items: list[Any] = []
        self._inject = inject
        self._buf = b""
        self._pos = 0  # start of the item being accumulated
        self._scan = 0  # where to look for the next cut
        self._mode = "head"  # head -> first -> items | whole
        self._head = b""
        self._cut = b""
        self._prefix = b"{"
        self._whole: list[bytes] = []
        self._inject_fields: dict[str, Any] = (
            orjson.loads(b"{" + inject.rstrip(b",") + b"}") if inject else {}
        )

    def feed(self, chunk: bytes) -> None:
        if self._mode == "whole":
            self._whole.append(chunk)
            return
        if self._pos and self._mode == "items":
            # Drop what has been decoded: the buffer holds at most one partial item and a chunk.
            self._buf = self._buf[self._pos :] + chunk
            self._scan -= self._pos
            self._pos = 0
        else:
            self._buf += chunk
        if self._mode == "head":
            match = _ITEMS.search(self._buf)
            if match is None:
                if len(self._buf) > _HEAD_LIMIT:
                    self._mode, self._whole, self._buf = "whole", [self._buf], b""
                return
            self._head = self._buf[: match.start()]
            self._pos = self._scan = match.end()
            self._mode = "first"
        if self._mode == "first" and not self._start_items():
            return
        if self._mode == "items":
            self._cut_items()

    def _start_items(self) -> bool:
        rest = self._buf[self._pos :].lstrip()
        if not rest:
            return False
        if rest[:1] == b"]":
            self._mode = "items"  # empty; finish() decodes the tail
            return True
        match = _FIRST_KEY.match(self._buf, self._pos)
        if match is None:
            if len(self._buf) - self._pos > 4096 or rest[:1] != b"{":
                self._to_whole()
            return False
        key = match.group(1)
        if key == b"apiVersion":
            value = _API_VERSION_VALUE.match(self._buf, match.end())
            if value is None:
                return False  # wait for the value to arrive
            self._cut = b'},{"apiVersion":' + value.group(0)
        else:
            self._cut = b'},{"' + key + b'":'
            if key != b"kind" and self._inject:
                self._prefix = b"{" + self._inject
        self._pos = self._scan = self._buf.index(b"{", self._pos)
        self._mode = "items"
        return True

    def _to_whole(self) -> None:
        self._mode = "whole"
        self._whole = [self._buf]
        self._buf = b""

    def _decode_item(self, piece: bytes) -> Any:
        return orjson.loads(self._prefix + piece[1:] if len(self._prefix) > 1 else piece)

    def _with_type(self, item: Any) -> Any:
        if self._inject_fields and isinstance(item, dict) and "kind" not in item:
            return {**self._inject_fields, **item}
        return item

    def _cut_items(self) -> None:
        buf, cut, items = self._buf, self._cut, self.items
        if not cut or buf.find(cut, self._scan) < 0:
            return  # no complete item yet (or an empty items array: finish() reads the envelope)
        # The items are kept trees: decoded under one collector pause and promoted as a bulk (see
        # kubevisor.client._decode.pause).
        state = pause(bulk=True)
        try:
            while True:
                end = buf.find(cut, self._scan)
                if end < 0:
                    return
                try:
                    items.append(self._decode_item(buf[self._pos : end + 1]))
                except orjson.JSONDecodeError:
                    self._scan = end + 1  # a cut inside an item: widen the piece
                    continue
                self._pos = self._scan = end + 2
        finally:
            resume(state)

    def finish(self) -> tuple[list[Any], dict[str, Any]]:
        if self._mode in ("whole", "head") or (self._mode == "first" and not self._start_items()):
            body = b"".join(self._whole) if self._mode == "whole" else self._buf
            document = _loads(body, bulk=True)
            if not isinstance(document, dict):
                raise orjson.JSONDecodeError(
                    "a list response is a JSON object", body[:100].decode(errors="replace"), 0
                )
            items = document.pop("items", None) or []
            return [self._with_type(item) for item in items], document
        rest = self._buf[self._pos :]
        # The tail is "<items...>]<envelope fields>}": find the bracket closing the items array
        # from the end (the envelope fields after it hold no brackets in practice; if one did,
        # the next candidate is tried).
        stop = len(rest)
        while True:
            stop = rest.rfind(b"]", 0, stop)
            if stop < 0:
                raise orjson.JSONDecodeError("unterminated items array in the list response", "", 0)
            try:
                envelope = orjson.loads(self._head + b'"items":[]' + rest[stop + 1 :])
                tail = _loads(b"[" + rest[:stop] + b"]", bulk=True) if rest[:stop].strip() else []
            except orjson.JSONDecodeError:
                continue
            break
        self.items.extend(self._with_type(item) for item in tail)
        if not isinstance(envelope, dict):
            raise orjson.JSONDecodeError("a list response is a JSON object", "", 0)
        envelope.pop("items", None)
        return self.items, envelope
