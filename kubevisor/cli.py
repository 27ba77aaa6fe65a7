"""The ``kubevisor`` command line."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import click
from rich.console import Console

from kubevisor import __version__

__all__ = ["main"]

DEFAULT_KUBECONFIG = Path(".kubevisor") / "kubeconfig"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubevisor")
def main() -> None:
    """Kubernetes operators in Python, built the way OTP builds systems."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=0, type=click.IntRange(0, 65535), help="Port to listen on [default: a free port]."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep state in SQLite under this directory; it survives restarts.",
)
@click.option("--in-memory", is_flag=True, help="Keep state in memory only (the default without --data-dir).")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_KUBECONFIG,
    show_default=True,
    help="Where to write the kubeconfig for this server.",
)
def dev(host: str, port: int, data_dir: Path | None, in_memory: bool, kubeconfig: Path) -> None:
    """Run the embedded Kubernetes API server until Ctrl-C or SIGTERM."""
    if data_dir is not None and in_memory:
        raise click.UsageError("--data-dir and --in-memory are mutually exclusive")
    asyncio.run(_dev(host, port, data_dir, kubeconfig))


async def _dev(host: str, port: int, data_dir: Path | None, kubeconfig: Path) -> None:
    from kubevisor.server import APIServer, ServerOptions, default_controllers

    console = Console(highlight=False, soft_wrap=True)  # never wrap: scripts parse these lines
    # Handlers first: a supervisor may signal as soon as it sees the readiness line.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = time.perf_counter()
    options = ServerOptions(host=host, port=port, data_dir=data_dir, controllers=default_controllers())
    server = APIServer(options)
    await server.start()
    try:
        path = server.write_kubeconfig(kubeconfig).resolve()
        elapsed = (time.perf_counter() - started) * 1000
        storage = f"data in {data_dir}" if data_dir is not None else "in memory"
        console.print(
            f"[bold green]kubevisor API server ready[/] at {server.url} ({storage}, {elapsed:.0f} ms)"
        )
        console.print(f"export KUBECONFIG={path}")
        await stop.wait()
        console.print("stopping...")
    finally:
        await server.stop()
    console.print("stopped")
