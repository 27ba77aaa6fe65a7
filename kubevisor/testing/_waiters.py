"""Waiting for an object to reach a state, by watching it (no polling, no sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar, overload

from kubevisor.api import Expired, GroupVersionKind, ResourceInfo
from kubevisor.client import Client, TypedResource

__all__ = ["WaitTimeout", "wait_for", "wait_for_list", "wait_gone"]

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
"""Seconds a waiter waits by default: a guard against a hang, never an assertion about speed."""


class WaitTimeout(AssertionError):
    """The object did not reach the awaited state in time.  The message names the object, what was
    awaited and the last state seen, so a failing test says what went wrong."""


def _describe(obj: Any) -> str:
    if obj is None:
        return "absent"
    wire = obj.to_wire() if hasattr(obj, "to_wire") else obj
    if not isinstance(wire, dict):
        return repr(wire)
    shown = {k: wire.get(k) for k in ("spec", "data", "status") if k in wire}
    meta = wire.get("metadata") or {}
    shown["resourceVersion"] = meta.get("resourceVersion")
    if meta.get("deletionTimestamp"):
        shown["deletionTimestamp"] = meta["deletionTimestamp"]
    return repr(shown)


@overload
async def wait_for(
    client: Client,
    kind: type[T],
    name: str,
    predicate: Callable[[T | None], Any] = ...,
    *,
    namespace: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
) -> T: ...
@overload
async def wait_for(
    client: Client,
    kind: ResourceInfo | GroupVersionKind,
    name: str,
    predicate: Callable[[dict[str, Any] | None], Any] = ...,
    *,
    namespace: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
) -> dict[str, Any]: ...
async def wait_for(
    client: Client,
    kind: Any,
    name: str,
    predicate: Callable[[Any], Any] = lambda obj: obj is not None,
    *,
    namespace: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - the hang guard is the waiter's whole contract
) -> Any:
    """Wait until ``predicate(obj)`` is truthy for object ``name`` of ``kind`` and return the object
    (typed when ``kind`` is a typed class).  ``predicate`` receives ``None`` while the object does
    not exist; the default waits for it to exist.  A predicate that raises ``AttributeError``,
    ``KeyError``, ``IndexError`` or ``TypeError`` counts as not yet (``obj.status.phase`` before a
    status exists).

    Reads the object once, then watches it from that version (an expired history reads again), so
    every state it passes through is seen.  Raises :class:`WaitTimeout` after ``timeout`` seconds
    with the last state seen.  When the awaited state is absence, returns ``None``.
    """
    last: list[Any] = [None]

    def satisfied(obj: Any) -> bool:
        last[0] = obj
        try:
            return bool(predicate(obj))
        except (AttributeError, KeyError, IndexError, TypeError):
            return False

    selector = f"metadata.name={name}"
    try:
        async with asyncio.timeout(timeout):
            while True:
                listing = await client.list_all(kind, namespace=namespace, field_selector=selector)
                current = listing.items[0] if listing.items else None
                if satisfied(current):
                    return current
                try:
                    async with client.watch(
                        kind,
                        namespace=namespace,
                        field_selector=selector,
                        resource_version=listing.resource_version,
                    ) as events:
                        async for event in events:
                            obj = None if event.type == "DELETED" else event.object
                            if satisfied(obj):
                                return obj
                except Expired:
                    continue
    except TimeoutError:
        where = f"{namespace}/{name}" if namespace else name
        kind_name = getattr(kind, "kind", None) or getattr(kind, "__name__", repr(kind))
        raise WaitTimeout(
            f"{kind_name} {where} did not reach the awaited state within {timeout:g}s;"
            f" last seen: {_describe(last[0])}"
        ) from None


async def wait_gone(
    client: Client,
    kind: type[TypedResource] | ResourceInfo | GroupVersionKind,
    name: str,
    *,
    namespace: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - see wait_for
) -> None:
    """Wait until object ``name`` of ``kind`` does not exist (deleted, its finalizers done)."""
    await wait_for(client, kind, name, lambda obj: obj is None, namespace=namespace, timeout=timeout)


async def wait_for_list(
    client: Client,
    kind: Any,
    predicate: Callable[[list[Any]], Any],
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - see wait_for
) -> Any:
    """Wait until ``predicate(objects)`` is truthy for the objects of ``kind`` (in ``namespace``,
    matching ``label_selector``) and return what it returned, e.g. the Event you were waiting for::

        event = await wait_for_list(client, EVENT, lambda events: next(
            (e for e in events if e["reason"] == "Done"), None), namespace=ns)

    Lists once, then keeps the list current from a watch (an expired history lists again), checking
    after every change.  Raises :class:`WaitTimeout` after ``timeout`` seconds.
    """
    seen: list[int] = [0]
    try:
        async with asyncio.timeout(timeout):
            while True:
                listing = await client.list_all(kind, namespace=namespace, label_selector=label_selector)
                objects: dict[tuple[str, str], Any] = {_key(obj): obj for obj in listing.items}
                seen[0] = len(objects)
                if result := predicate(list(objects.values())):
                    return result
                try:
                    async with client.watch(
                        kind,
                        namespace=namespace,
                        label_selector=label_selector,
                        resource_version=listing.resource_version,
                    ) as events:
                        async for event in events:
                            if event.type == "DELETED":
                                objects.pop(_key(event.object), None)
                            else:
                                objects[_key(event.object)] = event.object
                            seen[0] = len(objects)
                            if result := predicate(list(objects.values())):
                                return result
                except Expired:
                    continue
    except TimeoutError:
        kind_name = getattr(kind, "kind", None) or getattr(kind, "__name__", repr(kind))
        where = f" in {namespace}" if namespace else ""
        raise WaitTimeout(
            f"the {seen[0]} {kind_name} objects{where} did not satisfy the predicate within {timeout:g}s"
        ) from None


def _key(obj: Any) -> tuple[str, str]:
    wire = obj.to_wire() if hasattr(obj, "to_wire") else obj
    meta = wire.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""
