"""Group/version/kind and resource metadata: the names by which the API addresses things."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GroupVersionKind",
    "GroupVersionResource",
    "ResourceInfo",
    "join_api_version",
    "split_api_version",
]


def split_api_version(api_version: str) -> tuple[str, str]:
    """``"apps/v1"`` → ``("apps", "v1")``; ``"v1"`` → ``("", "v1")``.

    Raises ``ValueError`` for an empty string or one with more than one slash.
    """
    if not api_version or api_version.count("/") > 1:
        raise ValueError(f"invalid apiVersion {api_version!r}")
    group, _, version = api_version.rpartition("/")
    if not version:
        raise ValueError(f"invalid apiVersion {api_version!r}")
    return group, version


def join_api_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


@dataclass(frozen=True, slots=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return join_api_version(self.group, self.version)

    @classmethod
    def of(cls, obj: dict[str, Any]) -> GroupVersionKind:
        """The GVK an object declares; ``ValueError`` if apiVersion or kind is missing."""
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str) or not kind:
            raise ValueError("object has no apiVersion/kind")
        group, version = split_api_version(api_version)
        return cls(group, version, kind)

    def __str__(self) -> str:
        return f"{self.api_version}, Kind={self.kind}"


@dataclass(frozen=True, slots=True)
class GroupVersionResource:
    group: str
    version: str
    resource: str

    @property
    def api_version(self) -> str:
        return join_api_version(self.group, self.version)

    def __str__(self) -> str:
        return f"{self.api_version}/{self.resource}"


@dataclass(frozen=True)
class ResourceInfo:
    """Everything discovery says about one served resource (one group/version/plural).

    ``subresources`` names the subresources served (``"status"``, ``"scale"``, and for namespaces
    ``"finalize"``).  ``schema`` is the OpenAPI v3 schema of the kind, when known.
    """

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...] = (
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    )
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    list_kind: str = ""
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def api_version(self) -> str:
        return join_api_version(self.group, self.version)

    @property
    def gvk(self) -> GroupVersionKind:
        return GroupVersionKind(self.group, self.version, self.kind)

    @property
    def gvr(self) -> GroupVersionResource:
        return GroupVersionResource(self.group, self.version, self.plural)

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """``deployments.apps``: how errors name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def has_subresource(self, name: str) -> bool:
        return name in self.subresources
