"""The controller runtime: informers, work queue, controllers, manager, leader election.

Rule: imports from ``kubevisor.api``, ``kubevisor.client`` and ``kubevisor.supervisor`` only.
"""

__all__: list[str] = []
