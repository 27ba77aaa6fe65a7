"""The async Kubernetes client.

Rule: imports only from ``kubevisor.api``; correct against real clusters, never relying on the
embedded server's quirks.
"""

__all__: list[str] = []
