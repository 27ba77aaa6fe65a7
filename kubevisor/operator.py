"""The user-facing declaration of an operator: its resources, reconcilers, finalizers, daemons, timers.

An :class:`Operator` is a thin, declarative layer over :mod:`kubevisor.runtime`: decorators record
what the operator does, and :meth:`Operator.manager` turns those records into runtime
:class:`~kubevisor.runtime.Controller` objects under one :class:`~kubevisor.runtime.Manager`::

    operator = Operator("todo-operator")

    @operator.reconciler(Todo, owns=[ConfigMap])
    async def reconcile(todo: Todo, ctx: Context[Todo]) -> Action:
        ctx.apply(config_map_for(todo))
        ctx.status.phase = "Done" if todo.spec.done else "Pending"
        return Action.requeue(after=300)

    @operator.cleanup(Todo)
    async def forget(todo: Todo, ctx: Context[Todo]) -> None: ...

    @operator.timer(Todo, interval=3600)
    async def remind(todo: Todo, ctx: DaemonContext) -> None: ...

    await operator.run(client)

The decorators return the function unchanged, so a reconcile stays a plain function that tests call
with :meth:`Context.for_object <kubevisor.runtime.Context.for_object>`.  The same declarations give
the CRDs (:meth:`Operator.crds`) and the RBAC rules the operator needs (:meth:`Operator.rbac_rules`).

A misdeclared operator fails before anything runs, with a :class:`~kubevisor.runtime.DeclarationError`
naming the declaration (decorator, function, file and line): a kind the server does not serve, a
cluster-scoped descendant of a namespaced owner (it would have no namespace to share with its owner),
a reconciler pinned to one namespace in an operator run in another (its descendants would be
watched, and owned, across namespaces), watches without a reconciler to map to, a kind declared twice.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from kubevisor.api import (
    AlreadyExists,
    Expired,
    GroupVersionKind,
    ResourceInfo,
    builtin_resources,
)
from kubevisor.client import Client, UnknownKind, load_config
from kubevisor.resource import Resource, crd_for, pluralize
from kubevisor.runtime import (
    Action,
    Cleanup,
    Context,
    Controller,
    ControllerOptions,
    Daemon,
    DeclarationError,
    KindRef,
    Manager,
    ManagerOptions,
    Mapper,
    Owns,
    Predicate,
    Reconciler,
    Timer,
    Watches,
)
from kubevisor.supervisor import Restart

__all__ = ["CRD_KIND", "Declaration", "Operator", "PolicyRule"]

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R", bound=type[Resource])

CRD_KIND = GroupVersionKind("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
"""The kind :meth:`Operator.install_crds` writes."""

_EVENTS = ("", "events")
_LEASES = ("coordination.k8s.io", "leases")


@dataclass(frozen=True, slots=True)
class Declaration:
    """Where and how something was declared, so that an error can point at it.

    ``str()`` reads like ``@operator.reconciler(Todo, owns=[ConfigMap]) on reconcile
    (examples/todo/operator.py:57)``.
    """

    decorator: str
    """The decorator call as written (kinds by name), e.g. ``@operator.cleanup(Todo)``."""
    function: str
    """The decorated function's qualified name."""
    location: str
    """``file:line`` of the function's definition (``<unknown>`` for callables without code)."""

    def __str__(self) -> str:
        return f"{self.decorator} on {self.function} ({self.location})"

    @classmethod
    def of(cls, decorator: str, fn: Callable[..., Any]) -> Declaration:
        """The declaration of ``fn`` by ``decorator``."""
        name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
        try:
            file = inspect.getsourcefile(fn) or "<unknown>"
            line = inspect.getsourcelines(fn)[1]
        except (OSError, TypeError):
            return cls(decorator, name, "<unknown>")
        # Relative to the working directory when below it: what an editor or a terminal opens.
        relative = os.path.relpath(file) if os.path.isabs(file) else file
        return cls(decorator, name, f"{file if relative.startswith('..') else relative}:{line}")


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One RBAC rule (``rbac.authorization.k8s.io/v1`` PolicyRule) the operator needs.

    Rules are per API group and resource (``plural`` or ``plural/subresource``) with sorted verbs, so
    that two operators declaring the same thing get equal rules.
    """

    api_group: str
    resource: str
    verbs: tuple[str, ...]

    def to_wire(self) -> dict[str, list[str]]:
        """The rule as it appears in a Role or ClusterRole."""
        return {"apiGroups": [self.api_group], "resources": [self.resource], "verbs": list(self.verbs)}


@dataclass(slots=True)
class _WatchEntry:
    watches: Watches
    declaration: Declaration


@dataclass(slots=True)
class _KindEntry:
    """Everything declared about one primary kind: it becomes one runtime Controller."""

    kind: KindRef
    reconcile: Reconciler | None = None
    reconcile_declaration: Declaration | None = None
    owns: tuple[Owns, ...] = ()
    predicates: Predicate | None = None
    options: ControllerOptions | None = None
    cleanup: Cleanup | None = None
    cleanup_declaration: Declaration | None = None
    daemons: list[tuple[Daemon | Timer, Declaration]] = field(default_factory=list)
    watches: list[_WatchEntry] = field(default_factory=list)

    def first_declaration(self) -> Declaration:
        """The declaration to name for a problem with the kind itself."""
        for declaration in (self.reconcile_declaration, self.cleanup_declaration):
            if declaration is not None:
                return declaration
        if self.daemons:
            return self.daemons[0][1]
        return self.watches[0].declaration


def _is_typed(kind: Any) -> bool:
    return isinstance(kind, type) and hasattr(kind, "resource_info") and hasattr(kind, "from_wire")


def _kind_name(kind: Any) -> str:
    """How a kind reads in a declaration: a class by its name, otherwise its kind."""
    if isinstance(kind, Owns):
        return _kind_name(kind.kind)
    if isinstance(kind, ResourceInfo | GroupVersionKind):
        return kind.kind
    return getattr(kind, "__name__", repr(kind))


def _group_kind(kind: Any) -> tuple[str, str]:
    if isinstance(kind, ResourceInfo | GroupVersionKind):
        return kind.group, kind.kind
    if _is_typed(kind):
        info: ResourceInfo = kind.resource_info()
        return info.group, info.kind
    raise DeclarationError(
        f"{kind!r} is not a kind: use a typed Resource class, a ResourceInfo or a GroupVersionKind"
    )


@cache
def _builtins_by_gvk() -> Mapping[GroupVersionKind, ResourceInfo]:
    return {info.gvk: info for info in builtin_resources()}


async def _noop_reconcile(obj: Any, ctx: Context[Any]) -> Action:
    """The reconcile of a kind declared only for its cleanup, daemons or timers."""
    return Action.done()


class Operator:
    """An operator: a name, the typed resources it defines, and what it does with them.

    Declare with the decorators (each returns the function unchanged); run with :meth:`run`, or build
    the runtime :class:`~kubevisor.runtime.Manager` with :meth:`manager` to run it yourself.  One
    runtime controller is built per primary kind; its cleanup, daemons, timers and mapped watches are
    the ones declared for that kind.

    ``resources`` adds typed resources whose CRDs the operator installs even if no declaration uses
    them; every typed resource named in a declaration (primary, owned or watched) is included anyway.
    ``options`` are the defaults of every controller (a reconciler's own ``options`` win); the field
    manager, and so the ``app.kubernetes.io/managed-by`` label of descendants, defaults to the
    operator's name.
    """

    def __init__(
        self,
        name: str,
        *,
        resources: Iterable[type[Resource]] = (),
        options: ControllerOptions | None = None,
    ) -> None:
        if not name:
            raise ValueError("an operator needs a name")
        self.name = name
        self.options = options if options is not None else ControllerOptions()
        self._resources: list[type[Resource]] = []
        self._kinds: dict[tuple[str, str], _KindEntry] = {}
        for resource in resources:
            self.resource(resource)

    def __repr__(self) -> str:
        return f"<Operator {self.name}: {', '.join(_kind_name(e.kind) for e in self._kinds.values())}>"

    # ------------------------------------------------------------------------------------------------
    # declarations

    def resource(self, cls: R) -> R:
        """Add a typed resource to the operator's CRDs (usable as a class decorator).  ``TypeError``
        for something that is not a concrete :class:`~kubevisor.resource.Resource` subclass."""
        if not (isinstance(cls, type) and issubclass(cls, Resource) and cls.__resource__ is not None):
            raise TypeError(f"{cls!r} is not a concrete Resource class (one with group= and version=)")
        if cls not in self._resources:
            self._resources.append(cls)
        return cls

    def _include(self, kind: Any) -> None:
        """Add ``kind`` to the CRDs when it is a typed resource of ours (a Resource subclass)."""
        if isinstance(kind, type) and issubclass(kind, Resource) and kind.__resource__ is not None:
            self.resource(kind)

    def _entry(self, kind: KindRef, declaration: str) -> _KindEntry:
        try:
            key = _group_kind(kind)
        except DeclarationError as exc:
            raise DeclarationError(f"{declaration}: {exc}") from None
        entry = self._kinds.get(key)
        if entry is None:
            entry = self._kinds[key] = _KindEntry(kind)
        elif _is_typed(kind) and not _is_typed(entry.kind):
            entry.kind = kind  # a typed class gives the reconcile typed objects: prefer it
        self._include(kind)
        return entry

    def reconciler(
        self,
        kind: KindRef,
        *,
        owns: Sequence[KindRef | Owns] = (),
        predicates: Predicate | None = None,
        options: ControllerOptions | None = None,
    ) -> Callable[[F], F]:
        """Declare ``async def reconcile(obj, ctx) -> Action`` for ``kind`` (the runtime's contract:
        docs/runtime.md).  ``owns`` are the kinds of the descendants it registers with
        ``ctx.apply``; ``predicates`` filter the primary kind's events (``generation_changed()`` is
        the usual choice); ``options`` tune the controller (workers, timeouts, namespace...).

        One reconciler per kind: a second raises :class:`DeclarationError` naming both.
        """
        decorator = f"@{self.name}.reconciler({_kind_name(kind)}"
        if owns:
            decorator += f", owns=[{', '.join(_kind_name(o) for o in owns)}]"
        decorator += ")"

        def register(fn: F) -> F:
            declaration = Declaration.of(decorator, fn)
            entry = self._entry(kind, str(declaration))
            if entry.reconcile_declaration is not None:
                raise DeclarationError(
                    f"{declaration}: {_kind_name(kind)} already has a reconciler:"
                    f" {entry.reconcile_declaration}"
                )
            for owned in owns:
                target = owned.kind if isinstance(owned, Owns) else owned
                try:
                    _group_kind(target)
                except DeclarationError as exc:
                    raise DeclarationError(f"{declaration}: owns {exc}") from None
                self._include(target)
            entry.reconcile = fn
            entry.reconcile_declaration = declaration
            entry.owns = tuple(o if isinstance(o, Owns) else Owns(o) for o in owns)
            entry.predicates = predicates
            entry.options = options
            return fn

        return register

    def cleanup(self, kind: KindRef) -> Callable[[F], F]:
        """Declare ``async def cleanup(obj, ctx) -> None``, run once an object of ``kind`` is being
        deleted.  The controller adds its finalizer before the first reconcile of each object and
        removes it only once the cleanup returned; a cleanup that raises is retried with backoff."""
        decorator = f"@{self.name}.cleanup({_kind_name(kind)})"

        def register(fn: F) -> F:
            declaration = Declaration.of(decorator, fn)
            entry = self._entry(kind, str(declaration))
            if entry.cleanup_declaration is not None:
                raise DeclarationError(
                    f"{declaration}: {_kind_name(kind)} already has a cleanup: {entry.cleanup_declaration}"
                )
            entry.cleanup = fn
            entry.cleanup_declaration = declaration
            return fn

        return register

    def daemon(
        self,
        kind: KindRef,
        *,
        name: str | None = None,
        restart: Restart = Restart.TRANSIENT,
        shutdown: float = 5.0,
    ) -> Callable[[F], F]:
        """Declare ``async def daemon(obj, ctx: DaemonContext) -> None``, run under supervision for
        each object of ``kind`` from when it is seen until it is deleted (then cancelled).
        ``restart`` is the OTP restart type (``TRANSIENT``: restarted after a crash);
        ``shutdown`` the seconds it gets to finish once cancelled."""
        decorator = f"@{self.name}.daemon({_kind_name(kind)})"

        def register(fn: F) -> F:
            declaration = Declaration.of(decorator, fn)
            entry = self._entry(kind, str(declaration))
            self._add_daemon(entry, Daemon(fn, name=name, restart=restart, shutdown=shutdown), declaration)
            return fn

        return register

    def timer(
        self,
        kind: KindRef,
        *,
        interval: float,
        initial_delay: float | None = None,
        name: str | None = None,
    ) -> Callable[[F], F]:
        """Declare ``async def tick(obj, ctx: DaemonContext) -> None``, run every ``interval``
        seconds for each object of ``kind`` (first after ``initial_delay``, default ``interval``).
        A tick that raises is logged; the next one runs."""
        decorator = f"@{self.name}.timer({_kind_name(kind)}, interval={interval:g})"

        def register(fn: F) -> F:
            declaration = Declaration.of(decorator, fn)
            entry = self._entry(kind, str(declaration))
            try:
                timer = Timer(fn, interval, name=name, initial_delay=initial_delay)
            except ValueError as exc:
                raise DeclarationError(f"{declaration}: {exc}") from None
            self._add_daemon(entry, timer, declaration)
            return fn

        return register

    @staticmethod
    def _add_daemon(entry: _KindEntry, daemon: Daemon | Timer, declaration: Declaration) -> None:
        for existing, where in entry.daemons:
            if existing.id == daemon.id:
                raise DeclarationError(
                    f"{declaration}: a daemon or timer named {daemon.id!r} is already declared for"
                    f" {_kind_name(entry.kind)}: {where}; pass name= to tell them apart"
                )
        entry.daemons.append((daemon, declaration))

    def watches(
        self,
        kind: KindRef,
        *,
        reconciles: KindRef,
        predicates: Predicate | None = None,
        label_selector: str | None = None,
        all_namespaces: bool = False,
    ) -> Callable[[F], F]:
        """Declare a mapping ``def map(obj: dict) -> Iterable[ObjectRef | (namespace, name)]``: each
        event of ``kind`` reconciles the objects of ``reconciles`` it returns (for an update, those of
        the old and the new object).  ``reconciles`` must have a reconciler by the time the operator
        runs.  ``all_namespaces`` watches every namespace even when the operator runs in one."""
        decorator = f"@{self.name}.watches({_kind_name(kind)}, reconciles={_kind_name(reconciles)})"

        def register(fn: F) -> F:
            declaration = Declaration.of(decorator, fn)
            try:
                _group_kind(kind)
            except DeclarationError as exc:
                raise DeclarationError(f"{declaration}: {exc}") from None
            entry = self._entry(reconciles, str(declaration))
            mapper: Mapper = fn
            entry.watches.append(
                _WatchEntry(
                    Watches(
                        kind,
                        mapper,
                        predicates=predicates,
                        label_selector=label_selector,
                        all_namespaces=all_namespaces,
                    ),
                    declaration,
                )
            )
            self._include(kind)
            return fn

        return register

    # ------------------------------------------------------------------------------------------------
    # what the declarations yield

    @property
    def resources(self) -> tuple[type[Resource], ...]:
        """The typed resources the operator defines, in declaration order."""
        return tuple(self._resources)

    def crds(self) -> list[dict[str, Any]]:
        """The CustomResourceDefinitions of :attr:`resources`: one per kind, serving every declared
        version of it (see :func:`~kubevisor.resource.crd_for`; exactly one must be stored when there
        are several).  ``ValueError``/``TypeError`` as ``crd_for`` raises them."""
        by_kind: dict[tuple[str, str], list[type[Resource]]] = {}
        for cls in self._resources:
            by_kind.setdefault(_group_kind(cls), []).append(cls)
        return [crd_for(*versions) for versions in by_kind.values()]

    def _static_info(self, kind: Any) -> ResourceInfo | None:
        """What ``kind`` addresses when that is known without a server: typed resources, resource
        infos, built-in kinds and the operator's own resources; ``None`` otherwise."""
        if isinstance(kind, ResourceInfo):
            return kind
        if _is_typed(kind):
            info: ResourceInfo = kind.resource_info()
            return info
        if isinstance(kind, GroupVersionKind):
            for cls in self._resources:
                if cls.resource_info().gvk == kind:
                    return cls.resource_info()
            return _builtins_by_gvk().get(kind)
        return None

    def rbac_rules(self, *, leader_election: bool = True) -> list[PolicyRule]:
        """The least-privilege RBAC rules for what the operator declares, one per resource:

        * primary kinds: ``get``, ``list``, ``watch`` (the informer); ``patch`` of the ``status``
          subresource (or of the object, without one); ``patch`` of the object with a cleanup (its
          finalizer);
        * owned kinds: ``get``, ``list``, ``watch``, ``create``, ``patch`` (server-side apply creates
          and updates), ``delete`` (pruning); and ``update`` of the owner's ``finalizers``
          subresource, which setting ``blockOwnerDeletion`` requires;
        * watched kinds: ``get``, ``list``, ``watch``;
        * core ``events``: ``create``, ``patch`` (aggregation);
        * with ``leader_election``, coordination.k8s.io ``leases``: ``get``, ``create``, ``update``.

        A kind named by a GroupVersionKind that is neither built in nor one of the operator's
        resources gets the plural the CRD default would give it (:func:`~kubevisor.resource.pluralize`);
        name it with a ``ResourceInfo`` when its plural is irregular.
        """
        verbs: dict[tuple[str, str], set[str]] = {}

        def grant(kind: Any, resource_verbs: Iterable[str], subresource: str | None = None) -> None:
            info = self._static_info(kind)
            if info is not None:
                group, plural = info.group, info.plural
            else:
                group, kind_name = _group_kind(kind)
                plural = pluralize(kind_name)
            resource = f"{plural}/{subresource}" if subresource else plural
            verbs.setdefault((group, resource), set()).update(resource_verbs)

        for entry in self._kinds.values():
            info = self._static_info(entry.kind)
            grant(entry.kind, ("get", "list", "watch"))
            if info is None or info.has_subresource("status"):
                grant(entry.kind, ("patch",), "status")
            if info is None or not info.has_subresource("status"):
                grant(entry.kind, ("patch",))
            if entry.cleanup is not None:
                grant(entry.kind, ("patch",))
            if entry.owns:
                grant(entry.kind, ("update",), "finalizers")
            for owned in entry.owns:
                grant(owned.kind, ("get", "list", "watch", "create", "patch", "delete"))
            for watched in entry.watches:
                grant(watched.watches.kind, ("get", "list", "watch"))
        if self._kinds:
            verbs.setdefault(_EVENTS, set()).update(("create", "patch"))
        if leader_election:
            verbs.setdefault(_LEASES, set()).update(("get", "create", "update"))
        return [
            PolicyRule(group, resource, tuple(sorted(v))) for (group, resource), v in sorted(verbs.items())
        ]

    # ------------------------------------------------------------------------------------------------
    # checking and building

    def _check_scope(
        self, entry: _KindEntry, owner: ResourceInfo | None, owned: Sequence[ResourceInfo | None]
    ) -> None:
        """A namespaced owner cannot own cluster-scoped descendants: they would have no namespace,
        and owner references do not cross namespaces (the garbage collector ignores them)."""
        if owner is None or not owner.namespaced:
            return
        for declared, info in zip(entry.owns, owned, strict=True):
            if info is not None and not info.namespaced:
                raise DeclarationError(
                    f"{entry.reconcile_declaration}: {_kind_name(declared)} is cluster-scoped, so its"
                    f" objects have no namespace and cannot be owned by the namespaced {owner.kind}"
                    " (owner references do not cross namespaces)"
                )

    def _options_for(
        self, entry: _KindEntry, namespace: str | None, owner: ResourceInfo | None
    ) -> ControllerOptions:
        options = entry.options if entry.options is not None else self.options
        if options.field_manager is None:
            options = dataclasses.replace(options, field_manager=self.name)
        if namespace is not None and (owner is None or owner.namespaced):
            pinned = options.namespace
            if pinned is not None and pinned != namespace:
                raise DeclarationError(
                    f"{entry.first_declaration()}: the controller is pinned to namespace {pinned!r} but the"
                    f" operator runs in namespace {namespace!r}: its owners and descendants would be"
                    " watched across namespaces"
                )
            options = dataclasses.replace(options, namespace=namespace)
        return options

    def _check_entries(self) -> None:
        for entry in self._kinds.values():
            if entry.reconcile is None and entry.watches:
                raise DeclarationError(
                    f"{entry.watches[0].declaration}: {_kind_name(entry.kind)} has no reconciler to"
                    " reconcile; declare one with @operator.reconciler"
                )

    def controllers(self, *, namespace: str | None = None) -> list[Controller]:
        """Build one runtime :class:`~kubevisor.runtime.Controller` per declared kind.

        ``namespace`` scopes every namespaced primary kind (and its owned kinds) to that namespace.
        Raises :class:`DeclarationError` for what can be judged without a server (kinds resolved
        through the built-in catalogue, typed resources and resource infos); :meth:`check` judges
        the rest against a server.
        """
        if not self._kinds:
            raise DeclarationError(f"operator {self.name!r} declares nothing: add a @{self.name}.reconciler")
        self._check_entries()
        controllers = []
        for entry in self._kinds.values():
            owner = self._static_info(entry.kind)
            self._check_scope(entry, owner, [self._static_info(o.kind) for o in entry.owns])
            controllers.append(self._controller(entry, self._options_for(entry, namespace, owner)))
        return controllers

    def _controller(self, entry: _KindEntry, options: ControllerOptions) -> Controller:
        try:
            return Controller(
                entry.kind,
                entry.reconcile or _noop_reconcile,
                owns=entry.owns,
                watches=[w.watches for w in entry.watches],
                predicates=entry.predicates,
                cleanup=entry.cleanup,
                daemons=[daemon for daemon, _ in entry.daemons],
                options=options,
            )
        except (DeclarationError, ValueError) as exc:
            raise DeclarationError(f"{entry.first_declaration()}: {exc}") from None

    async def check(self, client: Client, *, namespace: str | None = None) -> None:
        """Judge every declaration against the server ``client`` talks to: every kind must be served,
        and the scope rules of :meth:`controllers` hold with the server's answers.  Raises
        :class:`DeclarationError` naming the declaration at fault."""
        self.controllers(namespace=namespace)  # what can be judged offline, first

        async def resolve(kind: Any, declaration: Declaration, what: str) -> ResourceInfo:
            try:
                return await client.resource_info(kind)
            except UnknownKind as exc:
                hint = " (is its CRD installed?)" if not _builtins_by_gvk().get(_gvk(kind)) else ""
                raise DeclarationError(
                    f"{declaration}: {what} {_kind_name(kind)}: the server does not serve it{hint}: {exc}"
                ) from None

        for entry in self._kinds.values():
            declaration = entry.first_declaration()
            owner = await resolve(entry.kind, declaration, "kind")
            owned = [await resolve(o.kind, declaration, "owned kind") for o in entry.owns]
            for watched in entry.watches:
                await resolve(watched.watches.kind, watched.declaration, "watched kind")
            self._check_scope(entry, owner, owned)
            self._options_for(entry, namespace, owner)

    def manager(
        self, client: Client, options: ManagerOptions | None = None, *, namespace: str | None = None
    ) -> Manager:
        """A runtime :class:`~kubevisor.runtime.Manager` holding the operator's controllers.
        ``options`` default to ``ManagerOptions(name=<operator name>)``; ``namespace`` as in
        :meth:`controllers`.  Run it with ``await manager.run()`` or ``async with manager``."""
        manager = Manager(client, options if options is not None else ManagerOptions(name=self.name))
        for controller in self.controllers(namespace=namespace):
            manager.add(controller)
        return manager

    async def run(
        self,
        client: Client | None = None,
        options: ManagerOptions | None = None,
        *,
        namespace: str | None = None,
    ) -> None:
        """Check the declarations against the server, then run the operator's manager until it is
        stopped (with ``ManagerOptions(handle_signals=True)``: SIGTERM drains, a second forces).
        Without ``client``, one is made from :func:`~kubevisor.client.load_config` (kubeconfig or
        in-cluster) and closed on return."""
        if client is None:
            async with Client(load_config()) as own:
                await self.run(own, options, namespace=namespace)
            return
        await self.check(client, namespace=namespace)
        await self.manager(client, options, namespace=namespace).run()

    async def install_crds(self, client: Client) -> list[str]:
        """Create the operator's CRDs (replacing one that differs) and wait until each is
        ``Established``, i.e. served; returns their names.  For development and tests: in production
        CRDs are installed with the manifests, not by the operator.  Waits as long as it takes (bound it with
        ``asyncio.timeout``); raises :class:`~kubevisor.client.UnknownKind` when the server does not
        serve CustomResourceDefinitions."""
        names = []
        for crd in self.crds():
            name = crd["metadata"]["name"]
            try:
                await client.create(crd, field_manager=self.name)
            except AlreadyExists:
                current = await client.get(CRD_KIND, name)
                if not _contains(current.get("spec"), crd["spec"]):
                    crd["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                    await client.replace(crd, field_manager=self.name)
            names.append(name)
        for name in names:
            await _wait_established(client, name)
        return names


def _gvk(kind: Any) -> GroupVersionKind:
    if isinstance(kind, GroupVersionKind):
        return kind
    if isinstance(kind, ResourceInfo):
        return kind.gvk
    info: ResourceInfo = kind.resource_info()
    return info.gvk


def _contains(live: Any, desired: Any) -> bool:
    """Whether ``live`` holds every field of ``desired`` with the same value (the server may have
    added defaults): then replacing it would change nothing."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and _contains(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(_contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


def _established(crd: Mapping[str, Any] | None) -> bool:
    conditions = ((crd or {}).get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


async def _wait_established(client: Client, name: str) -> None:
    """Return once CRD ``name`` reports ``Established``: read it, then watch it from that version."""
    selector = f"metadata.name={name}"
    while True:
        listing = await client.list_all(CRD_KIND, field_selector=selector)
        if any(_established(item) for item in listing.items):
            return
        try:
            async with client.watch(
                CRD_KIND, field_selector=selector, resource_version=listing.resource_version
            ) as events:
                async for event in events:
                    if event.type != "DELETED" and _established(event.object):
                        return
        except Expired:
            continue  # history gone: read it again
