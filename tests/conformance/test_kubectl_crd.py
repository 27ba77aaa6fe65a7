"""kubectl with CustomResourceDefinitions and apply against ``kubevisor dev``, with the oldest and
newest kubectl on the machine: install a CRD and use its resource (get, printer columns, -o wide,
short names, ``get all``, explain), an invalid object rejected with its field named, server-side
apply conflicts between two field managers and ``--force-conflicts``, and classic client-side apply
removing a field deleted from the file (built-in kinds and custom resources).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest

from tests.conformance.conftest import DevServer, Kubectl, kubectl_binaries

BINARIES = kubectl_binaries()
pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(not BINARIES, reason="kubectl is not installed on this machine"),
]

_counter = iter(range(1_000_000))


def crd_manifest(group: str) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: widgets.{group}
        spec:
          group: {group}
          scope: Namespaced
          names: {{plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [all]}}
          versions:
          - name: v1
            served: true
            storage: true
            subresources: {{status: {{}}}}
            additionalPrinterColumns:
            - {{name: Replicas, type: integer, jsonPath: .spec.replicas}}
            - {{name: Color, type: string, jsonPath: .spec.color, priority: 1}}
            - {{name: Age, type: date, jsonPath: .metadata.creationTimestamp}}
            schema:
              openAPIV3Schema:
                type: object
                properties:
                  spec:
                    type: object
                    description: What the widget should be.
                    properties:
                      replicas: {{type: integer, minimum: 0, maximum: 10, description: How many widgets.}}
                      color: {{type: string, description: The paint.}}
                  status:
                    type: object
                    properties:
                      phase: {{type: string}}
        """
    )


def widget_manifest(group: str, name: str = "w1", replicas: int = 3, color: str | None = "red") -> str:
    spec = f"replicas: {replicas}" + (f", color: {color}" if color else "")
    return f"apiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: {name}}}\nspec: {{{spec}}}\n"


@pytest.fixture(scope="module", params=[b for _, b in BINARIES], ids=[label for label, _ in BINARIES])
def kubectl(
    request: pytest.FixtureRequest, dev_server: DevServer, tmp_path_factory: pytest.TempPathFactory
) -> Kubectl:
    return Kubectl(request.param, dev_server.kubeconfig, tmp_path_factory.mktemp("kubectl"))


@pytest.fixture
def namespace(kubectl: Kubectl) -> str:
    name = f"crd-{next(_counter)}"
    kubectl.run("create", "namespace", name)
    return name


@pytest.fixture
def group(kubectl: Kubectl) -> Iterator[str]:
    """A CRD installed through kubectl (each test its own group), deleted afterwards."""
    name = f"g{next(_counter)}.example.com"
    out = kubectl.run("apply", "-f", "-", input=crd_manifest(name)).stdout
    assert f"customresourcedefinition.apiextensions.k8s.io/widgets.{name} created" in out
    kubectl.run("wait", "--for=condition=established", f"crd/widgets.{name}", "--timeout=20s")
    yield name
    kubectl.run("delete", "crd", f"widgets.{name}", "--timeout=30s", check=False)


def test_a_crd_installs_and_its_objects_are_listed_with_its_printer_columns(
    kubectl: Kubectl, group: str, namespace: str
) -> None:
    out = kubectl.run("apply", "-n", namespace, "-f", "-", input=widget_manifest(group)).stdout
    assert f"widget.{group}/w1 created" in out
    lines = kubectl.run("get", f"widgets.{group}", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "REPLICAS", "AGE"]
    assert lines[1].split()[:2] == ["w1", "3"]
    wide = kubectl.run("get", f"widgets.{group}", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "REPLICAS", "COLOR", "AGE"]
    assert wide[1].split()[:3] == ["w1", "3", "red"]
    by_short_name = kubectl.run("get", "wd", "-n", namespace, "-o", "name").stdout.split()
    assert f"widget.{group}/w1" in by_short_name
    everything = kubectl.run("get", "all", "-n", namespace, "-o", "name").stdout.split()
    assert f"widget.{group}/w1" in everything
    obj = kubectl.json("get", f"widget.{group}", "w1", "-n", namespace)
    assert obj["spec"] == {"replicas": 3, "color": "red"} and obj["metadata"]["generation"] == 1


def test_explain_describes_the_fields_of_a_custom_resource(kubectl: Kubectl, group: str) -> None:
    version = f"--api-version={group}/v1"
    out = kubectl.run("explain", "widgets.spec.replicas", version).stdout
    assert "KIND:" in out and "Widget" in out
    assert "replicas" in out and "<integer>" in out
    assert "How many widgets." in out
    spec = kubectl.run("explain", "widgets.spec", version).stdout
    assert "What the widget should be." in spec and "color" in spec


