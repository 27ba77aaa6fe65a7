"""`make demo` (tools/demo.py) runs the Todo operator from start to finish."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from kubevisor.api import GroupVersionKind, UnsupportedMediaType
from kubevisor.client import Client, UnknownKind

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG_MAP = GroupVersionKind("", "v1", "ConfigMap")


async def skip_unless_the_server_serves_crds_and_apply(client: Client, namespace: str) -> None:
    """The demo's operator needs CRDs (its kind) and server-side apply (its ConfigMaps)."""
    sys.path.insert(0, str(ROOT))
    from examples.todo.operator import operator

    try:
        async with asyncio.timeout(10):
            await operator.install_crds(client)
    except (UnknownKind, TimeoutError):
        pytest.skip("the embedded APIServer does not serve CustomResourceDefinitions (Established) yet")
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe", "namespace": namespace}}
    try:
        await client.apply(probe, field_manager="probe")
    except UnsupportedMediaType:
        pytest.skip("the embedded APIServer does not implement server-side apply yet")


async def test_the_demo_runs_every_step_and_stops_cleanly(kube_client: Client, namespace: str) -> None:
    await skip_unless_the_server_serves_crds_and_apply(kube_client, namespace)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "tools/demo.py",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "120"},
    )
    async with asyncio.timeout(120):  # a hang guard: the demo takes seconds
        stdout, _ = await process.communicate()
    output = stdout.decode()
    assert process.returncode == 0, output
    for step in (
        "customresourcedefinition/todos.example.com established",
        "three Todos: converged in",
        "milk done: converged in",
        "todo-talk restored: converged in",
        "taxes collected: converged in",
        "operator todo-operator drained and stopped",
        "API server stopped",
        "demo finished in",
    ):
        assert step in output, output
    assert "Traceback" not in output
