"""The supervisor's errors: a small closed tree under :class:`SupervisorError`."""

from __future__ import annotations

__all__ = [
    "ChildNotFound",
    "ChildRunning",
    "DuplicateChild",
    "StartFailed",
    "SupervisorError",
    "SupervisorNotRunning",
    "TooManyRestarts",
]


class SupervisorError(Exception):
    """Base of every error a supervisor raises.  ``supervisor`` names the supervisor."""

    def __init__(self, supervisor: str, message: str) -> None:
        super().__init__(f"supervisor {supervisor!r}: {message}")
        self.supervisor = supervisor


class StartFailed(SupervisorError):
    """A child failed before reporting ready: it raised, was cancelled, or timed out.

    ``__cause__`` is what it raised (a ``TimeoutError`` for a timeout).  Raised by ``start_child``
    and ``restart_child``, and by ``run()`` / ``async with`` when an initial child fails to start
    (the children started before it are stopped first, in reverse order).
    """

    def __init__(self, supervisor: str, child_id: str, cause: BaseException) -> None:
        super().__init__(supervisor, f"child {child_id!r} failed to start: {cause!r}")
        self.child_id = child_id
        self.__cause__ = cause


class TooManyRestarts(SupervisorError):
    """The restart intensity was exceeded; the supervisor stopped all its children and failed.

    ``child_id`` is the child whose exit tipped it over, ``__cause__`` what that child raised (``None``
    after a normal return of a permanent child).  A parent supervisor treats this like any other
    abnormal exit of its child.
    """

    def __init__(
        self,
        supervisor: str,
        child_id: str,
        restarts: int,
        max_restarts: int,
        max_seconds: float,
        cause: BaseException | None,
    ) -> None:
        super().__init__(
            supervisor,
            f"child {child_id!r} needed restart {restarts} within {max_seconds:g} s,"
            f" more than the {max_restarts} allowed; giving up",
        )
        self.child_id = child_id
        self.restarts = restarts
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self.__cause__ = cause


class ChildNotFound(SupervisorError, LookupError):
    """No child with this id (OTP's ``{error, not_found}``)."""

    def __init__(self, supervisor: str, child_id: str) -> None:
        super().__init__(supervisor, f"no child {child_id!r}")
        self.child_id = child_id


class DuplicateChild(SupervisorError):
    """``start_child`` with an id already in use (OTP's ``already_started`` / ``already_present``)."""

    def __init__(self, supervisor: str, child_id: str, running: bool) -> None:
        state = "already running" if running else "already present (not running)"
        super().__init__(supervisor, f"child {child_id!r} {state}")
        self.child_id = child_id
        self.running = running


class ChildRunning(SupervisorError):
    """``restart_child`` or ``delete_child`` on a running child (OTP's ``{error, running}``)."""

    def __init__(self, supervisor: str, child_id: str) -> None:
        super().__init__(supervisor, f"child {child_id!r} is running; terminate it first")
        self.child_id = child_id


class SupervisorNotRunning(SupervisorError):
    """A child operation on a supervisor that is not running, or that stopped before answering."""

    def __init__(self, supervisor: str) -> None:
        super().__init__(supervisor, "not running")
