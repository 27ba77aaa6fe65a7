"""JSON Patch and JSON Merge Patch: the RFCs' own examples, kube-apiserver's error statuses, and
properties checked against an independent implementation (the ``jsonpatch`` package generates the
patches that ours must apply)."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevisor.api import (
    BadRequest,
    Invalid,
    JsonPatchError,
    RequestEntityTooLarge,
    apply_json_patch,
    apply_merge_patch,
    create_merge_patch,
    error_from_status,
    json_equal,
)

# --- RFC 6902, Appendix A ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "patch", "expected"),
    [
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/baz", "value": "qux"}],
            {"baz": "qux", "foo": "bar"},
            id="A.1",
        ),
        pytest.param(
            {"foo": ["bar", "baz"]},
            [{"op": "add", "path": "/foo/1", "value": "qux"}],
            {"foo": ["bar", "qux", "baz"]},
            id="A.2",
        ),
        pytest.param(
            {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}, id="A.3"
        ),
        pytest.param(
            {"foo": ["bar", "qux", "baz"]},
            [{"op": "remove", "path": "/foo/1"}],
            {"foo": ["bar", "baz"]},
            id="A.4",
        ),
        pytest.param(
            {"baz": "qux", "foo": "bar"},
            [{"op": "replace", "path": "/baz", "value": "boo"}],
            {"baz": "boo", "foo": "bar"},
            id="A.5",
        ),
        pytest.param(
            {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
            [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
            {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
            id="A.6",
        ),
        pytest.param(
            {"foo": ["all", "grass", "cows", "eat"]},
            [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
            {"foo": ["all", "cows", "eat", "grass"]},
            id="A.7",
        ),
        pytest.param(
            {"baz": "qux", "foo": ["a", 2, "c"]},
            [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
            {"baz": "qux", "foo": ["a", 2, "c"]},
            id="A.8",
        ),
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
            {"foo": "bar", "child": {"grandchild": {}}},
            id="A.10",
        ),
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
            {"foo": "bar", "baz": "qux"},
            id="A.11",
        ),
        pytest.param(
            {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}, id="A.14"
        ),
        pytest.param(
            {"foo": ["bar"]},
            [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
            {"foo": ["bar", ["abc", "def"]]},
            id="A.16",
        ),
    ],
)
def test_rfc_6902_examples_apply(doc: Any, patch: list[dict[str, Any]], expected: Any) -> None:
    assert apply_json_patch(doc, patch) == expected


@pytest.mark.parametrize(
    ("doc", "patch", "detail"),
    [
        pytest.param(
            {"baz": "qux"},
            [{"op": "test", "path": "/baz", "value": "bar"}],
            "testing value /baz failed: test failed",
            id="A.9",
        ),
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/baz/bat", "value": "qux"}],
            'add operation does not apply: doc is missing path: "/baz/bat"',
            id="A.12",
        ),
        pytest.param(
            {"/": 9, "~1": 10},
            [{"op": "test", "path": "/~01", "value": "10"}],
            "testing value /~01 failed: test failed",
            id="A.15",
        ),
    ],
)
def test_rfc_6902_error_examples_fail(doc: Any, patch: list[dict[str, Any]], detail: str) -> None:
    with pytest.raises(JsonPatchError) as caught:
        apply_json_patch(doc, patch)
    assert caught.value.detail == detail


# --- kube-apiserver's statuses ------------------------------------------------------------------------


def test_a_failed_test_gets_exactly_kube_apiservers_status() -> None:
    with pytest.raises(Invalid) as caught:
        apply_json_patch(
            {"metadata": {"resourceVersion": "5"}},
            [{"op": "test", "path": "/metadata/resourceVersion", "value": "4"}],
        )
    assert caught.value.to_status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid",
        "details": {},
        "code": 422,
    }
    assert "testing value /metadata/resourceVersion failed" in str(caught.value)
    assert type(error_from_status(caught.value.to_status())) is Invalid


def test_removing_a_missing_member_is_a_422() -> None:
    with pytest.raises(JsonPatchError) as caught:
        apply_json_patch({"spec": {}}, [{"op": "remove", "path": "/spec/affinity"}])
    assert caught.value.code == 422
    assert (
        caught.value.detail
        == "error in remove for path: '/spec/affinity': Unable to remove nonexistent key: affinity: missing value"
    )


@pytest.mark.parametrize("body", [{"op": "add"}, "add", 3, None, [1], [[{"op": "add"}]]])
def test_a_patch_that_is_not_a_list_of_objects_is_a_bad_request(body: Any) -> None:
    with pytest.raises(BadRequest, match=r"json: cannot unmarshal .* into Go value of type jsonpatch"):
        apply_json_patch({}, body)


def test_more_than_ten_thousand_operations_are_too_large() -> None:
    with pytest.raises(
        RequestEntityTooLarge, match="The allowed maximum operations in a JSON patch is 10000, got 10001"
    ):
        apply_json_patch({}, [{"op": "test", "path": "", "value": {}}] * 10_001)


@pytest.mark.parametrize(
    ("doc", "op", "detail"),
    [
        ({}, {"op": "frobnicate", "path": "/a"}, "Unexpected kind: frobnicate"),
        ({}, {"path": "/a", "value": 1}, "Unexpected kind: unknown"),
        ({}, {"op": "add", "value": 1}, "add operation failed to decode path: missing value"),
        ({}, {"op": "add", "path": "/a"}, "add operation does not apply: missing value"),
        (
            {},
            {"op": "add", "path": "a", "value": 1},
            'add operation does not apply: doc is missing path: "a"',
        ),
        (
            {"a": [1]},
            {"op": "add", "path": "/a/2", "value": 1},
            "error in add for path: '/a/2': Unable to access invalid index: 2",
        ),
        (
            {"a": [1]},
            {"op": "add", "path": "/a/01", "value": 1},
            "error in add for path: '/a/01': Unable to access invalid index: 01",
        ),
        (
            {"a": [1]},
            {"op": "remove", "path": "/a/-"},
            "error in remove for path: '/a/-': Unable to access invalid index: -",
        ),
        (
            {"a": [1]},
            {"op": "replace", "path": "/a/1", "value": 2},
            'replace operation does not apply: doc is missing key: "/a/1"',
        ),
        (
            {"a": 1},
            {"op": "replace", "path": "/b", "value": 2},
            'replace operation does not apply: doc is missing key: "/b"',
        ),
        (
            {"a": 1},
            {"op": "add", "path": "/a/b", "value": 2},
            'add operation does not apply: doc is missing path: "/a/b"',
        ),
        (
            {"a": {}},
            {"op": "move", "from": "/a", "path": "/a/b"},
            "move operation does not apply: from '/a' is a prefix of path '/a/b'",
        ),
        (
            {},
            {"op": "copy", "from": "/x", "path": "/y"},
            'copy operation does not apply: doc is missing key: "/x"',
        ),
        ({}, {"op": "remove", "path": ""}, 'remove operation does not apply: doc is missing path: ""'),
        (
            {},
            {"op": "add", "path": "/a~2", "value": 1},
            "add operation failed to decode path: invalid escape in '/a~2'",
        ),
    ],
)
def test_operations_that_do_not_apply_are_422_with_a_specific_detail(
    doc: Any, op: dict[str, Any], detail: str
) -> None:
    with pytest.raises(JsonPatchError) as caught:
        apply_json_patch(doc, [op])
    assert caught.value.detail == detail


def test_a_failing_operation_leaves_no_partial_result_and_the_input_untouched() -> None:
    doc = {"a": {"b": [1, 2]}}
    before = copy.deepcopy(doc)
    with pytest.raises(JsonPatchError):
        apply_json_patch(
            doc, [{"op": "remove", "path": "/a/b/0"}, {"op": "test", "path": "/a/b/0", "value": 1}]
        )
    assert doc == before


def test_root_operations_replace_or_test_the_whole_document() -> None:
    assert apply_json_patch({"a": 1}, [{"op": "add", "path": "", "value": {"b": 2}}]) == {"b": 2}
    assert apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [1]
    assert apply_json_patch({"a": 1}, [{"op": "test", "path": "", "value": {"a": 1.0}}]) == {"a": 1}


def test_copy_and_move_within_arrays_and_objects() -> None:
    doc = {"a": [1, {"x": 1}], "b": {}}
    patch = [
        {"op": "copy", "from": "/a/1", "path": "/b/c"},
        {"op": "replace", "path": "/b/c/x", "value": 2},
        {"op": "move", "from": "/a/0", "path": "/a/-"},
        {"op": "move", "from": "/b", "path": "/b"},
    ]
    assert apply_json_patch(doc, patch) == {"a": [{"x": 1}, 1], "b": {"c": {"x": 2}}}


def test_values_from_the_patch_are_not_shared_with_the_result() -> None:
    value = {"nested": [1]}
    patch = [{"op": "add", "path": "/v", "value": value}]
    result = apply_json_patch({}, patch)
    result["v"]["nested"].append(2)
    assert value == {"nested": [1]}


def test_json_equality_distinguishes_booleans_from_numbers_but_not_ints_from_floats() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(True, 1)
    assert not json_equal(0, False)
    assert not json_equal(None, False)
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal([1, 2], [2, 1])
    assert not json_equal("1", 1)
    with pytest.raises(JsonPatchError):
        apply_json_patch({"a": True}, [{"op": "test", "path": "/a", "value": 1}])


# --- RFC 7386, Appendix A ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_rfc_7386_examples_apply(doc: Any, patch: Any, expected: Any) -> None:
    assert apply_merge_patch(doc, patch) == expected


def test_merge_patch_leaves_inputs_untouched_and_shares_nothing_with_them() -> None:
    doc = {"keep": {"deep": [1]}, "change": {"x": 1}}
    patch = {"change": {"y": [2]}, "new": {"z": 3}}
    before_doc, before_patch = copy.deepcopy(doc), copy.deepcopy(patch)
    result = apply_merge_patch(doc, patch)
    assert result == {"keep": {"deep": [1]}, "change": {"x": 1, "y": [2]}, "new": {"z": 3}}
    result["keep"]["deep"].append(9)
    result["change"]["y"].append(9)
    result["new"]["z"] = 0
    assert doc == before_doc
    assert patch == before_patch


def test_create_merge_patch_deletes_with_null_and_recurses_into_objects() -> None:
    original = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1, "ports": [80]}}
    modified = {"metadata": {"labels": {"a": "1", "c": "3"}}, "spec": {"replicas": 1, "ports": [80, 443]}}
    assert create_merge_patch(original, modified) == {
        "metadata": {"labels": {"b": None, "c": "3"}},
        "spec": {"ports": [80, 443]},
    }
    assert create_merge_patch(original, original) == {}


# --- properties ---------------------------------------------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(alphabet="ab~/-0", max_size=3))
_keys = st.text(alphabet="ab~/-0", max_size=3)


def _json(leaves: st.SearchStrategy[Any], object_values_nullable: bool = True) -> st.SearchStrategy[Any]:
    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        member = children if object_values_nullable else children.filter(lambda v: v is not None)
        return st.one_of(st.lists(children, max_size=4), st.dictionaries(_keys, member, max_size=4))

    return st.recursive(leaves, extend, max_leaves=12)


# Objects without null members: the documents RFC 7386 can describe exactly.
_mergeable = _json(_scalars, object_values_nullable=False)


@settings(max_examples=300)
@given(_mergeable, _mergeable)
def test_applying_the_created_merge_patch_reproduces_the_modified_document(
    original: Any, modified: Any
) -> None:
    patch = create_merge_patch(original, modified)
    assert json_equal(apply_merge_patch(original, patch), modified)


@given(_json(_scalars), _json(_scalars))
def test_merge_patch_never_mutates_its_arguments(doc: Any, patch: Any) -> None:
    before_doc, before_patch = copy.deepcopy(doc), copy.deepcopy(patch)
    apply_merge_patch(doc, patch)
    create_merge_patch(doc, patch)
    assert doc == before_doc
    assert patch == before_patch


# Booleans are left out here because the jsonpatch package compares with Python's ==, for which
# True == 1; integers and strings exercise the same paths without that disagreement.
_oracle_scalars = st.one_of(st.none(), st.integers(-5, 5), st.text(alphabet="ab~/-0", max_size=3))


@settings(max_examples=300)
@given(
    st.dictionaries(_keys, _json(_oracle_scalars), max_size=4),
    st.dictionaries(_keys, _json(_oracle_scalars), max_size=4),
)
def test_patches_generated_by_an_independent_implementation_apply(source: Any, target: Any) -> None:
    operations = jsonpatch.make_patch(source, target).patch
    # Every operation kind must be understood; add a test of the result so "test" is covered too.
    operations = [*operations, {"op": "test", "path": "", "value": target}]
    before = copy.deepcopy(source)
    assert json_equal(apply_json_patch(source, operations), target)
    assert source == before


@given(st.dictionaries(_keys, _json(_oracle_scalars), max_size=4), st.data())
def test_our_results_agree_with_the_jsonpatch_package_on_random_single_operations(
    doc: Any, data: st.DataObject
) -> None:
    paths = ["/" + k.replace("~", "~0").replace("/", "~1") for k in doc] + ["/new", ""]
    operation = data.draw(
        st.fixed_dictionaries(
            {
                "op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]),
                "path": st.sampled_from(paths),
                "from": st.sampled_from(paths),
                "value": _json(_oracle_scalars),
            }
        )
    )
    try:
        expected = jsonpatch.apply_patch(doc, [operation])
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
        expected = JsonPatchError
    try:
        actual = apply_json_patch(doc, [operation])
    except JsonPatchError:
        actual = JsonPatchError
    if expected is JsonPatchError or actual is JsonPatchError:
        assert actual is expected
    else:
        assert json_equal(actual, expected)
