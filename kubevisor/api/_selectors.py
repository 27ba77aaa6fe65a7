"""Label and field selectors: upstream's grammars, validation, matching and canonical strings.

:class:`LabelSelector` follows ``k8s.io/apimachinery/pkg/labels`` (``labels.Parse`` and
``metav1.LabelSelectorAsSelector``) and :class:`FieldSelector` follows
``k8s.io/apimachinery/pkg/fields``, down to their error messages, so that a selector a real API
server accepts is accepted here, one it rejects is rejected with the same words, and ``str()`` of a
selector is what client-go would send.

Parse errors raise :class:`BadRequest`, the status a server answers a bad ``labelSelector`` or
``fieldSelector`` query parameter with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubevisor.api._errors import BadRequest
from kubevisor.api._validation import is_qualified_name, is_valid_label_value

__all__ = [
    "FieldSelector",
    "LabelRequirement",
    "LabelSelector",
    "escape_field_value",
]

# Operators as upstream's ``selection.Operator`` spells them.
DOES_NOT_EXIST: Final = "!"
EQUALS: Final = "="
DOUBLE_EQUALS: Final = "=="
IN: Final = "in"
NOT_EQUALS: Final = "!="
NOT_IN: Final = "notin"
EXISTS: Final = "exists"
GREATER_THAN: Final = "gt"
LESS_THAN: Final = "lt"

# Upstream's validRequirementOperators, in its order (the order of the "supported values" message).
_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN)
_BINARY_OPERATORS = ", ".join([IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN])
_INT64 = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_int64(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 10, 64)``; ``None`` where it would fail."""
    if not _INT64.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _go_quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _go_strings(values: Iterable[str]) -> str:
    """Go's ``%#v`` of a ``[]string``."""
    return "[]string{" + ", ".join(_go_quote(v) for v in values) + "}"


