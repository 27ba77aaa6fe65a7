"""CEL validation rules (``x-kubernetes-validations``) on top of cel-python.

What upstream's apiextensions does and this module reproduces:

* A rule is compiled when the schema is compiled; a rule that does not parse, names an
  undeclared variable or function, or selects a field the schema does not declare is rejected
  with ``compilation failed: ERROR: <input>:line:col: ...`` on the rule's path.
* ``self`` is the value at the schema node carrying the rule; ``oldSelf`` (transition rules) the
  correlated old value, and a transition rule is only evaluated when that old value exists.
  Rules using ``oldSelf`` under list items that cannot be correlated (lists other than
  ``x-kubernetes-list-type: map``) are rejected.
* Declared property names that are not CEL identifiers are reachable escaped
  (``x-y`` → ``x__dash__y``); ``metadata`` of a resource exposes only ``name`` and
  ``generateName``; ``date``/``date-time`` strings are timestamps, ``duration`` strings
  durations, ``byte`` strings bytes.
* A failing rule yields ``<path>: Invalid value: "<type>": <message>`` where the message is the
  evaluated ``messageExpression``, else ``message``, else ``failed rule: <rule>``; ``reason``
  picks the error type and ``fieldPath`` extends the path.  An evaluation error is reported as
  ``<error> evaluating rule: <rule>``.

Kubernetes' extension libraries are provided in part: the strings library (``charAt``,
``indexOf``, ``lastIndexOf``, ``lowerAscii``, ``upperAscii``, ``replace``, ``split``,
``substring``, ``trim``, ``join``), the lists library (``isSorted``, ``sum``, ``min``, ``max``,
``indexOf``, ``lastIndexOf``) and the regex library (``find``, ``findAll``).  Cost budgets are
not estimated.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from kubevisor.api._errors import FieldError

__all__ = ["RuleSet", "compile_rules", "escape_property"]

_RESERVED = frozenset(
    {
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    }
)
_IDENT = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_ESCAPABLE = re.compile(r"^[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*$")
_SUPPORTED_REASONS = ("FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate")
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_TYPE_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type", "dyn"}
)


def escape_property(name: str) -> str | None:
    """The CEL identifier under which a declared property is visible, or ``None`` when its name
    cannot be escaped (upstream's ``cel.Escape``)."""
    if name in _RESERVED:
        return f"__{name}__"
    if _IDENT.match(name) and "__" not in name:
        return name
    if not _ESCAPABLE.match(name):
        return None
    out = name.replace("__", "__underscores__")
    return out.replace(".", "__dot__").replace("-", "__dash__").replace("/", "__slash__")


# -- the Kubernetes extension libraries -------------------------------------------------------


def _err(message: str) -> CELEvalError:
    return CELEvalError(message)


def _plain(items: Any) -> list[Any]:
    # cel-python's precise value unions do not type-check generic list code; erase them.
    return list(items)


def _str_args(*values: Any) -> bool:
    return all(isinstance(v, str) for v in values)


def _char_at(text: Any, index: Any) -> Any:
    if not isinstance(text, str) or not isinstance(index, int):
        return _err("no such overload")
    if index < 0 or index > len(text):
        return _err(f"index out of range: {index}")
    return celtypes.StringType(text[index : index + 1])


def _index_of(container: Any, needle: Any, offset: Any = None) -> Any:
    if isinstance(container, celtypes.ListType):
        for position, item in enumerate(_plain(container)):
            if item == needle:
                return celtypes.IntType(position)
        return celtypes.IntType(-1)
    if not _str_args(container, needle):
        return _err("no such overload")
    start = 0 if offset is None else int(offset)
    if start < 0 or start > len(container):
        return _err(f"index out of range: {start}")
    return celtypes.IntType(container.find(needle, start))


def _last_index_of(container: Any, needle: Any, offset: Any = None) -> Any:
    if isinstance(container, celtypes.ListType):
        values = _plain(container)
        for position in range(len(values) - 1, -1, -1):
            if values[position] == needle:
                return celtypes.IntType(position)
        return celtypes.IntType(-1)
    if not _str_args(container, needle):
        return _err("no such overload")
    end = len(container) if offset is None else int(offset)
    if end < 0 or end > len(container):
        return _err(f"index out of range: {end}")
    return celtypes.IntType(container.rfind(needle, 0, end + len(needle)))


def _lower_ascii(text: Any) -> Any:
    if not isinstance(text, str):
        return _err("no such overload")
    return celtypes.StringType("".join(c.lower() if c.isascii() else c for c in text))


def _upper_ascii(text: Any) -> Any:
    if not isinstance(text, str):
        return _err("no such overload")
    return celtypes.StringType("".join(c.upper() if c.isascii() else c for c in text))


def _replace(text: Any, old: Any, new: Any, limit: Any = None) -> Any:
    if not _str_args(text, old, new):
        return _err("no such overload")
    count = -1 if limit is None else int(limit)
    return celtypes.StringType(text.replace(old, new, count))


def _split(text: Any, separator: Any, limit: Any = None) -> Any:
    if not _str_args(text, separator):
        return _err("no such overload")
    count = -1 if limit is None else int(limit)
    if count == 0:
        return celtypes.ListType([])
    parts = list(text) if separator == "" else text.split(separator, count - 1 if count > 0 else -1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _substring(text: Any, start: Any, end: Any = None) -> Any:
    if not isinstance(text, str):
        return _err("no such overload")
    stop = len(text) if end is None else int(end)
    if not 0 <= int(start) <= stop <= len(text):
        return _err(f"index out of range: {start if int(start) < 0 or int(start) > len(text) else stop}")
    return celtypes.StringType(text[int(start) : stop])


def _trim(text: Any) -> Any:
    if not isinstance(text, str):
        return _err("no such overload")
    return celtypes.StringType(text.strip())


def _join(items: Any, separator: Any = "") -> Any:
    if not isinstance(items, celtypes.ListType) or not all(isinstance(i, str) for i in items):
        return _err("no such overload")
    return celtypes.StringType(str(separator).join(str(i) for i in _plain(items)))


def _is_sorted(items: Any) -> Any:
    if not isinstance(items, celtypes.ListType):
        return _err("no such overload")
    values = _plain(items)
    try:
        return celtypes.BoolType(all(values[i] <= values[i + 1] for i in range(len(values) - 1)))
    except TypeError:
        return _err("no such overload")


def _sum(items: Any) -> Any:
    if not isinstance(items, celtypes.ListType):
        return _err("no such overload")
    values = _plain(items)
    if not values:
        return celtypes.IntType(0)
    total = values[0]
    for item in values[1:]:
        total = total + item
    return total


def _max(items: Any, *rest: Any) -> Any:
    values = _plain(items) if isinstance(items, celtypes.ListType) and not rest else [items, *rest]
    if not values:
        return _err("max(list) argument must not be empty")
    try:
        return max(values)
    except TypeError:
        return _err("no such overload")


def _find(text: Any, pattern: Any) -> Any:
    if not _str_args(text, pattern):
        return _err("no such overload")
    match = re.search(pattern, text)
    return celtypes.StringType(match.group(0) if match else "")


def _find_all(text: Any, pattern: Any, limit: Any = None) -> Any:
    if not _str_args(text, pattern):
        return _err("no such overload")
    found = [m.group(0) for m in re.finditer(pattern, text)]
    if limit is not None and int(limit) >= 0:
        found = found[: int(limit)]
    return celtypes.ListType([celtypes.StringType(f) for f in found])


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "charAt": _char_at,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "lowerAscii": _lower_ascii,
    "upperAscii": _upper_ascii,
    "replace": _replace,
    "split": _split,
    "substring": _substring,
    "trim": _trim,
    "join": _join,
    "isSorted": _is_sorted,
    "sum": _sum,
    "max": _max,
    "find": _find,
    "findAll": _find_all,
}
_BUILTINS = frozenset(
    {
        "size",
        "contains",
        "startsWith",
        "endsWith",
        "matches",
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getFullYear",
        "getMonth",
        "getHours",
        "getMilliseconds",
        "getMinutes",
        "getSeconds",
        "bool",
        "bytes",
        "double",
        "duration",
        "int",
        "uint",
        "string",
        "timestamp",
        "type",
        "dyn",
        "has",
        "min",
        "reduce",
    }
)
_KNOWN_FUNCTIONS = _BUILTINS | _FUNCTIONS.keys() | _MACROS


@cache
def _environment() -> celpy.Environment:
    # Built on first use: building cel-python's parser costs a noticeable fraction of a second.
    # One environment serves every rule (cel-python's parser is a process-wide singleton anyway).
    return celpy.Environment()


# -- static checking --------------------------------------------------------------------------

_META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "generateName": {"type": "string"}},
}
_RESOURCE_FIELDS: dict[str, Any] = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": _META_SCHEMA,
}
_CEL_TYPE_NAMES = {
    "string": "string",
    "integer": "int",
    "number": "double",
    "boolean": "bool",
    "array": "list",
}
_PASS_THROUGH = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication", "unary"}
)


