"""The async Kubernetes client.

Rule: imports only from ``kubevisor.api``; correct against real clusters, never relying on the
embedded server's quirks.

::

    async with Client(load_config()) as client:
        cm = await client.get(GroupVersionKind("", "v1", "ConfigMap"), "settings", namespace="app")
        listing = await client.list_all(GroupVersionKind("apps", "v1", "Deployment"), namespace=ALL_NAMESPACES)
        async with client.watch(Todo, resource_version=listing.resource_version) as events:
            async for event in events:
                ...
"""

from kubevisor.client._client import (
    ALL_NAMESPACES,
    Client,
    FieldValidation,
    PatchType,
    Preconditions,
    PropagationPolicy,
)
from kubevisor.client._clock import MonotonicClock, SystemClock
from kubevisor.client._config import (
    DEFAULT_SERVICE_ACCOUNT_DIR,
    ClientConfig,
    ExecConfig,
    Impersonation,
    config_from_kubeconfig,
    in_cluster_config,
    load_config,
    load_kubeconfig,
)
from kubevisor.client._discovery import APIGroup, Discovery
from kubevisor.client._errors import ConfigError, CredentialError, TransportError, UnknownKind
from kubevisor.client._list import ListPager, ObjectList
from kubevisor.client._options import ClientOptions, RetryOptions, WatchOptions
from kubevisor.client._ratelimit import TokenBucket
from kubevisor.client._typed import TypedResource
from kubevisor.client._watch import Watch, WatchEvent

__all__ = [
    "ALL_NAMESPACES",
    "DEFAULT_SERVICE_ACCOUNT_DIR",
    "APIGroup",
    "Client",
    "ClientConfig",
    "ClientOptions",
    "ConfigError",
    "CredentialError",
    "Discovery",
    "ExecConfig",
    "FieldValidation",
    "Impersonation",
    "ListPager",
    "MonotonicClock",
    "ObjectList",
    "PatchType",
    "Preconditions",
    "PropagationPolicy",
    "RetryOptions",
    "SystemClock",
    "TokenBucket",
    "TransportError",
    "TypedResource",
    "UnknownKind",
    "Watch",
    "WatchEvent",
    "WatchOptions",
    "config_from_kubeconfig",
    "in_cluster_config",
    "load_config",
    "load_kubeconfig",
]
