"""Fixtures for the Todo operator's tests: kubevisor's testing plugin (one embedded server per
session, a namespace per test), and the operator running in that namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubevisor.client import Client
from kubevisor.runtime import Manager
from kubevisor.testing import kube_client, kubevisor_server, namespace, running

from ..operator import operator

__all__ = ["kube_client", "kubevisor_server", "namespace", "todo", "todo_operator"]


def todo(name: str, namespace: str, title: str, **spec: Any) -> dict[str, Any]:
    """A Todo manifest."""
    return {
        "apiVersion": "example.com/v1",
        "kind": "Todo",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"title": title, **spec},
    }


@pytest.fixture
async def todo_operator(kube_client: Client, namespace: str) -> AsyncIterator[Manager]:
    """The Todo operator (its CRD installed first), running in the test's namespace for the test."""
    async with running(operator, kube_client, namespace=namespace) as manager:
        yield manager