class _CompileError(Exception):
    pass


def _location(source: str, line: int, column: int, message: str) -> str:
    lines = source.splitlines() or [""]
    text = lines[min(max(line, 1), len(lines)) - 1]
    return f"ERROR: <input>:{line}:{column}: {message}\n | {text}\n | {'.' * max(column - 1, 0)}^"


class _Checker:
    """Walks a parsed rule and reports what cel-go's type checker would reject: undeclared
    variables and functions, and selection of fields the schema does not declare."""

    def __init__(self, source: str, root: Mapping[str, Any], resource_root: bool) -> None:
        self.source = source
        self.errors: list[str] = []
        self.resource_roots: set[int] = {id(root)} if resource_root else set()
        self.scope: dict[str, Mapping[str, Any] | None] = {"self": root, "oldSelf": root}
        self.uses_old = False

    def error(self, token: Any, message: str, shift: int = 0) -> None:
        line = getattr(token, "line", 1) or 1
        column = max((getattr(token, "column", 1) or 1) - shift, 1)
        self.errors.append(_location(self.source, line, column, message))

    def visit(self, tree: Any) -> Mapping[str, Any] | None:
        if not isinstance(tree, lark.Tree):
            return None
        handler = getattr(self, f"_visit_{tree.data}", None)
        if handler is not None:
            result: Mapping[str, Any] | None = handler(tree)
            return result
        subtrees = [c for c in tree.children if isinstance(c, lark.Tree)]
        if tree.data in _PASS_THROUGH or tree.data in ("member", "primary", "paren_expr"):
            if len(subtrees) == 1 and len(tree.children) == 1:
                return self.visit(subtrees[0])
        for child in subtrees:
            self.visit(child)
        return None

    def _visit_ident(self, tree: lark.Tree[Any]) -> Mapping[str, Any] | None:
        token = tree.children[0]
        name = str(token)
        if name == "oldSelf":
            self.uses_old = True
        if name in self.scope:
            return self.scope[name]
        if name not in _TYPE_NAMES:
            self.error(token, f"undeclared reference to '{name}' (in container '')")
        return None

    _visit_dot_ident = _visit_ident

    def _visit_ident_arg(self, tree: lark.Tree[Any]) -> Mapping[str, Any] | None:
        token = tree.children[0]
        name = str(token)
        if name not in _KNOWN_FUNCTIONS:
            self.error(token, f"undeclared reference to '{name}' (in container '')")
        for child in tree.children[1:]:
            self.visit(child)
        return None

    _visit_dot_ident_arg = _visit_ident_arg

    def _visit_member_dot(self, tree: lark.Tree[Any]) -> Mapping[str, Any] | None:
        member, token = tree.children
        return self.select(self.visit(member), str(token), token)

    def _visit_member_index(self, tree: lark.Tree[Any]) -> Mapping[str, Any] | None:
        container = self.visit(tree.children[0])
        self.visit(tree.children[1])
        if container is None:
            return None
        if container.get("type") == "array":
            items = container.get("items")
            return items if isinstance(items, Mapping) else None
        additional = container.get("additionalProperties")
        return additional if isinstance(additional, Mapping) else None

    def _visit_member_dot_arg(self, tree: lark.Tree[Any]) -> Mapping[str, Any] | None:
        member, token = tree.children[0], tree.children[1]
        name = str(token)
        arguments = tree.children[2].children if len(tree.children) > 2 else []
        target = self.visit(member)
        if name in _MACROS and arguments:
            variable = _bare_ident(arguments[0])
            if variable is None:
                self.error(token, "argument must be a simple name")
                return None
            element: Mapping[str, Any] | None = None
            if target is not None and target.get("type") == "array":
                items = target.get("items")
                element = items if isinstance(items, Mapping) else None
            elif target is not None and target.get("type") == "object":
                element = {"type": "string"}
            saved = self.scope.get(variable, _ABSENT)
            self.scope[variable] = element
            for argument in arguments[1:]:
                self.visit(argument)
            if saved is _ABSENT:
                del self.scope[variable]
            else:
                self.scope[variable] = saved  # type: ignore[assignment]
            return None
        if name not in _KNOWN_FUNCTIONS:
            self.error(token, f"undeclared reference to '{name}' (in container '')")
        for argument in arguments:
            self.visit(argument)
        return None

    def select(self, schema: Mapping[str, Any] | None, name: str, token: Any) -> Mapping[str, Any] | None:
        if schema is None or schema.get("x-kubernetes-int-or-string"):
            return None
        kind = schema.get("type")
        if kind in _CEL_TYPE_NAMES:
            # cel-go places selection errors on the dot before the field name.
            self.error(token, f"type '{_CEL_TYPE_NAMES[kind]}' does not support field selection", shift=1)
            return None
        properties = schema.get("properties")
        if isinstance(properties, Mapping):
            for key, sub in properties.items():
                if escape_property(str(key)) == name and isinstance(sub, Mapping):
                    if key == "metadata" and (
                        id(schema) in self.resource_roots or schema.get("x-kubernetes-embedded-resource")
                    ):
                        return _META_SCHEMA
                    return sub
        if id(schema) in self.resource_roots or schema.get("x-kubernetes-embedded-resource"):
            if name in _RESOURCE_FIELDS:
                implicit: Mapping[str, Any] = _RESOURCE_FIELDS[name]
                return implicit
        additional = schema.get("additionalProperties")
        if isinstance(additional, Mapping):
            return additional
        if additional is True:
            return None
        if schema.get("x-kubernetes-preserve-unknown-fields") and not properties:
            return None
        if kind is None and not properties:
            return None
        self.error(token, f"undefined field '{name}'", shift=1)
        return None


