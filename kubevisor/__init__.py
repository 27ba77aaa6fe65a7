"""kubevisor: Kubernetes operators in Python, built the way OTP builds systems.

Layers (each imports only from layers below it)::

    api  <-  client, server  <-  runtime (+ supervisor)  <-  resource, operator  <-  manifests, testing, cli
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
