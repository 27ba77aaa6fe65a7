"""What a supervisor reports to its observer: one small frozen event per lifecycle step.

The runtime turns these into metrics and logs; tests collect them to synchronise on the
supervisor's progress without sleeping.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "ChildExited",
    "ChildRestarted",
    "ChildStarted",
    "ExitReason",
    "IntensityExceeded",
    "Observer",
    "SupervisorEvent",
]


class ExitReason(enum.StrEnum):
    """How a child's task ended."""

    NORMAL = "normal"
    """Its ``start`` function returned."""
    ERROR = "error"
    """It raised (before or after reporting ready, or while being stopped)."""
    CANCELLED = "cancelled"
    """It was cancelled, or let a ``CancelledError`` escape, without its supervisor asking: abnormal."""
    SHUTDOWN = "shutdown"
    """Its supervisor stopped it and it finished within its shutdown timeout."""
    KILLED = "killed"
    """Its supervisor stopped waiting for it: ``BRUTAL_KILL``, or it outlived its shutdown timeout.
    The task may still be running its cleanup; it is no longer supervised."""

    @property
    def abnormal(self) -> bool:
        """OTP's notion: anything but a normal return or a requested shutdown."""
        return self not in (ExitReason.NORMAL, ExitReason.SHUTDOWN)


@dataclass(frozen=True, slots=True)
class ChildStarted:
    """A child reported ready after ``run()``'s initial start, ``start_child`` or ``restart_child``."""

    supervisor: str
    child_id: str


@dataclass(frozen=True, slots=True)
class ChildRestarted:
    """The supervisor's strategy restarted a child and it reported ready again.

    ``trigger`` is the child whose exit caused the restart: the child itself under one_for_one, any
    sibling under one_for_all and rest_for_one.  Each successful start emits exactly one of
    :class:`ChildStarted` or :class:`ChildRestarted`.
    """

    supervisor: str
    child_id: str
    trigger: str


@dataclass(frozen=True, slots=True)
class ChildExited:
    """A child's task ended (or was abandoned), including a failure before it reported ready."""

    supervisor: str
    child_id: str
    reason: ExitReason
    error: BaseException | None
    """What it raised, for ``ERROR`` and ``CANCELLED``; ``None`` otherwise."""


@dataclass(frozen=True, slots=True)
class IntensityExceeded:
    """The supervisor is giving up: it will stop its children and raise ``TooManyRestarts``."""

    supervisor: str
    child_id: str
    """The child whose exit tipped the count over."""
    restarts: int
    max_restarts: int
    max_seconds: float


SupervisorEvent = ChildStarted | ChildRestarted | ChildExited | IntensityExceeded

Observer = Callable[[SupervisorEvent], None]
"""Called synchronously, on the supervisor's task, for every event.  It must not block; an exception
it raises is logged and otherwise ignored, so that observability never takes a tree down."""
