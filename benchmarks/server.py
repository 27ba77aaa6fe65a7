"""The embedded API server under load: ``python -m benchmarks server``.

The server runs in its own process (``kubevisor dev``, once in memory and once with ``--data-dir``),
the load generator in this one,
both on loopback, as a client would use a real API server.  Phases, in order:

1. start time: process spawn → the readiness line (interpreter start-up included), and the server's
   own start (storage, catalogue, default namespaces, listening) as it reports it;
2. creates/s: N Pods created by C concurrent clients;
3. status patches/s: N merge patches of ``pods/<name>/status`` by C clients;
4. gets/s: 2N GETs by C clients;
5. list latency: ``GET`` of all N pods (median of several);
6. watch delivery latency to W watchers: p50/p99 from just before each create is sent to its
   ADDED event arriving on each watcher;
7. server RSS with the N objects stored.

The reference column is the issue's measurement of the upstream kube-apiserver with etcd on a
machine like this one (no upstream server is available in this environment to measure side by side).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks._harness import check, dev_server, rss_mb, run_concurrently, write_section

NAMESPACE = "bench"
REFERENCE = {
    "creates/s": "~900 (500-1,300)",
    "status patches/s": "~700",
    "start": "~4 s",
    "rss": "300 MB - 1 GB+",
}
TARGETS = {"creates/s": 1000.0, "status patches/s": 800.0, "start_s": 1.0, "rss_mb": 150.0}


@dataclass
class Results:
    objects: int
    clients: int
    watchers: int
    figures: dict[str, float] = field(default_factory=dict)


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "shard": name[-1]}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example.com/bench/app:1.0",
                    "ports": [{"containerPort": 8080}],
                    "env": [{"name": "MODE", "value": "bench"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }
            ]
        },
    }


async def _load(base: str, results: Results, server_pid: int) -> None:
    n, clients = results.objects, results.clients
    connector = aiohttp.TCPConnector(limit=clients * 2)
    async with aiohttp.ClientSession(base_url=base, connector=connector) as http:
        async with http.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}}) as r:
            await check(r, 201)
        pods = f"/api/v1/namespaces/{NAMESPACE}/pods"
        bodies = [json.dumps(pod(f"pod-{i:05d}")).encode() for i in range(n)]
        json_headers = {"Content-Type": "application/json"}

        async def create(i: int) -> None:
            async with http.post(pods, data=bodies[i], headers=json_headers) as r:
                await check(r, 201)

        elapsed = await run_concurrently(clients, n, create)
        results.figures["creates/s"] = n / elapsed

        patch_headers = {"Content-Type": "application/merge-patch+json"}

        async def patch_status(i: int) -> None:
            body = json.dumps(
                {
                    "status": {
                        "phase": "Running",
                        "podIP": f"10.0.{i // 250 % 250}.{i % 250}",
                        "startTime": None,
                    }
                }
            )
            async with http.patch(f"{pods}/pod-{i % n:05d}/status", data=body, headers=patch_headers) as r:
                await check(r, 200)

        elapsed = await run_concurrently(clients, n, patch_status)
        results.figures["status patches/s"] = n / elapsed

        async def get(i: int) -> None:
            async with http.get(f"{pods}/pod-{i % n:05d}") as r:
                await check(r, 200)

        elapsed = await run_concurrently(clients, 2 * n, get)
        results.figures["gets/s"] = 2 * n / elapsed

        samples = []
        for _ in range(5):
            started = time.perf_counter()
            async with http.get(pods) as r:
                body = await r.read()
            samples.append(time.perf_counter() - started)
            if r.status != 200 or body.count(b'"kind":"Pod"') != n:
                raise RuntimeError("list did not return every pod")
        results.figures["list_ms"] = statistics.median(samples) * 1000
        results.figures["rss_mb"] = rss_mb(server_pid)
        await _watch_latency(base, http, results)


async def _watch_latency(base: str, http: aiohttp.ClientSession, results: Results) -> None:
    events = 200
    cms = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
    async with http.get(cms) as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(base_url=base, connector=connector) as watch_http:
        streams = [
            await watch_http.get(f"{cms}?watch=1&resourceVersion={rv}&timeoutSeconds=120")
            for _ in range(results.watchers)
        ]

        async def consume(stream: aiohttp.ClientResponse) -> None:
            seen = 0
            while seen < events:
                line = await stream.content.readline()
                if not line:
                    return
                arrived = time.perf_counter()
                name = json.loads(line)["object"]["metadata"]["name"]
                latencies.append(arrived - sent[name])
                seen += 1

        consumers = [asyncio.create_task(consume(s)) for s in streams]
        for i in range(events):
            name = f"w-{i:04d}"
            sent[name] = time.perf_counter()
            async with http.post(cms, json={"metadata": {"name": name}, "data": {"i": str(i)}}) as r:
                await check(r, 201)
            await asyncio.sleep(0.005)  # a steady trickle, so queueing does not dominate the figure
        await asyncio.wait_for(asyncio.gather(*consumers), 60)
        for stream in streams:
            stream.close()
    latencies.sort()
    results.figures["watch_p50_ms"] = latencies[len(latencies) // 2] * 1000
    results.figures["watch_p99_ms"] = latencies[int(len(latencies) * 0.99) - 1] * 1000


def _run(args: argparse.Namespace, persistent: bool) -> Results:
    results = Results(args.objects, args.clients, args.watchers)
    with dev_server(data_dir=persistent) as server:
        results.figures["start_s"] = server.ready_s
        results.figures["self_start_s"] = server.self_start_s
        asyncio.run(_load(server.url, results, server.pid))
    return results


Row = tuple[str, str, str, str, str]


def _table(memory: Results, disk: Results) -> list[Row]:
    n = memory.objects

    def both(key: str, fmt: str) -> tuple[str, str]:
        return fmt.format(memory.figures[key]), fmt.format(disk.figures[key])

    def met(key: str, ok: Any) -> str:
        return "met" if ok(memory.figures[key]) and ok(disk.figures[key]) else "MISSED"

    def rate(key: str, reference: float) -> tuple[str, str]:
        return (
            f"{memory.figures[key]:,.0f} ({memory.figures[key] / reference:.1f}x)",
            f"{disk.figures[key]:,.0f} ({disk.figures[key] / reference:.1f}x)",
        )

    def start(r: Results) -> str:
        return f"{r.figures['start_s'] * 1000:,.0f} ms ({r.figures['self_start_s'] * 1000:,.0f} ms)"

    return [
        ("creates/s", *rate("creates/s", 900), REFERENCE["creates/s"], met("creates/s", lambda v: v >= 1000)),
        (
            "status patches/s",
            *rate("status patches/s", 700),
            REFERENCE["status patches/s"],
            met("status patches/s", lambda v: v >= 800),
        ),
        ("gets/s", *both("gets/s", "{:,.0f}"), "", ""),
        (f"list {n:,} pods (median)", *both("list_ms", "{:,.0f} ms"), "", ""),
        (
            f"watch delivery to {memory.watchers} watchers p50 / p99",
            f"{memory.figures['watch_p50_ms']:.1f} / {memory.figures['watch_p99_ms']:.1f} ms",
            f"{disk.figures['watch_p50_ms']:.1f} / {disk.figures['watch_p99_ms']:.1f} ms",
            "",
            "",
        ),
        (
            "start: spawn → ready (server's own start)",
            start(memory),
            start(disk),
            REFERENCE["start"],
            met("start_s", lambda v: v < 1.0),
        ),
        (
            f"server RSS with {n:,} pods",
            *both("rss_mb", "{:,.0f} MB"),
            REFERENCE["rss"],
            met("rss_mb", lambda v: v < 150),
        ),
    ]


DOC_SECTION = "## Embedded API server"


def _write_docs(path: Path, rows: list[Row], results: Results) -> None:
    lines = [
        DOC_SECTION,
        "",
        f"`python -m benchmarks server` (or `make bench BENCH_ARGS=server`): {results.clients} concurrent aiohttp "
        f"clients on loopback against `kubevisor dev` (with its built-in controllers) in a separate process, "
        f"once in memory and once with `--data-dir` (SQLite, WAL); {results.objects:,} Pods, {results.watchers} "
        f"watchers; {os.cpu_count()}-core machine, Python {sys.version.split()[0]}. No upstream server can run "
        "here, so the reference column is issue 2's measurement of kube-apiserver with etcd on a machine like "
        "this one, and the ratios in brackets are against its medians. Targets: ≥ 1,000 creates/s, ≥ 800 status "
        "patches/s, start < 1 s, < 150 MB RSS.",
        "",
        "| measure | in memory | `--data-dir` (SQLite) | upstream reference | target |",
        "|---|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows],
        "",
        "Creates are POSTs of a one-container Pod (about 1 KB after defaulting), status patches are JSON merge "
        "patches of `pods/<name>/status`, gets are single-object GETs; the list is one unpaged GET of every pod. "
        "Watch latency is measured from just before each create is sent to its ADDED event on each watcher. "
        "Start is from process spawn (interpreter and imports included) to the readiness line; in brackets, "
        "the server's own start (storage, catalogue, default namespaces, listening).",
        "",
        "What kept it there: objects are stored and listed as their JSON bytes (never re-encoded on reads, "
        "and copied to exact size: orjson's output buffers are several KiB each), selector fields and labels "
        "are interned, lists longer than 500 items are streamed in chunks (one 10 MB buffer per list "
        "fragmented the heap for good: +60 MB RSS), and watch events go out as the objects' stored bytes "
        "between a constant head and tail, with no per-event copy kept in the history. In memory there is no "
        "database behind the records: SQLite's `:memory:` pages held a second copy of every object (RSS 156 "
        "MB instead of 109 MB for 10,000 Pods once server-side apply put `managedFields`, about half of each "
        "Pod's bytes, on every write) and cost a third of each write. Per write, the unknown-field check "
        "behind `fieldValidation` walks a schema compiled once per kind (it resolved references and "
        "formatted paths at every node: a quarter of a create), patches copy the object through orjson "
        "rather than a Python walk (5x faster), and a create's `managedFields` walk skips the comparisons "
        "that have no other side.",
        "",
    ]
    write_section(path, DOC_SECTION, "\n".join(lines))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks server", description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=10_000, help="pods to create (default 10,000)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument(
        "--watchers", type=int, default=50, help="watchers for the latency phase (default 50)"
    )
    parser.add_argument(
        "--docs", type=Path, default=Path("docs/benchmarks.md"), help="where to write the figures"
    )
    parser.add_argument("--no-docs", action="store_true", help="print only; do not update the docs")
    args = parser.parse_args(argv)

    memory = _run(args, persistent=False)
    disk = _run(args, persistent=True)
    rows = _table(memory, disk)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'in memory':>22}  {'--data-dir':>22}  {'upstream reference':>18}  target")
    for a, b, c, d, e in rows:
        print(f"{a:<{width}}  {b:>22}  {c:>22}  {d:>18}  {e}")
    if not args.no_docs:
        _write_docs(args.docs, rows, memory)
        print(f"figures written to {args.docs}")
    return 0
