"""Predicates: which informer events become reconcile requests.

A :class:`Predicate` answers, per event kind, whether the event is worth a reconcile.  They compose:
``generation_changed() | labels_changed()``, ``a & b``, ``~a``.  Predicates only filter *events*; a
reconcile always reads the current object from the cache, so a filtered event is never a lost
state, only a skipped wake-up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "Predicate",
    "annotations_changed",
    "generation_changed",
    "labels_changed",
    "matching",
    "resource_version_changed",
]

Obj = Mapping[str, Any]


class Predicate:
    """Lets every event through; subclass (or use the functions of this module) to filter.

    ``create``, ``update`` and ``delete`` receive the wire dicts (read-only: they are the cache).
    """

    def create(self, obj: Obj) -> bool:
        return True

    def update(self, old: Obj, new: Obj) -> bool:
        return True

    def delete(self, obj: Obj) -> bool:
        return True

    def __and__(self, other: Predicate) -> Predicate:
        return _All((self, other))

    def __or__(self, other: Predicate) -> Predicate:
        return _Any((self, other))

    def __invert__(self) -> Predicate:
        return _Not(self)


class _All(Predicate):
    def __init__(self, parts: tuple[Predicate, ...]) -> None:
        self.parts = parts

    def create(self, obj: Obj) -> bool:
        return all(p.create(obj) for p in self.parts)

    def update(self, old: Obj, new: Obj) -> bool:
        return all(p.update(old, new) for p in self.parts)

    def delete(self, obj: Obj) -> bool:
        return all(p.delete(obj) for p in self.parts)

    def __repr__(self) -> str:
        return " & ".join(map(repr, self.parts))


class _Any(Predicate):
    def __init__(self, parts: tuple[Predicate, ...]) -> None:
        self.parts = parts

    def create(self, obj: Obj) -> bool:
        return any(p.create(obj) for p in self.parts)

    def update(self, old: Obj, new: Obj) -> bool:
        return any(p.update(old, new) for p in self.parts)

    def delete(self, obj: Obj) -> bool:
        return any(p.delete(obj) for p in self.parts)

    def __repr__(self) -> str:
        return "(" + " | ".join(map(repr, self.parts)) + ")"


class _Not(Predicate):
    def __init__(self, inner: Predicate) -> None:
        self.inner = inner

    def create(self, obj: Obj) -> bool:
        return not self.inner.create(obj)

    def update(self, old: Obj, new: Obj) -> bool:
        return not self.inner.update(old, new)

    def delete(self, obj: Obj) -> bool:
        return not self.inner.delete(obj)

    def __repr__(self) -> str:
        return f"~{self.inner!r}"


class _UpdateOnly(Predicate):
    """Passes creates and deletes; passes an update when ``changed(old, new)``."""

    def __init__(self, name: str, changed: Callable[[Obj, Obj], bool]) -> None:
        self.name = name
        self.changed = changed

    def update(self, old: Obj, new: Obj) -> bool:
        return self.changed(old, new)

    def __repr__(self) -> str:
        return f"{self.name}()"


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def generation_changed() -> Predicate:
    """Updates that changed ``metadata.generation``: spec changes (and the start of a deletion),
    not status or metadata-only writes.  Kinds without a generation (ConfigMap, Secret) never pass
    an update.  Creates and deletes pass (controller-runtime's ``GenerationChangedPredicate``)."""
    return _UpdateOnly(
        "generation_changed", lambda old, new: _meta(old).get("generation") != _meta(new).get("generation")
    )


def labels_changed() -> Predicate:
    """Updates that changed ``metadata.labels``; creates and deletes pass."""
    return _UpdateOnly(
        "labels_changed",
        lambda old, new: (_meta(old).get("labels") or {}) != (_meta(new).get("labels") or {}),
    )


def annotations_changed() -> Predicate:
    """Updates that changed ``metadata.annotations``; creates and deletes pass."""
    return _UpdateOnly(
        "annotations_changed",
        lambda old, new: (_meta(old).get("annotations") or {}) != (_meta(new).get("annotations") or {}),
    )


def resource_version_changed() -> Predicate:
    """Updates that are real changes, not resyncs (which hand the same object twice)."""
    return _UpdateOnly(
        "resource_version_changed",
        lambda old, new: _meta(old).get("resourceVersion") != _meta(new).get("resourceVersion"),
    )


class _Matching(Predicate):
    def __init__(self, accept: Callable[[Obj], bool]) -> None:
        self.accept = accept

    def create(self, obj: Obj) -> bool:
        return self.accept(obj)

    def update(self, old: Obj, new: Obj) -> bool:
        return self.accept(new)

    def delete(self, obj: Obj) -> bool:
        return self.accept(obj)

    def __repr__(self) -> str:
        return f"matching({self.accept!r})"


def matching(accept: Callable[[Obj], bool]) -> Predicate:
    """Events whose object (the new one, for updates) satisfies ``accept``."""
    return _Matching(accept)
