"""Label and field selectors: upstream's grammar, messages and matching rules.

The examples come from upstream's documented behaviour (labels/selector_test.go, fields/selector_test.go
and the error texts real API servers return); the properties check that the canonical string reads back
to the same selector and that matching agrees with a direct evaluation of the generated requirements.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevisor.api import BadRequest, FieldSelector, LabelRequirement, LabelSelector, escape_field_value

QUALIFIED_NAME_REGEX = "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'"


# --- label selectors: upstream examples ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("x=a", "x=a"),
        ("x=a,y=b,z=c", "x=a,y=b,z=c"),
        ("z=c,x=a,y=b", "x=a,y=b,z=c"),
        ("x!=a,y=b", "x!=a,y=b"),
        ("x=,z= ", "x=,z="),
        ("x= ,z= ", "x=,z="),
        ("!x", "!x"),
        ("x>1", "x>1"),
        ("x>1,z<5", "x>1,z<5"),
        ("x  ==  a", "x==a"),
        ("x in (b,a), y notin (c)", "x in (a,b),y notin (c)"),
        ("x in ()", "x in ()"),
        ("x in (,a)", "x in (,a)"),
        ("x in (a,)", "x in (,a)"),
        ("x in (a,,b)", "x in (,a,b)"),
        ("\tx\n=\ra ", "x=a"),
        ("example.com/app=web", "example.com/app=web"),
        ("in in (in,notin)", "in in (in,notin)"),
        ("notin=in", "notin=in"),
    ],
)
def test_upstream_valid_label_selectors_parse_to_their_canonical_string(text: str, canonical: str) -> None:
    assert str(LabelSelector.parse(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x=a||y=b", None),
        ("x==a==b", "found '==', expected: ',' or 'end of string'"),
        ("!x=a", "found '=', expected: ',' or 'end of string'"),
        (
            "x<a",
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("x>1.1", None),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in (b,,)", "unable to parse requirement: found ')', expected: ',', or identifier"),
        ("a=(b)", "unable to parse requirement: found '(', expected: identifier"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a=b,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
    ],
)
def test_malformed_label_selectors_are_bad_requests_with_upstreams_message(
    text: str, message: str | None
) -> None:
    with pytest.raises(BadRequest) as caught:
        LabelSelector.parse(text)
    assert caught.value.code == 400
    if message is not None:
        assert caught.value.message == message


def test_an_invalid_key_is_reported_against_upstreams_nil_field_path() -> None:
    with pytest.raises(BadRequest) as caught:
        LabelSelector.parse("app:monolith")
    assert caught.value.message == (
        'unable to parse requirement: <nil>: Invalid value: "app:monolith": name part must consist of '
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
        f"(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is {QUALIFIED_NAME_REGEX})"
    )


def test_an_invalid_value_is_reported_against_its_index_and_key() -> None:
    with pytest.raises(BadRequest) as caught:
        LabelSelector.parse("app=a@b")
    assert caught.value.message.startswith(
        'unable to parse requirement: values[0][app]: Invalid value: "a@b": a valid label must be an empty string'
    )


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {"x": "y"}, True),
        ("x=y", {"x": "y"}, True),
        ("x=y,z=w", {"x": "y", "z": "w"}, True),
        ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
        ("notin=in", {"notin": "in"}, True),
        ("x", {"x": "z"}, True),
        ("!x", {"y": "z"}, True),
        ("x>1", {"x": "2"}, True),
        ("x<1", {"x": "0"}, True),
        ("x in (a,b)", {"x": "b"}, True),
        ("x notin (a,b)", {"y": "a"}, True),
        ("x in ()", {"x": ""}, True),
        ("x=", {"x": ""}, True),
        ("x=z", {}, False),
        ("x=y", {"x": "z"}, False),
        ("x=y,z=w", {"x": "w", "z": "w"}, False),
        ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
        ("x", {"y": "z"}, False),
        ("!x", {"x": "z"}, False),
        ("x>1", {"x": "0"}, False),
        ("x<1", {"x": "2"}, False),
        ("x>1", {"x": "two"}, False),
        ("x>1", {}, False),
        ("x in ()", {}, False),
        ("x notin (a,b)", {"x": "a"}, False),
    ],
)
def test_label_selectors_match_as_upstream(text: str, labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.parse(text).matches(labels) is expected


def test_the_empty_selector_is_empty_and_matches_objects_without_labels() -> None:
    selector = LabelSelector.parse("  ")
    assert selector.empty
    assert selector.matches(None)
    assert not LabelSelector.parse("a").empty


def test_label_selector_from_dict_combines_match_labels_and_expressions() -> None:
    selector = LabelSelector.from_dict(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "owner", "operator": "Exists"},
            ],
        }
    )
    assert str(selector) == "app=web,!canary,env notin (dev),owner,tier in (edge,front)"
    assert selector.matches({"app": "web", "tier": "edge", "owner": "me"})
    assert not selector.matches({"app": "web", "tier": "edge", "owner": "me", "canary": "1"})
    assert LabelSelector.parse(str(selector)) == selector


def test_a_missing_label_selector_selects_nothing_and_an_empty_one_everything() -> None:
    assert not LabelSelector.from_dict(None).matches({})
    assert not LabelSelector.from_dict(None).empty
    assert LabelSelector.from_dict({}).empty
    assert LabelSelector.from_dict({"matchLabels": {}, "matchExpressions": []}).matches({"a": "b"})
    with pytest.raises(ValueError, match="no string form"):
        str(LabelSelector.nothing())


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            '"Gt" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist',
        ),
        ({"matchLabels": {"a b": "c"}}, 'key: Invalid value: "a b": name part must consist of'),
    ],
)
def test_label_selector_from_dict_rejects_what_upstream_rejects(
    selector: dict[str, object], message: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        LabelSelector.from_dict(selector)
    assert caught.value.message.startswith(message)


def test_from_labels_selects_objects_carrying_all_of_them() -> None:
    selector = LabelSelector.from_labels({"a": "1", "b": "2"})
    assert str(selector) == "a=1,b=2"
    assert selector.matches({"a": "1", "b": "2", "c": "3"})
    assert not selector.matches({"a": "1"})


def test_requirement_create_rejects_an_unsupported_operator() -> None:
    with pytest.raises(BadRequest, match='operator: Unsupported value: "~": supported values: "in", "notin"'):
        LabelRequirement.create("a", "~", ["b"])


# --- label selectors: properties -------------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits
_LOWER = string.ascii_lowercase + string.digits


def _word(edge: str, middle: str, max_middle: int) -> st.SearchStrategy[str]:
    """``edge`` or ``edge middle* edge``: the shape of DNS labels and label name parts."""
    ends = st.sampled_from(edge)
    inner = st.text(alphabet=middle, max_size=max_middle)
    return st.one_of(ends, st.builds(lambda a, m, b: a + m + b, ends, inner, ends))


_dns_label = _word(_LOWER, _LOWER + "-", 8)
_name_part = _word(_ALNUM, _ALNUM + "-_.", 10)
_keys = st.one_of(
    _name_part,
    st.builds(
        lambda prefix, name: f"{'.'.join(prefix)}/{name}",
        st.lists(_dns_label, min_size=1, max_size=3),
        _name_part,
    ),
)
# Upstream keywords and operator-like words are valid keys and values; make sure they turn up.
_values = st.one_of(st.just(""), st.sampled_from(["in", "notin", "exists", "gt"]), _name_part)
_integers = st.integers(min_value=-(10**6), max_value=10**6).map(str)


@st.composite
def _requirements(draw: st.DrawFn) -> tuple[str, str, tuple[str, ...]]:
    """(key, operator, values) with upstream's operator names and a valid number of values."""
    key = draw(_keys)
    operator = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt"]))
    if operator in ("exists", "!"):
        return key, operator, ()
    if operator in ("gt", "lt"):
        return key, operator, (draw(st.integers(min_value=0, max_value=10**6).map(str)),)
    if operator in ("in", "notin"):
        # Upstream rejects repeated empty members ("(,,)"), so render each value once, sorted, as
        # upstream's own String() does.
        return key, operator, tuple(sorted(set(draw(st.lists(_values, min_size=1, max_size=4)))))
    return key, operator, (draw(_values),)


