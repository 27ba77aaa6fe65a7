"""Shared fixtures for tests against the embedded API server.

``api_server`` is a running in-memory :class:`APIServer` on a free loopback port; ``http`` is an
aiohttp session whose base URL is that server; ``kubectl`` runs the real kubectl against it (tests
using it are skipped when kubectl is absent).  Nothing here depends on the tests in this directory,
so the fixtures can move to a shared conftest unchanged.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from kubevisor.server import APIServer, ServerOptions


@pytest.fixture
def server_options() -> ServerOptions:
    """Override in a test module (or parametrize) to start ``api_server`` differently."""
    return ServerOptions()


@pytest.fixture
async def api_server(server_options: ServerOptions) -> AsyncIterator[APIServer]:
    async with APIServer(server_options) as server:
        yield server


@pytest.fixture
async def http(api_server: APIServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=api_server.url) as session:
        yield session


@dataclass(frozen=True)
class KubectlResult:
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> KubectlResult:
        assert self.returncode == 0, f"kubectl failed ({self.returncode}): {self.stderr}"
        return self


Kubectl = Callable[..., Awaitable[KubectlResult]]


def kubectl_binary() -> str | None:
    """``KUBECTL`` if set, else kubectl on PATH."""
    return os.environ.get("KUBECTL") or shutil.which("kubectl")


@pytest.fixture
def kubectl(api_server: APIServer, tmp_path: Path) -> Kubectl:
    """``await kubectl("get", "pods", input=...)``: runs kubectl against ``api_server`` without
    blocking the event loop the server runs on."""
    binary = kubectl_binary()
    if binary is None:
        pytest.skip("kubectl is not installed")
    config = api_server.write_kubeconfig(tmp_path / "kubeconfig")

    async def run(*args: str, input: str | None = None, deadline: float = 60.0) -> KubectlResult:
        env = {**os.environ, "KUBECONFIG": str(config)}
        proc = await asyncio.create_subprocess_exec(
            binary,
            *args,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(
            proc.communicate(input.encode() if input is not None else None), deadline
        )
        return KubectlResult(proc.returncode or 0, out.decode(), err.decode())

    return run
