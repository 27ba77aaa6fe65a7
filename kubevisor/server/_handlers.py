"""HTTP handlers: Kubernetes REST paths onto :class:`ObjectService`, discovery and OpenAPI.

This layer only parses requests (paths, query parameters, bodies, Accept headers) and encodes
answers; every API rule lives in ``_service.py``.  Every error leaves as a ``Status`` object with
``Content-Type: application/json`` exactly (lightkube only parses errors with that header).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from aiohttp import web

from kubevisor.api import (
    ApiError,
    BadRequest,
    Expired,
    FieldError,
    Invalid,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    RequestEntityTooLarge,
    ResourceInfo,
    ServerError,
    UnsupportedMediaType,
    builtin_definitions,
)
from kubevisor.server import _discovery, _openapi
from kubevisor.server._openapi_pb import MEDIA_TYPE as OPENAPI_V2_PROTOBUF
from kubevisor.server._openapi_pb import MEDIA_TYPE_ALTERNATIVE as OPENAPI_V2_PROTOBUF_ALTERNATIVE
from kubevisor.server._openapi_pb import openapi_v2_protobuf
from kubevisor.server._protobuf import MEDIA_TYPE as PROTOBUF
from kubevisor.server._protobuf import decode_protobuf_object
from kubevisor.server._service import PATCH_TYPES, ListResult, ObjectService, RequestOptions, resource_key
from kubevisor.server._tables import table
from kubevisor.server._watch import Entry, Watcher, WatchHub

__all__ = ["HandlerOptions", "Handlers", "build_app"]

log = logging.getLogger("kubevisor.server")

JSON = "application/json"
_JSON_HEADERS = {"Content-Type": JSON}
_TRUE = ("true", "1", "True", "TRUE")
_EVENT_HEADS = {
    kind: b'{"type":"' + kind.encode() + b'","object":' for kind in ("ADDED", "MODIFIED", "DELETED")
}
MAX_BODY_BYTES = web.AppKey("max_body_bytes", int)
STREAM_LIST_ITEMS = 500
"""Lists longer than this are streamed in chunks instead of built as one buffer."""


@dataclass(frozen=True)
class HandlerOptions:
    """HTTP-level limits and watch timing (see ``ServerOptions`` for the documented defaults)."""

    max_body_bytes: int = 3 * 1024 * 1024
    watch_timeout: float = 1800.0
    bookmark_interval: float = 60.0


def json_response(
    body: bytes | dict[str, Any], status: int = 200, warnings: list[str] | None = None
) -> web.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    response = web.Response(body=data, status=status, headers=_JSON_HEADERS)
    for text in warnings or ():
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{escaped}"')
    return response


def error_response(error: ApiError) -> web.Response:
    return json_response(orjson.dumps(error.status), status=error.code)


def _not_found_path() -> NotFound:
    return NotFound("the server could not find the requested resource", details={})


@web.middleware
async def status_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn every failure into a Status: API errors as they are, aiohttp's own HTTP errors (unknown
    route, oversized body) and unexpected exceptions as their upstream equivalents."""
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[MAX_BODY_BYTES]
        return error_response(RequestEntityTooLarge(f"Request entity too large: limit is {limit}"))
    except web.HTTPNotFound:
        return error_response(_not_found_path())
    except web.HTTPMethodNotAllowed:
        return error_response(
            MethodNotAllowed("the server does not allow this method on the requested resource")
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        cls = ApiError
        return error_response(cls(exc.reason, code=exc.status, reason=exc.reason.replace(" ", "")))
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:
        log.exception("internal error serving %s %s", request.method, request.path)
        return error_response(ServerError(f"Internal error occurred: {exc}"))


# ------------------------------------------------------------------ request parsing


@dataclass(frozen=True, slots=True)
class Target:
    """What a resource path addresses."""

    info: ResourceInfo
    namespace: str | None  # None: all namespaces (or cluster-scoped)
    name: str | None
    subresource: str
    watch_path: bool = False


def _query(request: web.Request, key: str) -> str | None:
    return request.query.get(key)


def _int_query(request: web.Request, key: str) -> int | None:
    value = request.query.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f'invalid value for {key}: "{value}" is not an integer') from None


