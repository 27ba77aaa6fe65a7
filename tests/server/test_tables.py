"""Server-side printing: upstream's HumanDuration and printer columns."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubevisor.api import ResourceInfo
from kubevisor.server._schema import SchemaIndex
from kubevisor.server._tables import human_duration, table, table_columns

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
PODS = ResourceInfo("", "v1", "Pod", "pods", "pod", True)
WIDGETS = ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (9 * 60 + 5, "9m5s"),
        (179 * 60, "179m"),
        (3 * 3600 + 30 * 60, "3h30m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400 + 10 * 86400, "3y10d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_read_like_kubectls(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


def pod(phase: str, **status: object) -> dict[str, object]:
    created = (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": "p", "namespace": "default", "creationTimestamp": created},
        "spec": {"nodeName": "node-1", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": {"phase": phase, **status},
    }


def test_pod_rows_show_readiness_status_restarts_and_age() -> None:
    running = pod(
        "Running",
        podIP="10.0.0.5",
        containerStatuses=[
            {"name": "a", "ready": True, "restartCount": 2, "state": {"running": {}}},
            {
                "name": "b",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            },
        ],
    )
    body = table(PODS, [running], NOW)
    assert [c["name"] for c in body["columnDefinitions"]][:5] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert body["rows"][0]["cells"][:7] == ["p", "1/2", "CrashLoopBackOff", "2", "5m", "10.0.0.5", "node-1"]
    wide = [c["name"] for c in body["columnDefinitions"] if c["priority"] == 1]
    assert wide[:2] == ["IP", "Node"]


def test_kinds_without_a_printer_get_name_and_age() -> None:
    body = table(WIDGETS, [{"metadata": {"name": "w", "creationTimestamp": "2024-05-01T11:00:00Z"}}], NOW)
    assert [c["name"] for c in body["columnDefinitions"]] == ["Name", "Age"]
    assert body["rows"][0]["cells"] == ["w", "60m"]


def test_unknown_fields_are_named_by_their_full_path_and_pruned_on_request() -> None:
    definitions = {
        "Root": {"properties": {"spec": {"$ref": "#/definitions/Spec"}}},
        "Spec": {
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/definitions/Item"}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "raw": {"type": "object"},
            }
        },
        "Item": {"properties": {"name": {"type": "string"}}},
    }
    obj = {
        "spec": {
            "items": [{"name": "a"}, {"name": "b", "extra": 1}],
            "labels": {"any": "thing"},
            "raw": {"free": {"form": True}},
            "bogus": 2,
        }
    }
    schemas = SchemaIndex(definitions)
    assert schemas.unknown_fields(obj, "Root", prune=True) == ["spec.items[1].extra", "spec.bogus"]
    assert "bogus" not in obj["spec"] and obj["spec"]["items"][1] == {"name": "b"}
    assert obj["spec"]["raw"] == {"free": {"form": True}}


# -- column definitions, pinned to the byte ------------------------------------------------------

NAME = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
AGE = {
    "name": "Age",
    "type": "string",
    "format": "",
    "description": "CreationTimestamp is a timestamp representing the server time when this object was created.",
    "priority": 0,
}


def column(name: str, description: str = "", *, type: str = "string", priority: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "type": type,
        "format": "",
        "description": description or name,
        "priority": priority,
    }


TEMPLATE_COLUMNS = [
    column("Containers", "Names of each container in the template.", priority=1),
    column("Images", "Images referenced by each container in the template.", priority=1),
    column("Selector", "The label selector.", priority=1),
]

PINNED_COLUMNS = {
    ("", "Pod"): [
        NAME,
        column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        column("Status", "The aggregate status of the containers in this pod."),
        column("Restarts", "The number of times the containers in this pod have been restarted."),
        AGE,
        column("IP", "IP address assigned to this pod.", priority=1),
        column("Node", "Name of the node this pod is assigned to.", priority=1),
        column("Nominated Node", "Name of the node this pod is nominated to.", priority=1),
        column("Readiness Gates", "The readiness gates of this pod.", priority=1),
    ],
    ("apps", "Deployment"): [
        NAME,
        column("Ready", "Number of the pod with ready state"),
        column(
            "Up-to-date",
            "Total number of non-terminated pods targeted by this deployment that have the desired "
            "template spec.",
            type="integer",
        ),
        column(
            "Available",
            "Total number of available pods (ready for at least minReadySeconds) targeted by this "
            "deployment.",
            type="integer",
        ),
        AGE,
        *TEMPLATE_COLUMNS,
    ],
    ("", "Service"): [
        NAME,
        column("Type"),
        column("Cluster-IP"),
        column("External-IP"),
        column("Port(s)"),
        AGE,
        column("Selector", priority=1),
    ],
    # No printer of its own (yet): the fallback every kind without one gets.
    ("", "Node"): [NAME, AGE],
    ("batch", "Job"): [
        NAME,
        column("Status", "Status of the job."),
        column("Completions", "The completion status of the job."),
        column("Duration", "Time required to complete the job."),
        AGE,
        *TEMPLATE_COLUMNS,
    ],
}


@pytest.mark.parametrize(("group", "kind"), list(PINNED_COLUMNS))
def test_column_definitions_of_common_kinds_are_pinned_to_the_byte(group: str, kind: str) -> None:
    info = ResourceInfo(group, "v1", kind, f"{kind.lower()}s", kind.lower(), kind != "Node")
    # Compared as JSON text, so that the order of the keys in each definition is pinned too.
    assert json.dumps(table_columns(info)) == json.dumps(PINNED_COLUMNS[(group, kind)])


CREATED = "2024-05-01T09:00:00Z"
TEMPLATE = {
    "spec": {"containers": [{"name": "web", "image": "nginx:1"}, {"name": "log", "image": "busybox"}]}
}
SELECTOR = {
    "matchLabels": {"app": "web"},
    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
}


@pytest.mark.parametrize(
    ("group", "kind", "obj", "cells"),
    [
        (
            "apps",
            "Deployment",
            {
                "metadata": {"name": "web", "creationTimestamp": CREATED},
                "spec": {"replicas": 3, "selector": SELECTOR, "template": TEMPLATE},
                "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
            },
            ["web", "2/3", 3, 2, "3h", "web,log", "nginx:1,busybox", "app=web,tier in (a,b)"],
        ),
        (
            "batch",
            "Job",
            {
                "metadata": {"name": "once", "creationTimestamp": CREATED},
                "spec": {"completions": 1, "selector": SELECTOR, "template": TEMPLATE},
                "status": {
                    "succeeded": 1,
                    "startTime": "2024-05-01T09:00:00Z",
                    "completionTime": "2024-05-01T09:01:30Z",
                    "conditions": [{"type": "Complete", "status": "True"}],
                },
            },
            ["once", "Complete", "1/1", "90s", "3h", "web,log", "nginx:1,busybox", "app=web,tier in (a,b)"],
        ),
        (
            "",
            "Service",
            {
                "metadata": {"name": "web", "creationTimestamp": CREATED},
                "spec": {
                    "type": "NodePort",
                    "clusterIP": "10.96.0.10",
                    "ports": [{"port": 80, "nodePort": 30080}, {"port": 53, "protocol": "UDP"}],
                    "selector": {"app": "web"},
                },
            },
            ["web", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "3h", "app=web"],
        ),
    ],
)
def test_workload_and_service_rows_show_what_kubectl_shows(
    group: str, kind: str, obj: dict[str, Any], cells: list[Any]
) -> None:
    info = ResourceInfo(group, "v1", kind, f"{kind.lower()}s", kind.lower(), True)
    assert json.dumps(table(info, [obj], NOW)["rows"][0]["cells"]) == json.dumps(cells)
