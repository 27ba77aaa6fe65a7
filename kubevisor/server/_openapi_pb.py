"""The protobuf form of the OpenAPI v2 document, for kubectl 1.27 and 1.28.

Those kubectl versions validate with OpenAPI v2 and only read it as protobuf (gnostic's
``openapi.v2.Document``): they ask for ``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``
and, when refused, fall back to the legacy ``/swagger-2.0.0.pb-v1`` path, never to JSON.  This module
encodes the JSON document (from ``_openapi.openapi_v2``) into that message.  Field numbers are those
of gnostic's ``openapiv2/OpenAPIv2.proto``; vendor extensions, defaults and enums travel as YAML
text in ``Any.yaml``, as gnostic writes them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

__all__ = ["MEDIA_TYPE", "MEDIA_TYPE_ALTERNATIVE", "openapi_v2_protobuf"]

MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
#: The same media type without the "@", which some clients send because Go's parser rejects it.
MEDIA_TYPE_ALTERNATIVE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _bytes(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _str(number: int, value: Any) -> bytes:
    return _bytes(number, str(value).encode()) if value not in (None, "") else b""


def _strs(number: int, values: Iterable[Any]) -> bytes:
    return b"".join(_bytes(number, str(v).encode()) for v in values)


def _bool(number: int, value: Any) -> bytes:
    return _varint(number << 3) + b"\x01" if value else b""


def _int(number: int, value: Any) -> bytes:
    return _varint(number << 3) + _varint(int(value)) if value is not None else b""


def _double(number: int, value: Any) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<d", float(value)) if value is not None else b""


def _any(number: int, value: Any) -> bytes:
    text = yaml.safe_dump(value, default_flow_style=False, sort_keys=False)
    if text.endswith("...\n"):  # scalars: PyYAML's explicit document end, which gnostic does not write
        text = text[: -len("...\n")]
    return _bytes(number, _bytes(2, text.encode()))


def _extensions(number: int, obj: Mapping[str, Any]) -> bytes:
    return b"".join(
        _bytes(number, _str(1, key) + _any(2, value)) for key, value in obj.items() if key.startswith("x-")
    )


def _schema(schema: Mapping[str, Any]) -> bytes:
    out = [
        _str(1, schema.get("$ref")),
        _str(2, schema.get("format")),
        _str(3, schema.get("title")),
        _str(4, schema.get("description")),
    ]
    if "default" in schema:
        out.append(_any(5, schema["default"]))
    out += [
        _double(6, schema.get("multipleOf")),
        _double(7, schema.get("maximum")),
        _bool(8, schema.get("exclusiveMaximum")),
        _double(9, schema.get("minimum")),
        _bool(10, schema.get("exclusiveMinimum")),
        _int(11, schema.get("maxLength")),
        _int(12, schema.get("minLength")),
        _str(13, schema.get("pattern")),
        _int(14, schema.get("maxItems")),
        _int(15, schema.get("minItems")),
        _bool(16, schema.get("uniqueItems")),
        _int(17, schema.get("maxProperties")),
        _int(18, schema.get("minProperties")),
        _strs(19, schema.get("required") or ()),
        b"".join(_any(20, v) for v in schema.get("enum") or ()),
    ]
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        out.append(_bytes(21, _bytes(1, _schema(additional))))
    elif isinstance(additional, bool):
        out.append(_bytes(21, _varint(2 << 3) + (b"\x01" if additional else b"\x00")))
    kind = schema.get("type")
    if kind:
        out.append(_bytes(22, _strs(1, kind if isinstance(kind, list) else [kind])))
    items = schema.get("items")
    if isinstance(items, Mapping):
        out.append(_bytes(23, _bytes(1, _schema(items))))
    elif isinstance(items, list):
        out.append(_bytes(23, b"".join(_bytes(1, _schema(i)) for i in items)))
    out.append(b"".join(_bytes(24, _schema(s)) for s in schema.get("allOf") or ()))
    properties = schema.get("properties")
    if isinstance(properties, Mapping) and properties:
        named = b"".join(
            _bytes(1, _str(1, name) + _bytes(2, _schema(sub))) for name, sub in properties.items()
        )
        out.append(_bytes(25, named))
    out.append(_bool(27, schema.get("readOnly")))
    if "example" in schema:
        out.append(_any(30, schema["example"]))
    out.append(_extensions(31, schema))
    return b"".join(out)


def _parameter(param: Mapping[str, Any]) -> bytes:
    if "$ref" in param:
        return _bytes(2, _str(1, param["$ref"]) + _str(2, param.get("description")))
    where = param.get("in", "")
    if where == "body":
        body = (
            _str(1, param.get("description"))
            + _str(2, param.get("name"))
            + _str(3, where)
            + _bool(4, param.get("required"))
            + (_bytes(5, _schema(param["schema"])) if "schema" in param else b"")
            + _extensions(6, param)
        )
        return _bytes(1, _bytes(1, body))
    head = (
        _bool(1, param.get("required"))
        + _str(2, where)
        + _str(3, param.get("description"))
        + _str(4, param.get("name"))
    )
    if where in ("query", "formData"):
        sub = (
            head
            + _bool(5, param.get("allowEmptyValue"))
            + _str(6, param.get("type"))
            + _str(7, param.get("format"))
        )
        sub += _bool(20, param.get("uniqueItems")) + _extensions(23, param)
        oneof = 3 if where == "query" else 2
    else:  # path and header share a layout
        sub = head + _str(5, param.get("type")) + _str(6, param.get("format"))
        sub += _bool(19, param.get("uniqueItems")) + _extensions(22, param)
        oneof = 4 if where == "path" else 1
    return _bytes(1, _bytes(2, _bytes(oneof, sub)))


def _operation(op: Mapping[str, Any]) -> bytes:
    responses = b""
    for code, response in (op.get("responses") or {}).items():
        body = _str(1, response.get("description"))
        if "schema" in response:
            body += _bytes(2, _bytes(1, _schema(response["schema"])))
        body += _extensions(5, response)
        responses += _bytes(1, _str(1, code) + _bytes(2, _bytes(1, body)))
    return b"".join(
        [
            _strs(1, op.get("tags") or ()),
            _str(2, op.get("summary")),
            _str(3, op.get("description")),
            _str(5, op.get("operationId")),
            _strs(6, op.get("produces") or ()),
            _strs(7, op.get("consumes") or ()),
            b"".join(_bytes(8, _parameter(p)) for p in op.get("parameters") or ()),
            _bytes(9, responses),
            _strs(10, op.get("schemes") or ()),
            _bool(11, op.get("deprecated")),
            _extensions(13, op),
        ]
    )


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(item: Mapping[str, Any]) -> bytes:
    out = [_str(1, item.get("$ref"))]
    for method, number in _METHODS.items():
        if method in item:
            out.append(_bytes(number, _operation(item[method])))
    out.append(b"".join(_bytes(9, _parameter(p)) for p in item.get("parameters") or ()))
    out.append(_extensions(10, item))
    return b"".join(out)


def openapi_v2_protobuf(document: Mapping[str, Any]) -> bytes:
    """Encode a Swagger 2.0 JSON document as gnostic's ``openapi.v2.Document``."""
    info = document.get("info") or {}
    paths = b"".join(
        _bytes(2, _str(1, path) + _bytes(2, _path_item(item)))
        for path, item in (document.get("paths") or {}).items()
    )
    definitions = b"".join(
        _bytes(1, _str(1, name) + _bytes(2, _schema(schema)))
        for name, schema in (document.get("definitions") or {}).items()
    )
    security = b"".join(
        _bytes(
            12,
            b"".join(_bytes(1, _str(1, name) + _bytes(2, _strs(1, scopes))) for name, scopes in req.items()),
        )
        for req in document.get("security") or ()
    )
    security_definitions = b""
    for name, scheme in (document.get("securityDefinitions") or {}).items():
        if scheme.get("type") == "apiKey":
            item = _bytes(
                2,
                _str(1, "apiKey")
                + _str(2, scheme.get("name"))
                + _str(3, scheme.get("in"))
                + _str(4, scheme.get("description")),
            )
            security_definitions += _bytes(1, _str(1, name) + _bytes(2, item))
    return b"".join(
        [
            _str(1, document.get("swagger", "2.0")),
            _bytes(2, _str(1, info.get("title")) + _str(2, info.get("version"))),
            _strs(5, document.get("schemes") or ()),
            _bytes(8, paths),
            _bytes(9, definitions),
            security,
            _bytes(13, security_definitions) if security_definitions else b"",
            _extensions(16, document),
        ]
    )
