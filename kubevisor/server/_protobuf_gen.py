"""Generator of ``_protobuf_schema.py``: the protobuf field tables of the built-in kinds.

kubectl's typed clients send request bodies as ``application/vnd.kubernetes.protobuf``.  Decoding
them needs each message's field numbers, names and types, which are facts of the upstream wire
format.  Every Go binary built with the Kubernetes API types embeds them as gzipped
``FileDescriptorProto``s; this script reads them out of a kubectl binary, keeps the messages
reachable from the served kinds and writes a compact table.  Run it when the served kinds change::

    python -m kubevisor.server._protobuf_gen /path/to/kubectl [kubevisor/server/_protobuf_schema.py]
"""

from __future__ import annotations

import base64
import gzip
import re
import sys
import zlib
from pathlib import Path
from typing import Any

import orjson

from kubevisor.api import builtin_definitions, builtin_resources
from kubevisor.server._protobuf import proto_package, read_fields

__all__ = ["extract_descriptors", "main"]

_GZIP_HEADER = re.compile(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00")


def _string(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else ""


def _parse_message(raw: bytes, prefix: str, out: dict[str, Any]) -> None:
    """DescriptorProto: name=1, field=2, nested_type=3, options=7 (map_entry=7)."""
    name = ""
    fields: dict[str, list[Any]] = {}
    nested: list[bytes] = []
    map_entry = False
    for number, _, value in read_fields(raw):
        if number == 1:
            name = _string(value)
        elif number == 2 and isinstance(value, bytes):
            f: dict[int, Any] = {n: v for n, _, v in read_fields(value)}
            type_name = _string(f.get(6, b"")).lstrip(".")
            fields[str(f.get(3, 0))] = [
                _string(f.get(1, b"")),
                int(f.get(5, 0)),
                int(f.get(4, 1) == 3),
                type_name,
            ]
        elif number == 3 and isinstance(value, bytes):
            nested.append(value)
        elif number == 7 and isinstance(value, bytes):
            map_entry = any(n == 7 and v == 1 for n, _, v in read_fields(value))
    full = f"{prefix}.{name}"
    out[full] = {"f": fields, "m": int(map_entry)}
    for child in nested:
        _parse_message(child, full, out)


def extract_descriptors(binary: bytes) -> dict[str, Any]:
    """Every message of the ``k8s.io`` ``generated.proto`` descriptors embedded in ``binary``."""
    messages: dict[str, Any] = {}
    for match in _GZIP_HEADER.finditer(binary):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(
                binary[match.start() : match.start() + 4_000_000]
            )
        except zlib.error:
            continue
        if b"generated.proto" not in raw[:300] or b"k8s.io" not in raw[:300]:
            continue
        try:
            fields = list(read_fields(raw))
        except ValueError:
            continue
        package = next((_string(v) for n, _, v in fields if n == 2), "")
        for number, _, value in fields:
            if number == 4 and isinstance(value, bytes):
                _parse_message(value, package, messages)
    return messages


def _closure(messages: dict[str, Any], roots: list[str]) -> dict[str, Any]:
    keep: dict[str, Any] = {}
    stack = [r for r in roots if r in messages]
    while stack:
        name = stack.pop()
        if name in keep:
            continue
        keep[name] = messages[name]
        for _, _, _, type_name in messages[name]["f"].values():
            if type_name and type_name not in keep and type_name in messages:
                stack.append(type_name)
    return keep


def _definition(message: str) -> str:
    return "io.k8s." + message.removeprefix("k8s.io.")


def _mark_inline(messages: dict[str, Any]) -> None:
    """Go structs embedded with ``json:",inline"`` (Volume's VolumeSource, IngressRule's
    IngressRuleValue, Probe's ProbeHandler, ...) are named fields in protobuf but flattened in JSON.
    A message field absent from the OpenAPI properties, whose own fields are, is such an embedding:
    mark it (fifth element 1) so the decoder merges it into its parent."""
    definitions = builtin_definitions()
    for name, spec in messages.items():
        properties = (definitions.get(_definition(name)) or {}).get("properties")
        if not isinstance(properties, dict):
            continue
        for entry in spec["f"].values():
            field, kind, _, sub = entry[:4]
            if kind != 11 or field in properties or sub not in messages:
                continue
            inner = {e[0] for e in messages[sub]["f"].values()}
            if inner and inner <= set(properties):
                entry.append(1)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    binary = Path(argv[0]).read_bytes()
    target = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("_protobuf_schema.py")
    messages = extract_descriptors(binary)
    roots = [f"{proto_package(r.group, r.version)}.{r.kind}" for r in builtin_resources()]
    roots += [
        "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "k8s.io.apimachinery.pkg.runtime.Unknown",
        "k8s.io.api.autoscaling.v1.Scale",
    ]
    keep = _closure(messages, roots)
    _mark_inline(keep)
    missing = [r for r in roots if r not in keep]
    blob = base64.b64encode(gzip.compress(orjson.dumps(keep, option=orjson.OPT_SORT_KEYS), mtime=0)).decode()
    lines = [blob[i : i + 100] for i in range(0, len(blob), 100)]
    body = "\n".join(f'    "{line}"' for line in lines)
    target.write_text(
        '"""Generated by ``python -m kubevisor.server._protobuf_gen``: protobuf field tables of the\n'
        "built-in kinds (gzipped JSON, base64), read out of kubectl's embedded upstream descriptors.\n"
        'Do not edit."""\n\n'
        f"MESSAGES = {len(keep)}\n"
        f"DATA = (\n{body}\n)\n"
    )
    print(
        f"wrote {len(keep)} messages to {target}" + (f"; not found: {', '.join(missing)}" if missing else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
