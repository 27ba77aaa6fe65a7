"""Every CRD generated from the typed models in the tests (``kubevisor.resource``) installs on the
embedded server, its valid objects are stored and read back into the model, and its invalid ones
are rejected over HTTP with 422 on the field paths the schema names."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from pydantic import BaseModel

from kubevisor.resource import Resource, crd_for
from tests.runtime.conftest import Widget as RuntimeWidget
from tests.test_resource import Free, Port, Todo, TodoSpec, Widget, WidgetSpec

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class GadgetSpec(BaseModel):
    size: int = 1


class GadgetV1(Resource, group="multi.example.com", version="v1", kind="Gadget", storage=True):
    spec: GadgetSpec = GadgetSpec()


class GadgetV2(GadgetV1, version="v2"):
    pass


MODELS: list[tuple[str, dict[str, Any], type[Resource], Resource]] = [
    ("todo", Todo.crd(), Todo, Todo.model_validate({"metadata": {"name": "t"}, "spec": {"title": "write"}})),
    (
        "widget",
        Widget.crd(),
        Widget,
        Widget.model_validate(
            {
                "metadata": {"name": "w"},
                "spec": WidgetSpec(replicas=4, ports=[Port(name="http", port=80)], tags=["a"]).model_dump(
                    by_alias=True, exclude_unset=True
                ),
            }
        ),
    ),
    (
        "free",
        Free.crd(),
        Free,
        Free.model_validate({"metadata": {"name": "f"}, "spec": {"known": 1, "extra": "kept"}}),
    ),
    (
        "runtime-widget",
        RuntimeWidget.crd(),
        RuntimeWidget,
        RuntimeWidget.model_validate({"metadata": {"name": "r"}}),
    ),
    (
        "two-versions",
        crd_for(GadgetV1, GadgetV2),
        GadgetV2,
        GadgetV2.model_validate({"metadata": {"name": "g"}}),
    ),
]


def path_of(cls: type[Resource], namespace: str = "default") -> str:
    info = cls.resource_info()
    base = f"/apis/{info.group}/{info.version}"
    return f"{base}/namespaces/{namespace}/{info.plural}" if info.namespaced else f"{base}/{info.plural}"


async def install(http: aiohttp.ClientSession, crd: dict[str, Any]) -> None:
    async with http.post(CRDS, json=crd) as response:
        assert response.status == 201, await response.text()
    name = crd["metadata"]["name"]
    async with asyncio.timeout(10):
        while True:
            async with http.get(f"{CRDS}/{name}") as response:
                conditions = (await response.json()).get("status", {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(("crd", "cls", "instance"), [m[1:] for m in MODELS], ids=[m[0] for m in MODELS])
async def test_a_generated_crd_installs_and_stores_valid_objects_that_read_back_into_the_model(
    http: aiohttp.ClientSession, crd: dict[str, Any], cls: type[Resource], instance: Resource
) -> None:
    await install(http, crd)
    wire = instance.to_wire()
    async with http.post(path_of(cls), json=wire) as response:
        assert response.status == 201, await response.text()
        stored = await response.json()
    typed = cls.from_wire(stored)
    assert typed.metadata.name == instance.metadata.name
    assert typed.model_dump(exclude={"metadata"}) == cls.from_wire(wire).model_dump(exclude={"metadata"})


async def test_a_model_preserving_unknown_fields_keeps_them_on_the_server(
    http: aiohttp.ClientSession,
) -> None:
    await install(http, Free.crd())
    body = {
        "apiVersion": "example.com/v1",
        "kind": "Free",
        "metadata": {"name": "f"},
        "spec": {"extra": {"x": 1}},
    }
    async with http.post(path_of(Free), json=body) as response:
        assert (await response.json())["spec"] == {"extra": {"x": 1}, "known": 0}


async def test_a_missing_required_field_of_a_model_is_rejected_on_its_path(
    http: aiohttp.ClientSession,
) -> None:
    await install(http, Todo.crd())
    body = {"apiVersion": "example.com/v1", "kind": "Todo", "metadata": {"name": "t"}, "spec": {}}
    async with http.post(path_of(Todo), json=body) as response:
        assert response.status == 422
        assert [c["field"] for c in (await response.json())["details"]["causes"]] == ["spec.title"]
    assert TodoSpec.model_fields["title"].is_required()


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
async def test_invalid_objects_of_a_generated_crd_are_rejected_on_the_expected_path(
    http: aiohttp.ClientSession, spec: dict[str, Any], path: str
) -> None:
    await install(http, Widget.crd())
    body = {
        "apiVersion": "widgets.example.com/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": spec,
    }
    async with http.post(path_of(Widget), json=body) as response:
        assert response.status == 422, await response.text()
        status = await response.json()
    assert [c["field"] for c in status["details"]["causes"]] == [path]
    async with http.get(f"{path_of(Widget)}/w") as response:
        assert response.status == 404
