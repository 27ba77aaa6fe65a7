"""`make demo`: start the embedded API server and drive it with kubectl, as a user would.

Starts ``kubevisor dev`` as a subprocess on a free port, then runs kubectl against it: create a
namespace, apply a Deployment, ConfigMap and Service, show ``kubectl get`` output, watch a change
arrive, scale, delete the namespace (the built-in namespace controller empties it), and stop the server.  Without kubectl on PATH the same steps run through the official
``kubernetes`` Python client (and the demo says so).  Later issues replace this with the operator demo.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

console = Console(highlight=False)

MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: demo}
data: {greeting: hello}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def _run(kubectl: str, env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    shown = "kubectl " + " ".join(args)
    console.print(f"[bold]$ {shown}[/]")
    result = subprocess.run(
        [kubectl, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False
    )
    output = (result.stdout + result.stderr).rstrip()
    if output:
        console.print(output, markup=False)
    if result.returncode != 0:
        raise RuntimeError(f"{shown} failed with exit code {result.returncode}")
    return result.stdout


def _with_kubectl(kubectl: str, kubeconfig: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    _step("create a namespace and apply a Deployment, a ConfigMap and a Service")
    _run(kubectl, env, "create", "namespace", "demo")
    _run(kubectl, env, "apply", "-f", "-", stdin=MANIFESTS)
    _step("what the server holds")
    _run(kubectl, env, "get", "deployments,configmaps,services", "-n", "demo")
    _run(kubectl, env, "get", "deployment", "web", "-n", "demo", "-o", "wide")
    _step("a watch sees a change")
    watch = subprocess.Popen(
        [kubectl, "get", "configmaps", "-n", "demo", "--watch", "--output-watch-events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert watch.stdout is not None
        console.print(
            "[bold]$ kubectl get configmaps -n demo --watch --output-watch-events[/]  (in the background)"
        )
        console.print(watch.stdout.readline().rstrip(), markup=False)  # header
        console.print(watch.stdout.readline().rstrip(), markup=False)  # the current object
        _run(
            kubectl,
            env,
            "patch",
            "configmap",
            "web-config",
            "-n",
            "demo",
            "--type=merge",
            "-p",
            '{"data":{"extra":"1"}}',
        )
        console.print("[dim]watch output:[/]")
        console.print(watch.stdout.readline().rstrip(), markup=False)
    finally:
        watch.terminate()
        watch.wait(5)
    _step("scale, then read it back")
    _run(kubectl, env, "scale", "deployment", "web", "-n", "demo", "--replicas=3")
    _run(kubectl, env, "get", "deployment", "web", "-n", "demo", "-o", "jsonpath={.spec.replicas}{'\\n'}")
    _step("delete the namespace: the namespace controller empties it, then it goes")
    _run(kubectl, env, "delete", "namespace", "demo", "--wait", "--timeout=30s")
    _run(kubectl, env, "get", "namespaces")


def _with_python_client(kubeconfig: Path) -> None:
    import yaml
    from kubernetes import client, config, watch

    console.print(
        "[yellow]kubectl is not installed: doing the same with the official `kubernetes` Python client.[/]"
    )
    api_client = config.new_client_from_config(str(kubeconfig))
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    _step("create a namespace and a Deployment, a ConfigMap and a Service")
    core.create_namespace({"metadata": {"name": "demo"}})
    docs = list(yaml.safe_load_all(MANIFESTS))
    apps.create_namespaced_deployment("demo", docs[0])
    core.create_namespaced_config_map("demo", docs[1])
    core.create_namespaced_service("demo", docs[2])
    _step("what the server holds")
    for d in apps.list_namespaced_deployment("demo").items:
        console.print(f"deployment/{d.metadata.name}  replicas={d.spec.replicas}")
    for c in core.list_namespaced_config_map("demo").items:
        console.print(f"configmap/{c.metadata.name}  data={c.data}")
    for s in core.list_namespaced_service("demo").items:
        console.print(f"service/{s.metadata.name}  clusterIP={s.spec.cluster_ip}")
    _step("a watch sees a change")
    rv = core.list_namespaced_config_map("demo").metadata.resource_version
    core.patch_namespaced_config_map("web-config", "demo", {"data": {"extra": "1"}})
    for event in watch.Watch().stream(
        core.list_namespaced_config_map, "demo", resource_version=rv, timeout_seconds=5
    ):
        console.print(
            f"{event['type']} configmap/{event['object'].metadata.name} data={event['object'].data}"
        )
        break


def main() -> int:
    kubectl = shutil.which("kubectl")
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        port = _free_port()
        _step("kubevisor dev")
        console.print(f"[bold]$ kubevisor dev --port {port} --in-memory --kubeconfig {kubeconfig}[/]")
        started = time.perf_counter()
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from kubevisor.cli import main; main()",
                "dev",
                "--port",
                str(port),
                "--in-memory",
                "--kubeconfig",
                str(kubeconfig),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert server.stdout is not None
            ready, export = server.stdout.readline(), server.stdout.readline()
            console.print((ready + export).rstrip(), markup=False)
            if "ready" not in ready:
                raise RuntimeError(f"kubevisor dev did not start: {ready}{server.stdout.read()}")
            console.print(
                f"[dim](process started and ready in {(time.perf_counter() - started) * 1000:.0f} ms)[/]"
            )
            if kubectl:
                _with_kubectl(kubectl, kubeconfig)
            else:
                _with_python_client(kubeconfig)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    console.print(Panel.fit("[bold green]demo finished: the embedded API server stopped cleanly[/]"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