def _join_errors(errors: list[str]) -> str:
    """Upstream's aggregate error text: one error bare, several bracketed (duplicates dropped)."""
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    """One term of a label selector: ``key``, an operator (upstream's spelling: ``=``, ``==``,
    ``!=``, ``in``, ``notin``, ``exists``, ``!``, ``gt``, ``lt``) and its values, sorted and
    de-duplicated.

    Build through :meth:`create` (which validates) or by parsing; the constructor trusts its input.
    """

    key: str
    operator: str
    values: tuple[str, ...] = ()

    @classmethod
    def create(cls, key: str, operator: str, values: Iterable[str] = ()) -> LabelRequirement:
        """Upstream's ``NewRequirement``: the key must be a qualified name, the values label values,
        and their number must suit the operator.  Raises :class:`BadRequest` with upstream's
        aggregated field errors (``values[0][app]: Invalid value: ...``)."""
        vals = list(values)
        errors: list[str] = []
        messages = is_qualified_name(key)
        if messages:
            errors.append(f"key: Invalid value: {_go_quote(key)}: {'; '.join(messages)}")
        if operator in (IN, NOT_IN):
            if not vals:
                errors.append(
                    f"values: Invalid value: {_go_strings(vals)}: "
                    "for 'in', 'notin' operators, values set can't be empty"
                )
        elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
            if len(vals) != 1:
                errors.append(
                    f"values: Invalid value: {_go_strings(vals)}: exact-match compatibility requires one single value"
                )
        elif operator in (EXISTS, DOES_NOT_EXIST):
            if vals:
                errors.append(
                    f"values: Invalid value: {_go_strings(vals)}: "
                    "values set must be empty for exists and does not exist"
                )
        elif operator in (GREATER_THAN, LESS_THAN):
            if len(vals) != 1:
                errors.append(
                    f"values: Invalid value: {_go_strings(vals)}: "
                    "for 'Gt', 'Lt' operators, exactly one value is required"
                )
            for index, value in enumerate(vals):
                if _parse_int64(value) is None:
                    errors.append(
                        f"values[{index}]: Invalid value: {_go_quote(value)}: "
                        "for 'Gt', 'Lt' operators, the value must be an integer"
                    )
        else:
            supported = ", ".join(_go_quote(op) for op in _OPERATORS)
            errors.append(
                f"operator: Unsupported value: {_go_quote(operator)}: supported values: {supported}"
            )
        for index, value in enumerate(vals):
            messages = is_valid_label_value(value)
            if messages:
                errors.append(
                    f"values[{index}][{key}]: Invalid value: {_go_quote(value)}: {'; '.join(messages)}"
                )
        if errors:
            raise BadRequest(_join_errors(errors))
        return cls(key, operator, tuple(sorted(set(vals))))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Upstream's ``Requirement.Matches``: ``!=`` and ``notin`` match objects without the key;
        ``gt``/``lt`` match only integer label values."""
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            if self.key not in labels or len(self.values) != 1:
                return False
            have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        joined = ",".join(self.values)
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({joined})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{joined}"


# ---------------------------------------------------------------------------------------------------
# The label selector lexer and parser, token for token upstream's (labels/selector.go), because its
# corner cases (``a in ()`` selects the empty value, ``in`` is a keyword only where an operator may
# stand, the first error wins) are part of what clients send and expect.

_IDENTIFIER = "identifier"
_END = "end"
_OPEN, _CLOSE, _COMMA = "(", ")", ","
_SPECIAL_TOKENS = {")", ",", "!", "==", "=", ">", "<", "!=", "("}
_KEYWORDS = {IN, NOT_IN}
_SPECIAL_CHARS = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal); kind is the literal itself for symbols and keywords."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        # Go's lexer reads a NUL byte as the end of input.
        if i >= n or text[i] == "\0":
            tokens.append((_END, ""))
            return tokens
        if text[i] in _SPECIAL_CHARS:
            # Longest run of special characters that is still a token ("!=" over "!").
            j, best = i, ""
            while j < n and text[j] in _SPECIAL_CHARS:
                candidate = text[i : j + 1]
                if candidate in _SPECIAL_TOKENS:
                    best = candidate
                elif best:
                    break
                j += 1
            # Every single special character is a token, so ``best`` is never empty.
            tokens.append((best, best))
            i += len(best)
            continue
        j = i
        while j < n and text[j] not in _WHITESPACE and text[j] not in _SPECIAL_CHARS and text[j] != "\0":
            j += 1
        word = text[i:j]
        tokens.append((word if word in _KEYWORDS else _IDENTIFIER, word))
        # A NUL inside a word is consumed with it: it ends the word, not the input.
        i = j + 1 if j < n and text[j] == "\0" else j


class _SelectorSyntaxError(Exception):
    pass


class _Parser:
    # In a values position the keywords ``in``/``notin`` are ordinary identifiers.
    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.position = 0

    def lookahead(self, values: bool = True) -> tuple[str, str]:
        kind, literal = self.tokens[self.position]
        if values and kind in _KEYWORDS:
            kind = _IDENTIFIER
        return kind, literal

    def consume(self, values: bool = True) -> tuple[str, str]:
        token = self.lookahead(values)
        if self.position < len(self.tokens) - 1:
            self.position += 1
        return token

    def parse(self) -> list[LabelRequirement]:
        requirements: list[LabelRequirement] = []
        while True:
            kind, literal = self.lookahead()
            if kind in (_IDENTIFIER, DOES_NOT_EXIST):
                try:
                    requirements.append(self.parse_requirement())
                except (_SelectorSyntaxError, BadRequest) as exc:
                    message = exc.message if isinstance(exc, BadRequest) else str(exc)
                    raise _SelectorSyntaxError(f"unable to parse requirement: {message}") from None
                kind, literal = self.consume()
                if kind == _END:
                    return requirements
                if kind == _COMMA:
                    kind, literal = self.lookahead()
                    if kind not in (_IDENTIFIER, DOES_NOT_EXIST):
                        raise _SelectorSyntaxError(f"found '{literal}', expected: identifier after ','")
                    continue
                raise _SelectorSyntaxError(f"found '{literal}', expected: ',' or 'end of string'")
            if kind == _END:
                return requirements
            raise _SelectorSyntaxError(f"found '{literal}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> LabelRequirement:
        operator = ""
        kind, literal = self.consume()
        if kind == DOES_NOT_EXIST:
            operator = DOES_NOT_EXIST
            kind, literal = self.consume()
        if kind != _IDENTIFIER:
            raise _SelectorSyntaxError(f"found '{literal}', expected: identifier")
        key = literal
        messages = is_qualified_name(key)
        if messages:
            # Upstream validates the key against a nil field path, hence the literal "<nil>".
            raise _SelectorSyntaxError(f"<nil>: Invalid value: {_go_quote(key)}: {'; '.join(messages)}")
        if self.lookahead()[0] in (_END, _COMMA) and operator != DOES_NOT_EXIST:
            operator = EXISTS
        if operator in (EXISTS, DOES_NOT_EXIST):
            return LabelRequirement.create(key, operator)
        operator = self.parse_operator()
        values = self.parse_values() if operator in (IN, NOT_IN) else self.parse_exact_value()
        return LabelRequirement.create(key, operator, sorted(values))

    def parse_operator(self) -> str:
        kind, literal = self.consume(values=False)
        operators = {IN: IN, NOT_IN: NOT_IN, "=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS}
        operators.update({">": GREATER_THAN, "<": LESS_THAN})
        if kind in operators:
            return operators[kind]
        raise _SelectorSyntaxError(f"found '{literal}', expected: {_BINARY_OPERATORS}")

    def parse_values(self) -> set[str]:
        kind, literal = self.consume()
        if kind != _OPEN:
            raise _SelectorSyntaxError(f"found '{literal}' expected: '('")
        kind, literal = self.lookahead()
        if kind in (_IDENTIFIER, _COMMA):
            values = self.parse_identifiers_list()
            if self.consume()[0] != _CLOSE:
                raise _SelectorSyntaxError(f"found '{literal}', expected: ')'")
            return values
        if kind == _CLOSE:
            self.consume()
            return {""}
        raise _SelectorSyntaxError(f"found '{literal}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            kind, literal = self.consume()
            if kind == _IDENTIFIER:
                values.add(literal)
                next_kind, next_literal = self.lookahead()
                if next_kind == _COMMA:
                    continue
                if next_kind == _CLOSE:
                    return values
                raise _SelectorSyntaxError(f"found '{next_literal}', expected: ',' or ')'")
            if kind == _COMMA:
                # Empty members are the empty value: "(,a)", "(a,)" and "(a,,b)" all hold "".
                if not values:
                    values.add("")
                next_kind = self.lookahead()[0]
                if next_kind == _CLOSE:
                    values.add("")
                    return values
                if next_kind == _COMMA:
                    self.consume()
                    values.add("")
                continue
            raise _SelectorSyntaxError(f"found '{literal}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        if self.lookahead()[0] in (_END, _COMMA):
            return {""}
        kind, literal = self.consume()
        if kind == _IDENTIFIER:
            return {literal}
        raise _SelectorSyntaxError(f"found '{literal}', expected: identifier")


_SELECTOR_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of :class:`LabelRequirement`, kept sorted by key as upstream keeps it.

    The empty selector matches everything; :meth:`nothing` (what a *missing*
    ``metav1.LabelSelector`` means) matches no object and has no string form.
    """

    requirements: tuple[LabelRequirement, ...] = ()
    matches_nothing: bool = False

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse a ``labelSelector`` query parameter (upstream's ``labels.Parse``): ``k=v``,
        ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``, ``k>1``, ``k<1``,
        joined by commas, whitespace between tokens ignored.

        Raises :class:`BadRequest` with upstream's message, e.g. ``unable to parse requirement:
        found 'b', expected: in, notin, =, ==, !=, gt, lt``.
        """
        try:
            requirements = _Parser(text).parse()
        except _SelectorSyntaxError as exc:
            raise BadRequest(str(exc)) from None
        return cls(tuple(sorted(requirements, key=lambda r: r.key)))

    @classmethod
    def from_dict(cls, selector: Mapping[str, Any] | None) -> LabelSelector:
        """From a ``metav1.LabelSelector`` (``matchLabels`` and ``matchExpressions`` with ``In``,
        ``NotIn``, ``Exists``, ``DoesNotExist``), as ``metav1.LabelSelectorAsSelector``: ``None``
        selects nothing, an empty selector everything.

        Raises :class:`BadRequest`, e.g. ``"Gt" is not a valid label selector operator``.  Use
        :func:`validate_label_selector` instead to report errors on an object's field path.
        """
        if selector is None:
            return cls.nothing()
        if not isinstance(selector, Mapping):
            raise BadRequest(f"invalid label selector: expected an object, got {type(selector).__name__}")
        match_labels = selector.get("matchLabels") or {}
        expressions = selector.get("matchExpressions") or []
        if not isinstance(match_labels, Mapping) or not isinstance(expressions, list | tuple):
            raise BadRequest(
                "invalid label selector: matchLabels must be an object and matchExpressions a list"
            )
        if not all(isinstance(v, str) for v in match_labels.values()):
            raise BadRequest("invalid label selector: matchLabels values must be strings")
        requirements = [LabelRequirement.create(str(k), EQUALS, [v]) for k, v in match_labels.items()]
        for expression in expressions:
            if not isinstance(expression, Mapping):
                raise BadRequest("invalid label selector: each matchExpression must be an object")
            operator = expression.get("operator")
            if operator not in _SELECTOR_OPERATORS:
                raise BadRequest(f"{_go_quote(str(operator or ''))} is not a valid label selector operator")
            values = expression.get("values") or []
            if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
                raise BadRequest("invalid label selector: values must be a list of strings")
            requirements.append(
                LabelRequirement.create(
                    str(expression.get("key") or ""), _SELECTOR_OPERATORS[operator], values
                )
            )
        return cls(tuple(sorted(requirements, key=lambda r: r.key)))

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> LabelSelector:
        """The selector matching every object carrying all of ``labels`` (upstream's
        ``SelectorFromValidatedSet`` after validation)."""
        return cls.from_dict({"matchLabels": dict(labels)})

    @classmethod
    def nothing(cls) -> LabelSelector:
        """The selector that matches no object."""
        return cls((), matches_nothing=True)

    @property
    def empty(self) -> bool:
        """True when the selector has no requirements and so matches every object."""
        return not self.requirements and not self.matches_nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with ``labels`` (``None`` meaning none) is selected."""
        if self.matches_nothing:
            return False
        present = labels or {}
        return all(requirement.matches(present) for requirement in self.requirements)

    def __iter__(self) -> Iterator[LabelRequirement]:
        return iter(self.requirements)

    def __str__(self) -> str:
        """The canonical form (requirements sorted by key, values sorted), which :meth:`parse`
        reads back to an equal selector.  Raises ``ValueError`` for :meth:`nothing`, which has no
        string form: sending ``""`` instead would select everything."""
        if self.matches_nothing:
            raise ValueError("a label selector that matches nothing has no string form")
        return ",".join(str(requirement) for requirement in self.requirements)


# ---------------------------------------------------------------------------------------------------
# Field selectors (fields/selector.go).

_FIELD_OPERATORS = ("!=", "==", "=")  # "==" before "=" so that no "=" is left on the value


def escape_field_value(value: str) -> str:
    r"""Escape ``\``, ``,`` and ``=`` so that any string can be a field selector value (upstream's
    ``fields.EscapeValue``)."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(value: str) -> str:
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for c in value:
        if in_slash:
            if c not in "\\,=":
                raise BadRequest(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c in ",=":
            # Upstream formats the rune with %v, which prints its code point.
            raise BadRequest(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise BadRequest("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_field_terms(text: str) -> list[str]:
    """Split on commas that are not escaped; escapes stay in the terms."""
    if not text:
        return []
    terms: list[str] = []
    start, in_slash = 0, False
    for index, c in enumerate(text):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _field_term_text(term: tuple[str, str, str]) -> str:
    field, operator, value = term
    return f"{field}{operator}{escape_field_value(value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A conjunction of ``field=value`` and ``field!=value`` terms over an object's selectable
    fields (``metadata.name``, ``status.phase``, ...).

    A field the object does not have reads as ``""``, as upstream's ``fields.Set`` does, so
    ``spec.nodeName=`` selects unscheduled pods.  Which fields a resource supports is the server's
    business: it reads :attr:`requirements` and answers ``field label not supported: <f>``.
    """

    terms: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> FieldSelector:
        r"""Parse a ``fieldSelector`` query parameter: terms ``f=v``, ``f==v`` or ``f!=v`` joined by
        commas; in values ``\,``, ``\=`` and ``\\`` escape; no whitespace is trimmed.

        Raises :class:`BadRequest` with upstream's messages, e.g. ``invalid selector: 'x';
        can't understand 'x'``.
        """
        terms: list[tuple[str, str, str]] = []
        for part in _split_field_terms(text):
            if not part:
                continue
            for index in range(len(part)):
                operator = next((op for op in _FIELD_OPERATORS if part.startswith(op, index)), None)
                if operator is not None:
                    field, raw = part[:index], part[index + len(operator) :]
                    break
            else:
                raise BadRequest(f"invalid selector: '{text}'; can't understand '{part}'")
            terms.append((field, "!=" if operator == "!=" else "=", _unescape_field_value(raw)))
        # Upstream sorts the terms so that the string form does not depend on the input's order;
        # sorting the canonical terms (rather than the raw text) also makes parse(str(s)) == s.
        return cls(tuple(sorted(terms, key=_field_term_text)))

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> FieldSelector:
        """The selector requiring each field to equal its value."""
        return cls(
            tuple(sorted(((field, "=", value) for field, value in fields.items()), key=_field_term_text))
        )

    @property
    def requirements(self) -> list[tuple[str, str, str]]:
        """``(field, operator, value)`` for each term; the operator is ``"="`` (also for ``==``)
        or ``"!="``, the value unescaped."""
        return list(self.terms)

    @property
    def empty(self) -> bool:
        """True when there are no terms, so every object matches."""
        return not self.terms

    def exact_value(self, field: str) -> str | None:
        """The value ``field`` must equal, if some ``=`` term pins it (upstream's
        ``RequiresExactMatch``; lets a server turn ``metadata.name=x`` into a point lookup)."""
        for name, operator, value in self.terms:
            if name == field and operator == "=":
                return value
        return None

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Whether an object whose selectable fields are ``fields`` is selected."""
        for field, operator, value in self.terms:
            if (fields.get(field, "") == value) != (operator == "="):
                return False
        return True

    def __str__(self) -> str:
        """The canonical form, values escaped; :meth:`parse` reads it back to an equal selector."""
        return ",".join(_field_term_text(term) for term in self.terms)
