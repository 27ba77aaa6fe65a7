"""The client: every operation on typed resources and on plain dicts."""

from __future__ import annotations

import builtins
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeVar, overload

import aiohttp
import orjson

from kubevisor.api import Clock, GroupVersionKind, NotFound, ResourceInfo, ServerError, now
from kubevisor.client._clock import MonotonicClock
from kubevisor.client._config import ClientConfig, load_config
from kubevisor.client._decode import loads
from kubevisor.client._discovery import Discovery
from kubevisor.client._list import ListPager, ObjectList
from kubevisor.client._listdecode import ListDecoder
from kubevisor.client._options import ClientOptions
from kubevisor.client._transport import Transport, quote_segment
from kubevisor.client._typed import TypedResource, is_typed_class, is_typed_object
from kubevisor.client._watch import Watch

__all__ = [
    "ALL_NAMESPACES",
    "Client",
    "FieldValidation",
    "PatchType",
    "Preconditions",
    "PropagationPolicy",
]

_PREFIX_CACHE_SIZE: Final = 4096
"""Entries in each of a client's caches of collection paths and targets (bounded: namespaces and
discovered kinds come and go)."""

ALL_NAMESPACES: Final = "*"
"""Pass as ``namespace`` to list, watch or delete a collection across every namespace."""

FieldValidation = Literal["Strict", "Warn", "Ignore"]
PropagationPolicy = Literal["Orphan", "Background", "Foreground"]

T = TypeVar("T", bound=TypedResource)
X = TypeVar("X")
Obj = dict[str, Any]
Untyped = ResourceInfo | GroupVersionKind


class PatchType(StrEnum):
    """The patch formats of ``PATCH``, by their content type."""

    JSON = "application/json-patch+json"
    """RFC 6902: a list of operations (``add``, ``remove``, ``replace``, ``test``, ...)."""
    MERGE = "application/merge-patch+json"
    """RFC 7386: a partial object; ``null`` deletes; lists are replaced whole."""
    STRATEGIC = "application/strategic-merge-patch+json"
    """Built-in kinds only: lists merge by their patch merge keys."""
    APPLY = "application/apply-patch+yaml"
    """Server-side apply (prefer :meth:`Client.apply`)."""


_CONTENT_TYPES: Final = {patch_type: patch_type.value for patch_type in PatchType}
"""Each patch type's content type as a plain string (an enum's .value is a property lookup)."""


@dataclass(frozen=True)
class Preconditions:
    """Delete only if the object still has this uid and/or resourceVersion (else 409 Conflict)."""

    uid: str | None = None
    resource_version: str | None = None

    def to_wire(self) -> dict[str, str]:
        wire: dict[str, str] = {}
        if self.uid is not None:
            wire["uid"] = self.uid
        if self.resource_version is not None:
            wire["resourceVersion"] = self.resource_version
        return wire


@dataclass(frozen=True)
class _Target:
    info: ResourceInfo
    typed: type[Any] | None
    discovered: bool


def _wire(obj: Any) -> Obj:
    if isinstance(obj, dict):
        return obj
    if is_typed_object(obj):
        wire: Obj = obj.to_wire()
        return wire
    raise TypeError(f"expected a dict or a TypedResource instance, got {type(obj).__name__}")


def _metadata(obj: Obj) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValueError("object metadata must be a mapping")
    return metadata


def _require_name(obj: Obj, purpose: str) -> str:
    name = _metadata(obj).get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"object has no metadata.name (needed to {purpose} it)")
    return name


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("name must be a non-empty string")
    return name


def _write_params(
    dry_run: bool, field_manager: str | None, field_validation: FieldValidation | None
) -> dict[str, str]:
    params: dict[str, str] = {}
    if dry_run:
        params["dryRun"] = "All"
    if field_manager:
        params["fieldManager"] = field_manager
    if field_validation is not None:
        params["fieldValidation"] = field_validation
    return params


