"""Client-side rate limiting: a token bucket with client-go's semantics and defaults."""

from __future__ import annotations

import asyncio

from kubevisor.client._clock import MonotonicClock, SystemClock

__all__ = ["TokenBucket"]


class TokenBucket:
    """A token bucket: ``qps`` tokens per second refill it, up to ``burst``; it starts full.

    Like ``golang.org/x/time/rate`` (which client-go's ``NewTokenBucketRateLimiter`` wraps), a
    caller *reserves* its token when it arrives, so the bucket may go negative and waiters are served
    in arrival order with exactly the delay the refill rate implies; nobody is starved by a thundering
    herd.  A waiter cancelled while sleeping returns its token.

    client-go's defaults are ``qps=5``, ``burst=10``.  Raises ``ValueError`` for a non-positive
    ``qps`` or a ``burst`` below 1 (to disable limiting, do not create a bucket at all).
    """

    def __init__(self, qps: float, burst: int, *, clock: MonotonicClock | None = None) -> None:
        if not qps > 0:
            raise ValueError(f"rate limiter qps must be positive, got {qps!r}")
        if burst < 1:
            raise ValueError(f"rate limiter burst must be at least 1, got {burst!r}")
        self.qps = float(qps)
        self.burst = int(burst)
        self._clock: MonotonicClock = clock or SystemClock()
        self._tokens = float(burst)
        self._last = self._clock.now()

    def _advance(self) -> None:
        now = self._clock.now()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)

    @property
    def tokens(self) -> float:
        """Tokens available right now (negative while callers are queued for future ones)."""
        self._advance()
        return self._tokens

    def try_acquire(self) -> bool:
        """Take a token if one is available now; never waits."""
        self._advance()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def acquire(self) -> None:
        """Take a token, waiting (on the injected clock) until the refill rate provides one."""
        self._advance()
        self._tokens -= 1.0
        if self._tokens >= 0.0:
            return
        delay = -self._tokens / self.qps
        try:
            await self._clock.sleep(delay)
        except asyncio.CancelledError:
            # Give the reservation back so that a cancelled caller does not slow the others down.
            self._advance()
            self._tokens = min(float(self.burst), self._tokens + 1.0)
            raise
