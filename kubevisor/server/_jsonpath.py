"""The JSONPath subset CustomResourceDefinitions use, as client-go's ``util/jsonpath`` reads it.

Printer columns (``additionalPrinterColumns[].jsonPath``) are evaluated with it; scale paths and
selectable fields use its dotted core.  Supported, inside an implicit ``{...}``:

* fields: ``.spec.replicas``, ``['spec']``, ``["a.b"]`` (a quoted name may contain dots);
* list items: ``[0]``, ``[-1]``, slices ``[1:3]``, and every item ``[*]`` (also ``.*`` for every
  value of a map);
* filters: ``[?(@.type=="Ready")]``, ``[?(@.count>2)]``, ``[?(@.name)]`` (the item has the field),
  with ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` against a quoted string, a number, ``true``,
  ``false`` or ``null``.

Missing keys yield no result rather than an error (printer columns allow missing keys).  Pure.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["JSONPath", "JSONPathError"]


class JSONPathError(ValueError):
    """A path this subset cannot parse (the message says where)."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str


@dataclass(frozen=True, slots=True)
class _Index:
    index: int


@dataclass(frozen=True, slots=True)
class _Slice:
    start: int | None
    end: int | None


@dataclass(frozen=True, slots=True)
class _All:
    pass


@dataclass(frozen=True, slots=True)
class _Filter:
    path: tuple[Any, ...]
    op: str  # "" for an existence test
    literal: Any


