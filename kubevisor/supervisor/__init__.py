"""OTP-style supervision of asyncio tasks.

Rule: knows nothing about Kubernetes; imports nothing from the rest of kubevisor.

A :class:`Supervisor` starts its children (:class:`ChildSpec`: plain data) in order, each once it
reported ready through its :class:`Ready` handle, restarts them per their :class:`Restart` type and
the supervisor's :class:`Strategy`, fails upward with :class:`TooManyRestarts` when restarts exceed
its intensity, and stops them in reverse order, each within its shutdown timeout.  See
``docs/supervisor.md`` for usage and the mapping from OTP.
"""

from kubevisor.supervisor._errors import (
    ChildNotFound,
    ChildRunning,
    DuplicateChild,
    StartFailed,
    SupervisorError,
    SupervisorNotRunning,
    TooManyRestarts,
)
from kubevisor.supervisor._events import (
    ChildExited,
    ChildRestarted,
    ChildStarted,
    ExitReason,
    IntensityExceeded,
    Observer,
    SupervisorEvent,
)
from kubevisor.supervisor._spec import (
    BRUTAL_KILL,
    BrutalKill,
    ChildCounts,
    ChildInfo,
    ChildSpec,
    ChildType,
    Ready,
    Restart,
    StartFunction,
    Strategy,
    SupervisorOptions,
)
from kubevisor.supervisor._supervisor import MonotonicClock, Supervisor

__all__ = [
    "BRUTAL_KILL",
    "BrutalKill",
    "ChildCounts",
    "ChildExited",
    "ChildInfo",
    "ChildNotFound",
    "ChildRestarted",
    "ChildRunning",
    "ChildSpec",
    "ChildStarted",
    "ChildType",
    "DuplicateChild",
    "ExitReason",
    "IntensityExceeded",
    "MonotonicClock",
    "Observer",
    "Ready",
    "Restart",
    "StartFailed",
    "StartFunction",
    "Strategy",
    "Supervisor",
    "SupervisorError",
    "SupervisorEvent",
    "SupervisorNotRunning",
    "SupervisorOptions",
    "TooManyRestarts",
]
