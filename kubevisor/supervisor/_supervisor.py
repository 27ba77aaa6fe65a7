"""The supervisor: OTP's ``supervisor`` behaviour on asyncio tasks.

Design, in one paragraph: a supervisor is a single task (its *loop*) that owns every child task and
every piece of its state.  Child exits (task done callbacks) and API calls (``start_child`` and
friends) are both messages in one mailbox, handled one at a time, exactly like an OTP supervisor
process handles ``'EXIT'`` signals and ``gen_server`` calls.  Nothing else mutates the state, so
there are no locks, and every answer (``which_children``) is a consistent snapshot taken between
two messages.  A message that was already overtaken (the exit of a child the loop has since
stopped or restarted) is recognised by its incarnation and ignored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from kubevisor.supervisor._errors import (
    ChildNotFound,
    ChildRunning,
    DuplicateChild,
    StartFailed,
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

__all__ = ["MonotonicClock", "Supervisor"]

logger = logging.getLogger("kubevisor.supervisor")

MonotonicClock = Callable[[], float]
"""Seconds from an arbitrary origin that never go backwards (``time.monotonic``; tests inject one)."""

_T = TypeVar("_T")

# Child tasks a supervisor stopped waiting for (BRUTAL_KILL, shutdown timeout).  The event loop
# only holds tasks weakly, so they are kept here until they finish, then reaped.
_abandoned: set[asyncio.Task[Any]] = set()


def _abandon(task: asyncio.Task[Any]) -> None:
    if task.done() or task in _abandoned:
        return
    _abandoned.add(task)
    task.add_done_callback(_reap)


def _reap(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    # Retrieve the outcome so that asyncio does not complain it was never retrieved; it was already
    # reported as KILLED when the supervisor let go of the task.
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.debug("abandoned task %s finally ended with %r", task.get_name(), error)


async def _cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel a supervisor's task and wait for its orderly stop.  Cancelled while waiting, cancel
    it again (the tree then stops waiting for its children) and let it finish unsupervised."""
    if task.done():
        return
    task.cancel()
    try:
        await asyncio.wait((task,))
    except asyncio.CancelledError:
        task.cancel()
        _abandon(task)
        raise


class _Run:
    """One incarnation of a child: a task, its readiness handle and how it is being ended."""

    __slots__ = ("ready", "settled", "stopping", "task")

    def __init__(self, ready: Ready, task: asyncio.Task[None]) -> None:
        self.ready = ready
        self.task = task
        self.stopping = False  # the supervisor cancelled it on purpose
        self.settled = False  # its exit was reported; a later exit message about it is stale


class _Child:
    __slots__ = ("run", "spec")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.run: _Run | None = None  # None: not running (never started, stopped, or ignored)

    @property
    def alive(self) -> bool:
        return self.run is not None and not self.run.task.done()


@dataclass(slots=True)
class _Exit:
    child: _Child
    run: _Run


@dataclass(slots=True)
class _Call:
    operation: Callable[[], Awaitable[Any]]
    future: asyncio.Future[Any]


_Message = _Exit | _Call


async def _body(start: StartFunction, ready: Ready) -> None:
    await start(ready)


def _outcome(task: asyncio.Task[None], *, stopping: bool) -> tuple[ExitReason, BaseException | None]:
    """Classify a finished child task.  ``stopping``: its supervisor had cancelled it."""
    try:
        task.result()
    except asyncio.CancelledError as cancelled:
        return (ExitReason.SHUTDOWN, None) if stopping else (ExitReason.CANCELLED, cancelled)
    except BaseException as error:
        return ExitReason.ERROR, error
    return (ExitReason.SHUTDOWN if stopping else ExitReason.NORMAL), None


