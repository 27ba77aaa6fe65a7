"""Field sets: the paths a field manager owns, and their ``FieldsV1`` wire form.

A *path* addresses one node of an object.  It is a tuple of *path elements*, each spelled exactly as
upstream's ``FieldsV1`` keys spell it (``sigs.k8s.io/structured-merge-diff`` ``fieldpath``):

* ``f:<name>``: a field of a map or struct (``f:spec``);
* ``k:<json>``: an item of a map list, by its key fields as a JSON object with the keys sorted
  (``k:{"containerPort":80,"protocol":"TCP"}``);
* ``v:<json>``: an item of a set list, by its value (``v:"example.com/finalizer"``);
* ``i:<n>``: an item of a list by position.

Keeping the wire spelling as the in-memory form makes paths plain tuples of strings: hashing and set
algebra run at C speed, and serialising a set is a matter of nesting.  ``k:`` and ``v:`` elements
are canonical (the JSON is produced by :func:`key_element` / :func:`value_element`, or re-encoded
when parsed) so that two spellings of one element compare equal.

A :class:`FieldSet` is an immutable set of paths.  Its ``FieldsV1`` encoding nests one JSON object
per element; ``{}`` marks a path that is a member with nothing under it, and ``".": {}`` marks a
path that is a member *and* has members under it.  Keys are emitted in upstream's order (fields,
then keys, then values, then indices; each ordered as upstream's ``value.Compare``), so that a set
parsed from upstream and serialised again is byte-for-byte what upstream wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

__all__ = [
    "FieldSet",
    "Path",
    "field_element",
    "format_path",
    "index_element",
    "json_string",
    "key_element",
    "parse_path_element",
    "value_element",
]

Path = tuple[str, ...]
"""A path into an object: a tuple of ``f:``/``k:``/``v:``/``i:`` path elements."""

_MEMBER: Final = "."


# --- JSON values as upstream encodes them in path elements -----------------------------------------------


def _quote(text: str) -> str:
    """A JSON string as jsoniter's ``WriteString`` writes it: only ``"``, ``\\`` and control
    characters are escaped; everything else, including non-ASCII, is written as is."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = ['"']
    for char in text:
        if char == '"' or char == "\\":
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def json_string(text: str) -> str:
    """A JSON string as Go's ``encoding/json`` writes it: jsoniter's escaping plus ``<``, ``>``,
    ``&``, U+2028 and U+2029 as ``\\u`` escapes."""
    quoted = _quote(text)
    for raw, escaped in _HTML_ESCAPES:
        if raw in quoted:
            quoted = quoted.replace(raw, escaped)
    return quoted


_HTML_ESCAPES: Final = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _float_json(number: float) -> str:
    """A float as jsoniter's ``WriteFloat64`` writes it: the shortest digits, in fixed notation unless
    the magnitude is below 1e-6 or at least 1e21; ``1.0`` is written ``1``."""
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"unsupported value: {number!r}")
    magnitude = abs(number)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = repr(number)
        mantissa, _, exponent = text.partition("e")
        sign = exponent[0]
        digits = exponent[1:].lstrip("0") or "0"
        if sign == "+" and len(digits) < 2:
            digits = digits.rjust(2, "0")
        return f"{mantissa}e{sign}{digits}"
    if number.is_integer():
        return str(int(number))
    return format(Decimal(repr(number)), "f")


