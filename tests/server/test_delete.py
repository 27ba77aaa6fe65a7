"""DELETE on an object whose deletion is already pending: a new propagation policy may release it,
and a namespace still being emptied refuses a second DELETE as upstream does.

These run without the built-in controllers, so only the REST layer's rules are in play.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from kubevisor.server import APIServer, ServerOptions


@pytest.fixture
def server_options() -> ServerOptions:
    return ServerOptions(controllers=())


async def call(http: aiohttp.ClientSession, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with http.request(method, path, json=body) as response:
        return response.status, await response.json(content_type=None)


async def test_a_pending_deletion_whose_new_policy_leaves_no_finalizer_completes(
    api_server: APIServer, http: aiohttp.ClientSession
) -> None:
    path = "/api/v1/namespaces/default/configmaps/held"
    status, _ = await call(
        http, "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "held"}}
    )
    assert status == 201
    status, pending = await call(http, "DELETE", path, {"propagationPolicy": "Foreground"})
    assert status == 200
    assert pending["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert pending["metadata"]["deletionTimestamp"]

    status, _ = await call(http, "DELETE", path, {"propagationPolicy": "Background"})
    assert status == 200
    status, missing = await call(http, "GET", path)
    assert status == 404, missing


async def test_a_second_delete_of_a_namespace_being_emptied_is_a_conflict(
    api_server: APIServer, http: aiohttp.ClientSession
) -> None:
    status, _ = await call(http, "POST", "/api/v1/namespaces", {"metadata": {"name": "emptying"}})
    assert status == 201
    status, first = await call(http, "DELETE", "/api/v1/namespaces/emptying")
    assert status == 200
    assert first["status"]["phase"] == "Terminating"

    status, second = await call(http, "DELETE", "/api/v1/namespaces/emptying")
    assert status == 409
    assert second["reason"] == "Conflict"
    assert second["message"] == (
        'Operation cannot be fulfilled on namespaces "emptying": The system is ensuring all content is '
        "removed from this namespace.  Upon completion, this namespace will automatically be purged by "
        "the system."
    )
