"""The embedded API server as one object: storage, registry, watch hub, REST service and HTTP.

Usage::

    async with APIServer(ServerOptions(data_dir=path)) as server:
        server.url          # http://127.0.0.1:<port>
        server.kubeconfig   # a kubeconfig dict (context and cluster named "kubevisor")

or ``await server.start()`` / ``await server.stop()``.  Starting takes a few tens of milliseconds
(the built-in catalogue is loaded lazily, the SQLite file is opened, the default namespaces are
created if missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiohttp import web

from kubevisor.api import AlreadyExists, Clock, ResourceInfo, builtin_resources, now
from kubevisor.server._crd import CustomResourceDefinitions
from kubevisor.server._gc import GarbageCollector
from kubevisor.server._handlers import HandlerOptions, Handlers, build_app
from kubevisor.server._namespaces import NamespaceController, ServiceAccountController
from kubevisor.server._registry import ResourceRegistry, Strategy
from kubevisor.server._service import AdmissionPlugin, ObjectService, RequestOptions
from kubevisor.server._storage import ResourceKey, Storage
from kubevisor.server._strategies import ClusterIPAllocator, builtin_strategy
from kubevisor.server._watch import WatchHub

__all__ = ["APIServer", "Controller", "ServerOptions", "default_controllers"]

log = logging.getLogger("kubevisor.server")

Controller = Callable[["APIServer"], Coroutine[Any, Any, None]]
"""A built-in controller: a coroutine function run for the server's lifetime (cancelled on stop).
Issue 3's garbage collector and namespace lifecycle plug in here."""


def default_controllers() -> tuple[Controller, ...]:
    """The built-in controllers a real cluster's kube-controller-manager would run."""
    return (GarbageCollector(), NamespaceController(), ServiceAccountController())


DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
DATABASE_FILE = "kubevisor.db"


@dataclass(frozen=True)
class ServerOptions:
    """How to run an :class:`APIServer`."""

    host: str = "127.0.0.1"
    """Address to listen on; loopback by default (no authentication yet)."""
    port: int = 0
    """TCP port; 0 picks a free one (read it back from :attr:`APIServer.port`)."""
    data_dir: Path | None = None
    """Directory for the SQLite database (``kubevisor.db``); ``None`` keeps everything in memory."""
    history_size: int = 10_000
    """Events retained for watch resumption and exact-RV lists (like etcd's compaction window);
    older requests get 410 Expired."""
    watch_timeout: float = 1800.0
    """Lower bound of the server-side watch timeout when the client gives no ``timeoutSeconds``; each
    watch picks uniformly in [watch_timeout, 2 * watch_timeout), as kube-apiserver does."""
    bookmark_interval: float = 60.0
    """Seconds between BOOKMARK events on idle watches that asked for them."""
    watch_buffer_size: int = 10_000
    """Events a watcher may fall behind by before it is closed (the client then re-watches)."""
    max_body_bytes: int = 3 * 1024 * 1024
    """Largest accepted request body (upstream: 3 MiB); larger ones get 413."""
    default_namespaces: tuple[str, ...] = DEFAULT_NAMESPACES
    """Namespaces created at start when missing."""
    controllers: tuple[Controller, ...] = field(default_factory=default_controllers)
    """Built-in controllers started with the server and cancelled when it stops.  By default
    :func:`default_controllers`: the garbage collector, namespace lifecycle and default ServiceAccount
    controllers, so that the server behaves as a real cluster does; ``()`` gives a bare API server
    (as envtest is), for tests of the REST layer alone."""
    admission: tuple[AdmissionPlugin, ...] = ()
    """Admission plugins run, in order, on every write before it is stored."""
    service_cidr: str = "10.96.0.0/12"
    """Range from which Service ClusterIPs are allocated."""
    clock: Clock = field(default=now, compare=False)
    """Source of time for timestamps and table ages (tests inject a fake one)."""


