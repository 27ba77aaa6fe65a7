"""Server-side printing: upstream's HumanDuration and printer columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kubevisor.api import ResourceInfo
from kubevisor.server._schema import SchemaIndex
from kubevisor.server._tables import human_duration, table

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
