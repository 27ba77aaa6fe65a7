"""Test support for operators: an embedded API server per session, a namespace per test, waiters.

Rule: imports from ``kubevisor.client``, ``kubevisor.server``, ``kubevisor.runtime`` and
``kubevisor.operator``; needs pytest and pytest-asyncio (test dependencies) for the fixtures.

Use it as a pytest plugin from your root ``conftest.py``::

    pytest_plugins = ["kubevisor.testing"]

which provides the fixtures ``kubevisor_server`` (session scope: an :class:`EmbeddedServer`),
``kube_client`` (a :class:`~kubevisor.client.Client` of it) and ``namespace`` (a fresh namespace,
deleted after the test); then, in a test::

    async def test_a_todo_gets_its_config_map(kube_client, namespace):
        async with running(operator, kube_client, namespace=namespace):
            await kube_client.create(todo("milk", namespace=namespace))
            todo = await wait_for(kube_client, Todo, "milk", lambda t: t.status.phase == "Pending",
                                  namespace=namespace)

The fixtures can also be imported into a ``conftest.py`` by name.  See ``docs/operators.md``.
"""

from kubevisor.testing._fixtures import kube_client, kubevisor_server, namespace, namespace_name
from kubevisor.testing._operator import running
from kubevisor.testing._server import EmbeddedServer
from kubevisor.testing._waiters import WaitTimeout, wait_for, wait_for_list, wait_gone

__all__ = [
    "EmbeddedServer",
    "WaitTimeout",
    "kube_client",
    "kubevisor_server",
    "namespace",
    "namespace_name",
    "running",
    "wait_for",
    "wait_for_list",
    "wait_gone",
]