def _identity(obj: Obj) -> Obj:
    return obj


def _decode(body: bytes) -> Any:
    return loads(body) if body else None


async def _decode_list(inject: bytes, content: aiohttp.StreamReader) -> tuple[list[Any], dict[str, Any]]:
    """Decode a list response as it arrives (see :mod:`kubevisor.client._listdecode`); items get
    ``apiVersion`` and ``kind``, which servers omit inside lists of built-in kinds."""
    decoder = ListDecoder(inject)
    async for chunk in content.iter_any():
        decoder.feed(chunk)
    try:
        return decoder.finish()
    except orjson.JSONDecodeError as exc:
        raise ServerError(f"the list response is not valid JSON: {exc}", code=500) from exc


def _path_not_found(error: NotFound) -> bool:
    """A 404 for the URL itself ("the server could not find the requested resource"), not for a
    named object: upstream names the object in ``details.name`` for the latter."""
    return not error.details.get("name")


class Client:
    """An async client for one API server.

    Use as ``async with Client(config) as client:`` (or call :meth:`close`).  Connections are pooled
    (``ClientOptions.max_connections``), every request passes the client-side rate limiter, and
    failures are retried as :class:`RetryOptions` describes.

    Kinds are named by a :class:`TypedResource` class (results are instances of it), by a
    :class:`ResourceInfo` (used as is) or by a :class:`GroupVersionKind` (resolved through
    discovery; results are dicts).  Objects are dicts (wire form, addressed by their apiVersion and
    kind) or instances of a :class:`TypedResource` class, and results have the type of the input.

    Namespaces: a namespaced request uses, in order, the ``namespace`` argument, the object's
    ``metadata.namespace`` and the config's namespace; the first two must agree.
    :data:`ALL_NAMESPACES` lists, watches or deletes across namespaces.  A namespace named for a
    cluster-scoped kind is a ``ValueError``.

    Errors: the server's errors as the typed :class:`~kubevisor.api.ApiError` tree (``NotFound``,
    ``Conflict``, ``AlreadyExists``, ``Invalid``, ``Expired``, ``Forbidden``, ``Unauthorized``,
    ``TooManyRequests``, ``ServerError``, ...) carrying the Status; :class:`TransportError` when the
    server cannot be reached; :class:`UnknownKind` for a kind the server does not serve;
    ``ValueError`` for an object lacking what the operation needs (apiVersion, kind, name).
    """

    def __init__(
        self,
        config: ClientConfig | None = None,
        options: ClientOptions | None = None,
        *,
        clock: MonotonicClock | None = None,
        wall_clock: Clock = now,
        rng: random.Random | None = None,
    ) -> None:
        """``config`` defaults to :func:`load_config` (kubeconfig or in-cluster).  ``clock`` drives
        the rate limiter, retry backoff and token-file refresh; ``wall_clock`` decides exec
        credential expiry; ``rng`` draws jitter (inject all three in tests)."""
        self.config: ClientConfig = config if config is not None else load_config()
        self.options: ClientOptions = options if options is not None else ClientOptions()
        self.transport = Transport(self.config, self.options, clock=clock, wall_clock=wall_clock, rng=rng)
        self.discovery = Discovery(self.transport)
        self._prefixes: dict[tuple[int, str | None], tuple[ResourceInfo, str]] = {}
        self._targets: dict[int, _Target] = {}

    @property
    def namespace(self) -> str:
        """The default namespace (from the kubeconfig context or the service account)."""
        return self.config.namespace

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool; idempotent."""
        await self.transport.close()

    # ---------------------------------------------------------------------------------------------
    # addressing

    async def resource_info(
        self, kind: type[TypedResource] | ResourceInfo | GroupVersionKind
    ) -> ResourceInfo:
        """What the client addresses for ``kind`` (resolving a GVK through discovery)."""
        return (await self._target(kind)).info

    async def _target(self, kind: Any) -> _Target:
        if isinstance(kind, ResourceInfo):
            # One per ResourceInfo, as it is immutable (a frozen dataclass costs a microsecond to build).
            target = self._targets.get(id(kind))
            if target is None or target.info is not kind:
                if len(self._targets) >= _PREFIX_CACHE_SIZE:
                    self._targets.clear()
                target = self._targets[id(kind)] = _Target(kind, None, False)
            return target
        if isinstance(kind, GroupVersionKind):
            return _Target(await self.discovery.resource_for_kind(kind), None, True)
        if is_typed_class(kind):
            return _Target(kind.resource_info(), kind, False)
        raise TypeError(f"expected a TypedResource class, a ResourceInfo or a GroupVersionKind, got {kind!r}")

    async def _object_target(self, obj: Any) -> tuple[_Target, Obj]:
        wire = _wire(obj)
        if not isinstance(obj, dict):
            return _Target(type(obj).resource_info(), type(obj), False), wire
        try:
            gvk = GroupVersionKind.of(wire)
        except ValueError as exc:
            raise ValueError(f"object has no valid apiVersion/kind: {exc}") from None
        return _Target(await self.discovery.resource_for_kind(gvk), None, True), wire

    def _run(self, target: _Target, kind: Any, op: Callable[[_Target], Awaitable[X]]) -> Awaitable[X]:
        """Run ``op``; when a discovered path answers 404 for itself, refresh discovery and, if the
        kind now maps elsewhere, run it once more (a CRD recreated or a version dropped)."""
        if not target.discovered:
            return op(target)  # addressed as given: nothing to refresh, and no extra coroutine
        return self._run_discovered(target, kind, op)

    async def _run_discovered(self, target: _Target, kind: Any, op: Callable[[_Target], Awaitable[X]]) -> X:
        try:
            return await op(target)
        except NotFound as error:
            if not _path_not_found(error):
                raise
            self.discovery.invalidate(target.info.group, target.info.version)
            fresh = await self._target(kind if kind is not None else target.info.gvk)
            if fresh.info == target.info:
                raise
            return await op(fresh)

    def _namespace(
        self, info: ResourceInfo, namespace: str | None, obj: Obj | None = None, *, allow_all: bool = False
    ) -> str | None:
        if not info.namespaced:
            if namespace is not None and namespace != ALL_NAMESPACES:
                raise ValueError(
                    f"{info.qualified} is cluster-scoped: a namespace ({namespace!r}) does not apply"
                )
            return None
        if namespace == ALL_NAMESPACES:
            if not allow_all:
                raise ValueError("ALL_NAMESPACES applies only to list, watch and delete_collection")
            return None
        from_obj = _metadata(obj).get("namespace") if obj is not None else None
        if namespace and from_obj and namespace != from_obj:
            raise ValueError(
                f"the object's namespace {from_obj!r} does not match the namespace argument {namespace!r}"
            )
        return namespace or from_obj or self.config.namespace

    def _path(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        # The collection part (group, version, namespace, plural) is the same for every request to
        # one kind in one namespace: it is escaped once and cached, keyed by the identity of the
        # (immutable) ResourceInfo, which the entry keeps alive so that the identity stays valid.
        key = (id(info), namespace)
        entry = self._prefixes.get(key)
        if entry is None or entry[0] is not info:
            segments = ["apis", info.group, info.version] if info.group else ["api", info.version]
            if namespace is not None:
                segments += ["namespaces", namespace]
            segments.append(info.plural)
            if len(self._prefixes) >= _PREFIX_CACHE_SIZE:
                self._prefixes.clear()
            entry = self._prefixes[key] = (info, Transport.path(*segments))
        if name is None:
            return entry[1]
        path = entry[1] + "/" + quote_segment(name)
        return path + "/" + quote_segment(subresource) if subresource else path

    @staticmethod
    def _converter(target: _Target) -> Callable[[Obj], Any]:
        typed = target.typed
        if typed is None:
            return _identity
        from_wire: Callable[[Obj], Any] = typed.from_wire
        return from_wire

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        payload = orjson.dumps(body) if body is not None else None
        response = await self.transport.request(
            method,
            path,
            params=params,
            body=payload,
            content_type=content_type if payload is not None else None,
        )
        return _decode(response.body)

    # ---------------------------------------------------------------------------------------------
    # raw access

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """Send any request to an API path (``/version``, ``/api/v1/namespaces/x/pods/y/eviction``)
        with the client's credentials, limits and retries; ``body`` is JSON-encoded; returns the
        decoded JSON response.  Errors as for every operation."""
        return await self._json(method, path, params=params, body=body, content_type=content_type)

    async def version(self) -> dict[str, Any]:
        """``GET /version``: the server's version information."""
        result: dict[str, Any] = await self._json("GET", "/version")
        return result

    # ---------------------------------------------------------------------------------------------
    # reads

    @overload
    async def get(self, kind: type[T], name: str, *, namespace: str | None = None) -> T: ...
    @overload
    async def get(self, kind: Untyped, name: str, *, namespace: str | None = None) -> Obj: ...
    async def get(self, kind: Any, name: str, *, namespace: str | None = None) -> Any:
        """The object ``name``.  Raises ``NotFound`` when it does not exist."""
        _check_name(name)

        async def op(target: _Target) -> Any:
            path = self._path(target.info, self._namespace(target.info, namespace), name)
            return self._converter(target)(await self._json("GET", path))

        return await self._run(await self._target(kind), kind, op)

    @overload
    def list(
        self,
        kind: type[T],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        resource_version_match: Literal["Exact", "NotOlderThan"] | None = None,
        limit: int | None = 500,
    ) -> ListPager[T]: ...
    @overload
    def list(
        self,
        kind: Untyped,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        resource_version_match: Literal["Exact", "NotOlderThan"] | None = None,
        limit: int | None = 500,
    ) -> ListPager[Obj]: ...
    def list(
        self,
        kind: Any,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        resource_version_match: Literal["Exact", "NotOlderThan"] | None = None,
        limit: int | None = 500,
    ) -> ListPager[Any]:
        """Iterate over the matching objects, ``limit`` per request (``None``: one unpaged request).

        ``async for obj in client.list(...)``; the pager's ``resource_version`` is the list's once
        the first page arrived; ``await client.list(...).collect()`` is :meth:`list_all`.  Items
        come with ``apiVersion`` and ``kind`` set (servers omit them inside lists).
        Selector syntax and resourceVersion semantics are the API's (``resourceVersion="0"``
        allows a possibly stale list served from the API server's cache).
        """
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be positive or None, got {limit}")
        resolved: list[_Target] = []

        async def fetch(token: str | None, paged: bool) -> tuple[builtins.list[Any], str, str]:
            if not resolved:
                resolved.append(await self._target(kind))
            params: dict[str, str] = {}
            if label_selector:
                params["labelSelector"] = label_selector
            if field_selector:
                params["fieldSelector"] = field_selector
            if paged and limit is not None:
                params["limit"] = str(limit)
            if token:
                # A continuation is served at the token's version: resourceVersion must not be sent.
                params["continue"] = token
            else:
                if resource_version is not None:
                    params["resourceVersion"] = resource_version
                if resource_version_match is not None:
                    params["resourceVersionMatch"] = resource_version_match

            async def op(target: _Target) -> tuple[builtins.list[Any], str, str]:
                info = target.info
                path = self._path(info, self._namespace(info, namespace, allow_all=True))
                inject = (
                    b'"apiVersion":'
                    + orjson.dumps(info.api_version)
                    + b',"kind":'
                    + orjson.dumps(info.kind)
                    + b","
                )
                items, envelope = await self.transport.get_streamed(
                    path, partial(_decode_list, inject), params=params
                )
                convert = self._converter(target)
                converted = items if target.typed is None else [convert(item) for item in items]
                metadata = envelope.get("metadata") or {}
                return (
                    converted,
                    str(metadata.get("resourceVersion") or ""),
                    str(metadata.get("continue") or ""),
                )

            target = resolved[0]
            return await self._run(target, kind, op)

        return ListPager(fetch)

    @overload
    async def list_all(
        self,
        kind: type[T],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        resource_version_match: Literal["Exact", "NotOlderThan"] | None = None,
        limit: int | None = 500,
    ) -> ObjectList[T]: ...
    @overload
    async def list_all(
        self,
        kind: Untyped,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        resource_version_match: Literal["Exact", "NotOlderThan"] | None = None,
        limit: int | None = 500,
    ) -> ObjectList[Obj]: ...
    async def list_all(
        self,
        kind: Any,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        resource_version_match: Literal["Exact", "NotOlderThan"] | None = None,
        limit: int | None = 500,
    ) -> ObjectList[Any]:
        """Every matching object and the list's resourceVersion (from which to start a watch).
        Pages as :meth:`list`; a continue token that expires mid-way falls back to one unpaged list."""
        pager = self.list(
            kind,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
            limit=limit,
        )
        return await pager.collect()

    @overload
    def watch(
        self,
        kind: type[T],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
    ) -> Watch[T]: ...
    @overload
    def watch(
        self,
        kind: Untyped,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
    ) -> Watch[Obj]: ...
    def watch(
        self,
        kind: Any,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
    ) -> Watch[Any]:
        """Watch changes, as an async iterator of :class:`WatchEvent` (see :class:`Watch` for the
        resumption and :class:`~kubevisor.api.Expired` contract).

        Start from a list's resourceVersion to see every later change once; with ``None`` the
        server first sends ``ADDED`` for every existing object.  Use ``async with`` (or
        :meth:`Watch.close`) to release the connection when done early.
        """
        return _LazyWatch(self, kind, namespace, label_selector, field_selector, resource_version)

    # ---------------------------------------------------------------------------------------------
    # writes

    @overload
    async def create(
        self,
        obj: T,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: FieldValidation | None = None,
    ) -> T: ...
    @overload
    async def create(
        self,
        obj: Obj,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: FieldValidation | None = None,
    ) -> Obj: ...
    async def create(
        self,
        obj: Any,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: FieldValidation | None = None,
    ) -> Any:
        """``POST`` a new object (``metadata.name`` or ``generateName``); returns it as stored.
        Raises ``AlreadyExists`` when the name is taken, ``Invalid`` with field causes."""
        target, wire = await self._object_target(obj)
        params = _write_params(dry_run, field_manager, field_validation)

        async def op(t: _Target) -> Any:
            path = self._path(t.info, self._namespace(t.info, namespace, wire))
            return self._converter(t)(await self._json("POST", path, params=params, body=wire))

        return await self._run(target, None, op)

    @overload
    async def replace(
        self,
        obj: T,
        *,
        namespace: str | None = None,
        subresource: Literal["status"] | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: FieldValidation | None = None,
    ) -> T: ...
    @overload
    async def replace(
        self,
        obj: Obj,
        *,
        namespace: str | None = None,
        subresource: Literal["status"] | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: FieldValidation | None = None,
    ) -> Obj: ...
    async def replace(
        self,
        obj: Any,
        *,
        namespace: str | None = None,
        subresource: Literal["status"] | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: FieldValidation | None = None,
    ) -> Any:
        """``PUT`` the whole object (or only its status, with ``subresource="status"``).  With
        ``metadata.resourceVersion`` set the write is conditional: ``Conflict`` if it changed."""
        target, wire = await self._object_target(obj)
        name = _require_name(wire, "replace")
        params = _write_params(dry_run, field_manager, field_validation)

        async def op(t: _Target) -> Any:
            path = self._path(t.info, self._namespace(t.info, namespace, wire), name, subresource)
            return self._converter(t)(await self._json("PUT", path, params=params, body=wire))

        return await self._run(target, None, op)

    @overload
    async def replace_status(
        self, obj: T, *, namespace: str | None = None, dry_run: bool = False, field_manager: str | None = None
    ) -> T: ...
    @overload
    async def replace_status(
        self,
        obj: Obj,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Obj: ...
    async def replace_status(
        self,
        obj: Any,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Any:
        """``PUT`` to the ``/status`` subresource: only ``status`` changes."""
        return await self.replace(
            obj, namespace=namespace, subresource="status", dry_run=dry_run, field_manager=field_manager
        )

    @overload
    async def patch(
        self,
        kind: type[T],
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = PatchType.MERGE,
        namespace: str | None = None,
        subresource: Literal["status"] | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: FieldValidation | None = None,
        force: bool | None = None,
    ) -> T: ...
    @overload
    async def patch(
        self,
        kind: Untyped,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = PatchType.MERGE,
        namespace: str | None = None,
        subresource: Literal["status"] | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: FieldValidation | None = None,
        force: bool | None = None,
    ) -> Obj: ...
    async def patch(
        self,
        kind: Any,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = PatchType.MERGE,
        namespace: str | None = None,
        subresource: Literal["status"] | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: FieldValidation | None = None,
        force: bool | None = None,
    ) -> Any:
        """``PATCH`` the object ``name`` (or its status) and return the result.

        ``patch`` is a list of operations for :attr:`PatchType.JSON`, a partial object (dict or
        typed instance) otherwise.  ``force`` is only meaningful (and only allowed) for
        :attr:`PatchType.APPLY`, which also requires ``field_manager``.  Strategic merge patches
        are for built-in kinds; custom resources answer 415.
        """
        _check_name(name)
        if type(patch_type) is not PatchType:
            patch_type = PatchType(patch_type)
        body: Any = patch if isinstance(patch, list | dict) else _wire(patch)
        if patch_type is PatchType.JSON and not isinstance(body, list):
            raise ValueError("a JSON patch (RFC 6902) is a list of operations")
        if patch_type is not PatchType.JSON and not isinstance(body, dict):
            raise ValueError(f"a {patch_type.name.lower()} patch is an object")
        if patch_type is PatchType.APPLY and not field_manager:
            raise ValueError("server-side apply requires a field_manager")
        if force is not None and patch_type is not PatchType.APPLY:
            raise ValueError("force applies only to server-side apply patches")
        params = _write_params(dry_run, field_manager, field_validation)
        if force:
            params["force"] = "true"
        content_type = _CONTENT_TYPES[patch_type]

        async def op(t: _Target) -> Any:
            path = self._path(t.info, self._namespace(t.info, namespace), name, subresource)
            result = await self._json("PATCH", path, params=params, body=body, content_type=content_type)
            return self._converter(t)(result)

        return await self._run(await self._target(kind), kind, op)

    @overload
    async def patch_status(
        self,
        kind: type[T],
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = PatchType.MERGE,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> T: ...
    @overload
    async def patch_status(
        self,
        kind: Untyped,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = PatchType.MERGE,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Obj: ...
    async def patch_status(
        self,
        kind: Any,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = PatchType.MERGE,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Any:
        """``PATCH`` the ``/status`` subresource (merge patch by default)."""
        return await self.patch(
            kind,
            name,
            patch,
            patch_type=patch_type,
            namespace=namespace,
            subresource="status",
            dry_run=dry_run,
            field_manager=field_manager,
        )

    @overload
    async def apply(
        self,
        obj: T,
        *,
        field_manager: str,
        force: bool = False,
        namespace: str | None = None,
        subresource: Literal["status"] | None = None,
        dry_run: bool = False,
        field_validation: FieldValidation | None = None,
    ) -> T: ...
    @overload
    async def apply(
        self,
        obj: Obj,
        *,
        field_manager: str,
        force: bool = False,
        namespace: str | None = None,
        subresource: Literal["status"] | None = None,
        dry_run: bool = False,
        field_validation: FieldValidation | None = None,
    ) -> Obj: ...
    async def apply(
        self,
        obj: Any,
        *,
        field_manager: str,
        force: bool = False,
        namespace: str | None = None,
        subresource: Literal["status"] | None = None,
        dry_run: bool = False,
        field_validation: FieldValidation | None = None,
    ) -> Any:
        """Server-side apply: ``obj`` states the fields ``field_manager`` owns (creating the object
        if missing; fields it owned before and omits now are removed).  A field owned by another
        manager raises ``Conflict`` (causes name the fields and managers) unless ``force`` takes
        ownership.  ``metadata.managedFields`` is dropped from the body (the server rejects it);
        ``metadata.resourceVersion``, if present, makes the apply conditional."""
        if not field_manager:
            raise ValueError("server-side apply requires a field_manager")
        target, wire = await self._object_target(obj)
        name = _require_name(wire, "apply")
        metadata = _metadata(wire)
        if "managedFields" in metadata:
            wire = {**wire, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}
        params = _write_params(dry_run, field_manager, field_validation)
        if force:
            params["force"] = "true"

        async def op(t: _Target) -> Any:
            path = self._path(t.info, self._namespace(t.info, namespace, wire), name, subresource)
            result = await self._json(
                "PATCH", path, params=params, body=wire, content_type=PatchType.APPLY.value
            )
            return self._converter(t)(result)

        return await self._run(target, None, op)

    @overload
    async def apply_status(
        self,
        obj: T,
        *,
        field_manager: str,
        force: bool = False,
        namespace: str | None = None,
        dry_run: bool = False,
    ) -> T: ...
    @overload
    async def apply_status(
        self,
        obj: Obj,
        *,
        field_manager: str,
        force: bool = False,
        namespace: str | None = None,
        dry_run: bool = False,
    ) -> Obj: ...
    async def apply_status(
        self,
        obj: Any,
        *,
        field_manager: str,
        force: bool = False,
        namespace: str | None = None,
        dry_run: bool = False,
    ) -> Any:
        """Server-side apply to the ``/status`` subresource."""
        return await self.apply(
            obj,
            field_manager=field_manager,
            force=force,
            namespace=namespace,
            subresource="status",
            dry_run=dry_run,
        )

    # ---------------------------------------------------------------------------------------------
    # deletes

    @staticmethod
    def _delete_options(
        propagation_policy: PropagationPolicy | None,
        grace_period_seconds: int | None,
        preconditions: Preconditions | None,
        dry_run: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy is not None:
            if propagation_policy not in ("Orphan", "Background", "Foreground"):
                raise ValueError(
                    f"propagation_policy must be Orphan, Background or Foreground, not {propagation_policy!r}"
                )
            body["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            if grace_period_seconds < 0:
                raise ValueError("grace_period_seconds must not be negative")
            body["gracePeriodSeconds"] = grace_period_seconds
        if preconditions is not None:
            body["preconditions"] = preconditions.to_wire()
        if dry_run:
            body["dryRun"] = ["All"]
        return body

    async def delete(
        self,
        kind: type[TypedResource] | ResourceInfo | GroupVersionKind,
        name: str,
        *,
        namespace: str | None = None,
        propagation_policy: PropagationPolicy | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Preconditions | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """``DELETE`` the object ``name``; returns the server's answer as a dict: the object while
        its deletion is pending (``deletionTimestamp`` set, finalizers remaining), the final object,
        or a ``Success`` Status.  Raises ``NotFound`` if it is gone already, ``Conflict`` when a
        precondition fails.  ``propagation_policy`` decides dependents' fate (the server's default
        is ``Background``)."""
        _check_name(name)
        body = self._delete_options(propagation_policy, grace_period_seconds, preconditions, dry_run)

        async def op(t: _Target) -> dict[str, Any]:
            path = self._path(t.info, self._namespace(t.info, namespace), name)
            result: dict[str, Any] = await self._json("DELETE", path, body=body)
            return result

        return await self._run(await self._target(kind), kind, op)

    async def delete_collection(
        self,
        kind: type[TypedResource] | ResourceInfo | GroupVersionKind,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        propagation_policy: PropagationPolicy | None = None,
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """``DELETE`` every matching object in a namespace (or :data:`ALL_NAMESPACES`); returns the
        server's answer (the list of deleted objects, or a Status)."""
        body = self._delete_options(propagation_policy, grace_period_seconds, None, dry_run)
        params: dict[str, str] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector

        async def op(t: _Target) -> dict[str, Any]:
            path = self._path(t.info, self._namespace(t.info, namespace, allow_all=True))
            result: dict[str, Any] = await self._json("DELETE", path, params=params, body=body)
            return result

        return await self._run(await self._target(kind), kind, op)

    # ---------------------------------------------------------------------------------------------
    # scale

    async def get_scale(
        self,
        kind: type[TypedResource] | ResourceInfo | GroupVersionKind,
        name: str,
        *,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """The ``/scale`` subresource: an ``autoscaling/v1`` ``Scale`` (``spec.replicas``,
        ``status.replicas``, ``status.selector``)."""
        _check_name(name)

        async def op(t: _Target) -> dict[str, Any]:
            result: dict[str, Any] = await self._json(
                "GET", self._path(t.info, self._namespace(t.info, namespace), name, "scale")
            )
            return result

        return await self._run(await self._target(kind), kind, op)

    async def replace_scale(
        self,
        kind: type[TypedResource] | ResourceInfo | GroupVersionKind,
        name: str,
        scale: Mapping[str, Any],
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        """``PUT`` a ``Scale`` (as returned by :meth:`get_scale`, with ``spec.replicas`` changed)."""
        _check_name(name)
        params = _write_params(dry_run, field_manager, None)

        async def op(t: _Target) -> dict[str, Any]:
            path = self._path(t.info, self._namespace(t.info, namespace), name, "scale")
            result: dict[str, Any] = await self._json("PUT", path, params=params, body=dict(scale))
            return result

        return await self._run(await self._target(kind), kind, op)

    async def scale(
        self,
        kind: type[TypedResource] | ResourceInfo | GroupVersionKind,
        name: str,
        replicas: int,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        """Set ``spec.replicas`` through ``/scale`` (a merge patch); returns the ``Scale``."""
        _check_name(name)
        if replicas < 0:
            raise ValueError("replicas must not be negative")
        params = _write_params(dry_run, field_manager, None)

        async def op(t: _Target) -> dict[str, Any]:
            path = self._path(t.info, self._namespace(t.info, namespace), name, "scale")
            result: dict[str, Any] = await self._json(
                "PATCH",
                path,
                params=params,
                body={"spec": {"replicas": replicas}},
                content_type=PatchType.MERGE.value,
            )
            return result

        return await self._run(await self._target(kind), kind, op)


class _LazyWatch(Watch[Any]):
    """A :class:`Watch` whose kind is resolved (through discovery, if need be) on first use, so that
    ``client.watch(...)`` is synchronous and usable directly in ``async with``/``async for``."""

    def __init__(
        self,
        client: Client,
        kind: Any,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        resource_version: str | None,
    ) -> None:
        params = {"watch": "true", "allowWatchBookmarks": "true"}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        super().__init__(
            client.transport,
            "",
            params,
            lambda obj: obj,
            resource_version=resource_version,
            options=client.options.watch,
        )
        self._client = client
        self._kind = kind
        self._namespace_arg = namespace

    async def _open(self) -> None:
        if not self._path:
            target = await self._client._target(self._kind)
            info = target.info
            self._path = self._client._path(
                info, self._client._namespace(info, self._namespace_arg, allow_all=True)
            )
            self._convert = Client._converter(target)
        await super()._open()