class APIServer:
    """An embedded Kubernetes-compatible API server.  See the module docstring."""

    def __init__(self, options: ServerOptions | None = None) -> None:
        self.options = options or ServerOptions()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._controllers: asyncio.Task[None] | None = None
        self._port = 0
        self.storage: Storage | None = None
        self.registry = ResourceRegistry()
        self._service: ObjectService | None = None
        self._hub: WatchHub | None = None
        self._crds: CustomResourceDefinitions | None = None
        self._crd_task: asyncio.Task[None] | None = None
        self._strategy_by_key: dict[ResourceKey, Strategy] = {}
        self.registry.on_change(self._strategy_by_key.clear)

    # ----------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Open the storage, register the built-in kinds, create the default namespaces and start
        listening.  Returns once requests are served.  Raises ``RuntimeError`` if already started."""
        if self._runner is not None:
            raise RuntimeError("server already started")
        opts = self.options
        path = Path(opts.data_dir) / DATABASE_FILE if opts.data_dir is not None else None
        storage = Storage(path, history_size=opts.history_size, indexer=self._index)
        self.storage = storage
        ips = ClusterIPAllocator(opts.service_cidr, seed=self._cluster_ips_in_use)
        self.registry.add_all((info, builtin_strategy(info, cluster_ips=ips)) for info in builtin_resources())
        self._service = ObjectService(storage, self.registry, clock=opts.clock, admission=opts.admission)
        self._hub = WatchHub(storage, buffer_size=opts.watch_buffer_size)
        # CRDs are part of the API server itself (not an optional controller): the resources of the
        # stored ones are served before the first request is.
        self._crds = CustomResourceDefinitions(self._service, clock=opts.clock)
        self._crds.start()
        self._crd_task = asyncio.create_task(self._crds.run(), name="kubevisor-crds")
        await self._create_default_namespaces()
        handlers = Handlers(
            self._service,
            self._hub,
            HandlerOptions(
                max_body_bytes=opts.max_body_bytes,
                watch_timeout=opts.watch_timeout,
                bookmark_interval=opts.bookmark_interval,
            ),
        )
        app = build_app(handlers, max_body_bytes=opts.max_body_bytes)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, opts.host, opts.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._stop_crds()
            storage.close()
            raise
        self._runner, self._site = runner, site
        server = site._server
        sockets = getattr(server, "sockets", None) or ()
        self._port = sockets[0].getsockname()[1] if sockets else opts.port
        if opts.controllers:
            self._controllers = asyncio.create_task(self._run_controllers(), name="kubevisor-controllers")
        log.info("kubevisor API server listening on %s", self.url)

    async def stop(self) -> None:
        """Stop controllers, end every watch, stop listening and close the storage.  Idempotent."""
        if self._controllers is not None:
            task, self._controllers = self._controllers, None
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                # A controller that crashed earlier surfaces here; stopping must still finish.
                log.exception("a built-in controller failed")
        if self._hub is not None:
            self._hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None
        await self._stop_crds()
        if self.storage is not None:
            self.storage.close()

    async def _stop_crds(self) -> None:
        if self._crd_task is not None:
            task, self._crd_task = self._crd_task, None
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("the custom resource definition controller failed")
        if self._crds is not None:
            self._crds.stop()
            self._crds = None

    async def __aenter__(self) -> APIServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _run_controllers(self) -> None:
        async with asyncio.TaskGroup() as group:
            for controller in self.options.controllers:
                group.create_task(controller(self))

    # ----------------------------------------------------------- accessors

    @property
    def service(self) -> ObjectService:
        """The REST semantics, for in-process callers (controllers, tests)."""
        if self._service is None:
            raise RuntimeError("server not started")
        return self._service

    @property
    def hub(self) -> WatchHub:
        if self._hub is None:
            raise RuntimeError("server not started")
        return self._hub

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = self.options.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}"

    @property
    def kubeconfig(self) -> dict[str, Any]:
        """A kubeconfig for this server: cluster, user and context all named ``kubevisor``."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubevisor", "cluster": {"server": self.url}}],
            "users": [{"name": "kubevisor", "user": {}}],
            "contexts": [
                {
                    "name": "kubevisor",
                    "context": {"cluster": "kubevisor", "user": "kubevisor", "namespace": "default"},
                }
            ],
            "current-context": "kubevisor",
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | Path) -> Path:
        """Write :attr:`kubeconfig` as YAML to ``path`` (parents created, mode 0600)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.kubeconfig, sort_keys=False))
        target.chmod(0o600)
        return target

    def add_resource(self, info: ResourceInfo, strategy: Strategy | None = None) -> None:
        """Serve a new resource (CRDs use this); discovery and OpenAPI caches are invalidated."""
        self.registry.add(info, strategy)

    # ----------------------------------------------------------- internals

    def _index(self, key: ResourceKey, obj: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
        meta = obj.get("metadata") or {}
        raw = meta.get("labels") or {}
        # Label keys and values repeat across objects: interning keeps one copy of each.
        labels = {
            sys.intern(k): sys.intern(v) if isinstance(v, str) else v
            for k, v in raw.items()
            if isinstance(k, str)
        }
        strategy = self._strategy_by_key.get(key)
        if strategy is None:
            # The resource stored under this key in its own form (core Events, not events.k8s.io).
            strategy = Strategy()
            for info in self.registry.resources():
                if (info.group, info.plural) == key:
                    strategy = self._strategy_by_key[key] = self.registry.strategy(info)
                    break
        return labels, strategy.field_values(obj)

    def _cluster_ips_in_use(self) -> list[str]:
        assert self.storage is not None
        ips: list[str] = []
        for record in self.storage.list_records(("", "services")):
            ip = (record.load().get("spec") or {}).get("clusterIP")
            if ip and ip != "None":
                ips.append(ip)
        return ips

    async def _create_default_namespaces(self) -> None:
        info = self.registry.get("", "v1", "namespaces")
        if info is None or self.storage is None:
            return
        for name in self.options.default_namespaces:
            if self.storage.get(("", "namespaces"), "", name) is None:
                with contextlib.suppress(AlreadyExists):
                    await self.service.create(info, "", {"metadata": {"name": name}}, RequestOptions())
