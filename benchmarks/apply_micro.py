"""Micro benchmark of the server-side apply algorithm: microseconds per operation on a custom resource
with an N-field spec (20 by default, as issue 3's benchmark), no server involved.

``python -m benchmarks.apply_micro [--count N] [--fields F] [--repeat R]``

Each scenario runs ``count`` operations on distinct objects, ``repeat`` times; the best round is
reported (the least disturbed by the machine).  The peer measured in the same run is the managed-fields
bookkeeping of a plain create (:func:`update_managed_fields` with no live object), which is what the
embedded server does on every create anyway; the ratio says what server-side apply adds to it.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubevisor.api import ApplyType, TypeResolver, apply, update_managed_fields

NOW = datetime(2024, 1, 1, tzinfo=UTC)
API_VERSION = "bench.kubevisor.dev/v1"


def resource_type(fields: int) -> ApplyType:
    properties = {f"field{i:02d}": {"type": "integer" if i % 2 else "string"} for i in range(fields)}
    return TypeResolver().resource(
        {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": properties},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        }
    )


def config(index: int, fields: int, salt: str = "") -> dict[str, Any]:
    spec = {f"field{i:02d}": (i * index if i % 2 else f"value-{i}-{index}{salt}") for i in range(fields)}
    return {
        "apiVersion": API_VERSION,
        "kind": "Bench",
        "metadata": {"name": f"bench-{index}", "namespace": "default", "labels": {"app": "bench"}},
        "spec": spec,
    }


def best_of(repeat: int, count: int, run: Callable[[], None]) -> float:
    """Microseconds per operation of the fastest of ``repeat`` rounds of ``count`` operations."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / count * 1e6


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.apply_micro", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--count", type=int, default=2000, help="operations per round (default 2000)")
    parser.add_argument("--fields", type=int, default=20, help="fields in the spec (default 20)")
    parser.add_argument(
        "--repeat", type=int, default=5, help="rounds per scenario, best reported (default 5)"
    )
    args = parser.parse_args(argv)
    count, fields = args.count, args.fields
    types = resource_type(fields)
    configs = [config(i, fields) for i in range(count)]
    changed = [config(i, fields, salt="-changed") for i in range(count)]

    def plain_create() -> None:
        for cfg in configs:
            update_managed_fields(None, cfg, manager="client", api_version=API_VERSION, types=types, now=NOW)

    def apply_create() -> None:
        for cfg in configs:
            apply(None, cfg, manager="operator", api_version=API_VERSION, types=types, now=NOW)

    live = [
        apply(None, cfg, manager="operator", api_version=API_VERSION, types=types, now=NOW) for cfg in configs
    ]

    def apply_unchanged() -> None:
        for obj, cfg in zip(live, configs, strict=True):
            apply(obj, cfg, manager="operator", api_version=API_VERSION, types=types, now=NOW)

    def apply_changed() -> None:
        for obj, cfg in zip(live, changed, strict=True):
            apply(obj, cfg, manager="operator", api_version=API_VERSION, types=types, now=NOW)

    edited = []
    for obj in live:
        edit = copy.deepcopy(obj)
        edit["spec"]["field00"] = "edited"
        edited.append(edit)

    def update_edit() -> None:
        for obj, edit in zip(live, edited, strict=True):
            update_managed_fields(
                obj, edit, manager="kubectl-edit", api_version=API_VERSION, types=types, now=NOW
            )

    results = {
        "create, plain (managed fields of a create)": best_of(args.repeat, count, plain_create),
        "create, server-side apply": best_of(args.repeat, count, apply_create),
        "re-apply, unchanged": best_of(args.repeat, count, apply_unchanged),
        "re-apply, every field changed": best_of(args.repeat, count, apply_changed),
        "update by another manager": best_of(args.repeat, count, update_edit),
    }
    print(f"server-side apply, {fields}-field spec, {count} objects, best of {args.repeat} rounds")
    for name, micros in results.items():
        print(f"  {name:<45} {micros:8.1f} µs")
    peer = results["create, plain (managed fields of a create)"]
    ratio = results["create, server-side apply"] / peer
    print(f"  apply create / plain create bookkeeping: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
