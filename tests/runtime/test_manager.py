"""The manager: probes and metrics over HTTP, readiness tied to cache sync, and shutdown: a stop (or
SIGTERM) drains running reconciles and starts no new one, a second forces, a deadline bounds it."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import aiohttp

from kubevisor.client import Client
from kubevisor.runtime import Action, Context, Controller, ControllerOptions, Manager
from kubevisor.server import APIServer
from tests.runtime.conftest import Proxy, Widget, client_for, eventually, manager_options, widget


async def fetch(port: int | None, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


async def test_probes_answer_and_metrics_cover_reconciles_queues_and_informers(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    async def reconcile(obj: Widget, ctx: Context[Widget]) -> Action:
        return Action.done()

    manager = make_manager()
    manager.add(Controller(Widget, reconcile))
    await client.create(widget("w"))
    async with manager:
        assert manager.ready
        assert await fetch(manager.http_port, "/healthz") == (200, "ok")
        assert await fetch(manager.http_port, "/readyz") == (200, "ok")
        await eventually(lambda: manager.controllers[0].reconciles >= 1)
        status, text = await fetch(manager.http_port, "/metrics")
    assert status == 200
    for line in (
        'kubevisor_reconcile_total{controller="widget.example.com",result="success"} 1.0',
        'kubevisor_reconcile_errors_total{controller="widget.example.com"} 0.0',
        'kubevisor_reconcile_duration_seconds_count{controller="widget.example.com"} 1.0',
        'kubevisor_workqueue_adds_total{name="widget.example.com"} 1.0',
        'kubevisor_workqueue_depth{name="widget.example.com"} 0.0',
        'kubevisor_relists_total{reason="initial",resource="widgets.v1.example.com"} 1.0',
        'kubevisor_informer_objects{resource="widgets.v1.example.com"} 1.0',
        'kubevisor_reconcile_max_workers{controller="widget.example.com"} 16.0',
    ):
        assert line in text, line
    for name in (
        "kubevisor_workqueue_queue_duration_seconds_bucket",
        "kubevisor_workqueue_work_duration_seconds_bucket",
        "kubevisor_workqueue_retries_total",
        "kubevisor_watch_restarts_total",
    ):
        assert name in text, name


async def test_readyz_fails_until_the_caches_have_synced(server: APIServer, proxy: Proxy) -> None:
    async def reconcile(obj: Widget, ctx: Context[Widget]) -> None:
        return None

    proxy.hold()  # the list cannot complete: the cache cannot sync
    async with client_for(proxy.url, server.kubeconfig) as proxied:
        manager = Manager(proxied, manager_options())
        manager.add(Controller(Widget, reconcile))
        running = asyncio.create_task(manager.run())
        await eventually(lambda: manager.http_port)
        assert await fetch(manager.http_port, "/readyz") == (503, "caches not synced")
        assert await fetch(manager.http_port, "/healthz") == (200, "ok")
        proxy.release()
        await eventually(lambda: manager.ready)
        assert await fetch(manager.http_port, "/readyz") == (200, "ok")
        manager.stop()
        await running


class Gate:
    """Reconciles that block until the test opens the gate, recording what started and finished."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.started: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []

    async def reconcile(self, obj: Widget, ctx: Context[Widget]) -> Action:
        self.started.append(obj.name or "")
        try:
            await self.opened.wait()
        except asyncio.CancelledError:
            self.cancelled.append(obj.name or "")
            raise
        ctx.status.phase = "Done"
        self.finished.append(obj.name or "")
        return Action.done()


async def start_with_two_running_and_one_queued(
    client: Client, manager: Manager, gate: Gate
) -> tuple[asyncio.Task[None], Controller]:
    controller = manager.add(Controller(Widget, gate.reconcile, options=ControllerOptions(workers=2)))
    running = asyncio.create_task(manager.run())
    for name in ("first", "second", "third"):
        await client.create(widget(name))
    await eventually(
        lambda: len(gate.started) == 2 and controller.queue is not None and len(controller.queue) == 1
    )
    return running, controller


async def test_stop_drains_running_reconciles_and_starts_no_new_one(client: Client) -> None:
    gate = Gate()
    manager = Manager(client, manager_options())
    running, controller = await start_with_two_running_and_one_queued(client, manager, gate)
    manager.stop()
    await eventually(lambda: controller.queue is not None and controller.queue.shutting_down)
    gate.opened.set()
    await running
    assert sorted(gate.finished) == sorted(gate.started) and len(gate.started) == 2
    assert gate.cancelled == []
    phases = {o["metadata"]["name"]: (o.get("status") or {}).get("phase") for o in await widgets(client)}
    assert sorted(name for name, phase in phases.items() if phase == "Done") == sorted(gate.started)


async def widgets(client: Client) -> list[dict[str, object]]:
    from tests.runtime.conftest import WIDGET

    return (await client.list_all(WIDGET, namespace="default")).items


async def test_a_second_stop_cancels_running_reconciles_at_once(client: Client) -> None:
    gate = Gate()
    manager = Manager(client, manager_options(drain_timeout=600))
    running, _ = await start_with_two_running_and_one_queued(client, manager, gate)
    manager.stop()
    manager.stop()
    await running
    assert sorted(gate.cancelled) == sorted(gate.started) and gate.finished == []


async def test_the_drain_deadline_bounds_a_reconcile_that_does_not_finish(client: Client) -> None:
    gate = Gate()
    manager = Manager(client, manager_options(drain_timeout=0.1))
    running, _ = await start_with_two_running_and_one_queued(client, manager, gate)
    manager.stop()
    await running
    assert sorted(gate.cancelled) == sorted(gate.started)


async def test_sigterm_drains_and_a_second_sigterm_forces_exit(client: Client) -> None:
    gate = Gate()
    manager = Manager(client, manager_options(handle_signals=True, drain_timeout=600))
    running, controller = await start_with_two_running_and_one_queued(client, manager, gate)
    os.kill(os.getpid(), signal.SIGTERM)
    await eventually(lambda: controller.queue is not None and controller.queue.shutting_down)
    assert not running.done() and gate.cancelled == []  # draining: the running reconciles continue
    os.kill(os.getpid(), signal.SIGTERM)
    await running
    assert sorted(gate.cancelled) == sorted(gate.started)
    assert len(gate.started) == 2  # the queued one never started


async def test_a_stop_during_start_up_does_not_wait_for_the_caches_to_sync(
    server: APIServer, proxy: Proxy
) -> None:
    async def reconcile(obj: Widget, ctx: Context[Widget]) -> None:
        return None

    proxy.hold()  # the caches can never sync
    async with client_for(proxy.url, server.kubeconfig) as proxied:
        manager = Manager(proxied, manager_options())
        manager.add(Controller(Widget, reconcile))
        running = asyncio.create_task(manager.run())
        await eventually(lambda: manager.http_port)
        manager.stop()
        await running
        assert not manager.ready


async def test_an_informer_requested_while_the_manager_runs_joins_its_tree_already_synced(
    client: Client, make_manager: Callable[..., Manager]
) -> None:
    from tests.runtime.conftest import SECRET

    await client.create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    )
    async with make_manager() as manager:
        secrets = await manager.informers.informer(SECRET, namespace="default")
        assert secrets.synced and [o["metadata"]["name"] for o in secrets.store] == ["s"]
        assert manager.ready
