"""APIServer lifecycle, persistence across restarts, discovery caching, and the ``kubevisor dev`` command."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import yaml

from kubevisor.api import ResourceInfo
from kubevisor.server import APIServer, ServerOptions, Strategy

CMS = "/api/v1/namespaces/default/configmaps"


async def test_state_and_resource_versions_survive_a_restart_on_the_same_data_dir(tmp_path: Path) -> None:
    async with APIServer(ServerOptions(data_dir=tmp_path)) as server:
        async with aiohttp.ClientSession(base_url=server.url) as http:
            async with http.post(CMS, json={"metadata": {"name": "kept"}, "data": {"k": "v"}}) as r:
                first_rv = int((await r.json())["metadata"]["resourceVersion"])
    assert (tmp_path / "kubevisor.db").exists()
    async with APIServer(ServerOptions(data_dir=tmp_path)) as server:
        async with aiohttp.ClientSession(base_url=server.url) as http:
            async with http.get(f"{CMS}/kept") as r:
                kept = await r.json()
            async with http.post(CMS, json={"metadata": {"name": "new"}}) as r:
                new_rv = int((await r.json())["metadata"]["resourceVersion"])
            async with http.get("/api/v1/namespaces") as r:
                namespaces = [n["metadata"]["name"] for n in (await r.json())["items"]]
    assert kept["data"] == {"k": "v"}
    assert new_rv > first_rv
    assert namespaces.count("default") == 1


async def test_kubeconfig_points_the_kubevisor_context_at_the_server(tmp_path: Path) -> None:
    async with APIServer() as server:
        path = server.write_kubeconfig(tmp_path / "nested" / "config")
        config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "kubevisor"
    assert config["clusters"] == [{"name": "kubevisor", "cluster": {"server": server.url}}]
    assert server.url.startswith("http://127.0.0.1:") and server.port > 0
    assert oct(path.stat().st_mode & 0o777) == "0o600"


async def test_controllers_run_with_the_server_and_are_cancelled_when_it_stops() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def controller(server: APIServer) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with APIServer(ServerOptions(controllers=(controller,))):
        await asyncio.wait_for(started.wait(), 5)
    assert cancelled.is_set()


async def test_adding_a_resource_refreshes_discovery(
    api_server: APIServer, http: aiohttp.ClientSession
) -> None:
    async with http.get("/apis") as r:
        before = {g["name"] for g in (await r.json())["groups"]}
    api_server.add_resource(
        ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True),
        Strategy(strategic_merge=False),
    )
    async with http.get("/apis") as r:
        after = {g["name"] for g in (await r.json())["groups"]}
    async with http.get("/apis/example.com/v1") as r:
        resources = [res["name"] for res in (await r.json())["resources"]]
    assert "example.com" not in before and "example.com" in after
    assert resources == ["widgets"]


async def test_discovery_and_openapi_answer_json(http: aiohttp.ClientSession) -> None:
    for path in ("/version", "/api", "/apis", "/api/v1", "/apis/apps/v1", "/openapi/v2", "/openapi/v3"):
        async with http.get(path) as r:
            assert r.status == 200, path
            assert r.headers["Content-Type"] == "application/json"
    async with http.get("/openapi/v3") as r:
        index = await r.json()
    async with http.get(index["paths"]["apis/apps/v1"]["serverRelativeURL"]) as r:
        assert r.status == 200 and (await r.json())["openapi"].startswith("3.")


def test_dev_command_writes_a_kubeconfig_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from kubevisor.cli import main; main()",
            "dev",
            "--kubeconfig",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        export = proc.stdout.readline()
        assert "ready at http://127.0.0.1:" in ready
        assert export.strip() == f"export KUBECONFIG={kubeconfig.resolve()}"
        assert yaml.safe_load(kubeconfig.read_text())["current-context"] == "kubevisor"
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "stopped" in rest


async def test_openapi_v2_is_served_as_protobuf_to_clients_that_ask_for_it(
    http: aiohttp.ClientSession,
) -> None:
    accept = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    async with http.get("/openapi/v2", headers={"Accept": accept}) as r:
        body = await r.read()
    assert r.status == 200 and r.headers["Content-Type"] == "application/octet-stream"
    assert body.startswith(b"\x0a\x032.0")  # field 1 (swagger) = "2.0"
    assert b"io.k8s.api.apps.v1.Deployment" in body and b"x-kubernetes-group-version-kind" in body
    async with http.get("/openapi/v3", headers={"Accept": "application/vnd.kubernetes.protobuf"}) as r:
        assert r.status == 406


async def test_stop_is_idempotent_and_survives_a_crashed_controller() -> None:
    async def crashing(server: APIServer) -> None:
        raise RuntimeError("boom")

    server = APIServer(ServerOptions(controllers=(crashing,)))
    await server.start()
    await asyncio.sleep(0)  # let the controller run (and fail)
    await server.stop()
    await server.stop()