def _render(requirement: tuple[str, str, tuple[str, ...]], pad: str) -> str:
    """Independent of LabelRequirement.__str__: spells each requirement with the given padding."""
    key, operator, values = requirement
    if operator == "exists":
        return key
    if operator == "!":
        return f"!{pad}{key}"
    if operator in ("in", "notin"):
        return f"{key} {operator}{pad}({pad}{f'{pad},{pad}'.join(values)}{pad})"
    symbol = {"gt": ">", "lt": "<"}.get(operator, operator)
    return f"{key}{pad}{symbol}{pad}{values[0]}"


def _evaluate(requirement: tuple[str, str, tuple[str, ...]], labels: Mapping[str, str]) -> bool:
    """The documented meaning of each operator, evaluated directly."""
    key, operator, values = requirement
    present = key in labels
    if operator in ("=", "==", "in"):
        return present and labels[key] in values
    if operator in ("!=", "notin"):
        return not present or labels[key] not in values
    if operator == "exists":
        return present
    if operator == "!":
        return not present
    if not present or not labels[key].lstrip("-").isdigit():
        return False
    return int(labels[key]) > int(values[0]) if operator == "gt" else int(labels[key]) < int(values[0])


@st.composite
def _selectors(draw: st.DrawFn) -> LabelSelector:
    requirements = draw(st.lists(_requirements(), max_size=5))
    return LabelSelector(
        tuple(
            sorted(
                (LabelRequirement.create(key, op, values) for key, op, values in requirements),
                key=lambda r: r.key,
            )
        )
    )