_NAME = re.compile(r"[A-Za-z0-9_\-$/]+")
_LITERAL = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|-?\d+(?:\.\d+)?|true|false|null)\s*""")
_OPERATOR = re.compile(r"\s*(==|!=|<=|>=|<|>)")
_INTEGER = re.compile(r"\s*(-?\d+)?\s*")
_ORDER: dict[str, Any] = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class JSONPath:
    """A parsed path; :meth:`find` evaluates it.  Build with :meth:`parse`."""

    __slots__ = ("_steps", "text")

    def __init__(self, text: str, steps: tuple[Any, ...]) -> None:
        self.text = text
        self._steps = steps

    @classmethod
    def parse(cls, text: str) -> JSONPath:
        """Parse ``text`` (with or without surrounding ``{}``); :class:`JSONPathError` when it is
        outside the subset."""
        body = text.strip()
        if body.startswith("{") and body.endswith("}"):
            body = body[1:-1].strip()
        steps, end = _parse_steps(body, 0, stop="")
        if end != len(body):
            raise JSONPathError(f"unrecognized character in {text!r} at {end}")
        return cls(text, tuple(steps))

    @property
    def dotted(self) -> str | None:
        """``spec.replicas`` for a path made of plain fields only, else ``None``."""
        if not self._steps or not all(isinstance(s, _Field) for s in self._steps):
            return None
        return ".".join(s.name for s in self._steps)

    def find(self, obj: Any) -> list[Any]:
        """Every value the path selects in ``obj``, in document order (``[]`` when none)."""
        return list(_evaluate(self._steps, [obj]))

    def first(self, obj: Any) -> Any:
        """The first value selected, or ``None``."""
        found = self.find(obj)
        return found[0] if found else None

    def __repr__(self) -> str:
        return f"JSONPath({self.text!r})"


def _parse_steps(text: str, pos: int, stop: str) -> tuple[list[Any], int]:
    steps: list[Any] = []
    while pos < len(text) and text[pos] not in stop:
        char = text[pos]
        if char == "@" and not steps:
            pos += 1
            continue
        if char == ".":
            if text.startswith("..", pos):
                raise JSONPathError("recursive descent (..) is not supported")
            pos += 1
            if pos < len(text) and text[pos] == "*":
                steps.append(_All())
                pos += 1
                continue
            match = _NAME.match(text, pos)
            if match is None:
                if pos == len(text) and not steps:
                    return steps, pos  # "." alone: the object itself
                raise JSONPathError(f"expected a field name at {pos}")
            steps.append(_Field(match.group()))
            pos = match.end()
        elif char == "[":
            step, pos = _parse_bracket(text, pos + 1)
            steps.append(step)
        elif char.isspace():
            pos += 1
        else:
            raise JSONPathError(f"unrecognized character {char!r} at {pos}")
    return steps, pos


def _parse_bracket(text: str, pos: int) -> tuple[Any, int]:
    if text.startswith("*]", pos):
        return _All(), pos + 2
    if pos < len(text) and text[pos] in "'\"":
        quote = text[pos]
        end = text.find(quote, pos + 1)
        if end < 0 or not text.startswith("]", end + 1):
            raise JSONPathError(f"unterminated quoted field at {pos}")
        return _Field(text[pos + 1 : end]), end + 2
    if text.startswith("?(", pos):
        return _parse_filter(text, pos + 2)
    close = text.find("]", pos)
    if close < 0:
        raise JSONPathError(f"unterminated [ at {pos - 1}")
    inner = text[pos:close]
    if ":" in inner:
        parts = inner.split(":")
        if len(parts) > 3 or not all(_INTEGER.fullmatch(p) for p in parts):
            raise JSONPathError(f"invalid slice [{inner}]")
        values = [int(p) if p.strip() else None for p in parts]
        return _Slice(values[0], values[1] if len(values) > 1 else None), close + 1
    if not _INTEGER.fullmatch(inner) or not inner.strip():
        raise JSONPathError(f"invalid array index [{inner}]")
    return _Index(int(inner)), close + 1


def _parse_filter(text: str, pos: int) -> tuple[_Filter, int]:
    steps, pos = _parse_steps(text, pos, stop="=!<>)")
    op_match = _OPERATOR.match(text, pos)
    op, literal = "", None
    if op_match is not None:
        op = op_match.group(1)
        lit_match = _LITERAL.match(text, op_match.end())
        if lit_match is None:
            raise JSONPathError(f"expected a literal after {op} at {op_match.end()}")
        raw = lit_match.group(1)
        if raw[0] == "'":
            raw = '"' + raw[1:-1].replace('"', '\\"') + '"'
        literal = orjson.loads(raw)
        pos = lit_match.end()
    if not text.startswith(")]", pos):
        raise JSONPathError(f"unterminated filter at {pos}")
    return _Filter(tuple(steps), op, literal), pos + 2


def _evaluate(steps: tuple[Any, ...], values: Iterable[Any]) -> Iterable[Any]:
    current = list(values)
    for step in steps:
        current = list(_apply(step, current))
        if not current:
            break
    return current


def _apply(step: Any, values: list[Any]) -> Iterable[Any]:
    for value in values:
        if isinstance(step, _Field):
            if isinstance(value, Mapping) and step.name in value:
                yield value[step.name]
        elif isinstance(step, _Index):
            if isinstance(value, list) and -len(value) <= step.index < len(value):
                yield value[step.index]
        elif isinstance(step, _Slice):
            if isinstance(value, list):
                yield from value[step.start : step.end]
        elif isinstance(step, _All):
            if isinstance(value, list):
                yield from value
            elif isinstance(value, Mapping):
                yield from value.values()
        elif isinstance(step, _Filter):
            items = value if isinstance(value, list) else [value]
            for item in items:
                if _matches(step, item):
                    yield item


def _matches(step: _Filter, item: Any) -> bool:
    found = list(_evaluate(step.path, [item]))
    if not step.op:
        return bool(found)
    if not found:
        return False
    left, right = found[0], step.literal
    if step.op == "==":
        return bool(left == right)
    if step.op == "!=":
        return bool(left != right)
    if isinstance(left, bool) or isinstance(right, bool):
        return False
    comparable: tuple[Any, Any]
    if isinstance(left, int | float) and isinstance(right, int | float):
        comparable = (float(left), float(right))
    elif isinstance(left, str) and isinstance(right, str):
        comparable = (left, right)
    else:
        return False
    return bool(_ORDER[step.op](*comparable))
