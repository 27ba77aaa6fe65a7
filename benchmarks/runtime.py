"""The controller runtime converging N custom resources, against kopf and a bare aiohttp client in the
same run: ``python -m benchmarks.runtime`` (options: ``--help``).

Scenario (issue 5's): N pre-existing ``Widget`` custom resources on the embedded API server, each
needing one status write.  Each contender runs in its own process against a fresh server process
holding the same N objects, on loopback:

* **kubevisor**: a :class:`~kubevisor.runtime.Manager` with one controller over the typed ``Widget``
  resource whose reconcile sets ``ctx.status.phase = "Done"`` (the framework writes the status).
* **kopf** (1.45, issue 5's peer): a creation handler that sets ``status.phase`` through kopf's
  ``patch`` (kopf writes it, with its own bookkeeping annotation); standalone, namespaced, event
  posting off.
* **bare client**: aiohttp and orjson, no framework: a paged list, then one status merge patch per
  object, 64 in flight.  The floor a framework can approach, not a peer to beat.

Measured: time from "go" to all N converged, as judged by an independent watcher in this process;
the contender's CPU seconds per object (its own process only); its peak RSS and its RSS once idle
after convergence; requests sent per object (writes separately) and TCP connections opened; and for
kubevisor the memory per cached object (the informer store's wire dicts, measured by a deep
``sys.getsizeof`` walk).  Results are printed, and written to the ``## Performance`` section of
``docs/runtime.md`` unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks._harness import cpu_seconds, write_section

NAMESPACE = "bench"
DOC_SECTION = "## Performance"
"""The section of docs/runtime.md that the figures replace."""
SUMMARY_SECTION = "## Runtime"
"""The same figures, as a section of docs/benchmarks.md (issue 5: ratios there)."""
WHY = (
    "What keeps kubevisor near the floor: requests go out with their collection path escaped once per "
    "kind and namespace and the URL derived from the parsed base; per-reconcile timeouts share one "
    "loop timer per controller instead of arming one each; gauges (busy workers, queue depth, cached "
    "objects) are read when scraped, and the per-reconcile histograms count without locks; a store "
    "update touches index buckets only when an index value changed; list pages are decoded as they "
    "arrive, with the cyclic collector paused, and their items moved straight to its oldest "
    "generation (a young collection walking 10,000 fresh objects costs as much as decoding them). "
    "What remains is mostly aiohttp's request cost, which the bare client pays too, and pydantic: "
    "building the typed object (a model-instance default such as `status: S = S()` is deep-copied "
    "by pydantic at every validation of an object without a status) and writing the status back."
)
TARGETS = {"rate_ratio": 0.8, "cpu_ms": 0.6, "writes": 1.0, "peak_rss_mb": 100.0}


# ------------------------------------------------------------------------------------------------
# the server process


async def _serve(count: int) -> None:
    from kubevisor.server import APIServer, ServerOptions, Strategy
    from kubevisor.server._service import RequestOptions

    logging.disable(logging.CRITICAL)  # the contenders' closed watches are not news here
    widget = _widget_class()
    info = widget.resource_info()
    async with APIServer(ServerOptions(default_namespaces=("default", NAMESPACE))) as server:
        server.add_resource(
            info, Strategy(generation=True, unconditional_update=False, strategic_merge=False)
        )
        for i in range(count):
            body = {
                "apiVersion": info.api_version,
                "kind": info.kind,
                "metadata": {
                    "name": f"widget-{i:05d}",
                    "namespace": NAMESPACE,
                    "labels": {"bench": "runtime"},
                },
                "spec": {"size": i % 7, "color": "blue"},
            }
            await server.service.create(info, NAMESPACE, body, RequestOptions())
        print(server.url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


@functools.cache
def _widget_class() -> Any:
    from pydantic import BaseModel

    from kubevisor.resource import Resource

    class WidgetSpec(BaseModel):
        size: int = 1
        color: str = "blue"

    class WidgetStatus(BaseModel):
        phase: str | None = None
        observedGeneration: int | None = None

    class Widget(Resource, group="bench.kubevisor.dev", version="v1", kind="Widget"):
        spec: WidgetSpec = WidgetSpec()
        status: WidgetStatus = WidgetStatus()

    return Widget


# ------------------------------------------------------------------------------------------------
# the contender processes


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _deep_size(obj: Any, seen: set[int]) -> int:
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple):
        size += sum(_deep_size(v, seen) for v in obj)
    return size


class _Counters:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.connections = 0

    def count_connections(self) -> None:
        loop = asyncio.get_running_loop()
        create = loop.create_connection

        async def counting(*args: Any, **kwargs: Any) -> Any:
            self.connections += 1
            return await create(*args, **kwargs)

        loop.create_connection = counting  # type: ignore[method-assign]

    def count_requests(self) -> None:
        """Count every request at aiohttp's session, whichever contender sends it (each pays the same
        wrapper); a GET with ``watch`` is counted as WATCH."""
        request = aiohttp.ClientSession._request
        requests = self.requests

        async def counted(session: aiohttp.ClientSession, method: str, str_or_url: Any, **kwargs: Any) -> Any:
            verb = method.upper()
            if verb == "GET":
                params = kwargs.get("params") or {}
                if params.get("watch") in ("true", "1", True) or "watch=true" in str(str_or_url):
                    verb = "WATCH"
            requests[verb] += 1
            return await request(session, method, str_or_url, **kwargs)

        aiohttp.ClientSession._request = counted  # type: ignore[method-assign]


async def _contend(kind: str, url: str, count: int) -> None:
    logging.disable(logging.WARNING)
    counters = _Counters()
    counters.count_connections()
    counters.count_requests()
    run = {"kubevisor": _kubevisor, "kopf": _kopf, "bare": _bare}[kind]
    if kind == "kopf":
        import kopf  # noqa: F401
    if kind == "kubevisor":
        # Start-up (imports, building the typed model) is not convergence: done before "go".
        import kubevisor.client
        import kubevisor.runtime  # noqa: F401

        _widget_class()
    state: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # "go"
    cpu0 = sum(os.times()[:2])
    task = asyncio.create_task(run(url, count, counters, state))
    await loop.run_in_executor(None, sys.stdin.readline)  # "report": converged, as judged outside
    cpu = sum(os.times()[:2]) - cpu0
    measure = state.get("_measure")
    if measure is not None:
        measure()
    gc.collect()
    report = {
        "cpu_s": cpu,
        "peak_rss_mb": _rss_mb("VmHWM"),
        "idle_rss_mb": _rss_mb("VmRSS"),
        "requests": dict(counters.requests),
        "connections": counters.connections,
        **{k: v for k, v in state.items() if not k.startswith("_")},
    }
    print(json.dumps(report), flush=True)
    stop = state.get("_stop")
    if stop is not None:
        stop()
    await asyncio.wait((task,), timeout=10)


async def _kubevisor(url: str, count: int, counters: _Counters, state: dict[str, Any]) -> None:
    from kubevisor.client import Client, ClientConfig, ClientOptions
    from kubevisor.runtime import (
        Action,
        Context,
        Controller,
        ControllerOptions,
        Manager,
        ManagerOptions,
        generation_changed,
    )

    widget = _widget_class()

    async def reconcile(obj: Any, ctx: Context[Any]) -> Action:
        ctx.status.phase = "Done"
        return Action.done()

    async with Client(ClientConfig(server=url, namespace=NAMESPACE), ClientOptions(qps=None)) as client:
        manager = Manager(client, ManagerOptions(http_host=None))
        controller = manager.add(
            Controller(
                widget,
                reconcile,
                predicates=generation_changed(),
                options=ControllerOptions(namespace=NAMESPACE, workers=64),
            )
        )

        def measure() -> None:
            primary = controller.primary
            if primary is not None:
                seen: set[int] = set()
                objects = list(primary.store)
                state["bytes_per_cached_object"] = sum(_deep_size(o, seen) for o in objects) / max(
                    1, len(objects)
                )

        state["_stop"] = manager.stop
        state["_measure"] = measure
        await manager.run()


async def _kopf(url: str, count: int, counters: _Counters, state: dict[str, Any]) -> None:
    """kopf 1.45 as its documentation shows: a creation handler (the objects pre-exist and kopf has
    never handled them) that sets ``status.phase`` through kopf's ``patch``.  Standalone (no
    peering objects), scoped to the namespace, and with event posting off, so that kopf's
    requests are only those of reconciling (its default would add a POST of an Event per object)."""
    import kopf

    registry = kopf.OperatorRegistry()
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False
    settings.watching.server_timeout = 600

    @kopf.on.login(registry=registry)  # type: ignore[arg-type]
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url, default_namespace=NAMESPACE)

    @kopf.on.create("bench.kubevisor.dev", "v1", "widgets", registry=registry)  # type: ignore[arg-type]
    def converge(patch: kopf.Patch, **_: Any) -> None:
        patch.status["phase"] = "Done"

    stop = asyncio.Event()
    state["_stop"] = stop.set
    await kopf.operator(
        registry=registry, settings=settings, standalone=True, namespaces=[NAMESPACE], stop_flag=stop
    )


async def _bare(url: str, count: int, counters: _Counters, state: dict[str, Any]) -> None:
    base = f"{url}/apis/bench.kubevisor.dev/v1/namespaces/{NAMESPACE}/widgets"
    headers = {"Content-Type": "application/merge-patch+json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as http:
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            params = {"limit": "500", **({"continue": token} if token else {})}
            async with http.get(base, params=params) as response:
                page = orjson.loads(await response.read())
            items.extend(page["items"])
            token = page["metadata"].get("continue") or ""
            if not token:
                break
        limit = asyncio.Semaphore(64)

        async def converge(item: dict[str, Any]) -> None:
            meta = item["metadata"]
            body = orjson.dumps({"status": {"phase": "Done", "observedGeneration": meta.get("generation")}})
            async with limit:
                async with http.patch(
                    f"{base}/{meta['name']}/status", data=body, headers=headers
                ) as response:
                    await response.read()

        await asyncio.gather(*(converge(item) for item in items))
        done = asyncio.Event()
        state["_stop"] = done.set
        await done.wait()


# ------------------------------------------------------------------------------------------------
# the judge (this process)


async def _judge(url: str, count: int) -> None:
    """Return once every widget has ``status.phase == "Done"``, watching from a list."""
    from kubevisor.api import ResourceInfo
    from kubevisor.client import Client, ClientConfig, ClientOptions

    info = ResourceInfo(
        "bench.kubevisor.dev", "v1", "Widget", "widgets", "widget", True, subresources=("status",)
    )
    async with Client(ClientConfig(server=url, namespace=NAMESPACE), ClientOptions(qps=None)) as client:
        listing = await client.list_all(info, namespace=NAMESPACE)
        done = {
            o["metadata"]["name"] for o in listing.items if (o.get("status") or {}).get("phase") == "Done"
        }
        if len(done) >= count:
            return
        async with client.watch(
            info, namespace=NAMESPACE, resource_version=listing.resource_version
        ) as events:
            async for event in events:
                if (event.object.get("status") or {}).get("phase") == "Done":
                    done.add(event.object["metadata"]["name"])
                    if len(done) >= count:
                        return


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.runtime", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


def _measure(kind: str, count: int) -> dict[str, Any]:
    server = _spawn("--serve", str(count))
    assert server.stdout is not None and server.stdin is not None
    url = server.stdout.readline().strip()
    contender = _spawn("--contend", kind, url, str(count))
    try:
        assert contender.stdout is not None and contender.stdin is not None
        if contender.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{kind} did not start")
        started, server_cpu = time.perf_counter(), cpu_seconds(server.pid)
        contender.stdin.write("go\n")
        contender.stdin.flush()
        asyncio.run(_judge(url, count))
        seconds = time.perf_counter() - started
        server_cpu = cpu_seconds(server.pid) - server_cpu
        contender.stdin.write("report\n")
        contender.stdin.flush()
        report: dict[str, Any] = json.loads(contender.stdout.readline())
        report["seconds"] = seconds
        report["server_cpu_s"] = server_cpu
        return report
    finally:
        for process in (contender, server):
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median convergence time (its other figures come with it)."""
    return sorted(runs, key=lambda r: float(r["seconds"]))[(len(runs) - 1) // 2]


def _row(name: str, count: int, r: dict[str, Any]) -> str:
    requests: dict[str, int] = r["requests"]
    writes = sum(v for k, v in requests.items() if k in ("POST", "PUT", "PATCH", "DELETE"))
    cached = r.get("bytes_per_cached_object")
    return (
        f"| {name} | {count:,} | {count / r['seconds']:,.0f} | {r['cpu_s'] * 1000 / count:.2f} | "
        f"{r['server_cpu_s'] * 1000 / count:.2f} | "
        f"{r['peak_rss_mb']:.0f} | {r['idle_rss_mb']:.0f} | {sum(requests.values()) / count:.3f} | "
        f"{writes / count:.3f} | {r['connections']} | {f'{cached:,.0f}' if cached else '-'} |"
    )


CONTENDERS = {"bare": "bare aiohttp client", "kopf": "kopf", "kubevisor": "kubevisor"}


def _writes(r: dict[str, Any], count: int) -> float:
    return sum(v for k, v in r["requests"].items() if k in ("POST", "PUT", "PATCH", "DELETE")) / count


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.runtime", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--objects",
        type=int,
        nargs="+",
        default=[1000, 5000, 10000],
        help="values of N (default: 1000 5000 10000)",
    )
    parser.add_argument(
        "--docs", type=Path, default=Path("docs/runtime.md"), help="where to write the figures"
    )
    parser.add_argument(
        "--summary",
        type=Path,
        default=Path("docs/benchmarks.md"),
        help="where to write them again as a '## Runtime' section",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per contender; the median run is kept (default: 3)"
    )
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=list(CONTENDERS),
        default=list(CONTENDERS),
        help="who runs (default: all three; kubevisor is always measured)",
    )
    parser.add_argument("--no-docs", action="store_true", help="print only; do not update the docs")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--contend", nargs=3, metavar=("KIND", "URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
        return 0
    if args.contend:
        kind, url, count = args.contend
        asyncio.run(_contend(kind, url, int(count)))
        return 0

    kinds = [k for k in CONTENDERS if k in args.contenders or k == "kubevisor"]
    header = (
        "| contender | N | objects/s | CPU ms/object | server CPU ms/object | peak RSS MB | idle RSS MB | "
        "requests/object | writes/object | connections | bytes/cached object |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows, verdicts = [], []
    load_before = os.getloadavg()[0]
    for count in args.objects:
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
        for _ in range(args.repeat):  # alternated, so that drift in the machine hits all alike
            for kind in runs:
                runs[kind].append(_measure(kind, count))
                print(
                    f"  N = {count:,} {kind}: {count / runs[kind][-1]['seconds']:,.0f} objects/s", flush=True
                )
        medians = {k: _median_run(v) for k, v in runs.items()}
        rows += [_row(CONTENDERS[k], count, medians[k]) for k in kinds]
        ours = medians["kubevisor"]
        cpu_ms = ours["cpu_s"] * 1000 / count
        parts = [f"* N = {count:,}:"]
        if "bare" in medians:
            rate_ratio = medians["bare"]["seconds"] / ours["seconds"]
            parts.append(
                f"rate {rate_ratio:.0%} of the bare client's (target ≥ {TARGETS['rate_ratio']:.0%});"
            )
        if "kopf" in medians:
            parts.append(f"{medians['kopf']['seconds'] / ours['seconds']:.1f}x kopf's rate;")
        parts.append(
            f"{cpu_ms:.2f} ms CPU/object (target ≤ {TARGETS['cpu_ms']}); {_writes(ours, count):.3f} writes/object "
            f"(target exactly 1); peak RSS {ours['peak_rss_mb']:.0f} MB (target < {TARGETS['peak_rss_mb']:.0f} MB "
            f"at N = 5,000); {ours['connections']} connections (bounded by the pool)."
        )
        verdicts.append(" ".join(parts))
        print("\n".join([header, *rows]), flush=True)
    from importlib.metadata import version

    body = "\n".join(
        [
            DOC_SECTION,
            "",
            f"`python -m benchmarks.runtime --objects {' '.join(map(str, args.objects))}` (median of "
            f"{args.repeat} alternated runs per contender) on a "
            f"{os.cpu_count()}-core machine, Python {sys.version.split()[0]}, kopf {version('kopf')}: N "
            "pre-existing custom resources, each needing one status write, each contender in its own process "
            "against a fresh embedded server process; convergence judged by an independent watcher.  CPU and "
            "memory are the contender's own process; server CPU is the API server process's during the run.  "
            f"Load average (1 min) {load_before:.2f} before the runs, {os.getloadavg()[0]:.2f} after (the "
            "benchmark's own three processes account for up to 2).",
            "",
            "The bare client is the floor a framework can approach (a list, then one patch per object, no "
            "cache, no watch), not a peer.  kopf runs as its documentation shows (a creation handler setting "
            "the status through its patch), standalone, with event posting off.  The three processes (server, "
            "contender, judge) share the machine's cores, so every millisecond of contender CPU, and the "
            "server's work streaming the status changes back to a contender's watch, slows the server that "
            "every contender waits on: against this embedded server the bare client converges several "
            "times faster than against a real kube-apiserver (about 700 objects/s), which magnifies the ratio.  "
            "The server's CPU per write (its column) sets every contender's pace: the cheaper the server's "
            "writes become, the more the contender's own CPU per object decides the ratio.",
            "",
            header,
            *rows,
            "",
            *verdicts,
            "",
            WHY,
            "",
        ]
    )
    print("\n".join(verdicts))
    if not args.no_docs:
        write_section(args.docs, DOC_SECTION, body)
        write_section(args.summary, SUMMARY_SECTION, SUMMARY_SECTION + body[len(DOC_SECTION) :])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
