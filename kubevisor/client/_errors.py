"""Errors the client raises that are not the server's ``Status`` (those are ``kubevisor.api``'s
:class:`~kubevisor.api.ApiError` tree, rebuilt by :func:`~kubevisor.api.error_from_status`)."""

from __future__ import annotations

__all__ = ["ConfigError", "CredentialError", "TransportError", "UnknownKind"]


class ConfigError(ValueError):
    """A configuration that cannot be used: an unreadable or malformed kubeconfig, a missing context,
    cluster or user, an inconsistent set of fields, or no configuration at all.

    The message names the file, the context and the field at fault.
    """


class CredentialError(RuntimeError):
    """Credentials could not be obtained: an exec plugin that failed or answered malformed output, an
    unreadable token file.  The message names the plugin or file and includes its diagnostics."""


class TransportError(ConnectionError):
    """The server could not be reached, or the connection failed or timed out before a complete
    response arrived, and retrying (where allowed) did not help.  ``__cause__`` holds the underlying
    aiohttp or OS error."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class UnknownKind(LookupError):
    """Discovery does not know the requested kind or resource (after refreshing its cache), as
    client-go's ``NoKindMatchError``: the group/version is not served or does not contain it, e.g. a
    custom resource whose CRD is not installed."""

    def __init__(self, message: str, *, group: str = "", version: str = "", kind: str = "") -> None:
        super().__init__(message)
        self.group = group
        self.version = version
        self.kind = kind

    def __str__(self) -> str:
        return str(self.args[0])
