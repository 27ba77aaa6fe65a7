"""Upstream's apimachinery validation: exact message texts and field paths.

The expected strings are upstream's (k8s.io/apimachinery/pkg/util/validation and pkg/api/validation)
as real API servers print them, written out here rather than derived from the implementation.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubevisor.api import (
    FieldError,
    Invalid,
    finalizer_warnings,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    is_valid_path_segment_name,
    mask_generate_name,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)

SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def messages(errors: list[FieldError]) -> list[str]:
    return [str(e) for e in errors]


# --- names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "web-1", "example.com", "a" * 253, "1.2.3"])
def test_valid_dns1123_subdomains_pass(name: str) -> None:
    assert is_dns1123_subdomain(name) == []


def test_an_invalid_subdomain_gets_upstreams_message() -> None:
    assert is_dns1123_subdomain("Web_1") == [SUBDOMAIN_MESSAGE]


def test_a_too_long_subdomain_reports_its_length_limit() -> None:
    assert is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]


def test_a_trailing_newline_is_not_accepted_as_go_anchors_forbid_it() -> None:
    assert is_dns1123_subdomain("web\n") == [SUBDOMAIN_MESSAGE]
    assert is_dns1123_label("web\n") == [LABEL_MESSAGE]


def test_dns1123_label_says_dots_are_the_problem_when_they_are() -> None:
    assert is_dns1123_label("a.b") == ["must not contain dots"]
    assert is_dns1123_label("-a") == [LABEL_MESSAGE]
    assert is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]
    assert is_dns1123_label("kube-system") == []


def test_dns1035_labels_must_start_with_a_letter() -> None:
    assert is_dns1035_label("1web") == [DNS1035_MESSAGE]
    assert is_dns1035_label("web-1") == []


def test_lengths_are_counted_in_utf8_bytes_like_go() -> None:
    assert is_valid_label_value("é" * 32) == ["must be no more than 63 characters", LABEL_VALUE_MESSAGE]


@pytest.mark.parametrize("key", ["app", "App_1.x", "example.com/app", "a" * 63, "k8s.io/" + "A" * 63])
def test_valid_qualified_names_pass(key: str) -> None:
    assert is_qualified_name(key) == []


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("", ["name part must be non-empty", NAME_PART_MESSAGE]),
        ("a" * 64, ["name part must be no more than 63 characters"]),
        ("-app", [NAME_PART_MESSAGE]),
        ("/app", ["prefix part must be non-empty"]),
        ("example.com/", ["name part must be non-empty", NAME_PART_MESSAGE]),
        ("Example.com/app", ["prefix part " + SUBDOMAIN_MESSAGE]),
        (
            "a/b/c",
            [
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
                "and '/' (e.g. 'example.com/MyName')"
            ],
        ),
    ],
)
def test_invalid_qualified_names_get_upstreams_messages(key: str, expected: list[str]) -> None:
    assert is_qualified_name(key) == expected


def test_label_values_may_be_empty_but_not_start_with_punctuation() -> None:
    assert is_valid_label_value("") == []
    assert is_valid_label_value("v1.2_b-3") == []
    assert is_valid_label_value("-v") == [LABEL_VALUE_MESSAGE]


def test_path_segment_names_forbid_dots_slashes_and_percent() -> None:
    assert is_valid_path_segment_name("..") == ["may not be '..'"]
    assert is_valid_path_segment_name("a/b%c") == ["may not contain '/'", "may not contain '%'"]
    assert is_valid_path_segment_name("system:admin") == []


def test_generate_name_masking_reproduces_upstreams_two_character_quirk() -> None:
    assert mask_generate_name("web-") == "wea"
    assert mask_generate_name("-") == "-"
    assert mask_generate_name("web") == "web"


# --- ObjectMeta ----------------------------------------------------------------------------------------


def test_a_valid_namespaced_object_has_no_errors() -> None:
    meta = {
        "name": "web",
        "namespace": "default",
        "labels": {"app.kubernetes.io/name": "web"},
        "annotations": {"Example.com/Note": "anything at all"},
        "finalizers": ["example.com/cleanup"],
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": True}
        ],
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1"}],
    }
    assert validate_object_meta(meta, namespaced=True) == []


def test_name_is_required_unless_generate_name_is_given() -> None:
    assert messages(validate_object_meta({"namespace": "default"}, namespaced=True)) == [
        "metadata.name: Required value: name or generateName is required"
    ]


def test_a_bad_name_is_invalid_with_the_validators_message() -> None:
    errors = validate_object_meta({"name": "Web"}, namespaced=False)
    assert messages(errors) == [f'metadata.name: Invalid value: "Web": {SUBDOMAIN_MESSAGE}']
    assert errors[0].cause() == {
        "reason": "FieldValueInvalid",
        "message": errors[0].body(),
        "field": "metadata.name",
    }


def test_the_name_validator_is_pluggable() -> None:
    errors = validate_object_meta({"name": "a.b"}, namespaced=False, name_validator=is_dns1123_label)
    assert messages(errors) == ['metadata.name: Invalid value: "a.b": must not contain dots']


def test_generate_name_is_validated_with_its_trailing_dash_masked() -> None:
    assert validate_object_meta({"name": "web-x1z", "generateName": "web-"}, namespaced=False) == []
    errors = validate_object_meta({"name": "x", "generateName": "Web-"}, namespaced=False)
    assert messages(errors) == [f'metadata.generateName: Invalid value: "Web-": {SUBDOMAIN_MESSAGE}']


def test_namespace_is_required_for_namespaced_kinds_and_forbidden_for_cluster_kinds() -> None:
    assert messages(validate_object_meta({"name": "a"}, namespaced=True)) == [
        "metadata.namespace: Required value"
    ]
    assert messages(validate_object_meta({"name": "a", "namespace": "x"}, namespaced=False)) == [
        "metadata.namespace: Forbidden: not allowed on this type"
    ]
    assert messages(validate_object_meta({"name": "a", "namespace": "a.b"}, namespaced=True)) == [
        'metadata.namespace: Invalid value: "a.b": must not contain dots'
    ]


def test_label_errors_are_reported_on_metadata_labels() -> None:
    errors = validate_object_meta({"name": "a", "labels": {"bad key": "-v"}}, namespaced=False)
    assert messages(errors) == [
        f'metadata.labels: Invalid value: "bad key": {NAME_PART_MESSAGE}',
        f'metadata.labels: Invalid value: "-v": {LABEL_VALUE_MESSAGE}',
    ]


def test_annotations_may_not_exceed_256_kib_in_total() -> None:
    limit = 256 * 1024
    at_limit = {"a": "x" * (limit - 1)}
    assert validate_object_meta({"name": "a", "annotations": at_limit}, namespaced=False) == []
    over = {"a": "x" * limit}
    assert messages(validate_object_meta({"name": "a", "annotations": over}, namespaced=False)) == [
        "metadata.annotations: Too long: may not be more than 262144 bytes"
    ]


def test_finalizers_must_be_qualified_names_and_orphan_excludes_foreground() -> None:
    errors = validate_object_meta(
        {"name": "a", "finalizers": ["bad/fin/x", "orphan", "foregroundDeletion"]}, namespaced=False
    )
    rendered = messages(errors)
    assert rendered[0].startswith(
        'metadata.finalizers: Invalid value: "bad/fin/x": a qualified name must consist'
    )
    assert rendered[1].endswith("finalizer orphan and foregroundDeletion cannot be both set")


def test_finalizers_without_a_domain_get_upstreams_warning() -> None:
    assert finalizer_warnings(["cleanup", "example.com/cleanup", "kubernetes", "orphan"]) == [
        'metadata.finalizers: "cleanup": prefer a domain-qualified finalizer name including a path (/) to avoid '
        "accidental conflicts with other finalizer writers"
    ]


def test_owner_references_need_api_version_kind_name_and_uid() -> None:
    errors = validate_object_meta(
        {"name": "a", "ownerReferences": [{"apiVersion": "", "kind": ""}]}, namespaced=False
    )
    assert messages(errors) == [
        'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
        'metadata.ownerReferences.kind: Invalid value: "": kind must not be empty',
        'metadata.ownerReferences.name: Invalid value: "": name must not be empty',
        'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty',
    ]


def test_only_one_owner_reference_may_be_the_controller() -> None:
    refs = [
        {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": True},
    ]
    errors = validate_object_meta({"name": "x", "ownerReferences": refs}, namespaced=False)
    assert len(errors) == 1
    assert errors[0].field == "metadata.ownerReferences"
    assert (
        errors[0].detail
        == 'Only one reference can have Controller set to true. Found "true" in references for A/a and B/b'
    )


def test_core_events_cannot_own_objects() -> None:
    refs = [{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1"}]
    errors = validate_object_meta({"name": "x", "ownerReferences": refs}, namespaced=False)
    assert [e.detail for e in errors] == ["/v1, Kind=Event is disallowed from being an owner"]


def test_wrongly_typed_metadata_is_reported_not_raised() -> None:
    meta: dict[str, Any] = {"name": 5, "labels": ["a"], "finalizers": "x", "generation": -1}
    errors = validate_object_meta(meta, namespaced=False)
    fields = [e.field for e in errors]
    assert fields == [
        "metadata.name",
        "metadata.name",
        "metadata.generation",
        "metadata.labels",
        "metadata.finalizers",
    ]


def test_managed_fields_must_name_a_known_operation() -> None:
    meta = {"name": "a", "managedFields": [{"manager": "m", "operation": "Patch", "fieldsType": "FieldsV2"}]}
    assert messages(validate_object_meta(meta, namespaced=False)) == [
        'metadata.managedFields[0].operation: Invalid value: "Patch": must be `Apply` or `Update`',
        'metadata.managedFields[0].fieldsType: Invalid value: "FieldsV2": must be `FieldsV1`',
    ]


def test_errors_feed_an_invalid_status_with_upstreams_wording() -> None:
    errors = validate_object_meta({"name": "Web"}, namespaced=False)
    err = Invalid.for_fields("Widget", "example.com", "Web", errors)
    assert (
        err.message
        == f'Widget.example.com "Web" is invalid: metadata.name: Invalid value: "Web": {SUBDOMAIN_MESSAGE}'
    )


# --- updates and label selectors ---------------------------------------------------------------------------


def test_an_update_may_not_change_immutable_metadata() -> None:
    old = {
        "name": "a",
        "namespace": "n",
        "uid": "1",
        "resourceVersion": "5",
        "creationTimestamp": "2024-01-01T00:00:00Z",
    }
    new = {**old, "name": "b", "uid": "2"}
    assert messages(validate_object_meta_update(new, old)) == [
        'metadata.name: Invalid value: "b": field is immutable',
        'metadata.uid: Invalid value: "2": field is immutable',
    ]


def test_an_update_needs_a_resource_version_and_may_not_lower_generation() -> None:
    old = {"name": "a", "resourceVersion": "5", "generation": 3}
    new = {"name": "a", "generation": 2}
    assert messages(validate_object_meta_update(new, old)) == [
        'metadata.resourceVersion: Invalid value: "": must be specified for an update',
        "metadata.generation: Invalid value: 2: must not be decremented",
    ]


def test_no_finalizer_may_be_added_once_deletion_started() -> None:
    old = {
        "name": "a",
        "resourceVersion": "5",
        "deletionTimestamp": "2024-01-01T00:00:00Z",
        "finalizers": ["x/a"],
    }
    assert validate_object_meta_update({**old, "finalizers": []}, old) == []
    errors = validate_object_meta_update({**old, "finalizers": ["x/a", "x/b"]}, old)
    assert messages(errors) == [
        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, "
        'found new finalizers []string{"x/b"}'
    ]


def test_label_selector_validation_reports_on_the_objects_field_path() -> None:
    selector = {
        "matchLabels": {"app": "-"},
        "matchExpressions": [
            {"key": "a", "operator": "In"},
            {"key": "b", "operator": "Exists", "values": ["x"]},
            {"key": "c", "operator": "Gt", "values": ["1"]},
        ],
    }
    assert messages(validate_label_selector(selector, "spec.selector")) == [
        f'spec.selector.matchLabels: Invalid value: "-": {LABEL_VALUE_MESSAGE}',
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or "
        "'DoesNotExist'",
        'spec.selector.matchExpressions[2].operator: Invalid value: "Gt": not a valid selector operator',
    ]
    assert validate_label_selector(None, "spec.selector") == []
