"""Supervision as data: child specifications, supervisor options, the readiness handle and the
read-only views a supervisor returns (``which_children``, ``count_children``)."""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "BRUTAL_KILL",
    "BrutalKill",
    "ChildCounts",
    "ChildInfo",
    "ChildSpec",
    "ChildType",
    "Ready",
    "Restart",
    "StartFunction",
    "Strategy",
    "SupervisorOptions",
]


class Restart(enum.StrEnum):
    """When a child that exited is started again (OTP's restart types)."""

    PERMANENT = "permanent"
    """Always restarted, whatever the exit (a normal return included)."""
    TRANSIENT = "transient"
    """Restarted only after an abnormal exit: it raised, or was cancelled by someone other than its
    supervisor.  A normal return, or a stop requested by the supervisor, is final."""
    TEMPORARY = "temporary"
    """Never restarted, not even when a sibling's exit restarts the others; its spec is forgotten as
    soon as it exits or is terminated."""


class ChildType(enum.StrEnum):
    """What a child is, for ``count_children`` and for its conventional timeouts."""

    WORKER = "worker"
    SUPERVISOR = "supervisor"


class Strategy(enum.StrEnum):
    """Which children a supervisor restarts when one of them must be restarted."""

    ONE_FOR_ONE = "one_for_one"
    """Only the child that exited."""
    ONE_FOR_ALL = "one_for_all"
    """Every child: the others are stopped in reverse start order, then all are started in order."""
    REST_FOR_ONE = "rest_for_one"
    """The child that exited and every child started after it: those are stopped in reverse order,
    then the whole tail is started again in order."""


class BrutalKill(enum.Enum):
    """The type of :data:`BRUTAL_KILL` (an enum so that type checkers see a single value)."""

    BRUTAL_KILL = "brutal_kill"


BRUTAL_KILL: Final = BrutalKill.BRUTAL_KILL
"""A shutdown that cancels the child's task and does not wait for it to finish."""


class Ready:
    """The readiness handle a child's ``start`` function receives.

    A child calls it once it is started (connected, listening, caches primed: whatever "started"
    means for it); ``await supervisor.start_child(spec)`` returns at that moment, and the next
    sibling is started only then.  Calling it again is harmless.  It must be called on the event
    loop's thread.

    It is also usable on its own, to test a child function without a supervisor::

        ready = Ready()
        task = asyncio.create_task(informer.run(ready))
        await ready.wait()
    """

    __slots__ = ("_future", "_set")

    def __init__(self) -> None:
        self._set = False
        # Created lazily so that a handle can be built outside a running loop.
        self._future: asyncio.Future[None] | None = None

    def __call__(self) -> None:
        """Report the child started.  Idempotent."""
        if self._set:
            return
        self._set = True
        if self._future is not None and not self._future.done():
            self._future.set_result(None)

    @property
    def is_set(self) -> bool:
        """Whether the child has reported itself started."""
        return self._set

    async def wait(self) -> None:
        """Return once the child has reported itself started (cancelling a waiter is safe)."""
        # Shielded: the future is shared, and one cancelled waiter must not cancel it for the rest.
        await asyncio.shield(self._waiter())

    def _waiter(self) -> asyncio.Future[None]:
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
            if self._set:
                self._future.set_result(None)
        return self._future


StartFunction = Callable[[Ready], Awaitable[None]]
"""A child's body: receives its :class:`Ready` handle, runs until it returns, raises or is cancelled."""


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start, restart and stop one child.  Plain data: build, compare, ``replace`` freely.

    ``start`` is called once per (re)start in a new task owned by the supervisor.  The child is
    *started* when it calls its :class:`Ready` handle.  If ``start`` returns normally without ever
    calling it, the start is *ignored* (OTP's ``ignore``): nothing runs, nothing is restarted, the
    spec is kept (unless temporary) and :meth:`Supervisor.restart_child` may try again.  If it
    raises, or neither readies nor returns within ``start_timeout``, the start fails.

    Raises ``ValueError`` at construction for an empty id or an invalid timeout.
    """

    id: str
    """Unique among the supervisor's children; used in logs, events and the child API."""
    start: StartFunction
    """The child's body (see above)."""
    restart: Restart = Restart.PERMANENT
    """When to restart it (OTP's default: permanent)."""
    shutdown: float | BrutalKill = 5.0
    """How to stop it: its task is cancelled, then awaited for up to this many seconds (``math.inf``:
    for as long as it takes); a child still running after that is abandoned and reported.
    :data:`BRUTAL_KILL` cancels without waiting.  Default 5 s, OTP's 5000 ms for a worker;
    :meth:`Supervisor.child_spec` uses ``math.inf``, OTP's default for a supervisor."""
    type: ChildType = ChildType.WORKER
    """Worker or supervisor."""
    start_timeout: float = 30.0
    """Seconds to wait for the child to report ready before the start fails (``math.inf``: forever).
    Default 30 s, so that a child that forgets to call ``ready()`` fails loudly instead of hanging
    its supervisor; :meth:`Supervisor.child_spec` uses ``math.inf`` since a nested supervisor is
    ready once all its own children are, each bounded by its own timeout."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"child id must be a non-empty string, got {self.id!r}")
        if not callable(self.start):
            raise ValueError(f"child {self.id!r}: start must be an async callable, got {self.start!r}")
        if not isinstance(self.shutdown, BrutalKill) and not (
            isinstance(self.shutdown, int | float) and self.shutdown >= 0 and not math.isnan(self.shutdown)
        ):
            raise ValueError(
                f"child {self.id!r}: shutdown must be BRUTAL_KILL or seconds >= 0, got {self.shutdown!r}"
            )
        if not (isinstance(self.start_timeout, int | float) and self.start_timeout > 0):
            raise ValueError(
                f"child {self.id!r}: start_timeout must be seconds > 0, got {self.start_timeout!r}"
            )


@dataclass(frozen=True, slots=True)
class SupervisorOptions:
    """A supervisor's strategy and restart intensity.

    Intensity: when a restart would make more than ``max_restarts`` restarts within the last
    ``max_seconds`` (measured on the supervisor's monotonic clock, inclusive), the supervisor stops
    all its children in reverse order and fails with :class:`TooManyRestarts`.  The defaults (3 in
    5 s) are Elixir's; Erlang's ``supervisor`` defaults to 1 in 5 s.

    Raises ``ValueError`` at construction for a negative count or a non-positive period.
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    """Which children are restarted together (OTP's default: one_for_one)."""
    max_restarts: int = 3
    """Restarts tolerated within ``max_seconds``; 0 makes any restart fail the supervisor."""
    max_seconds: float = 5.0
    """The sliding window, in seconds, over which restarts are counted."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_restarts, int) or self.max_restarts < 0:
            raise ValueError(f"max_restarts must be an integer >= 0, got {self.max_restarts!r}")
        if not (isinstance(self.max_seconds, int | float) and self.max_seconds > 0):
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds!r}")


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """One row of :meth:`Supervisor.which_children`, in start order."""

    id: str
    running: bool
    """Whether the child's task is alive (started and not yet exited)."""
    type: ChildType
    restart: Restart


@dataclass(frozen=True, slots=True)
class ChildCounts:
    """:meth:`Supervisor.count_children`, with OTP's four counts."""

    specs: int
    """Children known to the supervisor, running or not."""
    active: int
    """Children whose task is alive."""
    supervisors: int
    """Children of type supervisor, running or not."""
    workers: int
    """Children of type worker, running or not."""
