"""Namespace lifecycle and default ServiceAccounts, as kube-controller-manager runs them.

:class:`NamespaceController` finishes what DELETE of a namespace starts.  DELETE (in the REST layer)
sets ``deletionTimestamp`` and ``status.phase: Terminating``, and from then on creating anything in the
namespace is refused with 403.  The controller then, as upstream's namespace deleter does:

1. deletes every object of every namespaced resource the registry serves at that moment (custom
   resources added at run time included), with ``propagationPolicy: Background``;
2. leaves objects whose finalizers hold them alone and waits for them: every later change to an
   object in the namespace brings the namespace back for another pass, so nothing is polled;
3. reports progress in the namespace's status conditions, with upstream's types, reasons and
   messages (``NamespaceDeletionDiscoveryFailure``, ``NamespaceDeletionGroupVersionParsingFailure``,
   ``NamespaceDeletionContentFailure``, ``NamespaceContentRemaining``,
   ``NamespaceFinalizersRemaining``);
4. once the namespace is empty, removes the ``kubernetes`` finalizer through the ``finalize``
   subresource (as ``PUT /api/v1/namespaces/{name}/finalize`` does), upon which the REST layer deletes
   the namespace if no other finalizer remains.

Terminating namespaces found in storage at start are picked up again, so a restart mid-deletion
completes it.  Objects that fail to delete are retried with backoff and reported in
``NamespaceDeletionContentFailure``.

:class:`ServiceAccountController` makes sure every active namespace has a ``default`` ServiceAccount,
creating it when a namespace appears (the default namespaces included) and again if it is deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubevisor.api import (
    KUBERNETES_VERSION,
    AlreadyExists,
    ApiError,
    Forbidden,
    NotFound,
    ResourceInfo,
    format_time,
)
from kubevisor.server._gc import RetryLater, WorkQueue, run_workers
from kubevisor.server._service import RequestOptions, resource_key
from kubevisor.server._storage import DELETED, Event, Record, ResourceKey

if TYPE_CHECKING:
    from kubevisor.server._app import APIServer

__all__ = [
    "CONDITION_TYPES",
    "FINALIZER_KUBERNETES",
    "NamespaceController",
    "ServiceAccountController",
]

log = logging.getLogger("kubevisor.server.namespaces")

NAMESPACES: ResourceKey = ("", "namespaces")
SERVICE_ACCOUNTS: ResourceKey = ("", "serviceaccounts")

FINALIZER_KUBERNETES = "kubernetes"
"""The ``spec.finalizers`` token of the namespace controller."""

CONDITION_TYPES = (
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
)
"""The conditions the namespace controller maintains on a terminating namespace, in upstream's order."""

