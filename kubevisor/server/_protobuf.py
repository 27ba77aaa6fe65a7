"""Decoding of ``application/vnd.kubernetes.protobuf`` request bodies into JSON-shaped objects.

kubectl's typed clients (``kubectl create namespace|configmap|secret|deployment|...``) send their
bodies as protobuf and do not fall back to JSON, so the server must read them.  Responses are always
JSON, which every client accepts.

Wire format: the 4-byte magic ``k8s\\0`` and a ``runtime.Unknown`` envelope whose ``raw`` field holds
the object's message.  Field tables come from ``_protobuf_schema.py`` (generated from upstream's
descriptors).  Go's JSON encoding omits zero values that protobuf still carries (non-pointer fields
are always marshalled), so zero scalars are dropped, except for the pointer fields where an explicit
zero means something (``replicas: 0``, ``suspend: false``, ...).
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson

from kubevisor.api import BadRequest, ResourceInfo, UnsupportedMediaType

__all__ = ["MEDIA_TYPE", "decode_protobuf_object", "proto_package", "read_fields"]

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_TIME = _META + "Time"
_MICROTIME = _META + "MicroTime"
_DURATION = _META + "Duration"
_FIELDS_V1 = _META + "FieldsV1"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"

# Pointer fields whose explicit zero differs from "unset" (``kubectl create deployment --replicas=0``).
_KEEP_ZERO = frozenset(
    {
        "replicas",
        "parallelism",
        "completions",
        "backoffLimit",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
        "suspend",
        "immutable",
        "automountServiceAccountToken",
        "terminationGracePeriodSeconds",
        "activeDeadlineSeconds",
        "ttlSecondsAfterFinished",
        "revisionHistoryLimit",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
        "startingDeadlineSeconds",
        "progressDeadlineSeconds",
        "gracePeriodSeconds",
        "runAsUser",
        "runAsGroup",
        "fsGroup",
        "priority",
        "enableServiceLinks",
        "leaseDurationSeconds",
        "leaseTransitions",
        "allowPrivilegeEscalation",
        "privileged",
        "readOnlyRootFilesystem",
        "runAsNonRoot",
        "optional",
        "defaultMode",
    }
)


def proto_package(group: str, version: str) -> str:
    """The protobuf package of a built-in group-version: ``k8s.io.api.apps.v1``, core → ``core``."""
    return f"k8s.io.api.{group.split('.')[0] if group else 'core'}.{version}"


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def read_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """``(field number, wire type, value)`` for each field: ints for varint and fixed wire types,
    bytes for length-delimited ones.  Raises ``ValueError`` on malformed input."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise ValueError("truncated field")
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire == 1:
            if pos + 8 > end:
                raise ValueError("truncated fixed64")
            yield number, wire, int.from_bytes(data[pos : pos + 8], "little")
            pos += 8
        elif wire == 5:
            if pos + 4 > end:
                raise ValueError("truncated fixed32")
            yield number, wire, int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


@cache
def _schema() -> dict[str, Any]:
    from kubevisor.server._protobuf_schema import DATA

    table: dict[str, Any] = orjson.loads(gzip.decompress(base64.b64decode("".join(DATA))))
    return table


def _signed(value: int, bits: int) -> int:
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    if bits == 32:
        value = (value + (1 << 31)) % (1 << 32) - (1 << 31)
    return value


def _go_duration(nanos: int) -> str:
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = rest / 1e9
    text = f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _special(type_name: str, raw: bytes) -> Any:
    fields = {n: v for n, _, v in read_fields(raw)}
    if type_name in (_TIME, _MICROTIME):
        seconds, nanos = int(fields.get(1, 0)), int(fields.get(2, 0))
        if not seconds and not nanos:
            return None
        moment = datetime.fromtimestamp(_signed(seconds, 64), UTC)
        if type_name == _TIME:
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos // 1000:06d}Z"
    if type_name == _DURATION:
        return _go_duration(_signed(int(fields.get(1, 0)), 64))
    if type_name == _QUANTITY:
        value = fields.get(1, b"")
        return value.decode() if isinstance(value, bytes) else None
    if type_name == _INT_OR_STRING:
        if int(fields.get(1, 0)) == 1:
            value = fields.get(3, b"")
            return value.decode() if isinstance(value, bytes) else ""
        number = _signed(int(fields.get(2, 0)), 32)
        return number if number else None
    # RawExtension and FieldsV1: embedded JSON.
    value = fields.get(1, b"")
    return orjson.loads(value) if isinstance(value, bytes) and value else None


_SPECIAL = frozenset({_TIME, _MICROTIME, _DURATION, _QUANTITY, _INT_OR_STRING, _RAW_EXTENSION, _FIELDS_V1})


