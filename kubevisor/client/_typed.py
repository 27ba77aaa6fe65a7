"""The seam between the client and typed resource models.

The client never imports the model layer (it sits above the client).  Any class that satisfies
:class:`TypedResource` can be passed where the client takes a kind, and instances of it where the
client takes an object; results then come back as instances of that class.  Plain dicts (the wire
form) work everywhere too.
"""

from __future__ import annotations

from typing import Any, Protocol, Self, TypeVar, runtime_checkable

from kubevisor.api import ResourceInfo

__all__ = ["TypedResource", "is_typed_class", "is_typed_object"]


@runtime_checkable
class TypedResource(Protocol):
    """A Python type for one Kubernetes kind.

    Contract:

    * ``resource_info()`` names what the client addresses (group, version, plural, scope,
      subresources); the client trusts it and does not ask discovery.
    * ``from_wire(obj)`` builds an instance from the JSON-decoded wire object; it may raise for
      an object of another kind.  The client passes it dicts it owns (it may keep them).
    * ``to_wire()`` returns the JSON-ready wire object, with ``apiVersion`` and ``kind``; the client
      does not mutate it.
    """

    @classmethod
    def resource_info(cls) -> ResourceInfo: ...

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> Self: ...

    def to_wire(self) -> dict[str, Any]: ...


T = TypeVar("T", bound=TypedResource)


def is_typed_class(value: object) -> bool:
    """Whether ``value`` is a class implementing :class:`TypedResource`."""
    return (
        isinstance(value, type)
        and callable(getattr(value, "resource_info", None))
        and callable(getattr(value, "from_wire", None))
        and callable(getattr(value, "to_wire", None))
    )


def is_typed_object(value: object) -> bool:
    """Whether ``value`` is an instance of a :class:`TypedResource` class."""
    return not isinstance(value, type | dict) and is_typed_class(type(value))
