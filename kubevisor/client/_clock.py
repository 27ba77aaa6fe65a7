"""Time as the client sees it: a monotonic clock and a sleep, injectable as one object.

The rate limiter, retry backoff and credential refresh all wait through a :class:`MonotonicClock`,
so tests substitute a fake one and assert exact delays instead of measuring wall time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["MonotonicClock", "SystemClock"]


@runtime_checkable
class MonotonicClock(Protocol):
    """A source of monotonic seconds and a way to wait for some of them to pass."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences are meaningful)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock; cancellable."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic` and :func:`asyncio.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
