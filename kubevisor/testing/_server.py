"""An embedded API server on its own event loop, in a background thread."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from kubevisor.client import Client, ClientOptions, config_from_kubeconfig
from kubevisor.server import APIServer, ServerOptions, default_controllers

__all__ = ["EmbeddedServer"]


class EmbeddedServer:
    """A :class:`~kubevisor.server.APIServer` served from a thread of its own.

    Why a thread: a server shared by a whole test session must keep answering between tests and
    while a test's own event loop is busy or blocked (pytest-asyncio gives each test its own loop,
    and a test may run ``kubectl`` synchronously).  Clients on any loop talk to it over TCP on
    127.0.0.1, exactly as they would to a real cluster.

    ``options`` default to a free loopback port, state in memory, and the built-in controllers
    (garbage collector, namespace lifecycle), as ``kubevisor dev`` runs them.  :meth:`start` returns
    once requests are served; :meth:`stop` is idempotent.  Also a context manager.
    """

    def __init__(self, options: ServerOptions | None = None) -> None:
        self.options = options if options is not None else ServerOptions(controllers=default_controllers())
        self._server: APIServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self, timeout: float = 30.0) -> None:
        """Start the server thread and return once the server listens.  Raises what the server's
        start raised, ``TimeoutError`` past ``timeout`` seconds, ``RuntimeError`` if started."""
        if self._thread is not None:
            raise RuntimeError("the embedded server is already started")
        started: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._main, args=(started,), name="kubevisor-embedded-server", daemon=True
        )
        self._thread.start()
        try:
            started.result(timeout)
        except BaseException:
            self.stop()
            raise

    def _main(self, started: Future[None]) -> None:
        asyncio.run(self._serve(started))

    async def _serve(self, started: Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = APIServer(self.options)
        try:
            await server.start()
        except BaseException as exc:
            started.set_exception(exc)
            return
        self._server = server
        started.set_result(None)
        try:
            await self._stopped.wait()
        finally:
            await server.stop()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (watches end, connections close) and join its thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopped.set)
            except RuntimeError:
                pass  # the loop ended already (the server failed to start)
        thread.join(timeout)
        self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- reaching it --

    @property
    def server(self) -> APIServer:
        """The running :class:`~kubevisor.server.APIServer`.  Its methods belong to the server's
        thread: call coroutines through :meth:`call`."""
        if self._server is None:
            raise RuntimeError("the embedded server is not running")
        return self._server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def kubeconfig(self) -> dict[str, Any]:
        """A kubeconfig (as a dict) for this server."""
        return self.server.kubeconfig

    def write_kubeconfig(self, path: str | Path) -> Path:
        """Write the kubeconfig as YAML to ``path`` (mode 0600) for kubectl and other clients."""
        return self.server.write_kubeconfig(path)

    def client(self, options: ClientOptions | None = None) -> Client:
        """A new client for this server (use it as ``async with``).  The default options lift the
        client-side rate limit: tests should not wait on a token bucket."""
        return Client(config_from_kubeconfig(self.kubeconfig), options or ClientOptions(qps=None))

    def call(self, fn: Any, *args: Any, timeout: float = 30.0) -> Any:
        """Run ``fn(server, *args)`` on the server's loop (a coroutine is awaited there) and return
        its result: for in-process access to the server from another thread."""
        loop = self._loop
        if loop is None or self._server is None:
            raise RuntimeError("the embedded server is not running")
        server = self._server

        async def invoke() -> Any:
            result = fn(server, *args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(invoke(), loop).result(timeout)
