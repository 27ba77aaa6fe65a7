"""Typed resources: identity, wire round trip, and the CRDs they generate.

Every generated CRD is checked twice: its schema is structural (``check_structural`` finds
nothing) and, compiled with ``CompiledSchema``, it accepts the wire form of valid instances and
rejects constraint violations on the expected field paths.
"""

from __future__ import annotations

import copy
import enum
import re
import sys
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, RootModel, ValidationError

from kubevisor.api import CompiledSchema, ResourceInfo, check_structural
from kubevisor.resource import (
    Atomic,
    Condition,
    EmbeddedResource,
    ListMap,
    ListSet,
    ObjectMeta,
    OpenAPI,
    PrinterColumn,
    Resource,
    Rule,
    Scale,
    crd_for,
    pluralize,
)

# -- models --------------------------------------------------------------------------------------


class TodoSpec(BaseModel):
    """What to do."""

    title: Annotated[str, Field(min_length=1, max_length=20, description="A short title.")]
    done: bool = False


class TodoStatus(BaseModel):
    phase: Literal["Pending", "Done"] = "Pending"


class Todo(Resource, group="example.com", version="v1", kind="Todo", short_names=["td"]):
    """A thing to do."""

    spec: TodoSpec
    status: TodoStatus = TodoStatus()


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Port(BaseModel):
    name: str
    port: Annotated[int, Field(ge=1, le=65535)]
    protocol: Literal["TCP", "UDP"] = "TCP"


class Limits(BaseModel):
    __rules__: ClassVar = [Rule("self.min <= self.max", message="min must not exceed max")]

    min: int = 0
    max: int = 10


