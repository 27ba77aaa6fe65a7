"""A short kubectl session per available kubectl version (the full session lives in conformance)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from kubevisor.server import APIServer

pytestmark = pytest.mark.kubectl

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: "nginx:1.27"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: dev}
"""


def _versions() -> list[str]:
    """The oldest and newest versioned binaries beside the kubectl dispatcher, else plain kubectl."""
    found = shutil.which("kubectl")
    if found is None:
        return []
    folder = Path(os.path.realpath(found)).parent
    versioned = sorted(folder.glob("kubectl.1.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    chosen = [versioned[0], versioned[-1]] if len(versioned) >= 2 else [Path(found)]
    return [str(p) for p in dict.fromkeys(chosen)]


@pytest.mark.parametrize(
    "binary", _versions() or [pytest.param("", marks=pytest.mark.skip("kubectl absent"))]
)
async def test_kubectl_session(api_server: APIServer, tmp_path: Path, binary: str) -> None:
    env = {**os.environ, "KUBECONFIG": str(api_server.write_kubeconfig(tmp_path / "kubeconfig"))}

    async def kubectl(*args: str, stdin: str | None = None) -> str:
        proc = await asyncio.create_subprocess_exec(
            binary,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else b""), 60)
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
        return out.decode()

    # `create namespace` sends a protobuf body; `apply` probes OpenAPI for fieldValidation.
    await kubectl("create", "namespace", "team")
    await kubectl("apply", "-n", "team", "-f", "-", stdin=MANIFEST)
    assert "unchanged" in await kubectl("apply", "-n", "team", "-f", "-", stdin=MANIFEST)
    table = await kubectl("get", "deployments", "-n", "team", "-o", "wide")
    assert table.split("\n")[0].split() == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    await kubectl("scale", "deployment", "web", "-n", "team", "--replicas=3")
    await kubectl("label", "configmap", "settings", "-n", "team", "tier=fe")
    selected = await kubectl("get", "configmaps", "-n", "team", "-l", "tier=fe", "-o", "name")
    assert selected.split() == ["configmap/settings"]
    by_field = await kubectl(
        "get", "configmaps", "-n", "team", "--field-selector", "metadata.name=settings", "-o", "json"
    )
    assert [i["metadata"]["name"] for i in json.loads(by_field)["items"]] == ["settings"]
    deployment = json.loads(await kubectl("get", "deployment", "web", "-n", "team", "-o", "json"))
    assert deployment["spec"]["replicas"] == 3 and deployment["metadata"]["generation"] == 2
    await kubectl("delete", "configmap", "settings", "-n", "team", "--wait")
    assert await kubectl("get", "configmaps", "-n", "team", "-o", "name") == ""
    explained = await kubectl("explain", "deployment.spec.replicas")
    assert "replicas" in explained and "integer" in explained
