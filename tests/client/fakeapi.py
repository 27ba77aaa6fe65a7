"""A small in-memory API server for the client's unit tests.

It speaks the wire protocol the upstream docs describe (discovery documents, Status errors, paged
lists with continue tokens, chunked watch streams with bookmarks and in-stream 410s) and records
every request, so tests can assert exactly what the client sent.  It also injects faults: queued
error responses (429/503 with Retry-After), dropped connections, silent streams.  It is no substitute
for the embedded server, which the integration tests use when it is available.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Kind:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


CONFIGMAP = Kind("", "v1", "ConfigMap", "configmaps", short_names=("cm",))
NAMESPACE = Kind(
    "", "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",), subresources=("status",)
)
DEPLOYMENT = Kind(
    "apps", "v1", "Deployment", "deployments", short_names=("deploy",), subresources=("status", "scale")
)


def status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def error_response(
    code: int, reason: str, message: str, headers: dict[str, str] | None = None, **details: Any
) -> web.Response:
    return web.Response(
        status=code,
        body=orjson.dumps(status(code, reason, message, **details)),
        content_type="application/json",
        headers=headers,
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    raw_path: str = ""

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass
class Watcher:
    kind: Kind
    namespace: str | None
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)


class FakeAPI:
    """Run with ``async with FakeAPI() as api``: ``api.url`` is the base URL on 127.0.0.1."""

    def __init__(self, kinds: list[Kind] | None = None) -> None:
        self.kinds: list[Kind] = list(kinds or [CONFIGMAP, NAMESPACE, DEPLOYMENT])
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.history: list[tuple[int, str, Kind, dict[str, Any]]] = []
        self.rv = 100
        self.compacted_below = 0
        self.requests: list[Recorded] = []
        self.injected: list[
            tuple[Callable[[web.Request], bool], Callable[[], web.StreamResponse | None]]
        ] = []
        self.watchers: list[Watcher] = []
        self._watchers_changed = asyncio.Event()
        self.uids = itertools.count(1)
        self.continue_tokens_expired = False
        self.bookmark_on_open = False
        self.silent_watches = 0
        """How many of the next watch requests get a stream that never sends a byte."""
        self.authorize: Callable[[web.Request], bool] = lambda request: True
        self._server: TestServer | None = None

    # ---------------------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeAPI:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close_watches()
        assert self._server is not None
        await self._server.close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.port}"

    def inject(
        self,
        when: Callable[[web.Request], bool],
        respond: Callable[[], web.StreamResponse | None],
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests matching ``when`` with ``respond()`` instead."""
        for _ in range(times):
            self.injected.append((when, respond))

    def requests_to(self, path: str, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    # ---------------------------------------------------------------------------------------------
    # store

    def kind_by(self, group: str, version: str, plural: str) -> Kind | None:
        for kind in self.kinds:
            if (kind.group, kind.version, kind.plural) == (group, version, plural):
                return kind
        return None

    def key(self, kind: Kind, namespace: str | None, name: str) -> tuple[str, str | None, str]:
        return (f"{kind.group}/{kind.plural}", namespace, name)

    def next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def record(self, event_type: str, kind: Kind, obj: dict[str, Any]) -> None:
        self.history.append((int(obj["metadata"]["resourceVersion"]), event_type, kind, copy.deepcopy(obj)))
        for watcher in self.watchers:
            if watcher.kind is kind and (
                watcher.namespace is None or watcher.namespace == obj["metadata"].get("namespace")
            ):
                watcher.queue.put_nowait({"type": event_type, "object": copy.deepcopy(obj)})

    def put(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` directly (as another client would), emitting its watch event."""
        obj = copy.deepcopy(obj)
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        metadata = obj.setdefault("metadata", {})
        key = self.key(kind, metadata.get("namespace") if kind.namespaced else None, metadata["name"])
        existed = key in self.objects
        metadata.setdefault("uid", f"uid-{next(self.uids)}")
        metadata["resourceVersion"] = self.next_rv()
        self.objects[key] = obj
        self.record("MODIFIED" if existed else "ADDED", kind, obj)
        return obj

    def remove(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.objects.pop(self.key(kind, namespace, name))
        obj["metadata"]["resourceVersion"] = self.next_rv()
        self.record("DELETED", kind, obj)
        return obj

    async def wait_for_watchers(self, count: int) -> None:
        """Return once exactly ``count`` watch streams are open (hang-guarded)."""
        async with asyncio.timeout(10):
            while len(self.watchers) != count:
                self._watchers_changed.clear()
                await self._watchers_changed.wait()

    def close_watches(self) -> None:
        """End every open watch stream cleanly (as the server's timeoutSeconds would)."""
        for watcher in self.watchers:
            watcher.queue.put_nowait(None)

    def break_watches(self) -> None:
        """Abort every open watch connection mid-stream."""
        for watcher in self.watchers:
            watcher.queue.put_nowait("break")

    def bookmark(self) -> None:
        for watcher in self.watchers:
            watcher.queue.put_nowait(
                {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": watcher.kind.kind,
                        "apiVersion": watcher.kind.api_version,
                        "metadata": {"resourceVersion": str(self.rv)},
                    },
                }
            )

    # ---------------------------------------------------------------------------------------------
    # HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                body,
                request.raw_path,
            )
        )
        for index, (when, respond) in enumerate(self.injected):
            if when(request):
                del self.injected[index]
                answer = respond()
                if answer is None:  # drop the connection without answering
                    assert request.transport is not None
                    request.transport.close()
                    raise asyncio.CancelledError
                return answer
        if not self.authorize(request):
            return error_response(401, "Unauthorized", "Unauthorized")
        parts = [p for p in request.path.split("/") if p]
        if request.path == "/version":
            return web.json_response({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake"})
        if parts == ["api"]:
            return web.json_response({"kind": "APIVersions", "versions": ["v1"]})
        if parts == ["apis"]:
            groups: dict[str, list[str]] = {}
            for kind in self.kinds:
                if kind.group:
                    groups.setdefault(kind.group, [])
                    if kind.version not in groups[kind.group]:
                        groups[kind.group].append(kind.version)
            return web.json_response(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [
                        {
                            "name": name,
                            "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in versions],
                            "preferredVersion": {
                                "groupVersion": f"{name}/{versions[0]}",
                                "version": versions[0],
                            },
                        }
                        for name, versions in groups.items()
                    ],
                }
            )
        if parts[:1] == ["api"]:
            group, rest = "", parts[1:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = parts[1], parts[2:]
        else:
            return error_response(404, "NotFound", "the server could not find the requested resource")
        version, rest = rest[0], rest[1:]
        if not rest:
            return self._discovery(group, version)
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        kind = self.kind_by(group, version, rest[0])
        if kind is None or (namespace is not None and not kind.namespaced):
            return error_response(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in kind.subresources:
            return error_response(404, "NotFound", "the server could not find the requested resource")
        return await self._resource(request, kind, namespace, name, sub, body)

    def _discovery(self, group: str, version: str) -> web.Response:
        kinds = [k for k in self.kinds if (k.group, k.version) == (group, version)]
        if not kinds:
            return error_response(404, "NotFound", "the server could not find the requested resource")
        resources: list[dict[str, Any]] = []
        for kind in kinds:
            resources.append(
                {
                    "name": kind.plural,
                    "singularName": kind.kind.lower(),
                    "namespaced": kind.namespaced,
                    "kind": kind.kind,
                    "verbs": [
                        "create",
                        "delete",
                        "deletecollection",
                        "get",
                        "list",
                        "patch",
                        "update",
                        "watch",
                    ],
                    "shortNames": list(kind.short_names),
                }
            )
            for sub in kind.subresources:
                entry = {
                    "name": f"{kind.plural}/{sub}",
                    "singularName": "",
                    "namespaced": kind.namespaced,
                    "kind": kind.kind,
                    "verbs": ["get", "patch", "update"],
                }
                if sub == "scale":
                    entry.update(group="autoscaling", version="v1", kind="Scale")
                resources.append(entry)
        gv = f"{group}/{version}" if group else version
        return web.json_response(
            {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
        )

    def _not_found(self, kind: Kind, name: str) -> web.Response:
        what = f"{kind.plural}.{kind.group}" if kind.group else kind.plural
        return error_response(
            404, "NotFound", f'{what} "{name}" not found', name=name, group=kind.group, kind=kind.plural
        )

    async def _resource(
        self,
        request: web.Request,
        kind: Kind,
        namespace: str | None,
        name: str | None,
        sub: str | None,
        body: bytes,
    ) -> web.StreamResponse:
        method = request.method
        query = request.query
        if name is None:
            if method == "GET" and query.get("watch") in ("true", "1"):
                return await self._watch(request, kind, namespace)
            if method == "GET":
                return self._list(kind, namespace, query)
            if method == "POST":
                obj = orjson.loads(body)
                metadata = obj.setdefault("metadata", {})
                if kind.namespaced:
                    metadata["namespace"] = namespace
                if not metadata.get("name") and metadata.get("generateName"):
                    metadata["name"] = metadata["generateName"] + f"x{self.rv}"
                if self.key(kind, namespace, metadata["name"]) in self.objects:
                    what = f"{kind.plural}.{kind.group}" if kind.group else kind.plural
                    return error_response(
                        409,
                        "AlreadyExists",
                        f'{what} "{metadata["name"]}" already exists',
                        name=metadata["name"],
                        group=kind.group,
                        kind=kind.plural,
                    )
                metadata["creationTimestamp"] = "2024-01-01T00:00:00Z"
                if query.get("dryRun") == "All":
                    return web.json_response(obj, status=201)
                return web.json_response(self.put(kind, obj), status=201)
            if method == "DELETE":
                deleted = []
                for key, obj in list(self.objects.items()):
                    if key[0] == f"{kind.group}/{kind.plural}" and (namespace is None or key[1] == namespace):
                        if self._matches(obj, query.get("labelSelector")):
                            deleted.append(self.remove(kind, key[1], key[2]))
                return web.json_response(
                    {
                        "kind": f"{kind.kind}List",
                        "apiVersion": kind.api_version,
                        "metadata": {},
                        "items": deleted,
                    }
                )
            return error_response(405, "MethodNotAllowed", "method not allowed")
        key = self.key(kind, namespace, name)
        current = self.objects.get(key)
        if method == "PATCH" and request.content_type == "application/apply-patch+yaml" and current is None:
            obj = orjson.loads(body)
            obj.setdefault("metadata", {})["namespace"] = namespace
            return web.json_response(self.put(kind, obj), status=201)
        if current is None:
            return self._not_found(kind, name)
        if sub == "scale":
            scale = {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "resourceVersion": current["metadata"]["resourceVersion"],
                },
                "spec": {"replicas": current.get("spec", {}).get("replicas", 1)},
                "status": {"replicas": current.get("status", {}).get("replicas", 0), "selector": "app=x"},
            }
            if method == "GET":
                return web.json_response(scale)
            new_scale = orjson.loads(body) if method == "PUT" else merge_patch(scale, orjson.loads(body))
            updated = copy.deepcopy(current)
            updated.setdefault("spec", {})["replicas"] = new_scale["spec"]["replicas"]
            self.put(kind, updated)
            scale["spec"]["replicas"] = new_scale["spec"]["replicas"]
            return web.json_response(scale)
        if method == "GET":
            return web.json_response(current)
        if method == "DELETE":
            options = orjson.loads(body) if body else {}
            pre = options.get("preconditions") or {}
            if (
                pre.get("resourceVersion")
                and pre["resourceVersion"] != current["metadata"]["resourceVersion"]
            ):
                return error_response(409, "Conflict", "precondition failed", name=name, kind=kind.plural)
            if options.get("dryRun") == ["All"]:
                return web.json_response(current)
            if current["metadata"].get("finalizers"):
                updated = copy.deepcopy(current)
                updated["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
                return web.json_response(self.put(kind, updated))
            return web.json_response(self.remove(kind, namespace, name))
        if method == "PUT":
            obj = orjson.loads(body)
            rv = obj.get("metadata", {}).get("resourceVersion")
            if rv and rv != current["metadata"]["resourceVersion"]:
                what = f"{kind.plural}.{kind.group}" if kind.group else kind.plural
                return error_response(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {what} "{name}": the object has been modified; please apply your changes to the latest version and try again',
                    name=name,
                    kind=kind.plural,
                )
            if sub == "status":
                updated = copy.deepcopy(current)
                updated["status"] = obj.get("status")
            else:
                updated = obj
                updated["metadata"]["uid"] = current["metadata"]["uid"]
                if "status" in kind.subresources:
                    updated["status"] = current.get("status")
            if query.get("dryRun") == "All":
                return web.json_response(updated)
            return web.json_response(self.put(kind, updated))
        if method == "PATCH":
            patch = orjson.loads(body)
            if request.content_type == "application/json-patch+json":
                import jsonpatch  # type: ignore[import-untyped]

                updated = jsonpatch.apply_patch(current, patch)
            elif request.content_type in (
                "application/merge-patch+json",
                "application/apply-patch+yaml",
                "application/strategic-merge-patch+json",
            ):
                if request.content_type == "application/strategic-merge-patch+json" and kind.group not in (
                    "",
                    "apps",
                ):
                    return error_response(
                        415, "UnsupportedMediaType", "the body of the request was in an unknown format"
                    )
                updated = merge_patch(current, patch if sub != "status" else {"status": patch.get("status")})
            else:
                return error_response(415, "UnsupportedMediaType", "unsupported patch type")
            if query.get("dryRun") == "All":
                return web.json_response(updated)
            return web.json_response(self.put(kind, updated))
        return error_response(405, "MethodNotAllowed", "method not allowed")

    @staticmethod
    def _matches(obj: dict[str, Any], selector: str | None) -> bool:
        if not selector:
            return True
        labels = obj.get("metadata", {}).get("labels") or {}
        for term in selector.split(","):
            k, _, v = term.partition("=")
            if labels.get(k) != v:
                return False
        return True

    def _list(self, kind: Kind, namespace: str | None, query: Any) -> web.Response:
        if query.get("continue"):
            if self.continue_tokens_expired:
                return error_response(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result.",
                )
            state = orjson.loads(base64.b64decode(query["continue"]))
            list_rv, start = state["rv"], state["start"]
        else:
            list_rv, start = str(self.rv), 0
        items = sorted(
            (
                obj
                for key, obj in self.objects.items()
                if key[0] == f"{kind.group}/{kind.plural}"
                and (namespace is None or key[1] == namespace)
                and self._matches(obj, query.get("labelSelector"))
            ),
            key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]),
        )
        limit = int(query["limit"]) if query.get("limit") else None
        page = items[start : start + limit] if limit else items[start:]
        metadata: dict[str, Any] = {"resourceVersion": list_rv}
        if limit and start + limit < len(items):
            metadata["continue"] = base64.b64encode(
                orjson.dumps({"rv": list_rv, "start": start + limit})
            ).decode()
        stripped = []
        for obj in page:
            item = dict(obj)
            item.pop("kind", None)
            item.pop("apiVersion", None)
            stripped.append(item)
        return web.json_response(
            {
                "kind": f"{kind.kind}List",
                "apiVersion": kind.api_version,
                "metadata": metadata,
                "items": stripped,
            }
        )

    async def _watch(self, request: web.Request, kind: Kind, namespace: str | None) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        since = request.query.get("resourceVersion")
        if since and int(since) < self.compacted_below:
            error = status(410, "Expired", f"too old resource version: {since} ({self.compacted_below})")
            await response.write(orjson.dumps({"type": "ERROR", "object": error}) + b"\n")
            return response
        watcher = Watcher(kind, namespace)
        if self.silent_watches > 0:
            self.silent_watches -= 1
            await asyncio.sleep(3600)
        if not since:
            for key, obj in list(self.objects.items()):
                if key[0] == f"{kind.group}/{kind.plural}" and (namespace is None or key[1] == namespace):
                    await response.write(orjson.dumps({"type": "ADDED", "object": obj}) + b"\n")
        else:
            for rv, event_type, event_kind, obj in self.history:
                if (
                    event_kind is kind
                    and rv > int(since)
                    and (namespace is None or obj["metadata"].get("namespace") == namespace)
                ):
                    await response.write(orjson.dumps({"type": event_type, "object": obj}) + b"\n")
        if self.bookmark_on_open and request.query.get("allowWatchBookmarks") == "true":
            bookmark = {
                "kind": kind.kind,
                "apiVersion": kind.api_version,
                "metadata": {"resourceVersion": str(self.rv)},
            }
            await response.write(orjson.dumps({"type": "BOOKMARK", "object": bookmark}) + b"\n")
        self.watchers.append(watcher)
        self._watchers_changed.set()
        try:
            while True:
                item = await watcher.queue.get()
                if item is None:
                    break
                if item == "break":
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                await response.write(orjson.dumps(item) + b"\n")
        finally:
            self.watchers.remove(watcher)
            self._watchers_changed.set()
        await response.write_eof()
        return response