def _json(value: Any) -> str:
    """Compact JSON for a path element: map keys sorted (upstream's field lists are sorted), numbers
    and strings as jsoniter writes them."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_json(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_quote(k)}:{_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json(item) for item in value) + "]"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def field_element(name: str) -> str:
    """``f:<name>``."""
    return "f:" + name


def key_element(fields: Mapping[str, Any]) -> str:
    """``k:{...}`` for a map-list item whose key fields have these values."""
    return "k:" + _json(fields)


def value_element(value: Any) -> str:
    """``v:<json>`` for a set-list item."""
    return "v:" + _json(value)


def index_element(index: int) -> str:
    """``i:<n>`` for a list item by position."""
    return f"i:{index}"


@lru_cache(maxsize=8192)
def parse_path_element(element: str) -> str | None:
    """The canonical spelling of a ``FieldsV1`` key, or ``None`` for a key of an unknown kind (which
    upstream silently drops).  Raises ``ValueError`` for a known kind with a malformed body."""
    kind = element[:2]
    if kind == "f:":
        return element
    if kind == "k:":
        try:
            fields = json.loads(element[2:])
        except ValueError as exc:
            raise ValueError(f"invalid key path element {element!r}") from exc
        if not isinstance(fields, dict) or not fields:
            raise ValueError(f"invalid key path element {element!r}: not a non-empty JSON object")
        return key_element(fields)
    if kind == "v:":
        try:
            value = json.loads(element[2:])
        except ValueError as exc:
            raise ValueError(f"invalid value path element {element!r}") from exc
        return value_element(value)
    if kind == "i:":
        try:
            return index_element(int(element[2:]))
        except ValueError as exc:
            raise ValueError(f"invalid index path element {element!r}") from exc
    return None


# --- ordering and display, as upstream's PathElement.Compare and Path.String ---------------------------


def _value_rank(value: Any) -> tuple[Any, ...]:
    """A sort key implementing upstream's ``value.Compare``: numbers (ints and floats compared by
    value) < strings < booleans < lists < maps < null."""
    if value is None:
        return (5,)
    if value is True or value is False:
        return (2, value)
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list):
        return (3, tuple(_value_rank(item) for item in value))
    if isinstance(value, dict):
        return (4, tuple((k, _value_rank(value[k])) for k in sorted(value)))
    return (6,)


@lru_cache(maxsize=8192)
def _element_rank(element: str) -> tuple[Any, ...]:
    kind, body = element[:2], element[2:]
    if kind == "f:":
        return (0, body)
    if kind == "k:":
        fields = json.loads(body)
        return (1, tuple((name, _value_rank(fields[name])) for name in sorted(fields)))
    if kind == "v:":
        return (2, _value_rank(json.loads(body)))
    return (3, int(body))


def _go_float(number: float) -> str:
    """A float as Go's ``%v`` prints it (``strconv.FormatFloat(f, 'g', -1, 64)``): the shortest
    digits, in exponent form when the exponent is below -4 or at least 6."""
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    exact = Decimal(repr(abs(number))).normalize()
    _, raw_digits, raw_exponent = exact.as_tuple()
    digits = "".join(map(str, raw_digits))
    exponent = len(digits) + int(raw_exponent) - 1
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    return sign + format(exact, "f")


def _display_value(value: Any) -> str:
    """Upstream's ``value.ToString``: strings quoted, numbers and booleans bare."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, list):
        return "[" + ",".join(_display_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "".join(f"{k}={_display_value(v)}" for k, v in value.items())
    return str(value)


def _display_element(element: str) -> str:
    kind, body = element[:2], element[2:]
    if kind == "f:":
        return "." + body
    if kind == "k:":
        fields = json.loads(body)
        return "[" + ",".join(f"{name}={_display_value(fields[name])}" for name in fields) + "]"
    if kind == "v:":
        return f"[={_display_value(json.loads(body))}]"
    return f"[{body}]"


def format_path(path: Path) -> str:
    """A path as upstream prints it in conflicts: ``.spec.template.spec.containers[name="app"].image``,
    ``.metadata.finalizers[="example.com/x"]``, ``.spec.args[0]``."""
    return "".join(_display_element(element) for element in path)


# --- the set -------------------------------------------------------------------------------------------


class _Node:
    """A trie node, used only while serialising or iterating in upstream's order."""

    __slots__ = ("children", "member")

    def __init__(self) -> None:
        self.member = False
        self.children: dict[str, _Node] = {}


def _trie(paths: Iterable[Path]) -> _Node:
    root = _Node()
    for path in paths:
        node = root
        for element in path:
            child = node.children.get(element)
            if child is None:
                child = node.children[element] = _Node()
            node = child
        node.member = True
    return root


def _emit(node: _Node, include_self: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if include_self and node.children:
        out[_MEMBER] = {}
    for element in sorted(node.children, key=_element_rank):
        child = node.children[element]
        out[element] = _emit(child, child.member)
    return out


def _parse(node: Mapping[str, Any], prefix: Path, out: list[Path]) -> None:
    for raw, child in node.items():
        if not isinstance(child, Mapping):
            raise ValueError(f"invalid FieldsV1: the value under {raw!r} is not an object")
        if raw == _MEMBER:
            if prefix:
                out.append(prefix)
            continue
        element = parse_path_element(raw)
        if element is None:
            continue
        path = (*prefix, element)
        if not child:
            out.append(path)
        else:
            _parse(child, path, out)


class FieldSet:
    """An immutable set of paths (upstream's ``fieldpath.Set``).

    Supports ``|``, ``&``, ``-`` (path-wise union, intersection and difference), ``in``, ``len``,
    iteration (in no particular order; :meth:`iter_upstream` gives upstream's order) and equality.
    """

    __slots__ = ("_paths",)

    def __init__(self, paths: Iterable[Path] = ()) -> None:
        self._paths: frozenset[Path] = paths if isinstance(paths, frozenset) else frozenset(paths)

    @classmethod
    def from_fields_v1(cls, fields: Mapping[str, Any]) -> FieldSet:
        """Parse a ``FieldsV1`` object.  Keys of unknown kinds are dropped, as upstream does;
        ``ValueError`` for anything else that is not a well-formed FieldsV1 tree."""
        if not isinstance(fields, Mapping):
            raise ValueError("invalid FieldsV1: not a JSON object")
        out: list[Path] = []
        _parse(fields, (), out)
        return cls(out)

    def to_fields_v1(self) -> dict[str, Any]:
        """The ``FieldsV1`` object, keys in upstream's order (a fresh dict)."""
        return _emit(_trie(self._paths), False)

    @property
    def paths(self) -> frozenset[Path]:
        return self._paths

    def iter_upstream(self) -> Iterator[Path]:
        """The paths in upstream's ``Set.Iterate`` order: at each level the members first, then the
        children, each sorted as upstream sorts path elements.  Conflict lists use this order."""
        yield from _iterate(_trie(self._paths), ())

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        """The paths that are neither in ``other`` nor below a path in ``other`` (upstream's
        ``RecursiveDifference``; ``-`` removes exact paths only)."""
        if not other._paths or not self._paths:
            return self
        removed = other._paths
        return FieldSet(
            frozenset(p for p in self._paths if not any(p[:i] in removed for i in range(1, len(p) + 1)))
        )

    def __contains__(self, path: object) -> bool:
        return path in self._paths

    def __iter__(self) -> Iterator[Path]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __bool__(self) -> bool:
        return bool(self._paths)

    def __or__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self._paths | other._paths)

    def __and__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self._paths & other._paths)

    def __sub__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self._paths - other._paths)

    def __le__(self, other: FieldSet) -> bool:
        return self._paths <= other._paths

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSet) and self._paths == other._paths

    def __hash__(self) -> int:
        return hash(self._paths)

    def __repr__(self) -> str:
        return "FieldSet([" + ", ".join(format_path(p) for p in self.iter_upstream()) + "])"


def _iterate(node: _Node, prefix: Path) -> Iterator[Path]:
    ordered = sorted(node.children, key=_element_rank)
    for element in ordered:
        if node.children[element].member:
            yield (*prefix, element)
    for element in ordered:
        child = node.children[element]
        if child.children:
            yield from _iterate(child, (*prefix, element))
