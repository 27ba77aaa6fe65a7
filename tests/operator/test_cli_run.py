"""``kubevisor run MODULE:OPERATOR``: loading the target, running against an embedded server with
``--dev`` (reconciles happen, probes answer, SIGTERM drains), and misdeclarations named at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from kubevisor.api import GroupVersionKind
from kubevisor.cli import main
from kubevisor.client import Client, ClientOptions, load_config
from kubevisor.operator import Operator
from kubevisor.runtime import Action, Context
from kubevisor.testing import EmbeddedServer, wait_for, wait_for_list

CONFIG_MAP = GroupVersionKind("", "v1", "ConfigMap")
EVENT = GroupVersionKind("", "v1", "Event")
GADGET = GroupVersionKind("example.com", "v1", "Gadget")

greeter = Operator("greeter")


@greeter.reconciler(CONFIG_MAP)
async def greet(config_map: dict[str, Any], ctx: Context[Any]) -> Action:
    ctx.event("Normal", "Greeted", f"hello, {config_map['metadata']['name']}")
    return Action.done()


misdeclared = Operator("misdeclared")


@misdeclared.reconciler(GADGET)
async def reconcile_gadget(gadget: dict[str, Any], ctx: Context[Any]) -> None:
    return None


def make_greeter() -> Operator:
    return greeter


not_an_operator = 42


def kubevisor(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from kubevisor.cli import main; main()", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd or Path(__file__).parent.parent.parent,
        env={**os.environ, "COLUMNS": "200"},
    )


def read_until(proc: subprocess.Popen[str], marker: str) -> list[str]:
    """Lines printed until one containing ``marker`` (the process's own output ending fails)."""
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"the process ended before printing {marker!r}:\n" + "\n".join(lines))


async def test_run_dev_reconciles_on_an_embedded_server_and_drains_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = kubevisor(
        "run",
        "tests.operator.test_cli_run:greeter",
        "--dev",
        "--namespace",
        "hello",
        "--kubeconfig",
        str(kubeconfig),
        "--metrics-port",
        "0",
    )
    try:
        lines = read_until(proc, "operator greeter starting")
        assert f"export KUBECONFIG={kubeconfig.resolve()}" in lines
        assert "created namespace hello" in lines
        assert "(namespace hello);" in lines[-1]  # no leader election with --dev
        metrics = lines[-1].rsplit("metrics at ", 1)[1]
        async with Client(load_config(kubeconfig), ClientOptions(qps=None)) as client:
            await client.create(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "world", "namespace": "hello"}}
            )
            await wait_for_list(
                client,
                EVENT,
                lambda events: any(e["message"] == "hello, world" for e in events),
                namespace="hello",
            )
        async with aiohttp.ClientSession() as http:
            async with http.get(metrics.replace("/metrics", "/readyz")) as response:
                assert response.status == 200
            async with http.get(metrics) as response:
                assert (
                    'kubevisor_reconcile_total{controller="configmap",result="success"}'
                    in await response.text()
                )
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    assert "draining" in rest
    assert "stopped" in rest.splitlines()


def test_run_names_the_declaration_of_a_kind_the_server_does_not_serve(tmp_path: Path) -> None:
    proc = kubevisor(
        "run", "tests.operator.test_cli_run:misdeclared", "--dev", "--kubeconfig", str(tmp_path / "kc")
    )
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    line = next(line for line in output.splitlines() if line.startswith("Error:"))
    assert (
        "operator 'misdeclared' is misdeclared: @misdeclared.reconciler(Gadget) on reconcile_gadget" in line
    )
    assert "(tests/operator/test_cli_run.py:" in line
    assert "the server does not serve it (is its CRD installed?)" in line


def test_run_accepts_a_factory_returning_an_operator() -> None:
    from kubevisor.cli import _load_operator

    assert _load_operator("tests.operator.test_cli_run:make_greeter") is greeter


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tests.operator.test_cli_run", "expected MODULE:OPERATOR"),
        ("tests.no_such_module:operator", "cannot import 'tests.no_such_module'"),
        ("tests.operator.test_cli_run:nothing", "'tests.operator.test_cli_run' has no attribute 'nothing'"),
        (
            "tests.operator.test_cli_run:not_an_operator",
            "tests.operator.test_cli_run:not_an_operator is a int, not a",
        ),
    ],
)
def test_run_rejects_a_target_that_is_not_an_operator(target: str, message: str) -> None:
    result = CliRunner().invoke(main, ["run", target])
    assert result.exit_code == 2
    assert message in result.output


LEASE = GroupVersionKind("coordination.k8s.io", "v1", "Lease")


async def test_run_against_a_cluster_leads_through_a_lease_and_releases_it_on_sigterm(
    tmp_path: Path, kubevisor_server: EmbeddedServer, kube_client: Client, namespace: str
) -> None:
    kubeconfig = kubevisor_server.write_kubeconfig(tmp_path / "kubeconfig")
    proc = kubevisor(
        "run",
        "tests.operator.test_cli_run:greeter",
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        namespace,
        "--metrics-port",
        "0",
    )
    try:
        [*_, starting] = read_until(proc, "operator greeter starting")
        assert f"(namespace {namespace}, leader election on Lease {namespace}/greeter)" in starting
        lease = await wait_for(
            kube_client,
            LEASE,
            "greeter",
            lambda lease: lease["spec"].get("holderIdentity"),
            namespace=namespace,
        )
        await kube_client.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "world", "namespace": namespace}}
        )
        await wait_for_list(
            kube_client,
            EVENT,
            lambda events: any(e["message"] == "hello, world" for e in events),
            namespace=namespace,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    released = await kube_client.get(LEASE, "greeter", namespace=namespace)
    assert not released["spec"].get("holderIdentity")  # released for an immediate handover
    assert released["metadata"]["uid"] == lease["metadata"]["uid"]
