"""Fixtures for the runtime tests: the embedded API server with a ``Widget`` custom resource, clients
(direct, or through a TCP proxy that can cut and hold connections), managers bound to 127.0.0.1,
a request counter, and waiting helpers that guard against hangs without asserting on time."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from kubevisor.api import GroupVersionKind
from kubevisor.client import Client, ClientOptions, config_from_kubeconfig
from kubevisor.resource import Condition, Resource
from kubevisor.runtime import Manager, ManagerOptions
from kubevisor.server import APIServer, ServerOptions, Strategy

CONFIGMAP = GroupVersionKind("", "v1", "ConfigMap")
SECRET = GroupVersionKind("", "v1", "Secret")
EVENT = GroupVersionKind("", "v1", "Event")


class WidgetSpec(BaseModel):
    size: int = 1
    color: str = "blue"


class WidgetStatus(BaseModel):
    phase: str | None = None
    observedGeneration: int | None = None
    conditions: list[Condition] = []


class Widget(Resource, group="example.com", version="v1", kind="Widget"):
    spec: WidgetSpec = WidgetSpec()
    status: WidgetStatus = WidgetStatus()


WIDGET = Widget.resource_info()
CUSTOM_STRATEGY = Strategy(generation=True, unconditional_update=False, strategic_merge=False)


def widget(name: str, size: int = 1, *, namespace: str = "default", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "spec": {"size": size},
    }


def configmap(name: str, namespace: str = "default", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


async def start_server(**options: Any) -> APIServer:
    server = APIServer(ServerOptions(**options))
    await server.start()
    server.add_resource(WIDGET, CUSTOM_STRATEGY)
    return server


@pytest.fixture
async def server() -> AsyncIterator[APIServer]:
    running = await start_server(history_size=200)
    try:
        yield running
    finally:
        await running.stop()


def client_for(url: str, kubeconfig: dict[str, Any], **options: Any) -> Client:
    config = dict(kubeconfig)
    config["clusters"] = [{"name": "kubevisor", "cluster": {"server": url}}]
    return Client(config_from_kubeconfig(config), ClientOptions(qps=None, **options))


@pytest.fixture
async def client(server: APIServer) -> AsyncIterator[Client]:
    async with client_for(server.url, server.kubeconfig) as running:
        yield running


def manager_options(**options: Any) -> ManagerOptions:
    options.setdefault("http_host", "127.0.0.1")
    options.setdefault("http_port", 0)
    options.setdefault("drain_timeout", 10.0)
    return ManagerOptions(**options)


@pytest.fixture
def make_manager(client: Client) -> Callable[..., Manager]:
    def make(**options: Any) -> Manager:
        return Manager(client, manager_options(**options))

    return make


async def eventually(check: Callable[[], Any], *, within: float = 15.0, message: str = "") -> Any:
    """Wait until ``check()`` (sync or async) returns something truthy and return it.  ``within`` only
    guards against a hang: no test asserts how long anything took."""
    async with asyncio.timeout(within):
        while True:
            result = check()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.01)
    raise AssertionError(message)  # pragma: no cover - unreachable: timeout raises


class RequestCounter:
    """Counts the requests a client sends, by method (a spy: every request still goes through)."""

    def __init__(self, client: Client) -> None:
        self.calls: list[tuple[str, str]] = []
        transport = client.transport
        original = transport.request

        async def request(method: str, path: str, **kwargs: Any) -> Any:
            self.calls.append((method, path))
            return await original(method, path, **kwargs)

        transport.request = request  # type: ignore[method-assign]

    def writes(self, fragment: str = "") -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.calls if m in ("POST", "PUT", "PATCH", "DELETE") and fragment in p]


class Proxy:
    """A TCP proxy between a client and the API server that can break the network on demand:
    :meth:`cut` drops every open connection; :meth:`hold` makes new connections wait (a partition)
    until :meth:`release`."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = asyncio.Event()
        self._open.set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.release()
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)

    def cut(self) -> None:
        for downstream, upstream in list(self._connections):
            for writer in (downstream, upstream):
                writer.transport.abort()
        self._connections.clear()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._open.wait()
            try:
                up_reader, up_writer = await asyncio.open_connection(*self._target)
            except OSError:
                writer.transport.abort()
                return
            pair = (writer, up_writer)
            self._connections.add(pair)
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._pump(reader, up_writer))
                    group.create_task(self._pump(up_reader, writer))
            except* (ConnectionError, OSError):
                pass
            finally:
                self._connections.discard(pair)
                for w in pair:
                    w.transport.abort()
        finally:
            self._tasks.discard(task)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()


@pytest.fixture
async def proxy(server: APIServer) -> AsyncIterator[Proxy]:
    running = Proxy("127.0.0.1", server.port)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


class SimClock:
    """Virtual time for protocols that wait on a clock (leader election, timers): time moves only
    when the test moves it, and :meth:`run_until` moves it as a discrete-event simulation, jumping
    to the next wake-up only once every participant is blocked on the clock (no request in flight).
    Assertions are then about virtual seconds, exactly, whatever the machine's speed."""

    EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

    def __init__(self, start: float = 0.0) -> None:
        self.time = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._sequence = itertools.count()

    def now(self) -> float:
        return self.time

    def wall(self) -> datetime:
        return self.EPOCH + timedelta(seconds=self.time)

    def virtual(self, timestamp: str) -> float:
        """A wall timestamp written under this clock, back in virtual seconds."""
        return (datetime.fromisoformat(timestamp.replace("Z", "+00:00")) - self.EPOCH).total_seconds()

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.time + max(0.0, seconds), next(self._sequence), future))
        try:
            await future
        finally:
            if not future.done():
                future.cancel()

    @property
    def sleeping(self) -> int:
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def advance(self) -> None:
        """Jump to the earliest pending wake-up and wake every sleeper due by then."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        if not self._sleepers:
            return
        self.time = max(self.time, self._sleepers[0][0])
        while self._sleepers and self._sleepers[0][0] <= self.time:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def run_until(
        self, condition: Callable[[], bool], *, participants: Callable[[], int], limit: float
    ) -> None:
        """Advance time until ``condition()``; fail past virtual time ``limit``."""
        async with asyncio.timeout(30):  # a hang guard only
            while not condition():
                while self.sleeping < participants():
                    await asyncio.sleep(0.002)
                    if condition():
                        return
                if self.time > limit:
                    raise AssertionError(f"condition not reached by virtual time {limit}")
                self.advance()
                await asyncio.sleep(0)
