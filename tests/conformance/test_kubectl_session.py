"""A kubectl session against ``kubevisor dev``, with the oldest and newest kubectl on the machine.

Each test is one thing a user does with kubectl; together they are the session issue #2 names.
Skipped, with the reason, when kubectl is not installed.
"""

from __future__ import annotations

import json
import stat
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conformance.conftest import DevServer, Kubectl, kubectl_binaries

BINARIES = kubectl_binaries()
pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(not BINARIES, reason="kubectl is not installed on this machine"),
]

MANIFESTS = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels: {app: web, tier: frontend}
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
            ports:
            - containerPort: 80
            env:
            - {name: MODE, value: prod}
            - {name: DEBUG, value: "0"}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: settings
      labels: {app: web}
    data:
      color: blue
      size: large
    ---
    apiVersion: v1
    kind: Secret
    metadata:
      name: creds
    stringData:
      password: hunter2
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: web
      labels: {app: web}
    spec:
      selector: {app: web}
      ports:
      - port: 80
        targetPort: 80
    """
)


@pytest.fixture(scope="module", params=[b for _, b in BINARIES], ids=[label for label, _ in BINARIES])
def kubectl(
    request: pytest.FixtureRequest, dev_server: DevServer, tmp_path_factory: pytest.TempPathFactory
) -> Kubectl:
    return Kubectl(request.param, dev_server.kubeconfig, tmp_path_factory.mktemp("kubectl"))


_counter = iter(range(1_000_000))


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"session-{next(_counter)}"
    kubectl.run("create", "namespace", name)
    yield name


@pytest.fixture
def applied(kubectl: Kubectl, namespace: str) -> str:
    out = kubectl.run("apply", "-n", namespace, "-f", "-", input=MANIFESTS).stdout
    for line in (
        "deployment.apps/web created",
        "configmap/settings created",
        "secret/creds created",
        "service/web created",
    ):
        assert line in out
    return namespace


def test_namespaces_are_created_listed_and_deleted(kubectl: Kubectl) -> None:
    name = f"short-lived-{next(_counter)}"
    kubectl.run("create", "namespace", name)
    kubectl.run("create", "configmap", "inside", "-n", name, "--from-literal=a=b")
    names = kubectl.run("get", "namespaces", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system", f"namespace/{name}"} <= set(names)
    kubectl.run("delete", "namespace", name, "--timeout=30s")
    gone = kubectl.run("get", "namespace", name, check=False)
    assert gone.returncode != 0
    assert f'namespaces "{name}" not found' in gone.stderr


def test_apply_creates_then_reports_unchanged(kubectl: Kubectl, applied: str) -> None:
    again = kubectl.run("apply", "-n", applied, "-f", "-", input=MANIFESTS).stdout
    assert "deployment.apps/web unchanged" in again
    assert "configmap/settings unchanged" in again


def test_secret_string_data_is_stored_base64_encoded(kubectl: Kubectl, applied: str) -> None:
    secret = kubectl.json("get", "secret", "creds", "-n", applied)
    assert secret["data"] == {"password": "aHVudGVyMg=="}
    assert secret["type"] == "Opaque"
    assert "stringData" not in secret


def test_get_yaml_and_json_show_server_set_metadata(kubectl: Kubectl, applied: str) -> None:
    as_yaml = yaml.safe_load(kubectl.run("get", "deployment", "web", "-n", applied, "-o", "yaml").stdout)
    as_json = kubectl.json("get", "deployment", "web", "-n", applied)
    for obj in (as_yaml, as_json):
        meta = obj["metadata"]
        assert meta["name"] == "web" and meta["namespace"] == applied
        assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
        assert meta["generation"] == 1
        assert "kubectl.kubernetes.io/last-applied-configuration" in meta["annotations"]
    assert as_yaml["spec"]["replicas"] == 2


def test_get_prints_upstream_columns_and_wide_adds_more(kubectl: Kubectl, applied: str) -> None:
    plain = kubectl.run("get", "deployments", "-n", applied).stdout.splitlines()
    assert plain[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert plain[1].split()[0] == "web"
    wide = kubectl.run("get", "deployments", "-n", applied, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:8] == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert "nginx:1.27" in wide[1]
    services = kubectl.run("get", "services", "-n", applied).stdout.splitlines()
    assert services[0].split()[:4] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP"]
    assert "ClusterIP" in services[1] and "80/TCP" in services[1]


def test_get_filters_by_label_selector(kubectl: Kubectl, applied: str) -> None:
    names = kubectl.run(
        "get", "deployments,configmaps,services,secrets", "-n", applied, "-l", "app=web", "-o", "name"
    ).stdout.split()
    assert sorted(names) == ["configmap/settings", "deployment.apps/web", "service/web"]
    none = kubectl.run("get", "configmaps", "-n", applied, "-l", "app notin (web),app", "-o", "name").stdout
    assert none.strip() == ""


def test_get_filters_by_field_selector(kubectl: Kubectl, applied: str) -> None:
    names = kubectl.run(
        "get", "configmaps", "-n", applied, "--field-selector", "metadata.name=settings", "-o", "name"
    ).stdout.split()
    assert names == ["configmap/settings"]
    bad = kubectl.run("get", "configmaps", "-n", applied, "--field-selector", "spec.nothing=x", check=False)
    assert bad.returncode != 0
    assert "field label not supported: spec.nothing" in bad.stderr


def test_label_and_annotate(kubectl: Kubectl, applied: str) -> None:
    kubectl.run("label", "configmap", "settings", "-n", applied, "env=staging")
    kubectl.run("annotate", "configmap", "settings", "-n", applied, "owner=team-a")
    meta = kubectl.json("get", "configmap", "settings", "-n", applied)["metadata"]
    assert meta["labels"]["env"] == "staging"
    assert meta["annotations"]["owner"] == "team-a"
    kubectl.run("label", "configmap", "settings", "-n", applied, "env-")
    assert "env" not in kubectl.json("get", "configmap", "settings", "-n", applied)["metadata"]["labels"]


def test_patch_with_json_merge_and_strategic_types(kubectl: Kubectl, applied: str) -> None:
    ns = ("-n", applied)
    kubectl.run(
        "patch",
        "configmap",
        "settings",
        *ns,
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/data/color","value":"red"}]',
    )
    kubectl.run(
        "patch", "configmap", "settings", *ns, "--type=merge", "-p", '{"data":{"size":null,"shape":"round"}}'
    )
    data = kubectl.json("get", "configmap", "settings", *ns)["data"]
    assert data == {"color": "red", "shape": "round"}

    # Strategic merge: containers merge by name, env entries by name, $patch: delete removes one.
    kubectl.run(
        "patch",
        "deployment",
        "web",
        *ns,
        "--type=strategic",
        "-p",
        json.dumps(
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "nginx",
                                    "image": "nginx:1.28",
                                    "env": [{"name": "DEBUG", "$patch": "delete"}],
                                },
                                {"name": "sidecar", "image": "busybox"},
                            ]
                        }
                    }
                }
            }
        ),
    )
    deployment = kubectl.json("get", "deployment", "web", *ns)
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert containers["nginx"]["image"] == "nginx:1.28"
    assert [p["containerPort"] for p in containers["nginx"]["ports"]] == [80]
    assert [e["name"] for e in containers["nginx"]["env"]] == ["MODE"]
    assert containers["sidecar"]["image"] == "busybox"
    assert deployment["metadata"]["generation"] == 2


def test_invalid_json_patch_is_rejected_and_changes_nothing(kubectl: Kubectl, applied: str) -> None:
    before = kubectl.json("get", "configmap", "settings", "-n", applied)
    bad = kubectl.run(
        "patch",
        "configmap",
        "settings",
        "-n",
        applied,
        "--type=json",
        "-p",
        '[{"op":"test","path":"/data/color","value":"green"},{"op":"remove","path":"/data"}]',
        check=False,
    )
    assert bad.returncode != 0
    after = kubectl.json("get", "configmap", "settings", "-n", applied)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_scale_updates_spec_replicas_through_the_scale_subresource(kubectl: Kubectl, applied: str) -> None:
    out = kubectl.run("scale", "deployment", "web", "-n", applied, "--replicas=5").stdout
    assert "deployment.apps/web scaled" in out
    assert kubectl.json("get", "deployment", "web", "-n", applied)["spec"]["replicas"] == 5


def test_edit_with_an_editor_script(kubectl: Kubectl, applied: str, tmp_path: Path) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/color: blue/color: green/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    out = kubectl.run(
        "edit",
        "configmap",
        "settings",
        "-n",
        applied,
        env=kubectl.env(EDITOR=str(editor), KUBE_EDITOR=str(editor)),
    ).stdout
    assert "configmap/settings edited" in out
    assert kubectl.json("get", "configmap", "settings", "-n", applied)["data"]["color"] == "green"


def test_delete_waits_and_wait_for_delete_returns_when_gone(kubectl: Kubectl, applied: str) -> None:
    out = kubectl.run("delete", "configmap", "settings", "-n", applied, "--wait=true", "--timeout=30s").stdout
    assert 'configmap "settings" deleted' in out
    kubectl.run("create", "configmap", "doomed", "-n", applied, "--from-literal=a=b")
    waiter = kubectl.popen("wait", "--for=delete", "configmap/doomed", "-n", applied, "--timeout=30s")
    time.sleep(0.5)  # let the waiter start watching; correctness does not depend on it
    kubectl.run("delete", "configmap", "doomed", "-n", applied, "--wait=false")
    stdout, stderr = waiter.communicate(timeout=40)
    assert waiter.returncode == 0, stderr
    assert "condition met" in stdout or "deleted" in stdout


def test_get_watch_sees_a_change(kubectl: Kubectl, applied: str) -> None:
    watcher = kubectl.popen("get", "configmaps", "-n", applied, "-w", "-o", "name", "--request-timeout=20s")
    try:
        time.sleep(1.0)  # let the initial list arrive before the change; asserted below either way
        kubectl.run("create", "configmap", "seen-by-watch", "-n", applied, "--from-literal=k=v")
        deadline = time.monotonic() + 20
        seen = []
        assert watcher.stdout is not None
        while time.monotonic() < deadline:
            line = watcher.stdout.readline()
            if not line:
                break
            seen.append(line.strip())
            if line.strip() == "configmap/seen-by-watch":
                break
        assert "configmap/seen-by-watch" in seen
        assert "configmap/settings" in seen  # the initial state came first
    finally:
        watcher.kill()
        watcher.wait()


def test_api_resources_lists_built_in_kinds_with_short_names(kubectl: Kubectl) -> None:
    out = kubectl.run("api-resources").stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in out[1:] if line.strip()}
    assert rows["deployments"][1] == "deploy"
    assert rows["namespaces"][1] == "ns"
    assert "apps/v1" in rows["deployments"]
    assert rows["configmaps"][1] == "cm"
    namespaced = kubectl.run("api-resources", "--namespaced=false", "-o", "name").stdout.split()
    assert "namespaces" in namespaced and "configmaps" not in namespaced


def test_explain_reads_the_openapi_documents(kubectl: Kubectl) -> None:
    out = kubectl.run("explain", "deployment.spec.replicas").stdout
    assert "replicas" in out
    assert "integer" in out
    assert "desired pods" in out.lower()


def test_bad_input_is_rejected_with_a_specific_error(kubectl: Kubectl, namespace: str) -> None:
    bad_name = kubectl.run("create", "configmap", "Bad_Name", "-n", namespace, check=False)
    assert bad_name.returncode != 0
    assert "metadata.name" in bad_name.stderr and "RFC 1123" in bad_name.stderr
    unknown_field = kubectl.run(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\nbogus: 1\n",
        check=False,
    )
    assert unknown_field.returncode != 0
    assert "bogus" in unknown_field.stderr
    missing_ns = kubectl.run("create", "configmap", "x", "-n", "does-not-exist", check=False)
    assert missing_ns.returncode != 0
    assert 'namespaces "does-not-exist" not found' in missing_ns.stderr
    unknown_kind = kubectl.run("get", "frobnicators", check=False)
    assert unknown_kind.returncode != 0
    assert "frobnicators" in unknown_kind.stderr
