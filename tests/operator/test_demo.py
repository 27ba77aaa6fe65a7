"""`make demo` (tools/demo.py) runs the Todo operator from start to finish."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


async def test_the_demo_runs_every_step_and_stops_cleanly() -> None:
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
