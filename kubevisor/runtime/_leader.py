"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's semantics, so that several
replicas of an operator run with exactly one active.

The algorithm (client-go's ``leaderelection``):

* **Acquire.** Every ``retry_period`` (jittered up to ``1 + jitter`` times it) a candidate reads the
  Lease.  Missing: it creates it, holding it.  Held by another whose record has not changed for
  ``leaseDurationSeconds`` *as measured on the candidate's own monotonic clock since it last saw the
  record change*: it takes it over (``acquireTime`` now, ``leaseTransitions + 1``).  Held and fresh:
  it waits.  Using the local observation time rather than the ``renewTime`` written in the Lease
  makes expiry immune to clock skew between replicas.
* **Renew.** The leader updates ``renewTime`` every ``retry_period``.  If a renew round cannot
  succeed within ``renew_deadline``, leadership is lost: the work run under it is cancelled at once
  and :class:`LeaderElectionLost` is raised (its supervisor restarts the elector, which campaigns
  again).  ``renew_deadline < lease_duration`` ensures the old leader stops before anyone else may
  start.
* **Optimistic concurrency.** Every write is a PUT carrying the resourceVersion read, and a create
  fails if someone else created first: of two racing candidates, one gets 409 and keeps waiting.
* **Release.** On a clean stop (cancellation) with ``release_on_cancel``, the leader writes the Lease
  with an empty ``holderIdentity`` and ``leaseDurationSeconds: 1``, so that a standby takes over at
  its next retry instead of waiting for expiry.

Timestamps are ``MicroTime`` (RFC 3339 with six fractional digits).  All waiting goes through an
injectable monotonic clock and all timestamps through an injectable wall clock, so tests run the
protocol in virtual time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kubevisor.api import (
    AlreadyExists,
    ApiError,
    Clock,
    Conflict,
    NotFound,
    ResourceInfo,
    format_microtime,
    now,
)
from kubevisor.client import Client, MonotonicClock, SystemClock, TransportError

__all__ = [
    "LEASE_RESOURCE",
    "LeaderElectionLost",
    "LeaderElectionOptions",
    "LeaderElector",
    "default_identity",
]

log = logging.getLogger("kubevisor.runtime")

LEASE_RESOURCE = ResourceInfo("coordination.k8s.io", "v1", "Lease", "leases", "lease", True)
"""coordination.k8s.io/v1 Leases, addressed without discovery."""


def default_identity() -> str:
    """``<hostname>_<uuid4>``, as controller-runtime builds it: unique per process, readable per pod."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass(frozen=True, slots=True)
class LeaderElectionOptions:
    """Which Lease to contend for, and client-go's timing (its defaults)."""

    lease_name: str
    """The Lease's name (one per operator: every replica must use the same)."""
    lease_namespace: str = "default"
    """The Lease's namespace (in a cluster: the operator's own namespace)."""
    identity: str = field(default_factory=default_identity)
    """This replica's ``holderIdentity``; unique per process."""
    lease_duration: float = 15.0
    """Seconds a standby waits, after it last saw the Lease change, before taking it over."""
    renew_deadline: float = 10.0
    """Seconds the leader keeps trying to renew before it gives up leadership."""
    retry_period: float = 2.0
    """Seconds between attempts to acquire or renew."""
    jitter: float = 1.2
    """Acquire attempts wait ``retry_period * (1 + uniform(0, jitter))`` (client-go's JitterFactor)."""
    release_on_cancel: bool = True
    """Release the Lease when stopped cleanly, for an immediate handover."""

    def __post_init__(self) -> None:
        if not self.lease_name:
            raise ValueError("leader election needs a lease name")
        if not self.identity:
            raise ValueError("leader election needs a non-empty identity")
        if self.retry_period <= 0 or self.jitter < 0:
            raise ValueError("retry_period must be positive and jitter not negative")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if self.renew_deadline <= self.jitter * self.retry_period:
            raise ValueError("renew_deadline must be greater than jitter * retry_period")


class LeaderElectionLost(Exception):
    """The leader could not renew its Lease within the renew deadline; the work it ran was stopped."""


class LeaderElector:
    """Campaigns for a Lease and runs work only while holding it.  See the module docstring."""

    def __init__(
        self,
        client: Client,
        options: LeaderElectionOptions,
        *,
        clock: MonotonicClock | None = None,
        wall_clock: Clock = now,
        rng: random.Random | None = None,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        """``on_change(is_leader)`` is called synchronously when leadership is gained or lost."""
        self.client = client
        self.options = options
        self._clock: MonotonicClock = clock if clock is not None else SystemClock()
        self._wall_clock = wall_clock
        self._rng = rng if rng is not None else random.Random()
        self._on_change = on_change
        self._observed: dict[str, Any] | None = None
        self._observed_rv: str | None = None
        self._observed_time = 0.0
        self._leader = False
        self.leader_identity: str | None = None
        """The holder last observed (``None`` before the first read; ``""`` when released)."""

    @property
    def is_leader(self) -> bool:
        """Whether this replica holds the Lease (as of its last successful acquire or renew)."""
        return self._leader

    def _set_leader(self, leading: bool) -> None:
        if leading == self._leader:
            return
        self._leader = leading
        log.info(
            "leader election %s/%s: %s %s",
            self.options.lease_namespace,
            self.options.lease_name,
            self.options.identity,
            "became the leader" if leading else "is no longer the leader",
        )
        if self._on_change is not None:
            try:
                self._on_change(leading)
            except Exception:
                log.exception("leader election: on_change callback failed")

    # -- one attempt --

    def _spec(
        self, moment: str, acquire_time: str, transitions: int, holder: str, duration: int
    ) -> dict[str, Any]:
        return {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration,
            "acquireTime": acquire_time,
            "renewTime": moment,
            "leaseTransitions": transitions,
        }

    async def try_acquire_or_renew(self) -> bool:
        """One attempt (client-go's ``tryAcquireOrRenew``): returns whether this replica holds the
        Lease afterwards.  API and network errors count as a failed attempt, never raise."""
        opts = self.options
        moment = format_microtime(self._wall_clock())
        duration = max(1, round(opts.lease_duration))
        try:
            lease = await self.client.get(LEASE_RESOURCE, opts.lease_name, namespace=opts.lease_namespace)
        except NotFound:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": opts.lease_name, "namespace": opts.lease_namespace},
                "spec": self._spec(moment, moment, 0, opts.identity, duration),
            }
            try:
                created = await self.client.create(body, namespace=opts.lease_namespace)
            except (AlreadyExists, Conflict):
                return False
            except (ApiError, TransportError) as exc:
                log.warning("leader election: cannot create the lease: %s", exc)
                return False
            self._observe(created)
            self._set_leader(True)
            return True
        except (ApiError, TransportError) as exc:
            log.warning("leader election: cannot read the lease: %s", exc)
            return False
        spec = lease.get("spec") or {}
        self._observe(lease)
        holder = spec.get("holderIdentity") or ""
        lease_seconds = spec.get("leaseDurationSeconds") or duration
        if (
            holder
            and holder != opts.identity
            and self._observed_time + float(lease_seconds) > self._clock.now()
        ):
            self._set_leader(False)
            return False
        if holder == opts.identity:
            acquire_time = spec.get("acquireTime") or moment
            transitions = int(spec.get("leaseTransitions") or 0)
        else:
            acquire_time = moment
            transitions = int(spec.get("leaseTransitions") or 0) + 1
        updated = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {**lease["metadata"]},
            "spec": {**spec, **self._spec(moment, acquire_time, transitions, opts.identity, duration)},
        }
        try:
            result = await self.client.replace(updated, namespace=opts.lease_namespace)
        except Conflict:
            return False
        except (ApiError, TransportError) as exc:
            log.warning("leader election: cannot update the lease: %s", exc)
            return False
        self._observe(result)
        self._set_leader(True)
        return True

    def _observe(self, lease: dict[str, Any]) -> None:
        spec = lease.get("spec") or {}
        # The record (not the resourceVersion) decides freshness, as in client-go: an unrelated
        # metadata write does not make a dead leader look alive.
        if spec != self._observed:
            self._observed = dict(spec)
            self._observed_time = self._clock.now()
        self._observed_rv = (lease.get("metadata") or {}).get("resourceVersion")
        self.leader_identity = spec.get("holderIdentity") or ""

    async def release(self) -> bool:
        """Give the Lease up if held: empty ``holderIdentity``, ``leaseDurationSeconds: 1``.  Returns
        whether a release was written."""
        if not self._leader:
            return False
        opts = self.options
        self._set_leader(False)
        moment = format_microtime(self._wall_clock())
        try:
            lease = await self.client.get(LEASE_RESOURCE, opts.lease_name, namespace=opts.lease_namespace)
            spec = lease.get("spec") or {}
            if (spec.get("holderIdentity") or "") != opts.identity:
                return False
            lease["spec"] = {
                **spec,
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "acquireTime": moment,
                "renewTime": moment,
                "leaseTransitions": int(spec.get("leaseTransitions") or 0),
            }
            await self.client.replace(lease, namespace=opts.lease_namespace)
        except (ApiError, TransportError) as exc:
            log.warning("leader election: could not release the lease: %s", exc)
            return False
        log.info("leader election %s/%s: released", opts.lease_namespace, opts.lease_name)
        return True

    # -- the loop --

    def _acquire_wait(self) -> float:
        return self.options.retry_period * (1.0 + self._rng.uniform(0.0, self.options.jitter))

    async def acquire(self) -> None:
        """Return once this replica holds the Lease (retrying every jittered ``retry_period``)."""
        while not await self.try_acquire_or_renew():
            await self._clock.sleep(self._acquire_wait())

    async def _attempt_within(self, seconds: float) -> bool:
        """One attempt, abandoned (as failed) when it takes longer than ``seconds``: a renew that
        hangs must not keep a leader leading past its deadline.  The bound is on the event loop's
        clock (the same time as the default clock's; with a virtual clock, a guard against hung
        requests only)."""
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                return await self.try_acquire_or_renew()
        except TimeoutError:
            return False

    async def renew_until_lost(self) -> None:
        """Renew every ``retry_period``; a round that cannot renew within ``renew_deadline`` (retrying
        every ``retry_period``) ends leadership, and this returns."""
        opts = self.options
        while True:
            await self._clock.sleep(opts.retry_period)
            round_start = self._clock.now()
            while True:
                remaining = opts.renew_deadline - (self._clock.now() - round_start)
                if remaining <= 0:
                    self._set_leader(False)
                    return
                if await self._attempt_within(remaining):
                    break
                remaining = opts.renew_deadline - (self._clock.now() - round_start)
                if remaining <= 0:
                    self._set_leader(False)
                    return
                await self._clock.sleep(min(opts.retry_period, remaining))

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Campaign; once leader, run ``lead()`` while renewing.

        * Leadership lost: ``lead`` is cancelled (and awaited), then :class:`LeaderElectionLost`.
        * ``lead`` returns or raises: leadership is released (if ``release_on_cancel``) and its
          outcome is this call's.
        * Cancelled: ``lead`` is cancelled and awaited first, then the Lease is released (if
          ``release_on_cancel``), then the cancellation propagates.
        """
        await self.acquire()
        work = asyncio.ensure_future(lead())
        renewing = asyncio.ensure_future(self.renew_until_lost())
        try:
            await asyncio.wait((work, renewing), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            renewing.cancel()
            work.cancel()
            await asyncio.wait((work, renewing))
            if self.options.release_on_cancel:
                await self._release_shielded()
            else:
                self._set_leader(False)
            raise
        if renewing.done():
            work.cancel()
            await asyncio.wait((work,))
            if not renewing.cancelled() and (error := renewing.exception()) is not None:
                raise error
            raise LeaderElectionLost(
                f"lease {self.options.lease_namespace}/{self.options.lease_name}: could not renew within"
                f" {self.options.renew_deadline:g}s"
            )
        renewing.cancel()
        await asyncio.wait((renewing,))
        if self.options.release_on_cancel:
            await self._release_shielded()
        else:
            self._set_leader(False)
        work.result()

    async def _release_shielded(self) -> None:
        # Releasing is part of stopping: a second cancellation while it runs must not leave the
        # Lease held for a whole lease duration.
        task = asyncio.ensure_future(self.release())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait((task,))
            raise