_ABSENT = object()


def _bare_ident(tree: Any) -> str | None:
    """The identifier an expression consists of, or ``None`` if it is anything else."""
    while isinstance(tree, lark.Tree):
        if tree.data == "ident":
            return str(tree.children[0])
        if len(tree.children) != 1:
            return None
        tree = tree.children[0]
    return None


def _compile(source: str, schema: Mapping[str, Any], resource_root: bool) -> tuple[Any, bool]:
    """Parse and check one expression; ``(program, uses oldSelf)`` or ``_CompileError``."""
    try:
        ast = _environment().compile(source)
    except CELParseError as exc:
        line, column = exc.line or 1, exc.column or 1
        raise _CompileError(_location(source, line, column, "Syntax error: unexpected input")) from exc
    checker = _Checker(source, schema, resource_root)
    checker.visit(ast)
    if checker.errors:
        raise _CompileError("\n".join(checker.errors))
    return _environment().program(ast, functions=_FUNCTIONS), checker.uses_old


# -- value conversion -------------------------------------------------------------------------


class _Shape:
    """How a JSON value under one schema node becomes a CEL value (precomputed per node)."""

    __slots__ = ("additional", "fmt", "integer", "items", "meta", "props")

    def __init__(self) -> None:
        self.props: dict[str, tuple[str | None, _Shape | None]] | None = None
        self.additional: _Shape | None = None
        self.items: _Shape | None = None
        self.fmt: str | None = None
        self.integer = False
        self.meta = False

    @classmethod
    def build(cls, schema: Mapping[str, Any] | None, resource: bool = False) -> _Shape | None:
        if not isinstance(schema, Mapping):
            return None
        shape = cls()
        shape.integer = schema.get("type") == "integer"
        if schema.get("type") == "string":
            fmt = schema.get("format")
            shape.fmt = fmt if fmt in ("date", "date-time", "duration", "byte") else None
        properties = schema.get("properties")
        embedded = resource or bool(schema.get("x-kubernetes-embedded-resource"))
        if isinstance(properties, Mapping) or embedded:
            shape.props = {}
            for key, sub in (properties or {}).items():
                shape.props[str(key)] = (escape_property(str(key)), cls.build(sub))
            if embedded:
                meta = cls()
                meta.meta = True
                shape.props["metadata"] = ("metadata", meta)
        additional = schema.get("additionalProperties")
        if isinstance(additional, Mapping):
            shape.additional = cls.build(additional)
        shape.items = cls.build(schema.get("items"))
        return shape