class WidgetSpec(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    replicas: Annotated[int, Field(ge=0, le=10), Rule("self % 2 == 0", message="replicas must be even")] = 2
    ratio: Annotated[float, Field(gt=0, lt=1)] = 0.5
    step: Annotated[int, Field(multiple_of=5)] = 5
    color: Color = Color.RED
    size: Literal["S", "M", "L"] = "M"
    port: int | str = 80
    name_pattern: Annotated[str, Field(pattern=r"^[a-z]+$", alias="namePattern")] = "abc"
    ports: Annotated[list[Port], ListMap("name"), Field(max_length=3)] = []
    tags: Annotated[list[str], ListSet()] = []
    labels: Annotated[dict[str, str], Field(max_length=2)] = {}
    anything: dict[str, Any] = {}
    raw: Any = None
    template: Annotated[dict[str, Any], EmbeddedResource()] | None = None
    note: str | None = None
    limits: Limits = Limits()
    when: datetime | None = None
    frozen: Annotated[list[int], Atomic()] = []
    host: Annotated[str, OpenAPI(format="hostname")] = "localhost"


class WidgetStatus(BaseModel):
    replicas: int = 0
    selector: str = ""
    conditions: Annotated[list[Condition], ListMap("type")] = []


class Widget(
    Resource,
    group="widgets.example.com",
    version="v1alpha1",
    scope="Cluster",
    categories=["all"],
    printer_columns=[
        PrinterColumn("Replicas", ".spec.replicas", type="integer"),
        PrinterColumn("Color", ".spec.color", priority=1),
    ],
    scale=Scale(label_selector_path=".status.selector"),
    selectable_fields=[".spec.color"],
):
    spec: WidgetSpec = WidgetSpec()
    status: WidgetStatus = WidgetStatus()


class FreeSpec(BaseModel):
    """Keeps whatever it is given."""

    model_config = ConfigDict(extra="allow")

    known: int = 0


class Free(Resource, group="example.com", version="v1"):
    spec: FreeSpec = FreeSpec()


def schema_of(cls: type[Resource]) -> dict[str, Any]:
    return cls.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def server_form(cls: type[Resource], wire: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores for ``wire``: pruned, then defaulted."""
    compiled = CompiledSchema.compile(schema_of(cls))
    return compiled.default(compiled.prune(copy.deepcopy(wire)))


def field_errors(cls: type[Resource], wire: dict[str, Any]) -> list[str]:
    compiled = CompiledSchema.compile(schema_of(cls))
    return [e.field for e in compiled.validate(server_form(cls, wire))]


# -- identity ------------------------------------------------------------------------------------


def test_resource_info_describes_the_todo_example() -> None:
    info = Todo.resource_info()
    assert isinstance(info, ResourceInfo)
    assert (info.group, info.version, info.kind, info.plural, info.singular) == (
        "example.com",
        "v1",
        "Todo",
        "todos",
        "todo",
    )
    assert info.namespaced
    assert info.short_names == ("td",)
    assert info.subresources == ("status",)
    assert info.list_kind == "TodoList"
    assert info.schema == schema_of(Todo)


@pytest.mark.parametrize(
    ("kind", "plural"),
    [
        ("Todo", "todos"),
        ("Policy", "policies"),
        ("Box", "boxes"),
        ("Gateway", "gateways"),
        ("Mesh", "meshes"),
    ],
)
def test_plurals_follow_the_usual_english_rules(kind: str, plural: str) -> None:
    assert pluralize(kind) == plural


def test_widget_keywords_reach_the_crd() -> None:
    crd = Widget.crd()
    assert crd["metadata"]["name"] == "widgets.widgets.example.com"
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"] == {
        "kind": "Widget",
        "listKind": "WidgetList",
        "plural": "widgets",
        "singular": "widget",
        "categories": ["all"],
    }
    [version] = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1"
    assert version["served"] and version["storage"]
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    assert version["additionalPrinterColumns"] == [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1},
    ]
    assert version["selectableFields"] == [{"jsonPath": ".spec.color"}]
    assert not Widget.resource_info().namespaced
    assert Widget.resource_info().subresources == ("status", "scale")


def test_a_resource_without_status_has_no_status_subresource() -> None:
    assert "subresources" not in Free.crd()["spec"]["versions"][0]
    assert Free.resource_info().plural == "frees"


# -- generated schemas ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Todo, Widget, Free])
def test_every_generated_schema_is_structural_and_compiles(cls: type[Resource]) -> None:
    schema = schema_of(cls)
    assert check_structural(schema) == []
    CompiledSchema.compile(schema)


def test_todo_schema_carries_types_required_fields_descriptions_and_defaults() -> None:
    spec = schema_of(Todo)["properties"]["spec"]
    assert spec == {
        "type": "object",
        "description": "What to do.",
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 20, "description": "A short title."},
            "done": {"type": "boolean", "default": False},
        },
        "required": ["title"],
    }
    root = schema_of(Todo)
    assert root["description"] == "A thing to do."
    assert root["required"] == ["spec"]
    assert root["properties"]["metadata"] == {"type": "object"}
    assert "default" not in root["properties"]["status"]


def test_python_types_map_to_kubernetes_schema_extensions() -> None:
    props = schema_of(Widget)["properties"]["spec"]["properties"]
    assert props["replicas"]["minimum"] == 0 and props["replicas"]["maximum"] == 10
    assert props["replicas"]["x-kubernetes-validations"] == [
        {"rule": "self % 2 == 0", "message": "replicas must be even"}
    ]
    assert props["ratio"] == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1,
        "exclusiveMaximum": True,
        "default": 0.5,
    }
    assert props["step"]["multipleOf"] == 5
    assert props["color"] == {"type": "string", "enum": ["red", "blue"], "default": "red"}
    assert props["size"]["enum"] == ["S", "M", "L"]
    assert props["port"] == {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "default": 80,
    }
    assert props["namePattern"]["pattern"] == "^[a-z]+$"
    assert props["ports"]["x-kubernetes-list-type"] == "map"
    assert props["ports"]["x-kubernetes-list-map-keys"] == ["name"]
    assert props["ports"]["maxItems"] == 3
    assert props["ports"]["items"]["required"] == ["name", "port"]
    assert props["tags"]["x-kubernetes-list-type"] == "set"
    assert props["labels"] == {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "maxProperties": 2,
        "default": {},
    }
    assert props["anything"] == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "default": {},
    }
    assert props["raw"] == {"x-kubernetes-preserve-unknown-fields": True, "nullable": True}
    assert props["template"] == {
        "type": "object",
        "x-kubernetes-embedded-resource": True,
        "x-kubernetes-preserve-unknown-fields": True,
        "nullable": True,
    }
    assert props["note"] == {"type": "string", "nullable": True}
    assert props["limits"]["x-kubernetes-validations"] == [
        {"rule": "self.min <= self.max", "message": "min must not exceed max"}
    ]
    assert props["when"] == {"type": "string", "format": "date-time", "nullable": True}
    assert props["frozen"]["x-kubernetes-list-type"] == "atomic"
    assert props["host"]["format"] == "hostname"
    conditions = schema_of(Widget)["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "lastTransitionTime" in conditions["items"]["properties"]


def test_optional_fields_are_nullable_only_with_an_explicit_none_default() -> None:
    class Spec(BaseModel):
        a: int | None = None
        b: int | None = 3
        c: int = 3
        d: int | None

    class Thing(Resource, group="example.com", version="v1"):
        spec: Spec

    props = schema_of(Thing)["properties"]["spec"]["properties"]
    assert props["a"] == {"type": "integer", "nullable": True}
    assert props["b"] == {"type": "integer", "default": 3}
    assert props["c"] == {"type": "integer", "default": 3}
    assert props["d"] == {"type": "integer", "nullable": True}
    assert schema_of(Thing)["properties"]["spec"]["required"] == ["d"]


def test_extra_allow_models_preserve_unknown_fields() -> None:
    spec = schema_of(Free)["properties"]["spec"]
    assert spec["x-kubernetes-preserve-unknown-fields"] is True
    assert spec["description"] == "Keeps whatever it is given."


# -- the schema and pydantic agree ---------------------------------------------------------------


def test_the_wire_form_of_valid_instances_validates() -> None:
    widget = Widget(
        metadata=ObjectMeta(name="w"),
        spec=WidgetSpec(
            replicas=4,
            ports=[Port(name="http", port=80), Port(name="dns", port=53, protocol="UDP")],
            tags=["a", "b"],
            labels={"x": "y"},
            anything={"deep": {"list": [1, None]}},
            raw=[1, "two"],
            template={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
            note=None,
            when=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            host="example.com",
        ),
    )
    assert field_errors(Widget, widget.to_wire()) == []
    assert field_errors(Widget, Widget().to_wire() | {"metadata": {"name": "w"}}) == []
    assert field_errors(Todo, Todo(spec=TodoSpec(title="write tests")).to_wire()) == []


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"replicas": 12}, "spec.replicas"),
        ({"replicas": 3}, "spec.replicas"),
        ({"ratio": 1}, "spec.ratio"),
        ({"step": 7}, "spec.step"),
        ({"color": "pink"}, "spec.color"),
        ({"size": "XL"}, "spec.size"),
        ({"port": 1.5}, "spec.port"),
        ({"namePattern": "ABC"}, "spec.namePattern"),
        ({"ports": [{"name": "a", "port": 0}]}, "spec.ports[0].port"),
        ({"ports": [{"port": 1}]}, "spec.ports[0].name"),
        ({"ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]}, "spec.ports[1]"),
        ({"ports": [{"name": str(i), "port": 1} for i in range(4)]}, "spec.ports"),
        ({"tags": ["a", "a"]}, "spec.tags[1]"),
        ({"labels": {"a": "1", "b": "2", "c": "3"}}, "spec.labels"),
        ({"template": {"kind": "Pod"}}, "spec.template.apiVersion"),
        ({"limits": {"min": 5, "max": 1}}, "spec.limits"),
        ({"when": "yesterday"}, "spec.when"),
        ({"host": "-bad-"}, "spec.host"),
    ],
)
def test_constraint_violations_fail_in_both_pydantic_and_the_schema_on_the_expected_path(
    spec: dict[str, Any], path: str
) -> None:
    wire = {
        "apiVersion": "widgets.example.com/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": spec,
    }
    assert field_errors(Widget, wire) == [path]
    if path not in (
        "spec.replicas",
        "spec.limits",
        "spec.ports[1]",
        "spec.tags[1]",
        "spec.host",
        "spec.template.apiVersion",
    ):
        # CEL rules, list uniqueness, formats and embedded-resource checks are the server's alone.
        with pytest.raises(ValidationError):
            Widget.from_wire(wire)


def test_a_missing_required_field_is_reported_by_both() -> None:
    wire = {"apiVersion": "example.com/v1", "kind": "Todo", "metadata": {"name": "t"}, "spec": {}}
    assert field_errors(Todo, wire) == ["spec.title"]
    with pytest.raises(ValidationError):
        Todo.from_wire(wire)


# -- wire round trip -----------------------------------------------------------------------------

FULL_METADATA = {
    "name": "t",
    "namespace": "default",
    "uid": "1c2f5b7e-0000-4000-8000-000000000000",
    "resourceVersion": "42",
    "generation": 3,
    "creationTimestamp": "2024-01-02T03:04:05Z",
    "deletionTimestamp": "2024-01-02T04:04:05Z",
    "deletionGracePeriodSeconds": 0,
    "labels": {"app": "todo"},
    "annotations": {"note": "x"},
    "ownerReferences": [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "cm",
            "uid": "u",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ],
    "finalizers": ["example.com/cleanup"],
    "managedFields": [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "example.com/v1",
            "time": "2024-01-02T03:04:05Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:title": {}}},
        }
    ],
    "somethingNew": {"from": "a newer server"},
}


def test_a_stored_todo_round_trips_losslessly() -> None:
    wire = server_form(
        Todo,
        {
            "apiVersion": "example.com/v1",
            "kind": "Todo",
            "metadata": FULL_METADATA,
            "spec": {"title": "x"},
            "status": {"phase": "Done"},
        },
    )
    assert Todo.from_wire(copy.deepcopy(wire)).to_wire() == wire


def test_a_stored_widget_round_trips_losslessly() -> None:
    wire = server_form(
        Widget,
        {
            "apiVersion": "widgets.example.com/v1alpha1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {
                "ports": [{"name": "a", "port": 1}],
                "anything": {"x": [1, {"y": None}]},
                "raw": {"any": "thing"},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}},
                "note": None,
                "when": "2024-01-02T03:04:05Z",
                "tags": ["b", "a"],
            },
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-02T03:04:05Z"}
                ]
            },
        },
    )
    assert Widget.from_wire(copy.deepcopy(wire)).to_wire() == wire


def test_unknown_fields_are_dropped_where_the_server_prunes_and_kept_where_it_preserves() -> None:
    sent = {
        "apiVersion": "example.com/v1",
        "kind": "Free",
        "metadata": {"name": "f"},
        "spec": {"known": 1, "extra": {"a": 1}},
    }
    assert Free.from_wire(sent).to_wire() == sent == server_form(Free, sent)
    todo = {
        "apiVersion": "example.com/v1",
        "kind": "Todo",
        "metadata": {"name": "t"},
        "spec": {"title": "x", "junk": 1},
    }
    assert Todo.from_wire(todo).to_wire()["spec"] == {"title": "x"}
    assert server_form(Todo, todo)["spec"] == {"title": "x", "done": False}


def test_to_wire_leaves_out_unset_defaults_but_keeps_defaults_changed_in_place() -> None:
    todo = Todo(metadata={"name": "t"}, spec=TodoSpec(title="x"))
    assert todo.to_wire() == {
        "apiVersion": "example.com/v1",
        "kind": "Todo",
        "metadata": {"name": "t"},
        "spec": {"title": "x"},
    }
    todo.status.phase = "Done"
    todo.spec.done = True
    assert todo.to_wire()["status"] == {"phase": "Done"}
    assert todo.to_wire()["spec"] == {"title": "x", "done": True}


def test_from_wire_rejects_another_kind() -> None:
    with pytest.raises(
        ValueError, match=r"Todo is example\.com/v1, Kind=Todo; got example\.com/v1, Kind=Other"
    ):
        Todo.from_wire(
            {"apiVersion": "example.com/v1", "kind": "Other", "metadata": {}, "spec": {"title": "x"}}
        )


def test_convenience_accessors_read_and_edit_metadata() -> None:
    todo = Todo.from_wire(
        {"apiVersion": "example.com/v1", "kind": "Todo", "metadata": FULL_METADATA, "spec": {"title": "x"}}
    )
    assert (todo.name, todo.namespace, todo.uid, todo.generation, todo.resource_version) == (
        "t",
        "default",
        FULL_METADATA["uid"],
        3,
        "42",
    )
    assert todo.labels == {"app": "todo"}
    fresh = Todo(spec=TodoSpec(title="y"))
    fresh.labels["app"] = "new"
    fresh.annotations["a"] = "b"
    assert fresh.to_wire()["metadata"] == {"labels": {"app": "new"}, "annotations": {"a": "b"}}


# -- versions ------------------------------------------------------------------------------------


class TodoV2Spec(BaseModel):
    title: str
    priority: int = 0


class TodoV2(Todo, version="v2", storage=True):
    spec: TodoV2Spec  # type: ignore[assignment]


class TodoV3(Todo, version="v3", storage=True, served=False, deprecated=True, deprecation_warning="use v2"):
    pass


def test_a_subclass_is_another_version_of_the_same_kind() -> None:
    info = TodoV2.resource_info()
    assert (info.group, info.version, info.kind, info.plural, info.short_names) == (
        "example.com",
        "v2",
        "Todo",
        "todos",
        ("td",),
    )


def test_crd_for_serves_several_versions_with_one_storage_version() -> None:
    crd = crd_for(Todo, TodoV2)
    versions = crd["spec"]["versions"]
    assert [(v["name"], v["storage"]) for v in versions] == [("v1", False), ("v2", True)]
    assert "priority" in versions[1]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    for version in versions:
        assert check_structural(version["schema"]["openAPIV3Schema"]) == []


def test_two_storage_versions_are_an_error_naming_both() -> None:
    with pytest.raises(ValueError, match="TodoV2 and TodoV3 all claim storage=True"):
        crd_for(Todo, TodoV2, TodoV3)


def test_no_storage_version_among_several_is_an_error_naming_them() -> None:
    class TodoBeta(Todo, version="v1beta1"):
        pass

    with pytest.raises(ValueError, match="none of Todo, TodoBeta claims storage=True"):
        crd_for(Todo, TodoBeta)


def test_deprecated_and_unserved_versions_are_marked() -> None:
    [entry] = TodoV3.crd()["spec"]["versions"]
    assert entry["served"] is False
    assert entry["deprecated"] is True
    assert entry["deprecationWarning"] == "use v2"


def test_versions_of_different_kinds_cannot_share_a_crd() -> None:
    with pytest.raises(ValueError, match="Todo and Widget disagree on group"):
        crd_for(Todo, Widget)
    with pytest.raises(ValueError, match="both declare version v1"):
        crd_for(Todo, Todo)


# -- models that cannot become structural schemas ------------------------------------------------


class Node(BaseModel):
    children: list[Node] = []


class Cat(BaseModel):
    meow: bool = True


class Dog(BaseModel):
    woof: bool = True


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (Cat | Dog, r"Spec\.field: the union Cat \| Dog cannot become a structural schema"),
        (Node, r"Node\.children: Node refers to itself"),
        (tuple[int, str], r"Spec\.field: a fixed-length tuple"),
        (dict[int, str], r"Spec\.field: object keys must be strings"),
        (set[Cat], r"Spec\.field: a set .* needs scalar items"),
        (Annotated[list[str], ListMap("name")], r"Spec\.field: ListMap\(\) applies to lists of models"),
        (Annotated[list[Cat], ListMap("name")], r"Spec\.field: list-map key 'name' is not a field"),
        (Annotated[list[Port], ListMap("port", "protocol")], None),
        (Literal["a", 1], r"Spec\.field: the values .* mix types"),
        (complex, r"Spec\.field: the type <class 'complex'> has no Kubernetes schema equivalent"),
    ],
)
def test_unrepresentable_models_raise_type_error_naming_class_and_field(
    annotation: Any, message: str | None
) -> None:
    spec = type("Spec", (BaseModel,), {"__annotations__": {"field": annotation}, "__module__": __name__})
    thing = type(
        "Thing",
        (Resource,),
        {"__annotations__": {"spec": spec}, "__module__": __name__},
        group="example.com",
        version="v1",
    )
    if message is None:
        assert check_structural(thing.openapi_schema()) == []
        return
    with pytest.raises(TypeError, match=message):
        thing.crd()


def test_a_list_map_key_that_is_neither_required_nor_defaulted_is_rejected() -> None:
    class Item(BaseModel):
        key: str | None = None

    class Spec(BaseModel):
        items: Annotated[list[Item], ListMap("key")] = []

    class Thing(Resource, group="example.com", version="v1"):
        spec: Spec

    with pytest.raises(TypeError, match=r"Spec\.items: list-map key 'key' must be a non-nullable scalar"):
        Thing.crd()


def test_a_default_that_violates_its_own_constraints_is_rejected_when_building_the_crd() -> None:
    class Spec(BaseModel):
        n: Annotated[int, Field(le=3)] = 5

    class Thing(Resource, group="example.com", version="v1"):
        spec: Spec

    with pytest.raises(
        TypeError,
        match=r"Thing: the generated schema is not structural: .*default in body should be less than or equal to 3",
    ):
        Thing.crd()


def test_a_cel_rule_that_does_not_compile_is_rejected_when_building_the_crd() -> None:
    class Spec(BaseModel):
        n: Annotated[int, Rule("self.missing > 0")] = 0

    class Thing(Resource, group="example.com", version="v1"):
        spec: Spec

    with pytest.raises(TypeError, match="type 'int' does not support field selection"):
        Thing.crd()


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"group": "nodot"}, "group 'nodot' must be a DNS subdomain with at least one dot"),
        ({"group": "example.com", "version": "V1"}, "version 'V1' must be a DNS-1035 label"),
        (
            {"group": "example.com", "version": "v1", "kind": "bad-kind"},
            "kind 'bad-kind' must be alphanumeric",
        ),
        (
            {"group": "example.com", "version": "v1", "scope": "Global"},
            'scope must be "Namespaced" or "Cluster"',
        ),
        ({"group": "example.com", "version": "v1", "short_names": ["Td"]}, "short name 'Td'"),
        (
            {"group": "example.com", "version": "v1", "scale": Scale(spec_replicas_path=".status.x")},
            "must be under .spec",
        ),
        (
            {
                "group": "example.com",
                "version": "v1",
                "printer_columns": [PrinterColumn("A", ".spec.a", type="float")],
            },
            "has type 'float'",
        ),
        ({"kind": "Lonely"}, "a resource needs both group= and version="),
    ],
)
def test_invalid_class_keywords_raise_type_error_naming_the_class(
    keywords: dict[str, Any], message: str
) -> None:
    if "group" in keywords:
        keywords.setdefault("version", "v1")
    with pytest.raises(TypeError, match="Broken: .*" + message.replace("(", r"\(").replace(".", r"\.")):
        type("Broken", (Resource,), {"__module__": __name__}, **keywords)


def test_paths_named_by_columns_scale_and_selectable_fields_must_exist() -> None:
    class Thing(Resource, group="example.com", version="v1", scale=True, selectable_fields=[".spec.nope"]):
        spec: TodoSpec

    with pytest.raises(TypeError) as caught:
        Thing.crd()
    text = str(caught.value)
    assert "selectable field .spec.nope is not in the schema" in text
    assert "scale spec_replicas_path .spec.replicas is not in the schema" in text


def test_an_abstract_resource_class_has_no_identity() -> None:
    class Base(Resource):
        pass

    with pytest.raises(TypeError, match="Base is not a concrete resource"):
        Base.resource_info()


def test_a_typed_resource_field_is_an_embedded_resource() -> None:
    class Spec(BaseModel):
        template: Todo
        shape: Annotated[Limits, Atomic(), Field(description="Bounds.")] = Limits()

    class Holder(Resource, group="example.com", version="v1"):
        spec: Spec

    props = schema_of(Holder)["properties"]["spec"]["properties"]
    assert props["template"]["x-kubernetes-embedded-resource"] is True
    assert props["template"]["properties"]["spec"] == schema_of(Todo)["properties"]["spec"]
    assert props["shape"]["x-kubernetes-map-type"] == "atomic"
    assert props["shape"]["description"] == "Bounds."
    wire = Holder(
        metadata={"name": "h"}, spec=Spec(template=Todo(metadata={"name": "t"}, spec=TodoSpec(title="x")))
    ).to_wire()
    assert field_errors(Holder, wire) == []
    assert wire["spec"]["template"] == {
        "apiVersion": "example.com/v1",
        "kind": "Todo",
        "metadata": {"name": "t"},
        "spec": {"title": "x"},
    }
    assert Holder.from_wire(wire).to_wire() == wire


def test_the_example_in_the_documentation_works() -> None:
    text = (Path(__file__).parent.parent / "docs" / "resources.md").read_text()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    # pydantic resolves annotations through sys.modules, so run the example as a real module.
    module = types.ModuleType("docs_resources_example")
    sys.modules[module.__name__] = module
    try:
        exec(compile(example, "docs/resources.md", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    todo_class = module.Todo
    crd = todo_class.crd()
    assert check_structural(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]) == []
    assert crd["spec"]["versions"][0]["additionalPrinterColumns"][1] == {
        "name": "Done",
        "type": "boolean",
        "jsonPath": ".spec.done",
    }


def test_printer_columns_may_name_object_metadata_that_the_schema_does_not_describe() -> None:
    class Aged(
        Resource,
        group="example.com",
        version="v1",
        kind="Aged",
        printer_columns=[PrinterColumn("Age", ".metadata.creationTimestamp", type="date")],
    ):
        spec: dict[str, str] = {}

    column = Aged.crd()["spec"]["versions"][0]["additionalPrinterColumns"][0]
    assert column == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def test_printer_columns_naming_an_undeclared_spec_field_are_still_rejected() -> None:
    class HauntedSpec(BaseModel):
        title: str = ""

    with pytest.raises(TypeError, match=re.escape("printer column 'Ghost' names .spec.ghost, which is not")):

        class Haunted(
            Resource,
            group="example.com",
            version="v1",
            kind="Haunted",
            printer_columns=[PrinterColumn("Ghost", ".spec.ghost")],
        ):
            spec: HauntedSpec = HauntedSpec()

        Haunted.crd()


# -- model-instance defaults ---------------------------------------------------------------------


class Endpoint(BaseModel):
    host: str = "localhost"
    ports: list[int] = [80]


class PoolSpec(BaseModel):
    size: Annotated[int, Field(ge=1)] = 1
    endpoint: Endpoint = Endpoint()
    tags: dict[str, list[str]] = {"tier": ["web"]}


class PoolStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    phase: str = "Pending"
    conditions: Annotated[list[Condition], ListMap("type")] = []
    _seen: list[str] = PrivateAttr(default_factory=lambda: ["created"])


DEFAULT_SPEC = PoolSpec(size=2, endpoint=Endpoint(host="db", ports=[5432]))
DEFAULT_STATUS = PoolStatus(phase="Pending", note="an extra field")


class Pool(Resource, group="example.com", version="v1", kind="Pool"):
    spec: PoolSpec = DEFAULT_SPEC
    status: PoolStatus = DEFAULT_STATUS


class PoolAsDeclared(Resource, group="example.com", version="v1", kind="Pool"):
    # The same defaults given through Field(), which the rewrite leaves to pydantic's deep copies:
    # the reference that the rewritten Pool must be indistinguishable from.
    spec: PoolSpec = Field(DEFAULT_SPEC)
    status: PoolStatus = Field(DEFAULT_STATUS)


def _model_state(value: Any) -> Any:
    """Everything of a model a copy must reproduce, nested: type, fields, fields set, extra, private."""
    if isinstance(value, BaseModel):
        return (
            type(value),
            {name: _model_state(item) for name, item in value.__dict__.items()},
            value.model_fields_set,
            value.__pydantic_extra__,
            value.__pydantic_private__,
        )
    if isinstance(value, list):
        return [_model_state(item) for item in value]
    if isinstance(value, dict):
        return {key: _model_state(item) for key, item in value.items()}
    return value


def test_a_model_instance_default_becomes_a_factory_and_the_crd_keeps_the_same_default() -> None:
    assert Pool.model_fields["spec"].default_factory is not None
    assert Pool.model_fields["status"].default_factory is not None
    assert PoolAsDeclared.model_fields["spec"].default is DEFAULT_SPEC
    assert Pool.openapi_schema() == PoolAsDeclared.openapi_schema()
    assert Pool.openapi_schema()["properties"]["spec"]["default"] == {
        "size": 2,
        "endpoint": {"host": "db", "ports": [5432]},
    }
    assert Pool.crd() == PoolAsDeclared.crd()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"spec": {"size": 3}},
        {"spec": {"endpoint": {"host": "x"}}, "status": {"phase": "Ready", "other": 1}},
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
    ],
)
def test_objects_read_with_factory_defaults_equal_objects_read_with_copied_defaults(
    body: dict[str, Any],
) -> None:
    wire = {"apiVersion": "example.com/v1", "kind": "Pool", "metadata": {"name": "p"}, **body}
    fast, declared = Pool.from_wire(wire), PoolAsDeclared.from_wire(wire)
    assert _model_state(fast.spec) == _model_state(declared.spec)
    assert _model_state(fast.status) == _model_state(declared.status)
    assert fast.model_fields_set == declared.model_fields_set
    assert fast.to_wire() == declared.to_wire()
    assert _model_state(Pool().status) == _model_state(PoolAsDeclared().status)


def test_every_object_gets_its_own_copy_of_a_model_instance_default() -> None:
    first = Pool.from_wire({"apiVersion": "example.com/v1", "kind": "Pool", "metadata": {"name": "a"}})
    first.spec.endpoint.ports.append(1)
    first.spec.tags["tier"].append("db")
    first.status.conditions.append(Condition(type="Ready", status="True"))
    first.status.__pydantic_extra__["note"] = "changed"  # type: ignore[index]

    second = Pool()
    assert second.spec == DEFAULT_SPEC
    assert second.status == DEFAULT_STATUS
    assert DEFAULT_SPEC.endpoint.ports == [5432]
    assert DEFAULT_SPEC.tags == {"tier": ["web"]}
    assert DEFAULT_STATUS.conditions == []
    # A default changed in place counts as set, as it did with pydantic's own copies.
    assert first.to_wire()["spec"]["endpoint"]["ports"] == [5432, 1]
    assert "spec" not in second.to_wire()


def test_a_model_instance_default_is_taken_as_it_was_when_the_class_was_created() -> None:
    default = Endpoint(host="before")

    class Snapshot(Resource, group="example.com", version="v1", kind="Snapshot"):
        spec: Endpoint = default

    default.host = "after"
    assert Snapshot().spec.host == "before"
    assert Snapshot.openapi_schema()["properties"]["spec"]["default"] == {"host": "before"}


class _Twice(BaseModel):
    a: list[int] = []
    b: list[int] = []


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)

    n: int = 0


class _Ports(RootModel[list[int]]):
    pass


def test_defaults_that_are_not_plain_data_are_left_for_pydantic_to_copy() -> None:
    shared = [1]

    class Odd(Resource):
        aliased: _Twice = _Twice.model_construct(a=shared, b=shared)
        frozen: _Frozen = _Frozen(n=1)
        root: _Ports = _Ports([80])
        class_wide: ClassVar[Endpoint] = Endpoint()
        _private: Endpoint = Endpoint()

    fields = Odd.model_fields
    assert {name: fields[name].default_factory for name in ("aliased", "frozen", "root")} == dict.fromkeys(
        ("aliased", "frozen", "root")
    )
    odd = Odd()
    # pydantic's deepcopy keeps the aliasing within the default, which a copy plan would lose.
    assert odd.aliased.a is odd.aliased.b
    assert odd.aliased.a is not shared
    assert odd.frozen is fields["frozen"].default  # hashable: pydantic shares it
    assert odd.root == _Ports([80])
    assert "class_wide" not in fields
    assert Odd.class_wide == Endpoint()
    assert "_private" not in fields
    assert odd._private == Endpoint()


def test_factory_defaults_are_inherited_by_later_versions_and_by_subclasses_of_abstract_bases() -> None:
    class WithStatus(Resource):
        status: PoolStatus = PoolStatus()

    class Concrete(WithStatus, group="example.com", version="v1", kind="Concrete"):
        spec: PoolSpec = PoolSpec()

    class ConcreteV2(Concrete, version="v2", storage=True):
        pass

    for cls in (Concrete, ConcreteV2):
        assert cls.model_fields["status"].default_factory is not None
        assert cls.model_fields["spec"].default_factory is not None
        changed, fresh = cls(), cls()
        changed.status.conditions.append(Condition(type="Ready", status="True"))
        assert fresh.status.conditions == []
        assert "default" not in cls.openapi_schema()["properties"]["status"]
        assert cls.openapi_schema()["properties"]["spec"]["default"] == {}  # PoolSpec() is all defaults