def test_an_invalid_object_is_rejected_naming_the_field(kubectl: Kubectl, group: str, namespace: str) -> None:
    result = kubectl.run(
        "apply", "-n", namespace, "-f", "-", input=widget_manifest(group, "bad", replicas=30), check=False
    )
    assert result.returncode != 0
    assert (
        'The Widget "bad" is invalid: spec.replicas: Invalid value: 30: '
        "spec.replicas in body should be less than or equal to 10" in result.stderr
    )
    missing = kubectl.run("get", f"widget.{group}", "bad", "-n", namespace, check=False)
    assert missing.returncode != 0 and "not found" in missing.stderr


def test_an_unknown_field_is_rejected_by_kubectls_strict_validation(
    kubectl: Kubectl, group: str, namespace: str
) -> None:
    manifest = widget_manifest(group, "typo").replace("color: red", "colour: red")
    result = kubectl.run("apply", "-n", namespace, "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.colour"' in result.stderr


def test_server_side_apply_conflicts_between_managers_until_forced(
    kubectl: Kubectl, group: str, namespace: str
) -> None:
    ns = ("-n", namespace)
    first = kubectl.run(
        "apply", "--server-side", "--field-manager=alice", *ns, "-f", "-", input=widget_manifest(group)
    )
    assert f"widget.{group}/w1 serverside-applied" in first.stdout
    changed = widget_manifest(group, replicas=5)
    conflict = kubectl.run(
        "apply", "--server-side", "--field-manager=bob", *ns, "-f", "-", input=changed, check=False
    )
    assert conflict.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas' in conflict.stderr
    forced = kubectl.run(
        "apply", "--server-side", "--field-manager=bob", "--force-conflicts", *ns, "-f", "-", input=changed
    )
    assert "serverside-applied" in forced.stdout
    obj = kubectl.json("get", f"widget.{group}", "w1", *ns, "--show-managed-fields")
    assert obj["spec"]["replicas"] == 5
    managers = {(m["manager"], m["operation"]): m["fieldsV1"] for m in obj["metadata"]["managedFields"]}
    assert managers[("bob", "Apply")] == {"f:spec": {"f:color": {}, "f:replicas": {}}}
    assert managers[("alice", "Apply")] == {"f:spec": {"f:color": {}}}


def test_server_side_apply_of_built_in_kinds_conflicts_until_forced(kubectl: Kubectl, namespace: str) -> None:
    ns = ("-n", namespace)
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\ndata: {key: one}\n"
    kubectl.run("apply", "--server-side", *ns, "-f", "-", input=manifest)
    other = manifest.replace("one", "two")
    conflict = kubectl.run(
        "apply", "--server-side", "--field-manager=other", *ns, "-f", "-", input=other, check=False
    )
    assert conflict.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .data.key' in conflict.stderr
    kubectl.run(
        "apply", "--server-side", "--field-manager=other", "--force-conflicts", *ns, "-f", "-", input=other
    )
    assert kubectl.json("get", "configmap", "shared", *ns)["data"] == {"key": "two"}


def test_client_side_apply_removes_a_field_deleted_from_the_file(kubectl: Kubectl, namespace: str) -> None:
    ns = ("-n", namespace)
    full = textwrap.dedent(
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, labels: {app: web, tier: front}}
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers:
              - name: app
                image: nginx:1.27
                env:
                - {name: MODE, value: prod}
                - {name: DEBUG, value: "1"}
        """
    )
    kubectl.run("apply", *ns, "-f", "-", input=full)
    trimmed = "".join(
        line for line in full.replace(", tier: front", "").splitlines(True) if "DEBUG" not in line
    )
    out = kubectl.run("apply", *ns, "-f", "-", input=trimmed).stdout
    assert "deployment.apps/web configured" in out
    obj = kubectl.json("get", "deployment", "web", *ns)
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert obj["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "MODE", "value": "prod"}]


def test_client_side_apply_of_a_custom_resource_removes_a_field_deleted_from_the_file(
    kubectl: Kubectl, group: str, namespace: str
) -> None:
    ns = ("-n", namespace)
    kubectl.run("apply", *ns, "-f", "-", input=widget_manifest(group))
    out = kubectl.run("apply", *ns, "-f", "-", input=widget_manifest(group, color=None)).stdout
    assert f"widget.{group}/w1 configured" in out
    assert kubectl.json("get", f"widget.{group}", "w1", *ns)["spec"] == {"replicas": 3}


def test_deleting_a_crd_deletes_its_objects(kubectl: Kubectl, namespace: str) -> None:
    name = f"g{next(_counter)}.example.com"
    kubectl.run("apply", "-f", "-", input=crd_manifest(name))
    kubectl.run("wait", "--for=condition=established", f"crd/widgets.{name}", "--timeout=20s")
    kubectl.run("apply", "-n", namespace, "-f", "-", input=widget_manifest(name))
    kubectl.run("delete", "crd", f"widgets.{name}", "--timeout=30s")
    gone = kubectl.run("get", "crd", f"widgets.{name}", check=False)
    assert gone.returncode != 0 and "not found" in gone.stderr
    unknown = kubectl.run("get", f"widgets.{name}", "-n", namespace, check=False)
    assert unknown.returncode != 0