def _to_cel(value: Any, shape: _Shape | None) -> Any:
    kind = type(value)
    if kind is str:
        if shape is not None and shape.fmt is not None:
            return _formatted(value, shape.fmt)
        return celtypes.StringType(value)
    if kind is bool:
        return celtypes.BoolType(value)
    if kind is int:
        return celtypes.IntType(value)
    if kind is float:
        if shape is not None and shape.integer and value.is_integer():
            return celtypes.IntType(int(value))
        return celtypes.DoubleType(value)
    if value is None:
        return None
    if kind is dict:
        if shape is None:
            return celtypes.MapType({celtypes.StringType(k): _to_cel(v, None) for k, v in value.items()})
        if shape.meta:
            return celtypes.MapType(
                {
                    celtypes.StringType(k): _to_cel(v, None)
                    for k, v in value.items()
                    if k in ("name", "generateName")
                }
            )
        out: dict[Any, Any] = {}
        props = shape.props
        for key, item in value.items():
            entry = props.get(key) if props is not None else None
            if entry is not None:
                if entry[0] is not None:
                    out[celtypes.StringType(entry[0])] = _to_cel(item, entry[1])
            else:
                out[celtypes.StringType(key)] = _to_cel(item, shape.additional)
        return celtypes.MapType(out)
    if kind is list:
        items = shape.items if shape is not None else None
        return celtypes.ListType([_to_cel(v, items) for v in value])
    return json_to_cel(value)


