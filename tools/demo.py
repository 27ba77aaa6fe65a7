"""`make demo`: the Todo operator on kubevisor's embedded Kubernetes API server, in one process.

Starts the embedded API server (in memory), installs the Todo CRD generated from its Python class,
starts the Todo operator (examples/todo), applies three Todos and shows them converging in a live
table, marks one done, edits a ConfigMap by hand (the operator restores it), deletes a Todo (the
garbage collector deletes its ConfigMap), lists the events recorded, then stops everything.  With
kubectl on PATH, one ``kubectl get todos`` shows the same thing from outside.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # examples/ lives beside kubevisor/

from examples.todo.operator import CONFIG_MAP, Todo, config_map_for, operator
from kubevisor.api import GroupVersionKind
from kubevisor.client import Client, ClientOptions, config_from_kubeconfig
from kubevisor.runtime import ManagerOptions
from kubevisor.server import APIServer, ServerOptions, default_controllers

console = Console(highlight=False)

NAMESPACE = "demo"
EVENT = GroupVersionKind("", "v1", "Event")
TODOS = [
    ("milk", "Buy milk", "normal"),
    ("taxes", "File the tax return", "high"),
    ("talk", "Write the kubevisor talk", "low"),
]
WAIT = 30.0
"""Seconds any one step may take before the demo gives up (it takes well under one)."""

_steps = iter(range(1, 100))


def step(title: str, explanation: str) -> None:
    """A numbered header saying what happens next, and why it is interesting."""
    console.print()
    console.rule(f"[bold cyan]{next(_steps)}. {title}", align="left")
    console.print(f"[dim]{explanation}[/]")


def todo_manifest(name: str, title: str, priority: str) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Todo",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"title": title, "priority": priority},
    }


class World:
    """What the server holds now: Todos and ConfigMaps in the demo namespace (read with the client,
    independently of the operator's own cache)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.todos: dict[str, Todo] = {}
        self.config_maps: dict[str, dict[str, Any]] = {}

    async def refresh(self) -> None:
        todos = await self.client.list_all(Todo, namespace=NAMESPACE)
        config_maps = await self.client.list_all(CONFIG_MAP, namespace=NAMESPACE)
        self.todos = {t.name or "": t for t in todos.items}
        self.config_maps = {
            c["metadata"]["name"]: c for c in config_maps.items if c["metadata"]["name"].startswith("todo-")
        }

    def converged(self, todo: Todo) -> bool:
        status = todo.status
        config_map = self.config_maps.get(f"todo-{todo.name}")
        return (
            status.observed_generation == todo.generation
            and status.phase == ("Done" if todo.spec.done else "Pending")
            and any(c.type == "Ready" and c.status == "True" for c in status.conditions)
            and config_map is not None
            and config_map.get("data") == config_map_for(todo)["data"]
        )

    def table(self, caption: str) -> Table:
        table = Table(title=f"namespace {NAMESPACE}", caption=caption, title_justify="left")
        for column in ("Todo", "Done", "Phase", "Ready", "its ConfigMap's todo.md"):
            table.add_column(column)
        for name in sorted(set(self.todos) | {n.removeprefix("todo-") for n in self.config_maps}):
            todo = self.todos.get(name)
            config_map = self.config_maps.get(f"todo-{name}")
            rendered = Text((config_map or {}).get("data", {}).get("todo.md", "").strip() or "(none)")
            if todo is None:
                table.add_row(Text(f"{name} (deleted)", style="dim"), "", "", "", rendered)
                continue
            ready = next((c.status for c in todo.status.conditions if c.type == "Ready"), "…")
            table.add_row(
                Text(name, style="bold green" if self.converged(todo) else "bold yellow"),
                "yes" if todo.spec.done else "no",
                todo.status.phase or "…",
                ready,
                rendered,
            )
        return table


async def show_until(world: World, done: Callable[[World], bool], caption: str) -> float:
    """Redraw the table of what the server holds until ``done(world)``; return the seconds it took."""
    started = time.perf_counter()
    with Live(world.table(caption), console=console, refresh_per_second=12) as live:
        async with asyncio.timeout(WAIT):
            while True:
                await world.refresh()
                finished = done(world)
                elapsed = time.perf_counter() - started
                mark = f"converged in {elapsed * 1000:.0f} ms" if finished else "converging…"
                live.update(world.table(f"{caption}: {mark}"))
                if finished:
                    break
                await asyncio.sleep(0.05)
    console.print()
    return elapsed


async def kubectl_get_todos(kubeconfig: Path) -> None:
    """One kubectl call, to show that the server is a Kubernetes API server to kubectl too."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        console.print("[dim](kubectl is not installed: skipping `kubectl get todos`)[/]")
        return
    console.print(f"[bold]$ kubectl get todos -n {NAMESPACE}[/]")
    process = await asyncio.create_subprocess_exec(
        kubectl,
        "get",
        "todos",
        "-n",
        NAMESPACE,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(WAIT):
        output, _ = await process.communicate()
    console.print(output.decode().rstrip(), markup=False)


async def demo(workdir: Path) -> None:
    started = time.perf_counter()
    console.print(
        Panel.fit(
            "[bold]kubevisor demo[/]: the Todo operator (examples/todo/operator.py)\n"
            "against kubevisor's embedded Kubernetes API server, in one Python process.",
            border_style="cyan",
        )
    )

    step(
        "Start the embedded Kubernetes API server",
        "In memory, no Docker, no cluster: kubectl and every Kubernetes client talk to it unmodified.",
    )
    server_started = time.perf_counter()
    server = APIServer(ServerOptions(controllers=default_controllers()))
    await server.start()
    try:
        kubeconfig = server.write_kubeconfig(workdir / "kubeconfig")
        console.print(
            f"API server ready at {server.url} in {(time.perf_counter() - server_started) * 1000:.0f} ms"
            " (with its garbage collector and namespace controller)"
        )
        async with Client(config_from_kubeconfig(server.kubeconfig), ClientOptions(qps=None)) as client:
            await run_operator_demo(client, kubeconfig)
    finally:
        await server.stop()
    console.print("API server stopped")
    console.print()
    console.print(
        Panel.fit(
            f"[bold green]demo finished in {time.perf_counter() - started:.1f} s[/]: "
            "operator drained, API server stopped.\n"
            "Next: read docs/operators.md, or run the operator yourself:\n"
            "  kubevisor run examples.todo.operator:operator --dev",
            border_style="green",
        )
    )


async def run_operator_demo(client: Client, kubeconfig: Path) -> None:
    step(
        "Install the Todo CRD, generated from the Python class",
        "Todo is a pydantic model: its CRD schema (title 1-80 characters, priority low|normal|high,"
        " status with conditions) comes from the types.",
    )
    async with asyncio.timeout(WAIT):
        names = await operator.install_crds(client)
    console.print(f"customresourcedefinition/{', '.join(names)} established")
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    console.print(f"namespace/{NAMESPACE} created")

    step(
        "Start the Todo operator",
        "A manager runs under a supervision tree: a shared informer cache (list + watch), a work queue,"
        " and the reconcile, which registers intent (a ConfigMap, the status, a condition, an event)"
        " that the framework applies with server-side apply.",
    )
    options = ManagerOptions(name=operator.name, http_host="127.0.0.1", http_port=0, drain_timeout=10.0)
    manager = operator.manager(client, options)
    async with manager:
        console.print(
            f"operator {operator.name} running: caches synced, metrics at"
            f" http://127.0.0.1:{manager.http_port}/metrics"
        )
        world = World(client)

        step(
            "Apply three Todos",
            "Each gets a status (phase, Ready condition) and a ConfigMap it owns, rendering it."
            " Green: converged; yellow: on its way.",
        )
        for name, title, priority in TODOS:
            await client.create(todo_manifest(name, title, priority))
            console.print(f"todo.example.com/{name} created")
        await show_until(
            world,
            lambda w: len(w.todos) == len(TODOS) and all(w.converged(t) for t in w.todos.values()),
            "three Todos",
        )
        await kubectl_get_todos(kubeconfig)

        step("Mark 'milk' done", "The spec changes; the status and the rendered ConfigMap follow.")
        await client.patch(Todo, "milk", {"spec": {"done": True}}, namespace=NAMESPACE)
        console.print("todo.example.com/milk patched: spec.done=true")
        await show_until(
            world,
            lambda w: w.todos["milk"].status.phase == "Done" and w.converged(w.todos["milk"]),
            "milk done",
        )

        step(
            "Edit a ConfigMap by hand",
            "The operator owns it: the change reaches the Todo through its owner reference, and the"
            " reconcile applies the ConfigMap again.",
        )
        edited = "- [x] Skip the talk\n"
        await client.patch(CONFIG_MAP, "todo-talk", {"data": {"todo.md": edited}}, namespace=NAMESPACE)
        console.print(f"configmap/todo-talk patched: data.todo.md={edited.strip()!r}", markup=False)
        await show_until(
            world,
            lambda w: (
                w.config_maps["todo-talk"]["data"]["todo.md"] == "- [ ] Write the kubevisor talk (low)\n"
            ),
            "todo-talk restored",
        )

        step(
            "Delete 'taxes'",
            "Its ConfigMap has an owner reference to it: the API server's garbage collector deletes it.",
        )
        await client.delete(Todo, "taxes", namespace=NAMESPACE)
        console.print("todo.example.com/taxes deleted")
        await show_until(
            world, lambda w: "taxes" not in w.todos and "todo-taxes" not in w.config_maps, "taxes collected"
        )

        step(
            "What the operator recorded",
            "Kubernetes Events about each Todo, as `kubectl describe` shows them.",
        )
        await manager.recorder.flush()
        events = (await client.list_all(EVENT, namespace=NAMESPACE)).items
        table = Table(title_justify="left")
        for column in ("Object", "Type", "Reason", "Message", "Count"):
            table.add_column(column)
        for event in sorted(
            events, key=lambda e: (e["involvedObject"]["name"], e.get("firstTimestamp") or "")
        ):
            table.add_row(
                f"{event['involvedObject']['kind'].lower()}/{event['involvedObject']['name']}",
                event["type"],
                event["reason"],
                event["message"],
                str(event.get("count") or 1),
            )
        console.print(Group(table))

        step(
            "Stop",
            "SIGTERM does the same: no new reconcile starts, running ones finish, then the tree stops.",
        )
    console.print(f"operator {operator.name} drained and stopped")


class _ClientHungUp(logging.Filter):
    """Drops the server's report of a watch stream written to after its client hung up, which is
    what stopping the operator does to its watches while the server still runs: expected here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionResetError))


def main() -> int:
    logging.getLogger("aiohttp.server").addFilter(_ClientHungUp())
    with tempfile.TemporaryDirectory(prefix="kubevisor-demo-") as tmp:
        asyncio.run(demo(Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
