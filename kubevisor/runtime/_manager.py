"""The manager: one supervision tree holding the shared informers, the controllers, the event
recorder, the leader elector and the probe/metrics endpoint.

The tree (rest_for_one, so that a restarted informer subtree restarts everything that reads it)::

    manager
    ├── http               /healthz /readyz /metrics            (when enabled)
    ├── events             the event recorder
    ├── informers          one child per shared informer; ready once every one synced
    └── controllers        one subtree per controller (workers, daemons)
        or leader-election campaigns, and runs the controllers subtree while it holds the Lease

Controllers start only once the informers subtree is ready, i.e. once every cache synced.  Stopping
(:meth:`Manager.stop`, SIGTERM with ``handle_signals``) drains: no new reconcile starts, those
running finish within ``drain_timeout``, pending events are flushed, then the tree stops in reverse
order (the Lease is released last of the controllers' subtree).  A second stop request (a second
signal) forces: running reconciles are cancelled at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

from kubevisor.api import now
from kubevisor.client import Client, MonotonicClock, SystemClock
from kubevisor.runtime._controller import Controller, DeclarationError
from kubevisor.runtime._http import ProbeServer
from kubevisor.runtime._informer import InformerCache, InformerOptions
from kubevisor.runtime._leader import LeaderElectionOptions, LeaderElector
from kubevisor.runtime._metrics import RuntimeMetrics
from kubevisor.runtime._recorder import EventRecorder, EventRecorderOptions
from kubevisor.supervisor import ChildSpec, ChildType, Ready, Strategy, Supervisor, SupervisorOptions

__all__ = ["Manager", "ManagerOptions"]

log = logging.getLogger("kubevisor.runtime")


@dataclass(frozen=True, slots=True)
class ManagerOptions:
    """How a manager runs; every default is stated here."""

    name: str = "kubevisor"
    """The manager's name: the root supervisor's, and the events' default source component."""
    http_host: str | None = "0.0.0.0"
    """Address of the probe and metrics endpoint (all interfaces, so that the kubelet can probe a
    pod); ``None`` disables the endpoint.  Tests use ``127.0.0.1``."""
    http_port: int = 8080
    """Port of the endpoint; ``0`` picks a free one (read it back from :attr:`Manager.http_port`)."""
    leader_election: LeaderElectionOptions | None = None
    """Contend for a Lease and run controllers only while holding it; ``None``: always run them."""
    informers: InformerOptions = field(default_factory=InformerOptions)
    events: EventRecorderOptions = field(default_factory=EventRecorderOptions)
    cache_sync_timeout: float = 120.0
    """Seconds each informer may take to list before start-up fails (controller-runtime: 2 min)."""
    drain_timeout: float = 30.0
    """Seconds running reconciles get to finish on stop before they are cancelled."""
    handle_signals: bool = False
    """Install SIGTERM/SIGINT handlers while :meth:`Manager.run` runs: the first drains, the second
    forces.  For the process's main manager only (``kubevisor run`` sets it)."""
    max_restarts: int = 3
    """Root supervisor intensity: restarts tolerated within ``max_seconds`` before the manager fails."""
    max_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.cache_sync_timeout <= 0 or self.drain_timeout < 0:
            raise ValueError("cache_sync_timeout must be positive and drain_timeout not negative")


