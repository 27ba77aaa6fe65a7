"""How schemas become server-side apply types: list and map semantics as upstream derives them."""

from __future__ import annotations

from kubevisor.api import ApplyType, TypeResolver, builtin_definitions, definition_ref, untyped_resource_type
from kubevisor.api._apply_types import LIST, LIST_ATOMIC, LIST_MAP, LIST_SET, MAP, SCALAR, UNTYPED


def field(t: ApplyType, *names: str) -> ApplyType:
    for name in names:
        found = t.fields.get(name)
        assert found is not None, f"{name} not declared in {t!r}"
        t = found
    return t


def builtin(name: str) -> ApplyType:
    return TypeResolver(builtin_definitions()).resource(definition_ref(name))


def test_builtin_map_lists_come_from_the_list_type_extensions() -> None:
    container = field(builtin("io.k8s.api.apps.v1.Deployment"), "spec", "template", "spec", "containers").elem
    assert container is not None
    ports = field(container, "ports")
    assert (ports.kind, ports.list_type, ports.keys) == (LIST, LIST_MAP, ("containerPort", "protocol"))
    assert ports.key_defaults == {"protocol": "TCP"}
    assert field(container, "env").keys == ("name",)
    assert field(container, "args").list_type == LIST_ATOMIC


def test_builtin_label_selectors_and_owner_references_are_atomic() -> None:
    deployment = builtin("io.k8s.api.apps.v1.Deployment")
    assert field(deployment, "spec", "selector").atomic
    owners = field(deployment, "metadata", "ownerReferences")
    assert (owners.list_type, owners.keys) == (LIST_MAP, ("uid",))
    assert owners.elem is not None and owners.elem.atomic
    assert field(deployment, "metadata", "finalizers").list_type == LIST_SET
    labels = field(deployment, "metadata", "labels")
    assert labels.kind == MAP and not labels.atomic and labels.elem is not None


def test_a_patch_merge_key_without_a_list_type_makes_a_map_list() -> None:
    resolver = TypeResolver(
        {
            "Pod": {"type": "object", "properties": {"volumes": {"$ref": "#/definitions/Volumes"}}},
            "Volumes": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                "x-kubernetes-patch-strategy": "merge,retainKeys",
                "x-kubernetes-patch-merge-key": "name",
            },
        }
    )
    volumes = field(resolver.resource(definition_ref("Pod")), "volumes")
    assert (volumes.list_type, volumes.keys) == (LIST_MAP, ("name",))


def test_a_merge_strategy_without_a_key_makes_a_set_and_a_bare_list_is_atomic() -> None:
    resolver = TypeResolver()
    merged = resolver.compile(
        {"type": "array", "items": {"type": "string"}, "x-kubernetes-patch-strategy": "merge"}
    )
    assert merged.list_type == LIST_SET
    assert resolver.compile({"type": "array", "items": {"type": "string"}}).list_type == LIST_ATOMIC


def test_custom_resource_lists_are_atomic_unless_the_schema_says_otherwise() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "hosts": {"type": "array", "items": {"type": "string"}},
                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "routes": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["path", "port"],
                        "items": {
                            "type": "object",
                            "properties": {
                                "path": {"type": "string"},
                                "port": {"type": "integer", "default": 80},
                            },
                        },
                    },
                },
            }
        },
    }
    spec = field(TypeResolver().resource(schema), "spec")
    assert field(spec, "hosts").list_type == LIST_ATOMIC
    assert field(spec, "tags").list_type == LIST_SET
    routes = field(spec, "routes")
    assert (routes.list_type, routes.keys, dict(routes.key_defaults)) == (
        LIST_MAP,
        ("path", "port"),
        {"port": 80},
    )


def test_custom_resources_get_typed_object_metadata() -> None:
    resource = TypeResolver().resource({"type": "object", "properties": {"metadata": {"type": "object"}}})
    assert field(resource, "metadata", "finalizers").list_type == LIST_SET
    assert field(resource, "metadata", "ownerReferences").keys == ("uid",)
    assert field(resource, "apiVersion").kind == SCALAR


def test_atomic_maps_preserved_unknown_fields_and_int_or_string() -> None:
    resolver = TypeResolver()
    assert resolver.compile({"type": "object", "x-kubernetes-map-type": "atomic"}).atomic
    preserved = resolver.compile(
        {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"a": {"type": "string"}},
        }
    )
    assert preserved.kind == MAP and preserved.elem is not None and preserved.elem.kind == UNTYPED
    assert resolver.compile({"x-kubernetes-int-or-string": True}).kind == SCALAR
    assert resolver.compile({"description": "anything"}).kind == UNTYPED
    strict = resolver.compile({"type": "object", "properties": {"a": {"type": "string"}}})
    assert strict.elem is None


def test_recursive_definitions_compile() -> None:
    resolver = TypeResolver(
        {
            "Node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/definitions/Node"}, "v": {"type": "string"}},
            }
        }
    )
    node = resolver.definition("Node")
    assert field(node, "child", "child", "child") is node


def test_a_resource_without_schema_types_only_its_metadata() -> None:
    untyped = untyped_resource_type()
    assert field(untyped, "metadata", "finalizers").list_type == LIST_SET
    assert untyped.elem is not None and untyped.elem.kind == UNTYPED
