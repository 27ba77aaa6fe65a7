"""Per-object background work: daemons (one long-running task per object) and timers (a function run
every N seconds per object), each a supervised child started when its object appears and stopped
when the object is deleted.

This is the "manage background tasks, processes and state" half of an operator that a reconcile
cannot express: a connection held open per object, a poller, a periodic health check.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubevisor.api import split_api_version
from kubevisor.client import MonotonicClock
from kubevisor.runtime._store import ObjectRef
from kubevisor.supervisor import Restart

if TYPE_CHECKING:
    from kubevisor.client import Client
    from kubevisor.runtime._recorder import EventRecorder
    from kubevisor.runtime._store import Store

__all__ = ["Daemon", "DaemonContext", "DaemonFunction", "Timer"]

DaemonFunction = Callable[[Any, "DaemonContext"], Awaitable[None]]
"""``async def fn(obj, ctx) -> None``: ``obj`` is the (typed) object when the daemon started, or at
the timer's tick; ``ctx`` reaches the current state."""


def _function_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


@dataclass(frozen=True, slots=True)
class Daemon:
    """A task run for each object of the controller's kind, from when the object is seen until it is
    deleted (``deletionTimestamp`` set, or gone), when it is cancelled.

    It runs under a supervisor as a child with this ``restart`` type and ``shutdown``: the default,
    ``TRANSIENT``, restarts a daemon that raised and lets one that returned stay finished (until its
    object is deleted and recreated).  Restarts of all daemons of one controller count towards that
    controller's daemon supervisor intensity (``ControllerOptions.daemon_max_restarts`` within
    ``daemon_max_seconds``).
    """

    fn: DaemonFunction
    name: str | None = None
    """Unique among the controller's daemons and timers; default: the function's name."""
    restart: Restart = Restart.TRANSIENT
    shutdown: float = 5.0
    """Seconds a cancelled daemon may take to clean up before it is abandoned."""

    @property
    def id(self) -> str:
        return self.name or _function_name(self.fn)


@dataclass(frozen=True, slots=True)
class Timer:
    """``fn(obj, ctx)`` every ``interval`` seconds for each object (the first call after
    ``initial_delay``, default ``interval``), with the object's current state.  An exception is
    logged and the timer continues at its next tick; a tick is skipped while the object fails its
    typed model.  Stopped when the object is deleted."""

    fn: DaemonFunction
    interval: float
    name: str | None = None
    initial_delay: float | None = None
    shutdown: float = 5.0

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError("a timer's interval must be positive")
        if self.initial_delay is not None and self.initial_delay < 0:
            raise ValueError("a timer's initial_delay must not be negative")

    @property
    def id(self) -> str:
        return self.name or _function_name(self.fn)


class DaemonContext:
    """What a daemon or timer can reach: its object's current state, events, the client, time."""

    def __init__(
        self,
        ref: ObjectRef,
        *,
        store: Store,
        convert: Callable[[dict[str, Any]], Any],
        client: Client | None,
        recorder: EventRecorder | None,
        component: str,
        clock: MonotonicClock,
        logger: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.ref = ref
        self.client = client
        self.log = logger
        self._store = store
        self._convert = convert
        self._recorder = recorder
        self._component = component
        self._clock = clock

    def current(self) -> Any:
        """The object's current state from the cache (a fresh typed copy), or ``None`` once it is
        gone.  Raises what the typed model raises if the stored object does not fit it."""
        wire = self._store.get(self.ref)
        return None if wire is None else self._convert(wire)

    def event(self, type: str, reason: str, message: str) -> None:
        """Record an Event about the object (aggregated like a reconcile's)."""
        wire = self._store.get(self.ref)
        if wire is not None and self._recorder is not None:
            self._recorder.record(wire, type, reason, message, component=self._component)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the manager's clock (so that tests with a fake clock control daemons too)."""
        await self._clock.sleep(seconds)


def kind_key(api_version: str, kind: str) -> tuple[str, str]:
    """``(group, kind)``: how owner references and descendants are matched to a declared kind."""
    return split_api_version(api_version)[0], kind