class Manager:
    """Runs controllers over shared informers.  ``await manager.run()`` (until :meth:`stop`), or::

        async with Manager(client, ManagerOptions(http_host="127.0.0.1", http_port=0)) as manager:
            ...   # caches synced, controllers running (or campaigning for the Lease)

    ``add`` controllers before running.  :attr:`informers` is the shared cache (controllers' and
    anyone else's), :attr:`metrics` the Prometheus registry, :attr:`recorder` the event recorder.
    """

    def __init__(
        self,
        client: Client,
        options: ManagerOptions | None = None,
        *,
        clock: MonotonicClock | None = None,
        wall_clock: Callable[[], datetime] = now,
    ) -> None:
        """``clock`` (monotonic seconds and sleep) drives informer backoff, leader election, timers
        and event spam filtering; ``wall_clock`` stamps events, conditions and the Lease."""
        self.client = client
        self.options = options if options is not None else ManagerOptions()
        self.clock: MonotonicClock = clock if clock is not None else SystemClock()
        self.wall_clock = wall_clock
        self.metrics = RuntimeMetrics()
        self.informers = InformerCache(
            client,
            self.options.informers,
            observer_factory=self.metrics.informer_observer,
            clock=self.clock,
            sync_timeout=self.options.cache_sync_timeout,
        )
        self.recorder = EventRecorder(
            client, self.options.name, self.options.events, clock=self.clock, wall_clock=wall_clock
        )
        self.controllers: list[Controller] = []
        self.elector: LeaderElector | None = None
        election = self.options.leader_election
        if election is not None:
            leader_gauge = self.metrics.leader.labels(f"{election.lease_namespace}/{election.lease_name}")
            leader_gauge.set(0)
            self.elector = LeaderElector(
                client,
                election,
                clock=self.clock,
                wall_clock=wall_clock,
                on_change=lambda leading: leader_gauge.set(1 if leading else 0),
            )
        self._probes: ProbeServer | None = None
        if self.options.http_host is not None:
            self._probes = ProbeServer(
                self.options.http_host,
                self.options.http_port,
                registry=self.metrics.registry,
                healthy=lambda: self._running,
                ready=lambda: self._running and self.informers.synced,
            )
        self._running = False
        self._ran = False
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- declaration --

    def add(self, controller: Controller) -> Controller:
        """Add a controller (before the manager runs); returns it.  :class:`DeclarationError` for a
        second controller of the same name."""
        if self._running:
            raise RuntimeError("controllers must be added before the manager runs")
        if any(c.name == controller.name for c in self.controllers):
            raise DeclarationError(f"two controllers are named {controller.name!r}; give one options.name")
        self.controllers.append(controller)
        return controller

    # -- state --

    @property
    def ready(self) -> bool:
        """Running, with every cache synced (what ``/readyz`` answers)."""
        return self._running and self.informers.synced

    @property
    def is_leader(self) -> bool:
        """Whether the controllers run here: always without leader election."""
        return self._running and (self.elector is None or self.elector.is_leader)

    @property
    def http_port(self) -> int | None:
        """The probe endpoint's port once listening (``None`` when disabled)."""
        return self._probes.port if self._probes is not None else None

    # -- running --

    def stop(self, *, force: bool = False) -> None:
        """Ask the manager to stop: drain first, or (``force``, or a second call while draining)
        cancel running reconciles at once.  Returns immediately; :meth:`run` returns when stopped."""
        if force or self._stop.is_set():
            self._force.set()
        self._stop.set()

    async def run(self) -> None:
        """Bind the controllers, start the tree, run until :meth:`stop`, drain, stop the tree.

        A manager runs once.  Raises :class:`DeclarationError` for a misdeclared controller (before
        anything starts), :class:`~kubevisor.supervisor.StartFailed` when a cache does not sync within
        ``cache_sync_timeout``, :class:`~kubevisor.supervisor.TooManyRestarts` when the tree gives up.
        A stop requested during start-up (caches still syncing) stops at once.  Cancelling ``run``
        stops everything at once (a forced stop) and propagates.
        """
        if self._running or self._ran:
            raise RuntimeError("a manager runs once")
        self._running = self._ran = True
        try:
            for controller in self.controllers:
                await controller.bind(self)
            root = Supervisor(
                self._children(),
                SupervisorOptions(
                    Strategy.REST_FOR_ONE,
                    max_restarts=self.options.max_restarts,
                    max_seconds=self.options.max_seconds,
                ),
                name=self.options.name,
            )
            with self._signals():
                await self._supervise(root)
            log.info("manager %s: stopped", self.options.name)
        finally:
            self._running = False

    async def _supervise(self, root: Supervisor) -> None:
        """Run the tree in a task of its own, so that a stop request is heard during start-up too."""
        ready = Ready()
        tree = asyncio.ensure_future(root.child_spec().start(ready))
        stopping = asyncio.ensure_future(self._stop.wait())
        started = asyncio.ensure_future(ready.wait())
        try:
            await asyncio.wait((tree, stopping, started), return_when=asyncio.FIRST_COMPLETED)
            if not tree.done() and not stopping.done():
                self._started.set()
                log.info("manager %s: started with %d controllers", self.options.name, len(self.controllers))
                await asyncio.wait((tree, stopping), return_when=asyncio.FIRST_COMPLETED)
            if not tree.done() and ready.is_set:
                await self._drain()
        finally:
            stopping.cancel()
            started.cancel()
            if not tree.done():
                tree.cancel()
            # Stopping the tree is bounded by the children's shutdown timeouts; a cancellation of
            # run() meanwhile is re-raised once the tree is down.
            await asyncio.wait((tree,))
        if not tree.cancelled() and (error := tree.exception()) is not None:
            raise error

    def _children(self) -> list[ChildSpec]:
        children: list[ChildSpec] = []
        if self._probes is not None:
            children.append(ChildSpec("http", self._probes.run))
        children.append(ChildSpec("events", self.recorder.run, shutdown=1.0))
        children.append(self.informers.child_spec())
        if self.elector is None:
            children.append(
                ChildSpec(
                    "controllers",
                    self._run_controllers,
                    shutdown=math.inf,
                    type=ChildType.SUPERVISOR,
                    start_timeout=math.inf,
                )
            )
        else:
            children.append(ChildSpec("leader-election", self._campaign, shutdown=math.inf))
        return children

    def _controllers_supervisor(self) -> Supervisor:
        return Supervisor(
            [controller.child_spec() for controller in self.controllers],
            SupervisorOptions(Strategy.ONE_FOR_ONE),
            name="controllers",
        )

    async def _run_controllers(self, ready: Ready) -> None:
        await self._controllers_supervisor().child_spec().start(ready)

    async def _campaign(self, ready: Ready) -> None:
        assert self.elector is not None
        ready()  # campaigning is running: a standby is a healthy, started manager

        async def lead() -> None:
            await self._controllers_supervisor().run()

        await self.elector.run(lead)

    async def _drain(self) -> None:
        if self._force.is_set():
            return
        log.info("manager %s: draining", self.options.name)
        for controller in self.controllers:
            await controller.begin_drain()
        drained = asyncio.ensure_future(asyncio.gather(*(c.wait_drained() for c in self.controllers)))
        forced = asyncio.ensure_future(self._force.wait())
        try:
            done, _ = await asyncio.wait(
                (drained, forced), timeout=self.options.drain_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            forced.cancel()
            drained.cancel()
        if drained not in done:
            running = sum(c.in_flight for c in self.controllers)
            log.warning(
                "manager %s: %d reconciles still running; cancelling them", self.options.name, running
            )
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(5.0, self.options.drain_timeout)):
                await self.recorder.flush()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if not self.options.handle_signals:
            yield
            return
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []

        def on_signal(received: signal.Signals) -> None:
            second = self._stop.is_set()
            log.warning(
                "manager %s: %s received; %s",
                self.options.name,
                received.name,
                "forcing exit" if second else "draining",
            )
            self.stop(force=second)

        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def __aenter__(self) -> Self:
        """Run in a background task; return once the tree started (caches synced, controllers
        running or campaigning), or raise what :meth:`run` raised."""
        task = asyncio.create_task(self.run(), name=f"manager {self.options.name}")
        self._task = task
        started = asyncio.ensure_future(self._started.wait())
        try:
            await asyncio.wait((started, task), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.wait((task,))
            raise
        finally:
            started.cancel()
        if task.done():
            self._task = None
            task.result()
            raise RuntimeError("the manager stopped during start-up")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop (draining) and wait; a failure of the manager is raised unless the block raised."""
        task, self._task = self._task, None
        if task is None:
            return
        self.stop()
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            self.stop(force=True)
            await asyncio.wait((task,))
            raise
        except BaseException:
            if exc_type is None:
                raise
