"""The real kopf framework (from PyPI) runs a small operator against ``kubevisor dev``: its on-create
handler fires, it patches the status, adds its finalizer, and on delete runs its handler and removes
the finalizer so the object goes.  kopf runs as ``kopf run --standalone`` in a subprocess with
KUBECONFIG set, stopped by its PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.conftest import DevServer

pytest.importorskip("kopf")

NAMESPACE = "kopf-test"
GROUP = "kopf.example.com"
PLURAL = "notes"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "kind": "Note"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"text": {"type": "string"}}},
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}

OPERATOR = textwrap.dedent(
    f"""\
    import kopf

    @kopf.on.startup()
    def configure(settings, **_):
        settings.persistence.finalizer = "kopf.example.com/cleanup"
        settings.watching.server_timeout = 30

    @kopf.on.create("{GROUP}", "v1", "{PLURAL}")
    def created(spec, name, patch, logger, **_):
        patch.status["phase"] = "Seen"
        logger.info("ON-CREATE %s", name)
        return {{"echo": spec.get("text", "")}}

    @kopf.on.delete("{GROUP}", "v1", "{PLURAL}")
    def deleted(name, logger, **_):
        logger.info("ON-DELETE %s", name)
    """
)


def request(
    server: DevServer, method: str, path: str, body: Any = None, content_type: str = "application/json"
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def wait_for(
    check: Callable[[], Any], what: str, process: subprocess.Popen[bytes], within: float = 60.0
) -> Any:
    """Poll until ``check()`` is truthy; ``within`` only bounds a hang (nothing asserts on time)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"kopf did not {what}")


@pytest.fixture
def kopf_operator(dev_server: DevServer, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    request(dev_server, "POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    request(dev_server, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
    source = tmp_path / "operator.py"
    source.write_text(OPERATOR)
    log = tmp_path / "kopf.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBECONFIG")}
    env["KUBECONFIG"] = str(dev_server.kubeconfig)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kopf",
                "run",
                str(source),
                "--standalone",
                "--namespace",
                NAMESPACE,
                "--verbose",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        yield process, log
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        request(
            dev_server, "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{PLURAL}.{GROUP}"
        )


def test_kopf_handles_create_patches_status_and_finalizes_on_delete(
    dev_server: DevServer, kopf_operator: tuple[subprocess.Popen[bytes], Path]
) -> None:
    process, log = kopf_operator
    path = f"/apis/{GROUP}/v1/namespaces/{NAMESPACE}/{PLURAL}"
    note = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Note",
        "metadata": {"name": "hello"},
        "spec": {"text": "hi"},
    }
    assert request(dev_server, "POST", path, note)["metadata"]["name"] == "hello"

    def handled() -> dict[str, Any] | None:
        obj = request(dev_server, "GET", f"{path}/hello")
        status = (obj or {}).get("status") or {}
        return obj if status.get("phase") == "Seen" and status.get("created") == {"echo": "hi"} else None

    obj = wait_for(handled, "handle the creation", process)
    assert "kopf.example.com/cleanup" in obj["metadata"]["finalizers"]
    assert "ON-CREATE hello" in log.read_text()

    deleting = request(dev_server, "DELETE", f"{path}/hello")
    assert (
        deleting is None
        or deleting.get("metadata", {}).get("deletionTimestamp")
        or deleting.get("kind") == "Status"
    )
    wait_for(lambda: request(dev_server, "GET", f"{path}/hello") is None, "remove its finalizer", process)
    assert "ON-DELETE hello" in log.read_text()
    assert process.poll() is None, log.read_text()
