"""Protobuf request bodies: what kubectl's typed clients send, decoded to the objects' JSON form."""

from __future__ import annotations

import aiohttp
import pytest

from kubevisor.api import BadRequest, ResourceInfo, UnsupportedMediaType
from kubevisor.server._protobuf import MAGIC, MEDIA_TYPE, decode_protobuf_object

CONFIGMAPS = ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True)
DEPLOYMENTS = ResourceInfo("apps", "v1", "Deployment", "deployments", "deployment", True)


def varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version) + field(2, kind)
    return MAGIC + field(1, type_meta) + field(2, raw) + field(3, "") + field(4, "")


def object_meta(name: str, **labels: str) -> bytes:
    # Non-pointer fields are always marshalled, empty or not, as gogo-generated code does.
    meta = field(1, name) + field(2, "") + field(3, "") + field(5, "") + field(7, 0)
    meta += field(8, field(1, 0) + field(2, 0))  # a zero creationTimestamp
    for key, value in labels.items():
        meta += field(11, field(1, key) + field(2, value))
    return meta


def test_config_map_data_and_binary_data_decode_like_json() -> None:
    raw = field(1, object_meta("cm", app="web"))
    raw += field(2, field(1, "a") + field(2, "1")) + field(2, field(1, "empty") + field(2, ""))
    raw += field(3, field(1, "bin") + field(2, b"\x00\x01"))
    obj = decode_protobuf_object(envelope("v1", "ConfigMap", raw), CONFIGMAPS)
    assert obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "labels": {"app": "web"}},
        "data": {"a": "1", "empty": ""},
        "binaryData": {"bin": "AAE="},
    }


def test_explicit_zero_replicas_survive_while_other_zero_values_are_dropped() -> None:
    selector = field(1, field(1, "app") + field(2, "web"))
    container = field(1, "nginx") + field(2, "nginx:1.25")
    template = field(1, object_meta("", app="web")) + field(2, field(2, container))
    spec = (
        field(1, 0) + field(2, selector) + field(3, template) + field(5, 0)
    )  # replicas=0, minReadySeconds=0
    obj = decode_protobuf_object(
        envelope("apps/v1", "Deployment", field(1, object_meta("web")) + field(2, spec)), DEPLOYMENTS
    )
    assert obj["spec"]["replicas"] == 0
    assert "minReadySeconds" not in obj["spec"]
    assert obj["spec"]["template"]["spec"]["containers"] == [{"name": "nginx", "image": "nginx:1.25"}]


def test_a_body_without_the_magic_prefix_is_400() -> None:
    with pytest.raises(BadRequest):
        decode_protobuf_object(b"{}", CONFIGMAPS)


def test_kinds_without_protobuf_messages_are_415() -> None:
    widgets = ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True)
    with pytest.raises(UnsupportedMediaType):
        decode_protobuf_object(envelope("example.com/v1", "Widget", b""), widgets)


async def test_protobuf_create_over_http_stores_the_object(http: aiohttp.ClientSession) -> None:
    raw = field(1, object_meta("from-proto")) + field(2, field(1, "k") + field(2, "v"))
    async with http.post(
        "/api/v1/namespaces/default/configmaps",
        data=envelope("v1", "ConfigMap", raw),
        headers={"Content-Type": MEDIA_TYPE, "Accept": f"{MEDIA_TYPE}, application/json"},
    ) as response:
        body = await response.json()
    assert response.status == 201 and response.headers["Content-Type"] == "application/json"
    assert body["data"] == {"k": "v"} and body["metadata"]["name"] == "from-proto"
