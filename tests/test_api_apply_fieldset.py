"""Field sets and their FieldsV1 encoding, checked against upstream's own encodings."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevisor.api import FieldSet, format_path
from kubevisor.api._fieldset import index_element, key_element, value_element


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# structured-merge-diff's fieldpath/serialize_test.go golden data (TestSerializeV1GoldenData): every
# kind of path element, in upstream's order (fields, keys, values, indices; numbers before strings
# before booleans), nested.
SMD_GOLDEN = [
    r'{"f:aaa":{},"f:aab":{},"f:aac":{},"f:aad":{},"f:aae":{},"f:aaf":{},"k:{\"name\":\"first\"}":{},"k:{\"name\":\"second\"}":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{},"k:{\"port\":443,\"protocol\":\"udp\"}":{},"v:1":{},"v:2":{},"v:3":{},"v:\"aa\"":{},"v:\"ab\"":{},"v:true":{},"i:1":{},"i:2":{},"i:3":{},"i:4":{}}',
    r'{"f:aaa":{"k:{\"name\":\"second\"}":{"v:3":{"f:aab":{}}},"v:3":{},"v:true":{}},"f:aab":{"f:aaa":{},"f:aaf":{"k:{\"port\":443,\"protocol\":\"udp\"}":{"k:{\"port\":443,\"protocol\":\"tcp\"}":{}}},"k:{\"name\":\"first\"}":{}},"f:aac":{"f:aaa":{"v:1":{}},"f:aac":{},"v:3":{"k:{\"name\":\"second\"}":{}}},"f:aad":{"f:aac":{"v:1":{}},"f:aaf":{"k:{\"name\":\"first\"}":{"k:{\"name\":\"first\"}":{}}},"i:1":{"i:1":{},"i:3":{"v:true":{}}}},"f:aae":{"f:aae":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"k:{\"port\":443,\"protocol\":\"udp\"}":{}},"i:4":{"f:aaf":{}}},"f:aaf":{"i:1":{"f:aac":{}},"i:2":{},"i:3":{}},"k:{\"name\":\"first\"}":{"f:aad":{"f:aaf":{}}},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"f:aaa":{"f:aad":{}}},"k:{\"port\":443,\"protocol\":\"udp\"}":{"f:aac":{},"k:{\"name\":\"first\"}":{"i:3":{}},"k:{\"port\":443,\"protocol\":\"udp\"}":{"i:4":{}}},"v:1":{"f:aac":{"i:4":{}},"f:aaf":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{}},"v:2":{"f:aad":{"f:aaf":{}},"i:1":{}},"v:3":{"f:aaa":{},"k:{\"name\":\"first\"}":{},"i:2":{}},"v:\"aa\"":{"f:aab":{"f:aaf":{}},"f:aae":{},"k:{\"name\":\"first\"}":{"f:aad":{}},"i:2":{}},"v:\"ab\"":{"f:aaf":{"i:4":{}},"k:{\"port\":443,\"protocol\":\"tcp\"}":{},"k:{\"port\":443,\"protocol\":\"udp\"}":{},"v:1":{"k:{\"port\":443,\"protocol\":\"udp\"}":{}},"i:1":{"f:aae":{"i:4":{}}}},"v:true":{"k:{\"name\":\"second\"}":{"f:aaa":{}},"i:2":{"k:{\"port\":443,\"protocol\":\"tcp\"}":{}}},"i:1":{"i:3":{"f:aaf":{}}},"i:2":{"f:aae":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"v:1":{}}},"i:3":{"f:aab":{"v:true":{"v:\"aa\"":{}}},"f:aaf":{},"i:1":{}},"i:4":{"v:\"aa\"":{"f:aab":{"k:{\"name\":\"second\"}":{}}}}}',
]

# What `kubectl apply --server-side` records for the nginx Deployment of the Kubernetes docs: label
# selector atomic, containers keyed by name, ports by containerPort and the defaulted protocol.
KUBECTL_DEPLOYMENT = r'{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}'

# The Update entry kube-controller-manager keeps on a Deployment's status subresource: conditions
# keyed by type, maps created by that manager marked with ".".
CONTROLLER_STATUS = r'{"f:metadata":{"f:annotations":{".":{},"f:deployment.kubernetes.io/revision":{}}},"f:status":{"f:availableReplicas":{},"f:conditions":{".":{},"k:{\"type\":\"Available\"}":{".":{},"f:lastTransitionTime":{},"f:lastUpdateTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Progressing\"}":{".":{},"f:lastTransitionTime":{},"f:lastUpdateTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}}},"f:observedGeneration":{},"f:readyReplicas":{},"f:replicas":{},"f:updatedReplicas":{}}}'

FINALIZERS = r'{"f:metadata":{"f:finalizers":{".":{},"v:\"example.com/cleanup\"":{},"v:\"kubernetes\"":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"6b1e2c4a-0000-4000-8000-000000000001\"}":{}}}}'


@pytest.mark.parametrize("encoded", [*SMD_GOLDEN, KUBECTL_DEPLOYMENT, CONTROLLER_STATUS, FINALIZERS])
def test_upstream_fields_v1_round_trips_byte_for_byte(encoded: str) -> None:
    parsed = FieldSet.from_fields_v1(json.loads(encoded))
    assert compact(parsed.to_fields_v1()) == encoded


def test_deployment_fields_v1_contains_the_paths_kubectl_owns() -> None:
    owned = FieldSet.from_fields_v1(json.loads(KUBECTL_DEPLOYMENT))
    assert {format_path(p) for p in owned} == {
        ".metadata.labels.app",
        ".spec.replicas",
        ".spec.selector",
        ".spec.template.metadata.labels.app",
        '.spec.template.spec.containers[name="nginx"]',
        '.spec.template.spec.containers[name="nginx"].image',
        '.spec.template.spec.containers[name="nginx"].name',
        '.spec.template.spec.containers[name="nginx"].ports[containerPort=80,protocol="TCP"]',
        '.spec.template.spec.containers[name="nginx"].ports[containerPort=80,protocol="TCP"].containerPort',
    }


def test_keys_of_unknown_kinds_are_dropped_as_upstream_does() -> None:
    assert compact(FieldSet.from_fields_v1({"f:aaa": {}, "r:aab": {}}).to_fields_v1()) == '{"f:aaa":{}}'


def test_key_and_value_elements_are_canonicalised_when_parsed() -> None:
    parsed = FieldSet.from_fields_v1({'k:{"protocol": "TCP", "port": 80}': {}, "v:1.0": {}})
    assert compact(parsed.to_fields_v1()) == r'{"k:{\"port\":80,\"protocol\":\"TCP\"}":{},"v:1":{}}'


@pytest.mark.parametrize(
    "fields",
    [
        [],
        {"f:a": []},
        {"k:[1]": {}},
        {"k:{}": {}},
        {"k:{nope": {}},
        {"v:{nope": {}},
        {"i:x": {}},
    ],
)
def test_malformed_fields_v1_is_rejected(fields: object) -> None:
    with pytest.raises(ValueError):
        FieldSet.from_fields_v1(fields)  # type: ignore[arg-type]


def test_path_elements_are_spelled_as_upstream_spells_them() -> None:
    assert key_element({"protocol": "TCP", "containerPort": 80}) == 'k:{"containerPort":80,"protocol":"TCP"}'
    assert value_element('a"b\\c\n') == 'v:"a\\"b\\\\c\\n"'
    assert value_element("grüße") == 'v:"grüße"'
    assert value_element(2.0) == "v:2"
    assert value_element(1e-7) == "v:1e-7"
    assert value_element(None) == "v:null"
    assert index_element(3) == "i:3"


def test_paths_print_as_in_upstream_conflict_messages() -> None:
    path = ("f:spec", "f:containers", key_element({"name": "app"}), "f:ports", key_element({"port": 80}))
    assert format_path(path) == '.spec.containers[name="app"].ports[port=80]'
    assert format_path(("f:metadata", "f:finalizers", value_element("x"))) == '.metadata.finalizers[="x"]'
    assert format_path(("f:spec", "f:args", index_element(2))) == ".spec.args[2]"
    assert format_path(("f:spec", "f:weights", value_element(1234567.5))) == ".spec.weights[=1.2345675e+06]"


def test_iteration_in_upstream_order_lists_members_before_children() -> None:
    paths = FieldSet([("f:spec", "f:b", "f:c"), ("f:spec", "f:a"), ("f:data",), ("f:spec", "f:b")])
    assert list(paths.iter_upstream()) == [
        ("f:data",),
        ("f:spec", "f:a"),
        ("f:spec", "f:b"),
        ("f:spec", "f:b", "f:c"),
    ]


def test_recursive_difference_removes_whole_subtrees_while_difference_removes_exact_paths() -> None:
    owned = FieldSet([("f:status",), ("f:status", "f:phase"), ("f:spec", "f:x")])
    reset = FieldSet([("f:status",)])
    assert owned - reset == FieldSet([("f:status", "f:phase"), ("f:spec", "f:x")])
    assert owned.recursive_difference(reset) == FieldSet([("f:spec", "f:x")])


def test_a_member_with_members_below_is_marked_with_a_dot() -> None:
    encoded = FieldSet([("f:labels",), ("f:labels", "f:app")]).to_fields_v1()
    assert encoded == {"f:labels": {".": {}, "f:app": {}}}


_ELEMENTS = st.one_of(
    st.sampled_from(["f:a", "f:b", "f:spec", "f:ünïcode", "f:with.dot"]),
    st.builds(lambda name: key_element({"name": name}), st.sampled_from(["x", "y", 'q"uote'])),
    st.builds(
        lambda port, proto: key_element({"port": port, "protocol": proto}),
        st.integers(1, 3),
        st.sampled_from(["TCP", "UDP"]),
    ),
    st.builds(value_element, st.one_of(st.integers(-2, 2), st.text(max_size=3), st.booleans(), st.none())),
    st.builds(index_element, st.integers(0, 3)),
)
_PATHS = st.lists(st.lists(_ELEMENTS, min_size=1, max_size=4).map(tuple), max_size=25)


@given(_PATHS)
def test_any_field_set_survives_a_round_trip_through_fields_v1(paths: list[tuple[str, ...]]) -> None:
    original = FieldSet(paths)
    encoded = original.to_fields_v1()
    decoded = FieldSet.from_fields_v1(json.loads(json.dumps(encoded)))
    assert decoded == original
    assert compact(decoded.to_fields_v1()) == compact(encoded)
