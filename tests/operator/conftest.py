"""Fixtures for the Operator tests: kubevisor's testing plugin, and a ``Gizmo`` custom kind served by
the session's embedded server (registered in-process, so these tests need no CRD support)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from kubevisor.resource import Condition, Resource
from kubevisor.server import APIServer, Strategy
from kubevisor.testing import EmbeddedServer, kube_client, kubevisor_server, namespace

__all__ = ["Gizmo", "gizmos", "kube_client", "kubevisor_server", "namespace"]


class GizmoSpec(BaseModel):
    size: int = 1


class GizmoStatus(BaseModel):
    phase: str | None = None
    observedGeneration: int | None = None
    conditions: list[Condition] = []


class Gizmo(Resource, group="test.kubevisor.dev", version="v1", kind="Gizmo"):
    spec: GizmoSpec = GizmoSpec()
    status: GizmoStatus = GizmoStatus()


def gizmo(name: str, namespace: str, size: int = 1) -> dict[str, object]:
    return {
        "apiVersion": "test.kubevisor.dev/v1",
        "kind": "Gizmo",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"size": size},
    }


@pytest.fixture(scope="session")
def gizmos(kubevisor_server: EmbeddedServer) -> None:
    """Serve Gizmos, as a custom resource's strategy does (generation, no unconditional update)."""

    def serve(server: APIServer) -> None:
        server.add_resource(
            Gizmo.resource_info(),
            Strategy(generation=True, unconditional_update=False, strategic_merge=False),
        )

    kubevisor_server.call(serve)
