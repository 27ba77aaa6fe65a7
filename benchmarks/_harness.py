"""What the benchmarks share: a ``kubevisor dev`` process to load, /proc readings of it, a pool of
concurrent workers, and the rewriting of one section of ``docs/benchmarks.md``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

__all__ = [
    "DevServer",
    "check",
    "cpu_seconds",
    "dev_server",
    "free_port",
    "rss_mb",
    "run_concurrently",
    "write_section",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """A process's resident set (MiB), from ``/proc``."""
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


async def check(response: aiohttp.ClientResponse, *expected: int) -> None:
    """Read the response; raise with the server's answer unless its status is one of ``expected``."""
    if response.status not in expected:
        raise RuntimeError(f"{response.method} {response.url}: {response.status} {await response.text()}")
    await response.read()


async def run_concurrently(
    clients: int, total: int, job: Callable[[int], Awaitable[None]], latencies: list[float] | None = None
) -> float:
    """Run ``job(i)`` for every i in ``range(total)`` on ``clients`` workers; returns the elapsed
    seconds, and appends each job's latency to ``latencies`` when given."""
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            await job(i)
            if latencies is not None:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(clients):
            group.create_task(worker())
    return time.perf_counter() - started


@dataclass(frozen=True)
class DevServer:
    """A running ``kubevisor dev``: its process, URL, spawn-to-ready seconds and the start time
    it reports itself (storage, catalogue, listening)."""

    process: subprocess.Popen[str]
    url: str
    ready_s: float
    self_start_s: float

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def dev_server(data_dir: bool = False) -> Iterator[DevServer]:
    """``kubevisor dev`` on a free loopback port in a process of its own (in memory, or on a fresh
    ``--data-dir``), stopped by SIGTERM (then killed) on exit."""
    port = free_port()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        storage = ["--data-dir", str(tmp / "data")] if data_dir else ["--in-memory"]
        started = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from kubevisor.cli import main; main()",
                "dev",
                *storage,
                "--port",
                str(port),
                "--kubeconfig",
                str(tmp / "kubeconfig"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            ready = time.perf_counter() - started
            match = re.search(r"\((?:in memory|data in [^,]+), (\d+) ms\)", line)
            if match is None:
                proc.kill()
                raise RuntimeError(f"server did not start: {line}{proc.stdout.read()}")
            yield DevServer(proc, f"http://127.0.0.1:{port}", ready, int(match.group(1)) / 1000)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def write_section(path: Path, heading: str, body: str) -> None:
    """Replace the section ``heading`` of ``path`` (up to the next ``## ``) with ``body``, or
    append it (creating the file with a title if need be); nothing else in the file changes."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"{re.escape(heading)}\n.*?(?=\n## |\Z)", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: body.rstrip("\n") + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text.rstrip("\n") + "\n")