class Supervisor:
    """Starts, watches and restarts a list of children; a child itself when nested.

    Lifecycle: ``await sup.run()`` or ``async with sup:`` starts the children in order, each after
    the previous one reported ready, then supervises them until the run is cancelled (or the
    ``async with`` block exits): the children are then stopped in reverse start order, each within
    its shutdown timeout, and the cancellation propagates.  A supervisor can run again after it
    stopped, and starts from its initial children (dynamic children do not survive a restart, as in
    OTP); it cannot run twice at once.

    Failure: when a child exits and its restart type says so, the strategy's set of children is
    restarted.  When that would make more than ``options.max_restarts`` restarts in
    ``options.max_seconds``, the supervisor stops every child and fails with
    :class:`TooManyRestarts`: ``run()`` raises it, ``async with`` cancels its body and raises it on
    exit, and a parent supervisor sees an abnormal exit of its child and applies its own strategy.

    Child operations (``start_child``, ``terminate_child``, ``restart_child``, ``delete_child``,
    ``which_children``, ``count_children``) are served by the supervisor's own task, one at a time
    and between child exits; they raise :class:`SupervisorNotRunning` when it is not running.
    A caller cancelled before its request is served withdraws it; once served, a request completes
    even if its caller is cancelled.  A child must not wait on its own supervisor before it reported
    ready (the supervisor is busy waiting for that report).
    """

    def __init__(
        self,
        children: Iterable[ChildSpec] = (),
        options: SupervisorOptions = SupervisorOptions(),
        *,
        name: str = "supervisor",
        observer: Observer | None = None,
        clock: MonotonicClock = time.monotonic,
    ) -> None:
        """``children`` are started in this order; their ids must be unique (``ValueError``).

        ``name`` appears in logs, events, errors and task names, and is the default id of
        :meth:`child_spec`.  ``observer`` receives every :data:`SupervisorEvent`.  ``clock`` measures
        restart intensity.
        """
        specs = tuple(children)
        ids = [spec.id for spec in specs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"supervisor {name!r}: duplicate child ids {duplicates}")
        self.name = name
        self.options = options
        self._specs = specs
        self._observer = observer
        self._clock = clock
        self._children: dict[str, _Child] = {spec.id: _Child(spec) for spec in specs}  # start order
        self._restarts: deque[float] = deque()
        self._active = False
        self._mailbox: asyncio.Queue[_Message] | None = None  # None: not accepting requests
        # `async with` state.
        self._serve_task: asyncio.Task[None] | None = None
        self._host: asyncio.Task[Any] | None = None
        self._host_cancelled = False
        self._exiting = False

    def __repr__(self) -> str:
        return f"<Supervisor {self.name!r} {self.options.strategy} children={list(self._children)}>"

    # ------------------------------------------------------------------ running the tree

    async def run(self) -> None:
        """Start the children in order, then supervise them until cancelled or failing.

        Never returns normally.  Raises :class:`StartFailed` if an initial child fails to start
        (after stopping those already started, in reverse order), :class:`TooManyRestarts` when the
        restart intensity is exceeded, ``RuntimeError`` if this supervisor is already running.
        Cancelling it stops every child in reverse order, then re-raises the cancellation; a
        second cancellation during that stop stops waiting and abandons the remaining children.
        """
        await self._serve(None)

    def child_spec(
        self,
        *,
        id: str | None = None,
        restart: Restart = Restart.PERMANENT,
        shutdown: float | BrutalKill = math.inf,
    ) -> ChildSpec:
        """This supervisor as a child of another: type SUPERVISOR, ``id`` defaulting to its name,
        unbounded start timeout and (as OTP recommends for supervisors) unbounded shutdown, so that
        its own children get their full shutdown time."""
        return ChildSpec(
            id=self.name if id is None else id,
            start=self._serve,
            restart=restart,
            shutdown=shutdown,
            type=ChildType.SUPERVISOR,
            start_timeout=math.inf,
        )

    async def __aenter__(self) -> Self:
        """Run the supervisor in a background task owned by the ``async with`` block; return once
        every initial child is started, or raise what ``run()`` would (:class:`StartFailed`)."""
        if self._active or self._serve_task is not None:
            raise RuntimeError(f"supervisor {self.name!r} is already running")
        host = asyncio.current_task()
        if host is None:
            raise RuntimeError("Supervisor must be entered from a task")
        ready = Ready()
        task = asyncio.create_task(self._serve(ready), name=f"supervisor {self.name}")
        self._serve_task = task
        self._exiting = False
        try:
            await asyncio.wait((ready._waiter(), task), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # Cancelled while starting: whatever was started is stopped properly before we go.
            self._serve_task = None
            await _cancel_and_wait(task)
            raise
        if not ready.is_set:
            self._serve_task = None
            task.result()  # raises StartFailed: _serve only ends by raising
            raise AssertionError("unreachable: the supervisor ended without an error")
        self._host = host
        self._host_cancelled = False
        task.add_done_callback(self._on_serve_done)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the tree (reverse order, shutdown timeouts), then raise the supervisor's failure if
        it failed while the block ran (the block was cancelled for it), else let the block's own
        exception, if any, propagate."""
        task = self._serve_task
        host = self._host
        if task is None or host is None:
            return
        self._exiting = True
        try:
            await _cancel_and_wait(task)
        finally:
            self._serve_task = None
            self._host = None
        failure = None if task.cancelled() else task.exception()
        if self._host_cancelled:
            self._host_cancelled = False
            if exc_type is not asyncio.CancelledError:
                # Our cancellation may still be pending if the block finished before it arrived;
                # absorb it here rather than let it hit the caller's next await.
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    pass
            if host.uncancel() > 0:
                # Someone else cancelled the block too: that cancellation wins.
                if exc_type is asyncio.CancelledError:
                    return
                raise asyncio.CancelledError
            if failure is not None and exc_type in (None, asyncio.CancelledError):
                raise failure
            return
        if failure is not None and exc_type is None:
            raise failure

    def _on_serve_done(self, task: asyncio.Task[None]) -> None:
        # The TaskGroup rule: a background failure cancels the block that owns it, and __aexit__
        # turns that cancellation back into the failure.
        if self._exiting or task.cancelled() or task.exception() is None or self._host is None:
            return
        self._host_cancelled = True
        self._host.cancel()

    # ------------------------------------------------------------------ child operations

    async def start_child(self, spec: ChildSpec) -> None:
        """Add ``spec`` after the existing children and start it; return once it reported ready.

        Raises :class:`DuplicateChild` if its id is in use, :class:`StartFailed` if it fails before
        reporting ready (the spec is then forgotten).  A start that is ignored (the child returned
        without calling ``ready``) keeps the spec, not running, unless it is temporary.
        """

        async def operation() -> None:
            existing = self._children.get(spec.id)
            if existing is not None:
                raise DuplicateChild(self.name, spec.id, running=existing.alive)
            child = _Child(spec)
            self._children[spec.id] = child
            try:
                await self._start(child, trigger=None)
            except BaseException:
                if self._children.get(spec.id) is child:
                    del self._children[spec.id]
                raise

        await self._call(operation)

    async def terminate_child(self, child_id: str) -> None:
        """Stop the child per its shutdown and keep its spec (a temporary child's is forgotten).

        It is not restarted.  A child that is not running is left as it is.  Raises
        :class:`ChildNotFound`.
        """

        async def operation() -> None:
            await self._stop(self._lookup(child_id))

        await self._call(operation)

    async def restart_child(self, child_id: str) -> None:
        """Start a stopped child again from its kept spec; return once it reported ready.

        Raises :class:`ChildNotFound`, :class:`ChildRunning`, or :class:`StartFailed` (the spec is
        kept).  This is a manual start: it emits ``ChildStarted`` and does not count towards the
        restart intensity.
        """

        async def operation() -> None:
            child = self._lookup(child_id)
            if child.run is not None:
                raise ChildRunning(self.name, child_id)
            await self._start(child, trigger=None)

        await self._call(operation)

    async def delete_child(self, child_id: str) -> None:
        """Forget a stopped child's spec.  Raises :class:`ChildNotFound`, :class:`ChildRunning`."""

        async def operation() -> None:
            child = self._lookup(child_id)
            if child.run is not None:
                raise ChildRunning(self.name, child_id)
            del self._children[child_id]

        await self._call(operation)

    async def which_children(self) -> list[ChildInfo]:
        """Every known child, in start order, as a consistent snapshot."""

        async def operation() -> list[ChildInfo]:
            return [
                ChildInfo(id=c.spec.id, running=c.alive, type=c.spec.type, restart=c.spec.restart)
                for c in self._children.values()
            ]

        return await self._call(operation)

    async def count_children(self) -> ChildCounts:
        """OTP's counts: specs, active (running), supervisors and workers (running or not)."""

        async def operation() -> ChildCounts:
            children = list(self._children.values())
            supervisors = sum(1 for c in children if c.spec.type is ChildType.SUPERVISOR)
            return ChildCounts(
                specs=len(children),
                active=sum(1 for c in children if c.alive),
                supervisors=supervisors,
                workers=len(children) - supervisors,
            )

        return await self._call(operation)

    async def _call(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        mailbox = self._mailbox
        if mailbox is None:
            raise SupervisorNotRunning(self.name)
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        mailbox.put_nowait(_Call(operation, future))
        return await future

    def _lookup(self, child_id: str) -> _Child:
        child = self._children.get(child_id)
        if child is None:
            raise ChildNotFound(self.name, child_id)
        return child

    # ------------------------------------------------------------------ the loop

    async def _serve(self, ready: Ready | None) -> None:
        if self._active:
            raise RuntimeError(f"supervisor {self.name!r} is already running")
        self._active = True
        mailbox: asyncio.Queue[_Message] = asyncio.Queue()
        self._mailbox = mailbox
        self._children = {spec.id: _Child(spec) for spec in self._specs}
        self._restarts.clear()
        logger.debug("supervisor %s: starting %d children", self.name, len(self._children))
        try:
            for child in list(self._children.values()):
                await self._start(child, trigger=None)
            if ready is not None:
                ready()
            while True:
                message = await mailbox.get()
                if isinstance(message, _Exit):
                    await self._on_exit(message)
                else:
                    await self._on_call(message)
        finally:
            self._mailbox = None  # from here on, requests fail fast
            try:
                await self._stop_all()
            finally:
                while not mailbox.empty():
                    leftover = mailbox.get_nowait()
                    if isinstance(leftover, _Call) and not leftover.future.done():
                        leftover.future.set_exception(SupervisorNotRunning(self.name))
                self._active = False
                logger.debug("supervisor %s: stopped", self.name)

    async def _on_call(self, call: _Call) -> None:
        if call.future.done():
            return  # the caller was cancelled before we got to it: the request is withdrawn
        try:
            result = await call.operation()
        except asyncio.CancelledError:
            # The supervisor itself is being cancelled mid-request.
            if not call.future.done():
                call.future.set_exception(SupervisorNotRunning(self.name))
            raise
        except Exception as error:
            if not call.future.done():
                call.future.set_exception(error)
            return
        if not call.future.done():
            call.future.set_result(result)

    async def _on_exit(self, message: _Exit) -> None:
        child, run = message.child, message.run
        if run.settled or child.run is not run:
            return  # overtaken: the loop already stopped or replaced this incarnation
        reason, error = _outcome(run.task, stopping=False)
        self._settle(child, run, reason, error)
        restart = child.spec.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and not reason.abnormal):
            return
        await self._restart(child, error)

    async def _restart(self, failed: _Child, error: BaseException | None) -> None:
        """Apply the strategy after ``failed`` exited; retry while a restarted child fails to start,
        each attempt counting towards the intensity, as OTP does."""
        while True:
            now = self._clock()
            self._restarts.append(now)
            while now - self._restarts[0] > self.options.max_seconds:
                self._restarts.popleft()
            if len(self._restarts) > self.options.max_restarts:
                count = len(self._restarts)
                logger.error(
                    "supervisor %s: child %s exceeded the restart intensity (%d restarts in %g s);"
                    " shutting down",
                    self.name,
                    failed.spec.id,
                    count,
                    self.options.max_seconds,
                    extra={"supervisor": self.name, "child_id": failed.spec.id},
                )
                self._emit(
                    IntensityExceeded(
                        self.name, failed.spec.id, count, self.options.max_restarts, self.options.max_seconds
                    )
                )
                raise TooManyRestarts(
                    self.name,
                    failed.spec.id,
                    count,
                    self.options.max_restarts,
                    self.options.max_seconds,
                    error,
                )
            group = self._restart_group(failed)
            for member in reversed(group):
                await self._stop(member)
            trigger = failed.spec.id
            for member in group:
                if self._children.get(member.spec.id) is not member:
                    continue  # a temporary sibling: stopped for good and forgotten
                try:
                    await self._start(member, trigger=trigger)
                except StartFailed as failure:
                    failed, error = member, failure.__cause__
                    break
            else:
                return

    def _restart_group(self, failed: _Child) -> list[_Child]:
        children = list(self._children.values())
        match self.options.strategy:
            case Strategy.ONE_FOR_ONE:
                return [failed]
            case Strategy.ONE_FOR_ALL:
                return children
            case Strategy.REST_FOR_ONE:
                return children[children.index(failed) :]

    # ------------------------------------------------------------------ starting and stopping one child

    async def _start(self, child: _Child, trigger: str | None) -> None:
        """Start one incarnation and wait for its readiness.  On return the child is running, or
        its start was ignored (it returned first).  Raises :class:`StartFailed`."""
        mailbox = self._mailbox
        if mailbox is None:
            raise SupervisorNotRunning(self.name)
        spec = child.spec
        ready = Ready()
        reported = ready._waiter()
        task = asyncio.create_task(_body(spec.start, ready), name=f"{self.name}/{spec.id}")
        run = _Run(ready, task)
        child.run = run
        task.add_done_callback(functools.partial(_post_exit, mailbox, child, run))
        timeout = None if math.isinf(spec.start_timeout) else spec.start_timeout
        try:
            await asyncio.wait((reported, task), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The supervisor is being cancelled mid-start: the half-started child is stopped first,
            # per its shutdown like any other.
            await self._stop(child)
            raise
        extra = {"supervisor": self.name, "child_id": spec.id}
        if ready.is_set:
            if trigger is None:
                logger.debug("supervisor %s: child %s started", self.name, spec.id, extra=extra)
                self._emit(ChildStarted(self.name, spec.id))
            else:
                logger.info(
                    "supervisor %s: child %s restarted (after %s exited)",
                    self.name,
                    spec.id,
                    trigger,
                    extra=extra,
                )
                self._emit(ChildRestarted(self.name, spec.id, trigger))
            return
        if task.done():
            reason, error = _outcome(task, stopping=False)
            if reason is ExitReason.NORMAL:
                # OTP's `ignore`: nothing to run, nothing to restart.
                run.settled = True
                child.run = None
                logger.info(
                    "supervisor %s: child %s returned before reporting ready; start ignored",
                    self.name,
                    spec.id,
                    extra=extra,
                )
                if spec.restart is Restart.TEMPORARY:
                    self._children.pop(spec.id, None)
                return
            assert error is not None
            self._settle(child, run, reason, error)
            raise StartFailed(self.name, spec.id, error)
        timed_out = TimeoutError(f"child {spec.id!r} did not report ready within {spec.start_timeout:g} s")
        await self._stop(child, failure=timed_out)
        raise StartFailed(self.name, spec.id, timed_out)

    async def _stop(self, child: _Child, failure: BaseException | None = None) -> None:
        """Stop the child's current incarnation, if any, per its shutdown; report and settle it.

        ``failure`` (a start timeout) is reported as the exit's error unless the child raised one.
        """
        run = child.run
        if run is None:
            return
        task = run.task
        if not task.done():
            run.stopping = True
            task.cancel()
            shutdown = child.spec.shutdown
            if not isinstance(shutdown, BrutalKill):
                try:
                    await asyncio.wait((task,), timeout=None if math.isinf(shutdown) else shutdown)
                except asyncio.CancelledError:
                    self._kill(child)
                    raise
        if task.done():
            reason, error = _outcome(task, stopping=run.stopping)
        else:
            _abandon(task)
            reason, error = ExitReason.KILLED, None
            if not isinstance(child.spec.shutdown, BrutalKill):
                logger.warning(
                    "supervisor %s: child %s still running %g s after cancellation; abandoning it",
                    self.name,
                    child.spec.id,
                    child.spec.shutdown,
                    extra={"supervisor": self.name, "child_id": child.spec.id},
                )
        if failure is not None and reason is not ExitReason.ERROR:
            reason, error = ExitReason.ERROR, failure
        self._settle(child, run, reason, error)

    def _kill(self, child: _Child) -> None:
        """Stop without waiting: cancel, abandon, settle as KILLED.  Used once waiting is over."""
        run = child.run
        if run is None:
            return
        if run.task.done():
            self._settle(child, run, *_outcome(run.task, stopping=run.stopping))
            return
        run.stopping = True
        run.task.cancel()
        _abandon(run.task)
        self._settle(child, run, ExitReason.KILLED, None)

    async def _stop_all(self) -> None:
        remaining = list(self._children.values())
        while remaining:
            child = remaining.pop()
            try:
                await self._stop(child)
            except asyncio.CancelledError:
                for other in reversed(remaining):
                    self._kill(other)
                raise

    def _settle(self, child: _Child, run: _Run, reason: ExitReason, error: BaseException | None) -> None:
        """Record that an incarnation ended: report it once, and forget a temporary child."""
        run.settled = True
        if child.run is run:
            child.run = None
        spec = child.spec
        extra = {"supervisor": self.name, "child_id": spec.id}
        if reason is ExitReason.ERROR:
            logger.error(
                "supervisor %s: child %s exited with an error",
                self.name,
                spec.id,
                exc_info=error,
                extra=extra,
            )
        elif reason.abnormal and not (reason is ExitReason.KILLED and isinstance(spec.shutdown, BrutalKill)):
            logger.warning("supervisor %s: child %s exited: %s", self.name, spec.id, reason, extra=extra)
        else:
            logger.debug("supervisor %s: child %s exited: %s", self.name, spec.id, reason, extra=extra)
        self._emit(ChildExited(self.name, spec.id, reason, error))
        if spec.restart is Restart.TEMPORARY and self._children.get(spec.id) is child:
            del self._children[spec.id]

    def _emit(self, event: SupervisorEvent) -> None:
        if self._observer is None:
            return
        try:
            self._observer(event)
        except Exception:
            logger.exception("supervisor %s: observer failed on %r", self.name, event)


def _post_exit(mailbox: asyncio.Queue[_Message], child: _Child, run: _Run, _task: asyncio.Task[None]) -> None:
    mailbox.put_nowait(_Exit(child, run))
