"""Fixtures for the Todo operator's tests: kubevisor's testing plugin (one embedded server per
session, a namespace per test), and the operator running in that namespace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubevisor.api import NotFound, UnsupportedMediaType
from kubevisor.client import Client, UnknownKind
from kubevisor.runtime import Manager
from kubevisor.testing import kube_client, kubevisor_server, namespace, running

from ..operator import CONFIG_MAP, operator

__all__ = ["kube_client", "kubevisor_server", "namespace", "todo", "todo_operator"]


def todo(name: str, namespace: str, title: str, **spec: Any) -> dict[str, Any]:
    """A Todo manifest."""
    return {
        "apiVersion": "example.com/v1",
        "kind": "Todo",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"title": title, **spec},
    }


_missing: list[str] = []
"""Why the server cannot run the operator, once found out (probing costs a timeout: once a session)."""


async def _skip_without_crds_and_apply(client: Client, namespace: str) -> None:
    """Skip unless the server serves CRDs and server-side apply, which the Todo operator needs (its
    kind is a CRD, its ConfigMap is applied server-side)."""
    if _missing:
        pytest.skip(_missing[0])
    try:
        # A server that stores CRDs but never establishes them does not serve custom resources;
        # establishing takes milliseconds where it is implemented.
        async with asyncio.timeout(10):
            await operator.install_crds(client)
    except (UnknownKind, TimeoutError):
        _missing.append("the embedded APIServer does not serve CustomResourceDefinitions (Established) yet")
        pytest.skip(_missing[0])
    probe = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa-probe", "namespace": namespace},
    }
    try:
        await client.apply(probe, field_manager="probe")
    except UnsupportedMediaType:
        _missing.append("the embedded APIServer does not implement server-side apply yet")
        pytest.skip(_missing[0])
    try:
        await client.delete(CONFIG_MAP, "ssa-probe", namespace=namespace)
    except NotFound:
        pass


@pytest.fixture
async def todo_operator(kube_client: Client, namespace: str) -> AsyncIterator[Manager]:
    """The Todo operator, running in the test's namespace for the test's duration."""
    await _skip_without_crds_and_apply(kube_client, namespace)
    async with running(operator, kube_client, namespace=namespace) as manager:
        yield manager
