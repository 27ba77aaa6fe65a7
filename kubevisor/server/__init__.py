"""The embedded, Kubernetes-compatible API server.

Rule: imports only from ``kubevisor.api`` (and the standard library and chosen dependencies).
"""

__all__: list[str] = []
