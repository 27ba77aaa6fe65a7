"""Running an operator inside a test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kubevisor.client import Client
from kubevisor.operator import Operator
from kubevisor.runtime import Manager, ManagerOptions

__all__ = ["running"]


@asynccontextmanager
async def running(
    operator: Operator,
    client: Client,
    *,
    namespace: str | None = None,
    options: ManagerOptions | None = None,
    install_crds: bool = True,
) -> AsyncIterator[Manager]:
    """Run ``operator`` for the duration of the block and yield its manager, started (caches synced,
    controllers running).  On exit it stops and drains like a SIGTERM would.

    ``install_crds`` installs the operator's CRDs first and waits until they are established;
    ``namespace`` scopes the operator to one namespace, so that tests sharing a server do not see
    each other's objects.  ``options`` default to a manager named after the operator with its probe
    endpoint on 127.0.0.1 and a free port.  Misdeclarations raise
    :class:`~kubevisor.runtime.DeclarationError` before anything runs.
    """
    if install_crds:
        async with asyncio.timeout(60):
            await operator.install_crds(client)
    await operator.check(client, namespace=namespace)
    if options is None:
        options = ManagerOptions(name=operator.name, http_host="127.0.0.1", http_port=0, drain_timeout=10.0)
    async with operator.manager(client, options, namespace=namespace) as manager:
        yield manager
