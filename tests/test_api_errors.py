"""The Status error model: upstream's wording, and a lossless round trip through the wire form."""

from __future__ import annotations

import pytest

from kubevisor.api import (
    AlreadyExists,
    ApiError,
    Conflict,
    Expired,
    FieldError,
    Invalid,
    NotFound,
    ServerError,
    TooManyRequests,
    error_from_status,
)


def test_not_found_names_the_qualified_resource_like_upstream() -> None:
    err = NotFound.for_resource("deployments", "apps", "web")
    assert err.message == 'deployments.apps "web" not found'
    assert err.code == 404
    assert err.status["details"] == {"kind": "deployments", "name": "web", "group": "apps"}


def test_core_group_resources_are_not_qualified() -> None:
    assert AlreadyExists.for_resource("pods", "", "p").message == 'pods "p" already exists'


def test_stale_update_conflict_uses_upstreams_message() -> None:
    err = Conflict.stale("configmaps", "", "cm")
    assert err.message == (
        'Operation cannot be fulfilled on configmaps "cm": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert err.reason == "Conflict"


def test_already_exists_is_not_caught_as_a_conflict() -> None:
    with pytest.raises(AlreadyExists):
        try:
            raise AlreadyExists.for_resource("pods", "", "p")
        except Conflict:  # pragma: no cover - the point is that this does not match
            pytest.fail("AlreadyExists must not be a Conflict")


def test_invalid_with_one_error_is_not_bracketed() -> None:
    err = Invalid.for_fields(
        "Deployment", "apps", "web", [FieldError.invalid("spec.replicas", -1, "must be >= 0")]
    )
    assert err.message == 'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be >= 0'
    assert err.causes == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: -1: must be >= 0",
            "field": "spec.replicas",
        }
    ]


def test_invalid_with_several_errors_is_bracketed_and_quotes_strings() -> None:
    err = Invalid.for_fields(
        "ConfigMap",
        "",
        "Bad_Name",
        [
            FieldError.invalid("metadata.name", "Bad_Name", "a lowercase RFC 1123 subdomain"),
            FieldError.required("spec.title"),
        ],
    )
    assert err.message == (
        'ConfigMap "Bad_Name" is invalid: [metadata.name: Invalid value: "Bad_Name": '
        "a lowercase RFC 1123 subdomain, spec.title: Required value]"
    )
    assert [c["reason"] for c in err.causes] == ["FieldValueInvalid", "FieldValueRequired"]


def test_status_round_trips_to_the_same_typed_error() -> None:
    original = Invalid.for_fields("Todo", "example.com", "t", [FieldError.required("spec.title")])
    rebuilt = error_from_status(original.to_status())
    assert type(rebuilt) is Invalid
    assert rebuilt.status == original.status


@pytest.mark.parametrize(
    ("reason", "code", "expected"),
    [
        ("Expired", 410, Expired),
        ("Gone", 410, Expired),
        ("TooManyRequests", 429, TooManyRequests),
        ("SomethingNew", 404, NotFound),
        ("SomethingNew", 599, ServerError),
    ],
)
def test_errors_are_typed_by_reason_then_code(reason: str, code: int, expected: type[ApiError]) -> None:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code}
    assert type(error_from_status(status)) is expected


def test_a_body_that_is_not_a_status_still_yields_an_error_for_the_http_code() -> None:
    err = error_from_status({"oops": True}, http_code=429)
    assert isinstance(err, TooManyRequests)
    assert err.code == 429


def test_retry_after_is_carried_in_details() -> None:
    assert TooManyRequests("slow down", retry_after=3).retry_after == 3


def test_composite_values_are_formatted_as_go_prints_them() -> None:
    duplicate = FieldError.duplicate("spec.ports[1]", {"name": "http", "port": 80})
    assert (
        str(duplicate) == 'spec.ports[1]: Duplicate value: map[string]interface {}{"name":"http", "port":80}'
    )
    forbidden = FieldError.invalid("metadata.finalizers", ["a", "b"], "conflict")
    assert str(forbidden) == 'metadata.finalizers: Invalid value: []string{"a", "b"}: conflict'
