"""The embedded, Kubernetes-compatible API server.

Rule: imports only from ``kubevisor.api`` (and the standard library and chosen dependencies).
"""

from kubevisor.server._app import APIServer, Controller, ServerOptions
from kubevisor.server._registry import ResourceRegistry, Strategy
from kubevisor.server._service import AdmissionPlugin, AdmissionRequest, ObjectService, RequestOptions

__all__ = [
    "APIServer",
    "AdmissionPlugin",
    "AdmissionRequest",
    "Controller",
    "ObjectService",
    "RequestOptions",
    "ResourceRegistry",
    "ServerOptions",
    "Strategy",
]