# (reason, message) of each condition while all is well (status "False").
_OK: Mapping[str, tuple[str, str]] = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": (
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    "NamespaceDeletionContentFailure": (
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


def _request(component: str) -> RequestOptions:
    return RequestOptions(
        field_validation="Ignore",
        field_manager="kube-controller-manager",
        user_agent=f"kube-controller-manager/v{KUBERNETES_VERSION} (linux/amd64) kubernetes/{component}",
    )


def _deleting(record: Record) -> bool:
    # The byte test spares parsing objects that are not being deleted (nearly all of them).
    return b'"deletionTimestamp"' in record.data and bool(
        (record.load().get("metadata") or {}).get("deletionTimestamp")
    )


@dataclass
class _Content:
    """What one pass over a terminating namespace found."""

    remaining: dict[str, int] = field(default_factory=dict)
    """``<resource>.<group>`` → objects left."""
    finalizers: dict[str, int] = field(default_factory=dict)
    """finalizer → objects left that carry it."""
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NamespaceController:
    """The namespace lifecycle controller as a server controller (see the module docstring)::

        APIServer(ServerOptions(controllers=(NamespaceController(), ...)))

    Holds only options: each call runs one controller for one server until cancelled.
    """

    workers: int = 2
    """Namespaces processed concurrently (upstream's ``--concurrent-namespace-syncs`` is 10)."""
    retry_delay: float = 0.05
    """Seconds before the first retry after content failed to delete; doubled per failure."""
    max_retry_delay: float = 10.0
    """Upper bound of the retry delay."""

    async def __call__(self, server: APIServer) -> None:
        await _Lifecycle(server, self).run()


class _Lifecycle:
    def __init__(self, server: APIServer, options: NamespaceController) -> None:
        self.server = server
        self.options = options
        self.terminating: set[str] = set()
        self.queue: WorkQueue[str] = WorkQueue(
            base_delay=options.retry_delay, max_delay=options.max_retry_delay
        )

    async def run(self) -> None:
        storage = self.server.storage
        assert storage is not None, "the server is not started"
        for record in storage.list_records(NAMESPACES):
            self._observe_namespace(record)
        unsubscribe = storage.subscribe(self._on_event)
        unwatch = self.server.registry.on_change(self._on_registry_change)
        try:
            await run_workers(self.queue, self._sync, self.options.workers, "namespace-controller")
        finally:
            unsubscribe()
            unwatch()
            self.queue.close()

    def _observe_namespace(self, record: Record) -> None:
        if _deleting(record):
            self.terminating.add(record.name)
            self.queue.add(record.name)

    def _on_event(self, event: Event) -> None:
        try:
            record = event.record
            if record.key == NAMESPACES:
                if event.type == DELETED:
                    self.terminating.discard(record.name)
                else:
                    self._observe_namespace(record)
            elif record.namespace and record.namespace in self.terminating:
                # Content of a terminating namespace changed (a finalizer went, an object went):
                # the namespace may be done.
                self.queue.add(record.namespace)
        except Exception:  # a listener must not raise into the storage's write path
            log.exception("namespace controller: cannot process event for %s", event.record.name)

    def _on_registry_change(self) -> None:
        # A resource added while a namespace terminates may hold content of it.
        for name in self.terminating:
            self.queue.add(name)

    async def _sync(self, name: str) -> None:
        storage, service = self.server.storage, self.server.service
        assert storage is not None
        info = self.server.registry.get("", "v1", "namespaces")
        record = storage.get(NAMESPACES, "", name)
        if info is None or record is None:
            self.terminating.discard(name)
            return
        namespace = service.record_object(info, record)
        meta = namespace["metadata"]
        if not meta.get("deletionTimestamp"):
            self.terminating.discard(name)
            return
        options = _request("namespace-controller")
        status = namespace.get("status") or {}
        if status.get("phase") != "Terminating":
            namespace["status"] = {**status, "phase": "Terminating"}
            namespace = await service.update(info, "", name, namespace, options, "status")
        spec_finalizers = list((namespace.get("spec") or {}).get("finalizers") or [])
        if not spec_finalizers:
            return  # finalized: only metadata.finalizers (other controllers') can hold it now
        content = await self._delete_content(name)
        if self._set_conditions(namespace, content):
            namespace = await service.update(info, "", name, namespace, options, "status")
        if content.errors:
            raise RetryLater(f"namespace {name}: " + "; ".join(sorted(content.errors)))
        if content.remaining:
            return  # held by finalizers: their removal brings the namespace back here
        if FINALIZER_KUBERNETES in spec_finalizers:
            namespace.setdefault("spec", {})["finalizers"] = [
                f for f in spec_finalizers if f != FINALIZER_KUBERNETES
            ]
            log.info("namespace controller: namespace %s is empty, finalizing", name)
            await service.update(info, "", name, namespace, options, "finalize")

    def _content_resources(self) -> list[ResourceInfo]:
        """One served version of every namespaced resource that can be listed and deleted."""
        seen: set[ResourceKey] = set()
        out: list[ResourceInfo] = []
        for info in self.server.registry.resources():
            key = resource_key(info)
            if info.namespaced and "delete" in info.verbs and "list" in info.verbs and key not in seen:
                seen.add(key)
                out.append(info)
        return out

    async def _delete_content(self, namespace: str) -> _Content:
        storage, service = self.server.storage, self.server.service
        assert storage is not None
        content = _Content()
        options = _request("namespace-controller")
        for info in self._content_resources():
            key = resource_key(info)
            records = storage.list_records(key, namespace)
            if not records:
                continue
            failed = False
            for record in records:
                if _deleting(record):
                    continue
                try:
                    await service.delete(
                        info, namespace, record.name, {"propagationPolicy": "Background"}, options
                    )
                except NotFound:
                    continue
                except ApiError as exc:
                    failed = True
                    content.errors.append(exc.message)
            left = storage.list_records(key, namespace)
            if not left:
                continue
            content.remaining[f"{info.plural}.{info.group}"] = len(left)
            held = False
            for record in left:
                finalizers = (record.load().get("metadata") or {}).get("finalizers") or []
                for finalizer in finalizers:
                    content.finalizers[finalizer] = content.finalizers.get(finalizer, 0) + 1
                    held = True
            if not held and not failed:
                content.errors.append(
                    f"unexpected items still remain in namespace: {namespace} for gvr: "
                    f"{info.group}/{info.version}, Resource={info.plural}"
                )
        return content

    def _set_conditions(self, namespace: dict[str, Any], content: _Content) -> bool:
        """Bring ``namespace``'s status conditions up to date with ``content`` (upstream's rules:
        every maintained type present, transition time moved only when the status flips).  Returns
        whether anything changed."""
        wanted: dict[str, tuple[str, str, str]] = {}
        if content.errors:
            messages = sorted(content.errors)
            wanted["NamespaceDeletionContentFailure"] = (
                "True",
                "ContentDeletionFailed",
                f"Failed to delete all resource types, {len(messages)} remaining: {', '.join(messages)}",
            )
        if content.remaining:
            listed = sorted(
                f"{resource} has {n} resource instances" for resource, n in content.remaining.items()
            )
            wanted["NamespaceContentRemaining"] = (
                "True",
                "SomeResourcesRemain",
                f"Some resources are remaining: {', '.join(listed)}",
            )
        if content.finalizers:
            listed = sorted(f"{name} in {n} resource instances" for name, n in content.finalizers.items())
            wanted["NamespaceFinalizersRemaining"] = (
                "True",
                "SomeFinalizersRemain",
                f"Some content in the namespace has finalizers remaining: {', '.join(listed)}",
            )
        status = namespace.setdefault("status", {})
        conditions = status.get("conditions")
        if not isinstance(conditions, list):
            conditions = status["conditions"] = []
        stamp = format_time(self.server.service.clock())
        changed = False
        for kind in CONDITION_TYPES:
            state, reason, message = wanted.get(kind) or ("False", *_OK[kind])
            current = next((c for c in conditions if isinstance(c, dict) and c.get("type") == kind), None)
            if current is None:
                conditions.append(
                    {
                        "type": kind,
                        "status": state,
                        "lastTransitionTime": stamp,
                        "reason": reason,
                        "message": message,
                    }
                )
                changed = True
            elif (current.get("status"), current.get("reason"), current.get("message")) != (
                state,
                reason,
                message,
            ):
                if current.get("status") != state:
                    current["lastTransitionTime"] = stamp
                current.update(status=state, reason=reason, message=message)
                changed = True
        return changed


@dataclass(frozen=True)
class ServiceAccountController:
    """Creates the ServiceAccounts every active namespace should have (upstream's
    ``serviceaccount-controller``)::

        APIServer(ServerOptions(controllers=(ServiceAccountController(), ...)))
    """

    names: tuple[str, ...] = ("default",)
    """ServiceAccounts ensured in each namespace."""
    retry_delay: float = 0.05
    """Seconds before the first retry of a failed create; doubled per failure."""
    max_retry_delay: float = 10.0
    """Upper bound of the retry delay."""

    async def __call__(self, server: APIServer) -> None:
        await _ServiceAccounts(server, self).run()


class _ServiceAccounts:
    def __init__(self, server: APIServer, options: ServiceAccountController) -> None:
        self.server = server
        self.options = options
        self.queue: WorkQueue[str] = WorkQueue(
            base_delay=options.retry_delay, max_delay=options.max_retry_delay
        )

    async def run(self) -> None:
        storage = self.server.storage
        assert storage is not None, "the server is not started"
        for record in storage.list_records(NAMESPACES):
            self.queue.add(record.name)
        unsubscribe = storage.subscribe(self._on_event)
        try:
            await run_workers(self.queue, self._sync, 1, "serviceaccount-controller")
        finally:
            unsubscribe()
            self.queue.close()

    def _on_event(self, event: Event) -> None:
        # Nothing here can raise (a listener must not raise into the storage's write path).
        record = event.record
        if record.key == NAMESPACES:
            if event.type != DELETED:
                self.queue.add(record.name)
        elif record.key == SERVICE_ACCOUNTS and event.type == DELETED and record.name in self.options.names:
            self.queue.add(record.namespace)

    async def _sync(self, namespace: str) -> None:
        storage = self.server.storage
        assert storage is not None
        info = self.server.registry.get("", "v1", "serviceaccounts")
        record = storage.get(NAMESPACES, "", namespace)
        if info is None or record is None:
            return
        obj = record.load()
        if (obj.get("metadata") or {}).get("deletionTimestamp") or (obj.get("status") or {}).get(
            "phase", "Active"
        ) != "Active":
            return  # nothing is created in a namespace on its way out
        for name in self.options.names:
            if storage.get(SERVICE_ACCOUNTS, namespace, name) is not None:
                continue
            try:
                await self.server.service.create(
                    info, namespace, {"metadata": {"name": name}}, _request("serviceaccount-controller")
                )
            except (AlreadyExists, NotFound, Forbidden):
                continue  # created meanwhile, or the namespace went or started terminating