def _bool_query(request: web.Request, key: str) -> bool:
    return request.query.get(key, "") in _TRUE


def _request_options(request: web.Request) -> RequestOptions:
    dry_run = request.query.getall("dryRun", [])
    for value in dry_run:
        if value != "All":
            raise Invalid.for_fields(
                "CreateOptions" if request.method == "POST" else "UpdateOptions",
                "meta.k8s.io",
                "",
                [FieldError.not_supported("dryRun", value, ["All"])],
            )
    validation = request.query.get("fieldValidation") or "Warn"
    if validation not in ("Strict", "Warn", "Ignore"):
        raise BadRequest(f'fieldValidation must be one of "Ignore", "Warn" or "Strict", got "{validation}"')
    return RequestOptions(
        dry_run=bool(dry_run),
        field_validation=validation,
        field_manager=request.query.get("fieldManager"),
        user_agent=request.headers.get("User-Agent", ""),
        force=_bool_query(request, "force"),
    )


def _media_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"Request entity too large: limit is {limit}")
    data = await request.read()
    if len(data) > limit:
        raise RequestEntityTooLarge(f"Request entity too large: limit is {limit}")
    return data


def decode_body(data: bytes, media_type: str) -> Any:
    """Parse a JSON or YAML request body; 400 with the parser's complaint when malformed."""
    if not data.strip():
        raise BadRequest("the body of the request was empty")
    if media_type in ("application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml"):
        if data.lstrip()[:1] in (b"{", b"["):
            # JSON is YAML, and most clients (client-go, kubectl --server-side) send apply bodies as
            # JSON: orjson reads them some fifty times faster than the YAML parser.
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                pass  # YAML flow style that is not strict JSON: let the YAML parser judge it
        try:
            docs = list(yaml.load_all(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        except yaml.YAMLError as exc:
            raise BadRequest(f"error converting YAML to JSON: yaml: {_yaml_problem(exc)}") from None
        docs = [d for d in docs if d is not None]
        if len(docs) != 1:
            raise BadRequest("error converting YAML to JSON: expected exactly one YAML document")
        try:
            return orjson.loads(orjson.dumps(docs[0]))  # normalise dates and keys to JSON types
        except TypeError as exc:
            raise BadRequest(f"error converting YAML to JSON: {exc}") from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"couldn't get version/kind; json parse error: {exc}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"line {mark.line + 1}: {problem}" if mark is not None else str(problem)


def _wants_table(request: web.Request) -> str | None:
    """The Table version asked for in Accept (``v1``/``v1beta1``), or None for plain JSON."""
    accept = request.headers.get("Accept", "")
    if "as=Table" not in accept:
        return None
    for entry in accept.split(","):
        params = {}
        parts = [p.strip() for p in entry.split(";")]
        for part in parts[1:]:
            key, _, value = part.partition("=")
            params[key.strip()] = value.strip()
        if parts[0] == JSON and params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return params.get("v", "v1")
    return None


def _require_json_openapi(request: web.Request) -> None:
    """OpenAPI is served as JSON only.  Older clients ask for the protobuf form first and fall back
    to JSON on 406, so a request that accepts no JSON gets exactly that."""
    accept = request.headers.get("Accept", "")
    if not accept:
        return
    for entry in accept.split(","):
        media = entry.split(";", 1)[0].strip().lower()
        if media in (JSON, "*/*", "application/*") or media.endswith("+json"):
            return
    raise NotAcceptable(f"only application/json is supported for OpenAPI documents, not {accept}")


def _delete_options(request: web.Request, body: Any) -> dict[str, Any]:
    options: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
    if body is not None and not isinstance(body, dict):
        raise BadRequest("the body of the request was in an unknown format - expected DeleteOptions")
    grace = _int_query(request, "gracePeriodSeconds")
    if grace is not None:
        options["gracePeriodSeconds"] = grace
    policy = request.query.get("propagationPolicy")
    if policy:
        options["propagationPolicy"] = policy
    orphan = request.query.get("orphanDependents")
    if orphan is not None:
        options["orphanDependents"] = orphan in _TRUE
    return options


# ------------------------------------------------------------------ handlers


class Handlers:
    """The aiohttp handlers of one server instance."""

    def __init__(self, service: ObjectService, hub: WatchHub, options: HandlerOptions) -> None:
        self.service = service
        self.hub = hub
        self.options = options
        self.registry = service.registry
        self._cache: dict[str, bytes] = {}
        self._definitions = builtin_definitions()
        self.registry.on_change(self._cache.clear)

    # ----------------------------------------------------------- discovery

    def _cached(self, key: str, build: Callable[[], Any]) -> web.Response:
        body = self._cache.get(key)
        if body is None:
            body = self._cache[key] = orjson.dumps(build())
        return json_response(body)

    async def version(self, request: web.Request) -> web.Response:
        return self._cached("/version", _discovery.version_info)

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok", content_type="text/plain")

    async def core_versions(self, request: web.Request) -> web.Response:
        return self._cached("/api", _discovery.api_versions)

    async def groups(self, request: web.Request) -> web.Response:
        return self._cached("/apis", lambda: _discovery.api_group_list(self.registry.resources()))

    async def group(self, request: web.Request) -> web.Response:
        name = request.match_info["group"]

        def build() -> Any:
            group_list = _discovery.api_group_list(self.registry.resources())
            for group in group_list.get("groups", ()):
                if group.get("name") == name:
                    return {
                        "kind": "APIGroup",
                        "apiVersion": "v1",
                        **{k: v for k, v in group.items() if k not in ("kind", "apiVersion")},
                    }
            raise _not_found_path()

        return self._cached(f"/apis/{name}", build)

    async def resource_list(self, request: web.Request) -> web.Response:
        group = request.match_info.get("group", "")
        version = request.match_info["version"]
        if not self.registry.in_group_version(group, version):
            raise _not_found_path()
        return self._cached(
            f"/apis/{group}/{version}",
            lambda: _discovery.api_resource_list(group, version, self.registry.resources()),
        )

    async def openapi_v2(self, request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        if (
            OPENAPI_V2_PROTOBUF in accept
            or OPENAPI_V2_PROTOBUF_ALTERNATIVE in accept
            or request.path == "/swagger-2.0.0.pb-v1"
        ):
            body = self._cache.get("/openapi/v2#protobuf")
            if body is None:
                document = _openapi.openapi_v2(self.registry.resources(), self._definitions)
                body = self._cache["/openapi/v2#protobuf"] = openapi_v2_protobuf(document)
            # Go cannot parse the requested media type ("@" in it): upstream answers octet-stream.
            return web.Response(body=body, headers={"Content-Type": "application/octet-stream"})
        _require_json_openapi(request)
        return self._cached(
            "/openapi/v2", lambda: _openapi.openapi_v2(self.registry.resources(), self._definitions)
        )

    async def openapi_v3_index(self, request: web.Request) -> web.Response:
        _require_json_openapi(request)
        return self._cached(
            "/openapi/v3", lambda: _openapi.openapi_v3_index(self.registry.resources(), self._definitions)
        )

    async def openapi_v3(self, request: web.Request) -> web.Response:
        _require_json_openapi(request)
        path = request.match_info["path"]
        parts = path.split("/")
        if parts == ["api", "v1"]:
            group, version = "", "v1"
        elif len(parts) == 3 and parts[0] == "apis":
            group, version = parts[1], parts[2]
        else:
            raise _not_found_path()
        if not self.registry.in_group_version(group, version):
            raise _not_found_path()
        return self._cached(
            f"/openapi/v3/{path}",
            lambda: _openapi.openapi_v3_document(
                group, version, self.registry.resources(), self._definitions
            ),
        )

    # ----------------------------------------------------------- resources

    def _target(self, group: str, version: str, tail: str) -> Target:
        parts = [p for p in tail.split("/") if p]
        watch_path = bool(parts) and parts[0] == "watch"
        if watch_path:
            parts = parts[1:]
        if not parts:
            raise _not_found_path()
        namespace: str | None = None
        if parts[0] == "namespaces" and len(parts) >= 3:
            plural = parts[2]
            info = self.registry.get(group, version, plural)
            if info is not None and info.namespaced:
                namespace = parts[1]
                parts = parts[2:]
        plural = parts[0]
        info = self.registry.get(group, version, plural)
        if info is None or len(parts) > 3:
            raise _not_found_path()
        name = parts[1] if len(parts) >= 2 else None
        subresource = parts[2] if len(parts) == 3 else ""
        if subresource and not info.has_subresource(subresource):
            raise _not_found_path()
        return Target(info, namespace, name, subresource, watch_path)

    async def core_resource(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch(request, self._target("", "v1", request.match_info["tail"]))

    async def group_resource(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        return await self._dispatch(request, self._target(info["group"], info["version"], info["tail"]))

    async def _dispatch(self, request: web.Request, target: Target) -> web.StreamResponse:
        method = request.method
        info = target.info
        if target.name is None:
            if method == "GET":
                watch = target.watch_path or _bool_query(request, "watch")
                verb = "watch" if watch else "list"
            else:
                verb = {"POST": "create", "DELETE": "deletecollection"}.get(method, "")
                if target.namespace is None and info.namespaced and verb:
                    verb = ""  # creating or deleting across all namespaces has no route
        else:
            verb = {
                "GET": "watch" if target.watch_path else "get",
                "PUT": "update",
                "PATCH": "patch",
                "DELETE": "delete",
            }.get(method, "")
            if target.subresource and verb not in ("get", "update", "patch"):
                verb = ""
        if not verb or (
            verb not in info.verbs and not (target.subresource and verb in ("get", "update", "patch"))
        ):
            raise MethodNotAllowed("the server does not allow this method on the requested resource")
        if target.subresource == "finalize" and verb != "update":
            raise MethodNotAllowed("the server does not allow this method on the requested resource")
        namespace = target.namespace or ""
        if verb == "list":
            return await self._list(request, target)
        if verb == "watch":
            return await self._watch(request, target)
        if verb == "get":
            return self._get(request, target)
        options = _request_options(request)
        if verb == "create":
            body = await self._body(request, info)
            obj = await self.service.create(info, namespace, body, options)
            return self._object_response(request, info, obj, 200 if options.dry_run else 201, options)
        assert target.name is not None or verb == "deletecollection"
        name = target.name or ""
        if verb == "update":
            body = await self._body(request, info)
            if target.subresource == "scale":
                scale = await self.service.update_scale(info, namespace, name, body, options)
                return json_response(scale, warnings=options.warnings)
            obj = await self.service.update(info, namespace, name, body, options, target.subresource)
            return self._object_response(request, info, obj, 200, options)
        if verb == "patch":
            media = _media_type(request)
            if media not in PATCH_TYPES:
                strategy = self.registry.strategy(info)
                accepted = ["application/json-patch+json", "application/merge-patch+json"]
                if strategy.strategic_merge:
                    accepted.append("application/strategic-merge-patch+json")
                accepted.append("application/apply-patch+yaml")
                raise UnsupportedMediaType(
                    "the body of the request was in an unknown format - accepted media types include: "
                    + ", ".join(accepted)
                )
            self.service._check_patch_type(self.registry.strategy(info), media)
            patch = decode_body(
                await _read_body(request, self.options.max_body_bytes),
                "application/yaml" if media.endswith("yaml") else JSON,
            )
            if target.subresource == "scale":
                scale = await self.service.update_scale(
                    info, namespace, name, patch, options, patch_type=media
                )
                return json_response(scale, warnings=options.warnings)
            obj = await self.service.patch(info, namespace, name, media, patch, options, target.subresource)
            code = 201 if options.created and not options.dry_run else 200
            return self._object_response(request, info, obj, code, options)
        data = await _read_body(request, self.options.max_body_bytes)
        body = decode_body(data, self._body_type(request)) if data.strip() else None
        delete_options = _delete_options(request, body)
        if body is not None and isinstance(body, dict) and body.get("dryRun"):
            options.dry_run = True
        if verb == "delete":
            obj, gone = await self.service.delete(info, namespace, name, delete_options, options)
            if not gone or self.registry.strategy(info).return_deleted_object:
                return self._object_response(request, info, obj, 200, options)
            meta = obj.get("metadata") or {}
            details: dict[str, Any] = {"name": name, "kind": info.plural, "uid": meta.get("uid", "")}
            if info.group:
                details["group"] = info.group
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            }
            return json_response(status, warnings=options.warnings)
        result = await self.service.delete_collection(
            info,
            target.namespace if info.namespaced else None,
            delete_options,
            options,
            label_selector=_query(request, "labelSelector"),
            field_selector=_query(request, "fieldSelector"),
        )
        return json_response(self.service.list_bytes(info, result), warnings=options.warnings)

    async def _body(self, request: web.Request, info: ResourceInfo) -> Any:
        data = await _read_body(request, self.options.max_body_bytes)
        if _media_type(request) == PROTOBUF:
            if not data:
                raise BadRequest("the body of the request was empty")
            if request.match_info.get("tail", "").endswith("/scale"):
                scale = ResourceInfo("autoscaling", "v1", "Scale", "scale", "scale", info.namespaced)
                return decode_protobuf_object(data, scale)
            return decode_protobuf_object(data, info)
        return decode_body(data, self._body_type(request))

    @staticmethod
    def _body_type(request: web.Request) -> str:
        media = _media_type(request)
        if media in ("", JSON, "*/*") or media.endswith("+json"):
            return JSON
        if media in ("application/yaml", "application/x-yaml", "text/yaml"):
            return "application/yaml"
        raise UnsupportedMediaType(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"application/json, application/yaml (got {media})"
        )

    def _object_response(
        self,
        request: web.Request,
        info: ResourceInfo,
        obj: dict[str, Any],
        status: int,
        options: RequestOptions,
    ) -> web.Response:
        if _wants_table(request):
            body = table(
                info,
                [obj],
                self.service.clock(),
                resource_version=str(obj.get("metadata", {}).get("resourceVersion", "")),
                include_object=request.query.get("includeObject", "Metadata"),
                printer=self.registry.strategy(info).printer(),
            )
            return json_response(body, status, options.warnings)
        return json_response(orjson.dumps(obj), status, options.warnings)

    def _get(self, request: web.Request, target: Target) -> web.Response:
        info, name = target.info, target.name or ""
        record = self.service.get(info, target.namespace or "", name, _query(request, "resourceVersion"))
        if target.subresource == "scale":
            return json_response(self.service.scale_of(info, self.service.record_object(info, record)))
        if _wants_table(request):
            obj = self.service.record_object(info, record)
            return self._object_response(request, info, obj, 200, RequestOptions())
        return json_response(self.service.record_bytes(info, record))

    async def _list(self, request: web.Request, target: Target) -> web.StreamResponse:
        info = target.info
        limit = _int_query(request, "limit")
        result = self.service.list(
            info,
            target.namespace if info.namespaced else None,
            label_selector=_query(request, "labelSelector"),
            field_selector=_query(request, "fieldSelector"),
            limit=limit,
            continue_token=_query(request, "continue"),
            resource_version=_query(request, "resourceVersion"),
            resource_version_match=_query(request, "resourceVersionMatch"),
        )
        if _wants_table(request):
            return json_response(self._table(request, info, result))
        if len(result.records) > STREAM_LIST_ITEMS:
            return await self._stream_list(request, info, result)
        return json_response(self.service.list_bytes(info, result))

    async def _stream_list(
        self, request: web.Request, info: ResourceInfo, result: ListResult
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for chunk in self.service.list_chunks(info, result):
            await response.write(chunk)
        await response.write_eof()
        return response

    def _table(self, request: web.Request, info: ResourceInfo, result: ListResult) -> dict[str, Any]:
        objects = [self.service.record_object(info, r) for r in result.records]
        return table(
            info,
            objects,
            self.service.clock(),
            resource_version=str(result.resource_version),
            continue_token=result.continue_token,
            include_object=request.query.get("includeObject", "Metadata"),
            remaining=result.remaining,
            printer=self.registry.strategy(info).printer(),
        )

    # ----------------------------------------------------------- watch

    def _watch_params(self, request: web.Request, target: Target) -> tuple[int | None, bool, bool]:
        """(since, send_initial_events, bookmarks) after checking upstream's ListOptions rules."""
        rv_text = _query(request, "resourceVersion")
        match = _query(request, "resourceVersionMatch")
        initial_text = _query(request, "sendInitialEvents")
        bookmarks = _bool_query(request, "allowWatchBookmarks")
        send_initial = initial_text in _TRUE
        errors: list[FieldError] = []
        if initial_text is not None:
            if match != "NotOlderThan":
                errors.append(
                    FieldError.forbidden(
                        "resourceVersionMatch",
                        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    )
                )
            if not bookmarks:
                errors.append(
                    FieldError.forbidden(
                        "allowWatchBookmarks",
                        "sendInitialEvents requires setting allowWatchBookmarks to true",
                    )
                )
        elif match:
            errors.append(
                FieldError.forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                )
            )
        if errors:
            raise Invalid.for_fields("ListOptions", "meta.k8s.io", "", errors)
        rv: int | None = None
        if rv_text not in (None, "", "0"):
            try:
                rv = int(rv_text)
            except ValueError:
                raise BadRequest(f'invalid resourceVersion "{rv_text}"') from None
        if send_initial:
            # "not older than rv": the current state is always at least as new.
            return None, True, bookmarks
        if initial_text is not None and rv is None:
            # sendInitialEvents=false with no RV: start from now, no synthetic events.
            return self.service.storage.resource_version, False, bookmarks
        return rv, False, bookmarks

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        info = target.info
        since, send_initial, bookmarks = self._watch_params(request, target)
        labels, fields, name = self.service.selectors(
            info, _query(request, "labelSelector"), _query(request, "fieldSelector")
        )
        if target.name is not None:
            name = target.name
        timeout_seconds = _int_query(request, "timeoutSeconds")
        if timeout_seconds is None or timeout_seconds <= 0:
            low = self.options.watch_timeout
            timeout = random.uniform(low, 2 * low) if low > 0 else 0.0
        else:
            timeout = float(timeout_seconds)
        table_version = _wants_table(request)
        include_object = request.query.get("includeObject", "Metadata")
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        expired: Expired | None = None
        watcher: Watcher | None = None
        try:
            watcher = self.hub.watch(
                resource_key(info),
                namespace=target.namespace if info.namespaced else None,
                labels=labels,
                fields=fields,
                since=since,
                name=name,
            )
        except Expired as exc:
            expired = exc
        initial_count = watcher.pending() if watcher is not None and send_initial else -1
        initial_rv = self.service.storage.resource_version
        await response.prepare(request)
        if expired is not None or watcher is None:
            status = expired.status if expired is not None else ServerError("watch failed").status
            await response.write(b'{"type":"ERROR","object":' + orjson.dumps(status) + b"}\n")
            await response.write_eof()
            return response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout > 0 else None
        interval = self.options.bookmark_interval
        served_prefix = f'{{"kind":"{info.kind}","apiVersion":"{info.api_version}"'.encode()
        first_table = True
        try:
            if initial_count == 0:
                await response.write(self._bookmark(info, initial_rv, initial_end=True))
            sent = 0
            while not watcher.closed or watcher.pending():
                wait = interval if bookmarks else None
                if deadline is not None:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    wait = remaining if wait is None else min(wait, remaining)
                batch = await watcher.next_batch(wait)
                if not batch:
                    if watcher.closed:
                        break
                    if bookmarks and (deadline is None or deadline - loop.time() > 0):
                        await response.write(self._bookmark(info, self.service.storage.resource_version))
                    continue
                chunks: list[bytes] = []  # joined into one write per batch
                for entry in batch:
                    if table_version:
                        chunks.append(self._table_line(info, entry, include_object, first_table))
                        first_table = False
                    else:
                        self._line(chunks, info, served_prefix, entry)
                    sent += 1
                    if sent == initial_count:
                        chunks.append(self._bookmark(info, initial_rv, initial_end=True))
                await response.write(b"".join(chunks))
            if bookmarks and not watcher.overflowed and watcher.pending() == 0:
                await response.write(self._bookmark(info, self.service.storage.resource_version))
        except ConnectionResetError:
            # The client hung up: the normal end of most watches, not a server error to log.
            return response
        finally:
            watcher.close()
        try:
            await response.write_eof()
        except ConnectionResetError:
            pass
        return response

    def _line(self, chunks: list[bytes], info: ResourceInfo, served_prefix: bytes, entry: Entry) -> None:
        """Append the watch line of ``entry`` in ``info``'s form to ``chunks``.

        An object stored in the served form (nearly all) goes out as its stored bytes between a
        constant head and tail, with no copy of its own: the batch's single join is the only one.
        (A line memoised per event for all watchers saved nothing, since the join copies it again,
        and kept a second copy of every object alive in the history.)  Other forms are converted
        once per event and form, and memoised on the event."""
        data = entry.object_bytes()
        if data.startswith(served_prefix) and not self.registry.strategy(info).defaults_on_read(
            entry.record.rv
        ):
            chunks += (_EVENT_HEADS[entry.type], data, b"}\n")
            return
        key = ("line", info.group, info.version, entry.type, entry.use_prev)
        cache = entry.event.cache if entry.event is not None else None
        line = cache.get(key) if cache is not None else None
        if line is None:
            converted = self.service.served_bytes(info, data, entry.record.rv)
            line = _EVENT_HEADS[entry.type] + converted + b"}\n"
            if cache is not None:
                cache[key] = line
        chunks.append(line)

    @staticmethod
    def _bookmark(info: ResourceInfo, rv: int, *, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": info.kind, "apiVersion": info.api_version, "metadata": meta}
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"

    def _table_line(self, info: ResourceInfo, entry: Entry, include_object: str, first: bool) -> bytes:
        key = ("table", include_object, first, entry.type, entry.use_prev)
        cache = entry.event.cache if entry.event is not None else None
        if cache is not None and key in cache:
            return cache[key]
        obj = orjson.loads(self.service.served_bytes(info, entry.object_bytes(), entry.record.rv))
        rv = str(entry.rv)
        body = table(
            info,
            [obj],
            self.service.clock(),
            resource_version=rv,
            include_object=include_object,
            with_columns=first,
            printer=self.registry.strategy(info).printer(),
        )
        line = orjson.dumps({"type": entry.type, "object": body}) + b"\n"
        if cache is not None:
            cache[key] = line
        return line


def build_app(handlers: Handlers, *, max_body_bytes: int) -> web.Application:
    """The aiohttp application: fixed discovery routes plus two catch-all resource routes."""
    app = web.Application(middlewares=[status_errors], client_max_size=max_body_bytes)
    app[MAX_BODY_BYTES] = max_body_bytes
    h = handlers
    r = app.router
    r.add_get("/version", h.version)
    for path in ("/healthz", "/livez", "/readyz"):
        r.add_get(path, h.health)
    r.add_get("/api", h.core_versions)
    r.add_get("/apis", h.groups)
    r.add_get("/openapi/v2", h.openapi_v2)
    r.add_get("/swagger-2.0.0.pb-v1", h.openapi_v2)
    r.add_get("/openapi/v3", h.openapi_v3_index)
    r.add_get("/openapi/v3/{path:.+}", h.openapi_v3)
    r.add_get("/api/{version:v1}", h.resource_list)
    r.add_get("/apis/{group}", h.group)
    r.add_get("/apis/{group}/{version}", h.resource_list)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        r.add_route(method, "/api/v1/{tail:.+}", h.core_resource)
        r.add_route(method, "/apis/{group}/{version}/{tail:.+}", h.group_resource)
    return app
