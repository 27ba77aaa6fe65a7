"""Pure Kubernetes API machinery.

Rule: no I/O.  Nothing here opens a socket, a file (other than package data) or a database; the
server and the client both build on these algorithms, so they are tested against upstream's rules
and real clients' expectations, never only against each other.
"""

from kubevisor.api._errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    Expired,
    FieldError,
    Forbidden,
    Invalid,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    RequestEntityTooLarge,
    ServerError,
    ServerTimeout,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    error_from_status,
    qualified_resource,
)
from kubevisor.api._meta import (
    GroupVersionKind,
    GroupVersionResource,
    ResourceInfo,
    join_api_version,
    split_api_version,
)
from kubevisor.api._time import Clock, format_microtime, format_time, now, parse_time

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "Clock",
    "Conflict",
    "Expired",
    "FieldError",
    "Forbidden",
    "GroupVersionKind",
    "GroupVersionResource",
    "Invalid",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "RequestEntityTooLarge",
    "ResourceInfo",
    "ServerError",
    "ServerTimeout",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "error_from_status",
    "format_microtime",
    "format_time",
    "join_api_version",
    "now",
    "parse_time",
    "qualified_resource",
    "split_api_version",
]