def _scalar(kind: int, wire: int, value: int | bytes) -> Any:
    if kind == 9:
        return value.decode() if isinstance(value, bytes) else ""
    if kind == 12:
        return base64.b64encode(value).decode() if isinstance(value, bytes) else ""
    if not isinstance(value, int):
        raise ValueError("scalar field with a length-delimited value")
    if kind == 8:
        return bool(value)
    if kind in (5, 17):
        return (value >> 1) ^ -(value & 1) if kind == 17 else _signed(value, 32)
    if kind in (3, 18):
        return (value >> 1) ^ -(value & 1) if kind == 18 else _signed(value, 64)
    if kind == 1:
        import struct

        double: float = struct.unpack("<d", value.to_bytes(8, "little"))[0]
        return double
    return value


def _decode(raw: bytes, type_name: str, table: dict[str, Any]) -> dict[str, Any]:
    spec = table.get(type_name)
    if spec is None:
        raise ValueError(f"unknown message {type_name}")
    fields = spec["f"]
    out: dict[str, Any] = {}
    for number, wire, value in read_fields(raw):
        entry = fields.get(str(number))
        if entry is None:
            continue  # a field newer than the generated table: skip it, as unknown JSON fields are
        name, kind, repeated, sub = entry[:4]
        if kind == 11:
            if not isinstance(value, bytes):
                raise ValueError(f"field {name} is not a message")
            sub_spec = table.get(sub)
            if sub_spec is not None and sub_spec["m"]:
                pair = _decode_entry(value, sub, table)
                out.setdefault(name, {})[pair[0]] = pair[1]
                continue
            item = _special(sub, value) if sub in _SPECIAL else _decode(value, sub, table)
            if len(entry) > 4 and isinstance(item, dict):
                out.update(item)  # an inline (embedded) struct: its fields belong to the parent
                continue
            if item is None and not repeated:
                continue
        elif wire == 2 and kind not in (9, 12):
            # A packed repeated scalar field.
            packed: list[Any] = []
            pos = 0
            assert isinstance(value, bytes)
            while pos < len(value):
                number_value, pos = _varint(value, pos)
                packed.append(_scalar(kind, 0, number_value))
            out.setdefault(name, []).extend(packed)
            continue
        else:
            item = _scalar(kind, wire, value)
            if (
                not repeated
                and name not in _KEEP_ZERO
                and item in ("", 0, False)
                and not isinstance(item, float)
            ):
                continue
        if repeated:
            out.setdefault(name, []).append(item)
        else:
            out[name] = item
    return out


def _decode_entry(raw: bytes, type_name: str, table: dict[str, Any]) -> tuple[str, Any]:
    spec = table[type_name]["f"]
    key: Any = ""
    value: Any = None
    for number, wire, item in read_fields(raw):
        entry = spec.get(str(number))
        if entry is None:
            continue
        _, kind, _, sub = entry[:4]
        if kind == 11 and isinstance(item, bytes):
            decoded = _special(sub, item) if sub in _SPECIAL else _decode(item, sub, table)
        else:
            decoded = _scalar(kind, wire, item)
        if number == 1:
            key = decoded
        else:
            value = decoded
    if value is None:
        value_entry = spec.get("2")
        value = "" if value_entry is not None and value_entry[1] in (9, 12) else value
    return str(key), value


def decode_protobuf_object(data: bytes, info: ResourceInfo) -> dict[str, Any]:
    """Decode a protobuf request body for a built-in kind into the object's JSON form.

    Raises :class:`UnsupportedMediaType` for kinds without protobuf messages (custom resources),
    :class:`BadRequest` for malformed bodies or a kind that is not ``info``'s.
    """
    message = f"{proto_package(info.group, info.version)}.{info.kind}"
    table = _schema()
    if message not in table:
        raise UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml"
        )
    if not data.startswith(MAGIC):
        raise BadRequest(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
        )
    try:
        envelope = {n: v for n, _, v in read_fields(data[len(MAGIC) :])}
        type_meta = envelope.get(1, b"")
        meta = {n: v for n, _, v in read_fields(type_meta)} if isinstance(type_meta, bytes) else {}
        api_version = meta.get(1, b"")
        kind = meta.get(2, b"")
        raw = envelope.get(2, b"")
        if not isinstance(raw, bytes):
            raise ValueError("envelope without raw data")
        obj = _decode(raw, message, table)
    except (ValueError, KeyError, orjson.JSONDecodeError) as exc:
        raise BadRequest(f"unable to decode protobuf body: {exc}") from None
    kind_text = kind.decode() if isinstance(kind, bytes) else ""
    if kind_text and kind_text != info.kind:
        raise BadRequest(f"the kind in the data ({kind_text}) does not match the expected kind ({info.kind})")
    decoded: dict[str, Any] = {
        "apiVersion": api_version.decode()
        if isinstance(api_version, bytes) and api_version
        else info.api_version,
        "kind": kind_text or info.kind,
    }
    decoded.update(obj)
    return decoded
