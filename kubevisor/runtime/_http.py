"""The manager's HTTP endpoint: ``/healthz``, ``/readyz`` and ``/metrics`` (aiohttp).

``/healthz`` answers 200 while the manager's tree runs (a liveness probe: a wedged process stops
answering).  ``/readyz`` answers 200 once every informer has synced, 503 before (a readiness probe: a
standby replica is ready too, since it serves warm caches).  ``/metrics`` is the Prometheus text
exposition of the manager's own registry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from kubevisor.supervisor import Ready

__all__ = ["ProbeServer"]

log = logging.getLogger("kubevisor.runtime")


class ProbeServer:
    """Serves the probes and metrics on ``host:port`` (port 0: a free one, see :attr:`port`)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        registry: CollectorRegistry,
        healthy: Callable[[], bool],
        ready: Callable[[], bool],
    ) -> None:
        self.host = host
        self.port = port
        self._registry = registry
        self._healthy = healthy
        self._ready = ready

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/livez", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def _healthz(self, request: web.Request) -> web.Response:
        if self._healthy():
            return web.Response(text="ok")
        return web.Response(status=503, text="not running")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self._ready():
            return web.Response(text="ok")
        return web.Response(status=503, text="caches not synced")

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def run(self, ready: Ready) -> None:
        """Listen, report ready, serve until cancelled."""
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
            server = site._server
            sockets = getattr(server, "sockets", None) or ()
            if sockets:
                self.port = sockets[0].getsockname()[1]
            log.info("probes and metrics on http://%s:%d", self.host, self.port)
            ready()
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
