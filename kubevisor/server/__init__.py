"""The embedded, Kubernetes-compatible API server.

Rule: imports only from ``kubevisor.api`` (and the standard library and chosen dependencies).
"""

from kubevisor.server._app import APIServer, Controller, ServerOptions, default_controllers
from kubevisor.server._gc import GarbageCollector
from kubevisor.server._namespaces import NamespaceController, ServiceAccountController
from kubevisor.server._registry import ResourceRegistry, Strategy
from kubevisor.server._service import AdmissionPlugin, AdmissionRequest, ObjectService, RequestOptions

__all__ = [
    "APIServer",
    "AdmissionPlugin",
    "AdmissionRequest",
    "Controller",
    "GarbageCollector",
    "NamespaceController",
    "ObjectService",
    "RequestOptions",
    "ResourceRegistry",
    "ServerOptions",
    "ServiceAccountController",
    "Strategy",
    "default_controllers",
]
