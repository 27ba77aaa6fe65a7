"""Fixtures for conformance tests: a real ``kubevisor dev`` process and real third-party clients.

The server under test is started exactly as a user starts it (the ``kubevisor dev`` command, on
127.0.0.1 and a free port, in-memory) and is stopped by the fixture that started it, by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class DevServer:
    url: str
    kubeconfig: Path
    process: subprocess.Popen[bytes]


def _wait_for_kubeconfig(path: Path, process: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = process.stdout.read().decode() if process.stdout else ""
            raise RuntimeError(f"kubevisor dev exited with {process.returncode}:\n{out}")
        if path.exists():
            try:
                import yaml

                config = yaml.safe_load(path.read_text())
                url = str(config["clusters"][0]["cluster"]["server"])
                with urllib.request.urlopen(f"{url}/version", timeout=2) as response:
                    json.load(response)
                return url
            except Exception:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"kubevisor dev did not become ready within {timeout}s")


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """``kubevisor dev --in-memory --port 0`` in a subprocess, ready to serve."""
    workdir = tmp_path_factory.mktemp("dev")
    kubeconfig = workdir / "kubeconfig"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "kubevisor"),
            "dev",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--in-memory",
            "--kubeconfig",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    try:
        url = _wait_for_kubeconfig(kubeconfig, process, timeout=20)
        yield DevServer(url=url, kubeconfig=kubeconfig, process=process)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


def kubectl_binaries() -> list[tuple[str, str]]:
    """(label, path) of the oldest and newest versioned kubectl beside the machine's kubectl.

    Falls back to the kubectl on PATH when no versioned binaries exist.
    """
    found = shutil.which("kubectl")
    if not found:
        return []
    directory = Path(os.path.realpath(found)).parent
    versioned = sorted(
        (p for p in directory.glob("kubectl.1.*") if os.access(p, os.X_OK)),
        key=lambda p: int(p.name.rsplit(".", 1)[1]),
    )
    if not versioned:
        return [("kubectl", found)]
    chosen = [versioned[0]] if len(versioned) == 1 else [versioned[0], versioned[-1]]
    return [(p.name, str(p)) for p in chosen]


class Kubectl:
    """Runs one kubectl binary against one kubeconfig; every call is bounded in time."""

    def __init__(self, binary: str, kubeconfig: Path, workdir: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.workdir = workdir

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBECONFIG")}
        env.update(KUBECONFIG=str(self.kubeconfig), HOME=str(self.workdir), **extra)
        return env

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env or self.env(),
            cwd=self.workdir,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.binary, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
            cwd=self.workdir,
        )
