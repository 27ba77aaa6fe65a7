"""pytest fixtures: one embedded server per session, a client and a fresh namespace per test."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from kubevisor.api import GroupVersionKind, NotFound
from kubevisor.client import Client
from kubevisor.testing._server import EmbeddedServer

__all__ = ["kube_client", "kubevisor_server", "namespace"]

NAMESPACE = GroupVersionKind("", "v1", "Namespace")

_sequence = itertools.count(1)


@pytest.fixture(scope="session")
def kubevisor_server() -> Iterator[EmbeddedServer]:
    """The session's embedded API server (in memory, with the garbage collector and namespace
    lifecycle controllers), started on first use and stopped at the end of the session."""
    with EmbeddedServer() as server:
        yield server


@pytest_asyncio.fixture
async def kube_client(kubevisor_server: EmbeddedServer) -> AsyncIterator[Client]:
    """A client of the session's server, without client-side rate limit; closed after the test."""
    async with kubevisor_server.client() as client:
        yield client


def namespace_name(test_name: str, number: int) -> str:
    """A namespace name for a test: ``t<number>-<the test's name as a DNS label>``, at most 63
    characters (a valid DNS-1123 label, unique within the session)."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")
    prefix = f"t{number}-"
    return (prefix + slug)[:63].rstrip("-") or prefix.rstrip("-")


@pytest_asyncio.fixture
async def namespace(kube_client: Client, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A namespace of its own for the test, deleted after it (the namespace controller then deletes
    what it holds, in the background), so tests sharing the session's server never see each
    other's objects."""
    name = namespace_name(request.node.name, next(_sequence))
    await kube_client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        try:
            await kube_client.delete(NAMESPACE, name)
        except NotFound:
            pass
