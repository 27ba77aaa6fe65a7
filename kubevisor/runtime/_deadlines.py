"""Per-reconcile timeouts sharing one loop timer: what ``asyncio.timeout`` does, for less.

``asyncio.timeout`` schedules (and then cancels) a timer handle for every scope, about 6 µs each,
a few percent of a reconcile at thousands of reconciles per second.  All reconciles of one
controller have the same timeout, so their deadlines fall due in the order they started: a FIFO
(an insertion-ordered dict) with one timer armed for its head does the same job for a dict insert
and a delete per reconcile.

Semantics are ``asyncio.timeout``'s: once the deadline has passed, the task inside the scope is
cancelled; leaving the scope turns that cancellation into ``TimeoutError`` (unless the task was also
cancelled from elsewhere, which then propagates), and :meth:`DeadlineScope.expired` tells a
``TimeoutError`` of the scope from one raised inside it.
"""

from __future__ import annotations

import asyncio
import itertools
from types import TracebackType
from typing import Final

__all__ = ["DeadlineScope", "Deadlines"]

_SLACK: Final = 0.001
"""Seconds by which a deadline may be declared passed early: the loop runs a timer that is due
within its clock resolution, and re-arming for a deadline a hair away would only spin."""


class Deadlines:
    """Timeouts of ``seconds`` (``None``: none) for any number of concurrent scopes, one timer in all.

    ``async with deadlines.scope() as scope:`` bounds the block like ``asyncio.timeout(seconds)``.
    Must be used from tasks of one event loop.
    """

    def __init__(self, seconds: float | None) -> None:
        if seconds is not None and seconds <= 0:
            raise ValueError("a timeout must be positive or None")
        self.seconds = seconds
        self._entries: dict[int, tuple[float, DeadlineScope]] = {}
        self._keys = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def scope(self) -> DeadlineScope:
        """A scope whose deadline starts when it is entered."""
        return DeadlineScope(self)

    def __len__(self) -> int:
        """Scopes entered and neither left nor expired."""
        return len(self._entries)

    def _add(self, scope: DeadlineScope) -> int:
        assert self.seconds is not None
        loop = asyncio.get_running_loop()
        if self._timer_loop is not loop and self._timer_loop is not None:
            # A previous loop was closed with scopes pending: its timer never fires, and its tasks
            # are gone.  Forget both.
            self._entries.clear()
            self._timer = None
        key = next(self._keys)
        deadline = loop.time() + self.seconds
        self._entries[key] = (deadline, scope)
        if self._timer is None:
            self._timer, self._timer_loop = loop.call_at(deadline, self._fire), loop
        return key

    def _remove(self, key: int) -> None:
        # The timer stays armed: when it fires for a scope that is gone it re-arms for the next
        # one, which is cheaper than moving it at every exit.
        self._entries.pop(key, None)

    def _fire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time() + _SLACK
        entries = self._entries
        while entries:
            key = next(iter(entries))
            deadline, scope = entries[key]
            if deadline > now:
                self._timer = loop.call_at(deadline, self._fire)
                return
            del entries[key]
            scope._expire()


class DeadlineScope:
    """One bounded block (see :class:`Deadlines`).  Single use."""

    __slots__ = ("_cancelling", "_deadlines", "_expired", "_key", "_task")

    def __init__(self, deadlines: Deadlines) -> None:
        self._deadlines = deadlines
        self._task: asyncio.Task[object] | None = None
        self._key = -1
        self._cancelling = 0
        self._expired = False

    def expired(self) -> bool:
        """Whether the deadline passed and the block was cancelled for it."""
        return self._expired

    async def __aenter__(self) -> DeadlineScope:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline scope must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        if self._deadlines.seconds is not None:
            self._key = self._deadlines._add(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._expired:
            self._deadlines._remove(self._key)
            return
        assert self._task is not None
        # As asyncio.timeout: the cancellation is ours to absorb only if no one else asked for one.
        if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    def _expire(self) -> None:
        assert self._task is not None
        self._expired = True
        self._task.cancel()