@given(_selectors())
def test_parsing_the_canonical_string_gives_back_the_same_selector(selector: LabelSelector) -> None:
    assert LabelSelector.parse(str(selector)) == selector


@given(
    requirements=st.lists(_requirements(), max_size=5),
    pad=st.sampled_from(["", " ", "  ", "\t"]),
    data=st.data(),
)
def test_matching_agrees_with_a_direct_evaluation_of_the_requirements(
    requirements: list[tuple[str, str, tuple[str, ...]]], pad: str, data: st.DataObject
) -> None:
    text = f"{pad},{pad}".join(_render(r, pad) for r in requirements)
    selector = LabelSelector.parse(text)
    keys = [key for key, _, _ in requirements] + ["other"]
    labels = data.draw(
        st.dictionaries(
            st.sampled_from(keys), st.one_of(_values, _integers, st.just("x")), max_size=len(keys)
        )
    )
    assert selector.matches(labels) == all(_evaluate(r, labels) for r in requirements)


@given(st.text(max_size=40))
def test_parsing_arbitrary_text_either_succeeds_or_raises_bad_request(text: str) -> None:
    try:
        selector = LabelSelector.parse(text)
    except BadRequest:
        return
    assert LabelSelector.parse(str(selector)) == selector


# --- field selectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "requirements", "canonical"),
    [
        ("", [], ""),
        (",", [], ""),
        ("metadata.name=web", [("metadata.name", "=", "web")], "metadata.name=web"),
        ("a==b", [("a", "=", "b")], "a=b"),
        (
            "status.phase!=Running,spec.nodeName=",
            [("spec.nodeName", "=", ""), ("status.phase", "!=", "Running")],
            "spec.nodeName=,status.phase!=Running",
        ),
        ("a=x\\,y", [("a", "=", "x,y")], "a=x\\,y"),
        ("a=x\\=y\\\\", [("a", "=", "x=y\\")], "a=x\\=y\\\\"),
        ("a = b", [("a ", "=", " b")], "a = b"),
    ],
)
def test_field_selectors_parse_like_upstream(
    text: str, requirements: list[tuple[str, str, str]], canonical: str
) -> None:
    selector = FieldSelector.parse(text)
    assert selector.requirements == requirements
    assert str(selector) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a=\\q", "invalid field selector: invalid escape sequence: \\q"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_malformed_field_selectors_are_bad_requests_with_upstreams_message(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        FieldSelector.parse(text)
    assert caught.value.message == message


def test_a_missing_field_reads_as_the_empty_string() -> None:
    unscheduled = FieldSelector.parse("spec.nodeName=")
    assert unscheduled.matches({"metadata.name": "p"})
    assert not unscheduled.matches({"spec.nodeName": "node-1"})
    assert FieldSelector.parse("spec.nodeName!=").matches({"spec.nodeName": "node-1"})


def test_exact_value_pins_a_field_only_for_equality_terms() -> None:
    selector = FieldSelector.parse("metadata.name=web,metadata.namespace!=kube-system")
    assert selector.exact_value("metadata.name") == "web"
    assert selector.exact_value("metadata.namespace") is None
    assert FieldSelector.parse("").empty


def test_escape_field_value_escapes_backslash_comma_and_equals() -> None:
    assert escape_field_value("a\\b,c=d") == "a\\\\b\\,c\\=d"


_field_names = st.builds(
    lambda a, b: a + b, st.sampled_from(string.ascii_letters), st.text(alphabet=_ALNUM + ".", max_size=15)
)


@given(st.lists(st.tuples(_field_names, st.sampled_from(["=", "!="]), st.text(max_size=12)), max_size=5))
def test_field_selector_string_form_reads_back_to_the_same_selector(
    terms: list[tuple[str, str, str]],
) -> None:
    text = ",".join(f"{field}{op}{escape_field_value(value)}" for field, op, value in terms)
    selector = FieldSelector.parse(text)
    assert sorted(selector.requirements) == sorted(terms)
    assert FieldSelector.parse(str(selector)) == selector


@given(
    st.lists(
        st.tuples(_field_names, st.sampled_from(["=", "!="]), st.sampled_from(["", "a", "b,c"])), max_size=4
    ),
    st.dictionaries(_field_names, st.sampled_from(["", "a", "b,c"]), max_size=4),
)
def test_field_selector_matching_agrees_with_a_direct_evaluation(
    terms: list[tuple[str, str, str]], fields: dict[str, str]
) -> None:
    selector = FieldSelector.parse(",".join(f"{f}{op}{escape_field_value(v)}" for f, op, v in terms))
    expected = all((fields.get(f, "") == v) == (op == "=") for f, op, v in terms)
    assert selector.matches(fields) is expected