def _formatted(text: str, fmt: str) -> Any:
    # A malformed value has already been reported by format validation; keep it a string.
    try:
        if fmt == "date-time":
            return celtypes.TimestampType(text.replace(" ", "T").replace("t", "T").replace("z", "Z"))
        if fmt == "date":
            return celtypes.TimestampType(f"{text}T00:00:00Z")
        if fmt == "duration":
            return celtypes.DurationType(text)
        return celtypes.BytesType(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error):
        return celtypes.StringType(text)


# -- rules ------------------------------------------------------------------------------------


class _Rule:
    __slots__ = ("field_path", "message", "message_program", "program", "reason", "source", "uses_old")

    def __init__(
        self,
        source: str,
        program: Any,
        uses_old: bool,
        message: str,
        message_program: Any,
        reason: str,
        field_path: str,
    ) -> None:
        self.source = source
        self.program = program
        self.uses_old = uses_old
        self.message = message
        self.message_program = message_program
        self.reason = reason
        self.field_path = field_path


def _error_text(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    match = re.match(r"no such member in mapping: '(.*)'$", text)
    if match:
        return f"no such key: {match[1]}"
    if text == "no such key" and len(exc.args) > 2 and exc.args[2]:
        return f"no such key: {exc.args[2][0]}"
    return text


class RuleSet:
    """The compiled ``x-kubernetes-validations`` of one schema node."""

    __slots__ = ("has_transition", "rules", "shape", "type_name")

    def __init__(self, rules: Sequence[_Rule], shape: _Shape | None, type_name: str) -> None:
        self.rules = tuple(rules)
        self.shape = shape
        self.type_name = type_name
        self.has_transition = any(r.uses_old for r in rules)

    def validate(self, value: Any, old: Any, has_old: bool, path: str, errors: list[FieldError]) -> None:
        """Evaluate every rule against ``value`` (``old`` only when ``has_old``), appending one
        error per failing rule.  Transition rules are skipped when there is no old value."""
        if value is None:
            return
        activation: dict[str, Any] | None = None
        for rule in self.rules:
            if rule.uses_old and not has_old:
                continue
            if activation is None:
                activation = {"self": _to_cel(value, self.shape)}
            if rule.uses_old and "oldSelf" not in activation:
                activation["oldSelf"] = _to_cel(old, self.shape)
            target = _join_path(path, rule.field_path)
            try:
                result = rule.program.evaluate(activation)
            except CELEvalError as exc:
                errors.append(
                    FieldError.invalid(
                        target, self.type_name, f"{_error_text(exc)} evaluating rule: {rule.source}"
                    )
                )
                continue
            except Exception as exc:  # cel-python raises plain Python errors for some failures
                errors.append(
                    FieldError.invalid(target, self.type_name, f"{exc} evaluating rule: {rule.source}")
                )
                continue
            if isinstance(result, celtypes.BoolType) and bool(result):
                continue
            if not isinstance(result, celtypes.BoolType):
                errors.append(
                    FieldError.invalid(
                        target, self.type_name, f"rule did not evaluate to a bool: {rule.source}"
                    )
                )
                continue
            errors.append(self._failure(rule, target, activation))

    def _failure(self, rule: _Rule, target: str, activation: dict[str, Any]) -> FieldError:
        message = rule.message
        if rule.message_program is not None:
            try:
                evaluated = rule.message_program.evaluate(activation)
            except Exception:  # upstream logs the failure and falls back to the static message
                evaluated = None
            if isinstance(evaluated, str) and evaluated.strip() and "\n" not in evaluated:
                message = str(evaluated).strip()
        if rule.reason == FieldError.FORBIDDEN:
            return FieldError.forbidden(target, message)
        if rule.reason == FieldError.REQUIRED:
            return FieldError.required(target, message)
        if rule.reason == FieldError.DUPLICATE:
            return FieldError.duplicate(target, self.type_name)
        return FieldError.invalid(target, self.type_name, message)


def _join_path(path: str, suffix: str) -> str:
    if not suffix:
        return path
    return f"{path}{suffix}" if path else suffix.lstrip(".")


_FIELD_PATH_SEGMENT = re.compile(r"\.([a-zA-Z_][a-zA-Z0-9_-]*)|\['((?:[^'\\]|\\.)*)'\]")


def _parse_field_path(text: str, schema: Mapping[str, Any]) -> tuple[str, str | None]:
    """``(rendered path suffix, error)`` for a rule's ``fieldPath`` relative to ``schema``."""
    position, rendered = 0, ""
    current: Mapping[str, Any] | None = schema
    while position < len(text):
        match = _FIELD_PATH_SEGMENT.match(text, position)
        if match is None:
            return "", f"invalid field path: {text}"
        name = match[1] if match[1] is not None else match[2].replace("\\'", "'")
        position = match.end()
        rendered += f".{name}"
        if current is None:
            continue
        properties = current.get("properties")
        additional = current.get("additionalProperties")
        if isinstance(properties, Mapping) and name in properties:
            sub = properties[name]
            current = sub if isinstance(sub, Mapping) else None
        elif isinstance(additional, Mapping):
            current = additional
        elif current.get("x-kubernetes-preserve-unknown-fields"):
            current = None
        else:
            return "", f"does not refer to a valid field: {text}"
    if not rendered:
        return "", "must not be empty"
    return rendered, None


def compile_rules(
    schema: Mapping[str, Any],
    path: str,
    *,
    resource_root: bool = False,
    uncorrelatable_within: str | None = None,
) -> tuple[RuleSet | None, list[FieldError]]:
    """Compile the ``x-kubernetes-validations`` of one schema node found at ``path``.

    Returns the rule set (``None`` when the node has no rules) and the problems found, each on
    the offending ``x-kubernetes-validations[i].<field>`` path.  ``resource_root`` marks the
    root of a resource (``apiVersion``, ``kind``, ``metadata.name`` visible);
    ``uncorrelatable_within`` names the nearest enclosing list whose items cannot be correlated
    with old items, under which ``oldSelf`` is rejected.
    """
    raw = schema.get("x-kubernetes-validations")
    if raw is None:
        return None, []
    base = f"{path}.x-kubernetes-validations"
    if not isinstance(raw, list):
        return None, [FieldError.invalid(base, raw, "must be a list of validation rules")]
    errors: list[FieldError] = []
    rules: list[_Rule] = []
    for index, entry in enumerate(raw):
        at = f"{base}[{index}]"
        if not isinstance(entry, Mapping):
            errors.append(FieldError.invalid(at, entry, "must be an object"))
            continue
        rule = entry.get("rule")
        if not isinstance(rule, str) or not rule.strip():
            errors.append(FieldError.required(f"{at}.rule", "rule is not specified"))
            continue
        message = entry.get("message")
        if message is not None:
            if not isinstance(message, str):
                errors.append(FieldError.invalid(f"{at}.message", message, "must be a string"))
            elif not message.strip():
                errors.append(
                    FieldError.invalid(f"{at}.message", message, "message must be non-empty if specified")
                )
            elif "\n" in message:
                errors.append(
                    FieldError.invalid(f"{at}.message", message, "message must not contain line breaks")
                )
        reason = entry.get("reason")
        if reason is not None and reason not in _SUPPORTED_REASONS:
            errors.append(FieldError.not_supported(f"{at}.reason", reason, _SUPPORTED_REASONS))
        field_path = entry.get("fieldPath")
        rendered = ""
        if field_path is not None:
            if not isinstance(field_path, str):
                errors.append(FieldError.invalid(f"{at}.fieldPath", field_path, "must be a string"))
            else:
                rendered, problem = _parse_field_path(field_path, schema)
                if problem is not None:
                    errors.append(
                        FieldError.invalid(
                            f"{at}.fieldPath", field_path, f"fieldPath must be a valid path: {problem}"
                        )
                    )
        try:
            program, uses_old = _compile(rule, schema, resource_root)
        except _CompileError as exc:
            errors.append(FieldError.invalid(f"{at}.rule", rule, f"compilation failed: {exc}"))
            continue
        if uses_old and uncorrelatable_within is not None:
            errors.append(
                FieldError.invalid(
                    f"{at}.rule",
                    rule,
                    f"oldSelf cannot be used on the uncorrelatable portion of the schema within {uncorrelatable_within}",
                )
            )
            continue
        message_program = None
        expression = entry.get("messageExpression")
        if expression is not None:
            if not isinstance(expression, str) or not expression.strip():
                errors.append(
                    FieldError.invalid(
                        f"{at}.messageExpression",
                        expression,
                        "messageExpression must be non-empty if specified",
                    )
                )
            else:
                try:
                    message_program, _ = _compile(expression, schema, resource_root)
                except _CompileError as exc:
                    errors.append(
                        FieldError.invalid(
                            f"{at}.messageExpression",
                            expression,
                            f"messageExpression compilation failed: {exc}",
                        )
                    )
        default_message = (
            message.strip()
            if isinstance(message, str) and message.strip()
            else f"failed rule: {rule.strip()}"
        )
        rules.append(
            _Rule(
                source=rule.strip(),
                program=program,
                uses_old=uses_old,
                message=default_message,
                message_program=message_program,
                reason=reason if isinstance(reason, str) else FieldError.INVALID,
                field_path=rendered,
            )
        )
    if errors:
        return None, errors
    type_name = schema.get("type")
    shape = _Shape.build(schema, resource=resource_root)
    return RuleSet(rules, shape, type_name if isinstance(type_name, str) else ""), []
