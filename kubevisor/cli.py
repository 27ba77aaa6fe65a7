"""The ``kubevisor`` command line."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from kubevisor import __version__

if TYPE_CHECKING:
    from kubevisor.client import Client
    from kubevisor.operator import Operator

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


@main.command()
@click.argument("target", metavar="MODULE:OPERATOR")
@click.option(
    "--dev",
    is_flag=True,
    help="Run against an embedded API server started in this process, with the operator's CRDs installed.",
)
@click.option("--namespace", "-n", help="Reconcile only this namespace [default: all namespaces].")
@click.option(
    "--leader-elect/--no-leader-elect",
    default=None,
    help="Contend for a Lease so that one replica is active at a time [default: on; off with --dev].",
)
@click.option(
    "--lease-namespace",
    help="Namespace of the leader-election Lease [default: --namespace, else the kubeconfig's or pod's].",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port of /healthz, /readyz and /metrics (0: a free port).",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The cluster's kubeconfig [default: $KUBECONFIG, ~/.kube/config, in-cluster]; with --dev,"
    f" where to write the embedded server's [default: {DEFAULT_KUBECONFIG}].",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Logging threshold.",
)
def run(
    target: str,
    dev: bool,
    namespace: str | None,
    leader_elect: bool | None,
    lease_namespace: str | None,
    metrics_port: int,
    kubeconfig: Path | None,
    log_level: str,
) -> None:
    """Run the operator MODULE:OPERATOR (e.g. examples.todo.operator:operator) until SIGTERM.

    Against the configured cluster (kubeconfig or in-cluster), or with --dev against an embedded
    API server.  The first SIGTERM or Ctrl-C drains (running reconciles finish), a second forces.
    """
    from kubevisor.runtime import DeclarationError

    operator = _load_operator(target)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", force=True
    )
    settings = _RunSettings(
        dev=dev,
        namespace=namespace or None,
        leader_elect=(not dev) if leader_elect is None else leader_elect,
        lease_namespace=lease_namespace,
        metrics_port=metrics_port or _free_port(),
        kubeconfig=kubeconfig,
    )
    try:
        asyncio.run(_run(operator, settings))
    except DeclarationError as exc:
        raise click.ClickException(f"operator {operator.name!r} is misdeclared: {exc}") from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


@dataclass(frozen=True, slots=True)
class _RunSettings:
    dev: bool
    namespace: str | None
    leader_elect: bool
    lease_namespace: str | None
    metrics_port: int
    kubeconfig: Path | None


def _load_operator(target: str) -> Operator:
    """The Operator named ``module:attribute`` (an Operator, or a callable returning one), imported
    with the working directory on ``sys.path`` (as ``python -m`` would)."""
    from kubevisor.operator import Operator

    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise click.BadParameter(
            "expected MODULE:OPERATOR, e.g. examples.todo.operator:operator", param_hint="TARGET"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}", param_hint="TARGET") from None
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise click.BadParameter(
                f"{module_name!r} has no attribute {attribute!r}", param_hint="TARGET"
            ) from None
    if not isinstance(value, Operator) and callable(value) and not isinstance(value, type):
        value = value()
    if not isinstance(value, Operator):
        raise click.BadParameter(
            f"{target} is a {type(value).__name__}, not a kubevisor.operator.Operator", param_hint="TARGET"
        )
    return value


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _run(operator: Operator, settings: _RunSettings) -> None:
    from kubevisor.api import AlreadyExists
    from kubevisor.client import Client, ClientOptions, config_from_kubeconfig, load_config
    from kubevisor.server import APIServer, ServerOptions, default_controllers

    console = Console(highlight=False, soft_wrap=True)  # never wrap: scripts parse these lines
    if not settings.dev:
        config = load_config(settings.kubeconfig)
        # controller-runtime's client defaults: client-go's 5/s throttles an operator at start-up.
        async with Client(config, ClientOptions(qps=20, burst=30)) as client:
            await _run_operator(operator, client, settings, config.namespace, console)
        console.print("stopped")
        return
    started = time.perf_counter()
    server = APIServer(ServerOptions(controllers=default_controllers()))
    await server.start()
    try:
        path = server.write_kubeconfig(settings.kubeconfig or DEFAULT_KUBECONFIG).resolve()
        elapsed = (time.perf_counter() - started) * 1000
        console.print(
            f"[bold green]kubevisor API server ready[/] at {server.url} (in memory, {elapsed:.0f} ms)"
        )
        console.print(f"export KUBECONFIG={path}")
        async with Client(config_from_kubeconfig(server.kubeconfig), ClientOptions(qps=None)) as client:
            try:
                async with asyncio.timeout(60):
                    names = await operator.install_crds(client)
            except TimeoutError:
                raise click.ClickException(
                    "the embedded API server did not establish the operator's CRDs within 60 s"
                ) from None
            if names:
                console.print(f"installed CRDs: {', '.join(names)} (established)")
            if settings.namespace is not None:
                # A fresh server has only the default namespaces; the operator's must exist to be used.
                try:
                    await client.create(
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": settings.namespace}}
                    )
                    console.print(f"created namespace {settings.namespace}")
                except AlreadyExists:
                    pass
            await _run_operator(operator, client, settings, "default", console)
    finally:
        await server.stop()
    console.print("stopped")


async def _run_operator(
    operator: Operator, client: Client, settings: _RunSettings, default_namespace: str, console: Console
) -> None:
    from kubevisor.runtime import LeaderElectionOptions, ManagerOptions

    election = None
    if settings.leader_elect:
        election = LeaderElectionOptions(
            operator.name, lease_namespace=settings.lease_namespace or settings.namespace or default_namespace
        )
    host = "127.0.0.1" if settings.dev else "0.0.0.0"
    options = ManagerOptions(
        name=operator.name,
        http_host=host,
        http_port=settings.metrics_port,
        leader_election=election,
        handle_signals=True,
    )
    scope = f"namespace {settings.namespace}" if settings.namespace else "all namespaces"
    lease = f", leader election on Lease {election.lease_namespace}/{election.lease_name}" if election else ""
    console.print(
        f"[bold green]operator {operator.name} starting[/] ({scope}{lease});"
        f" metrics at http://{host}:{settings.metrics_port}/metrics"
    )
    await operator.run(client, options, namespace=settings.namespace)
