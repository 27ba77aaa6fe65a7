"""The informer's object store: wire dicts keyed by :class:`ObjectRef`, with secondary indexes.

The store is *thread-free*: it is only ever touched from the event loop, by the informer that owns it
(writes) and by controllers, reconciles and mapping functions (reads), so it needs no locks.  It keeps
the decoded wire dicts exactly as the API server sent them (minus ``metadata.managedFields`` unless
the informer is told to keep them): no per-object model instances, so that memory per cached object
stays close to the size of the JSON.

Readers must treat returned dicts as read-only: they are the cache.  Reconciles receive copies.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

__all__ = [
    "CONTROLLER_INDEX",
    "NAMESPACE_INDEX",
    "OWNER_INDEX",
    "IndexFunc",
    "ObjectRef",
    "Store",
    "controller_of",
    "controller_uid_index",
    "namespace_index",
    "owner_uid_index",
]

Obj = dict[str, Any]


class ObjectRef(NamedTuple):
    """The identity of an object within one kind: a reconcile *request*.

    ``namespace`` is ``""`` for cluster-scoped objects.  A tuple, so it hashes and compares fast as
    a work-queue key; ``str(ref)`` is ``namespace/name`` (or ``name``), client-go's cache key.
    """

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        """The reference of a wire object (``ValueError`` when it has no ``metadata.name``)."""
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("object has no metadata.name")
        # tuple.__new__ skips the generated Python-level __new__: this runs for every watch event.
        return _new_ref(cls, (meta.get("namespace") or "", name))

    @classmethod
    def parse(cls, key: str) -> ObjectRef:
        """``"ns/name"`` or ``"name"`` back into a reference."""
        namespace, _, name = key.rpartition("/")
        return cls(namespace, name)


_new_ref = tuple.__new__

IndexFunc = Callable[[Obj], Iterable[str]]
"""Computes the index values of an object (none, one or several).  Must be a pure function of the
object: the store recomputes it on removal to find the entries to drop."""

NAMESPACE_INDEX = "namespace"
"""Built-in index: ``metadata.namespace``."""
OWNER_INDEX = "owner"
"""Built-in index: the ``uid`` of every entry of ``metadata.ownerReferences``."""
CONTROLLER_INDEX = "controller"
"""Built-in index: the ``uid`` of the controller owner reference (``controller: true``), if any."""


def namespace_index(obj: Obj) -> Iterable[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return (namespace,) if namespace else ()


def owner_uid_index(obj: Obj) -> Iterable[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or ()
    return [ref["uid"] for ref in refs if isinstance(ref, dict) and ref.get("uid")]


def controller_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The owner reference with ``controller: true`` (there is at most one), or ``None``."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def controller_uid_index(obj: Obj) -> Iterable[str]:
    ref = controller_of(obj)
    return (ref["uid"],) if ref is not None and ref.get("uid") else ()


_BUILTIN_INDEXES: dict[str, IndexFunc] = {
    NAMESPACE_INDEX: namespace_index,
    OWNER_INDEX: owner_uid_index,
    CONTROLLER_INDEX: controller_uid_index,
}


class Store:
    """Objects of one kind (and scope) by reference, with indexes.

    Built-in indexes: :data:`NAMESPACE_INDEX`, :data:`OWNER_INDEX`, :data:`CONTROLLER_INDEX`; more
    with :meth:`add_index` (at any time: existing objects are indexed at once).  Reads are O(1) by
    reference and O(matches) by index value.
    """

    def __init__(self, indexes: Mapping[str, IndexFunc] | None = None) -> None:
        self._items: dict[ObjectRef, Obj] = {}
        self._index_funcs: dict[str, IndexFunc] = dict(_BUILTIN_INDEXES)
        self._indexes: dict[str, dict[str, set[ObjectRef]]] = {name: {} for name in self._index_funcs}
        for name, func in (indexes or {}).items():
            self.add_index(name, func)

    # -- reading --

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, ref: object) -> bool:
        return ref in self._items

    def __iter__(self) -> Iterator[Obj]:
        return iter(list(self._items.values()))

    def get(self, ref: ObjectRef) -> Obj | None:
        """The cached object, or ``None`` when absent (deleted, or never seen)."""
        return self._items.get(ref)

    def keys(self) -> builtins.list[ObjectRef]:
        return list(self._items)

    def list(self, namespace: str | None = None) -> builtins.list[Obj]:
        """Every object, or those of one namespace."""
        if namespace is None:
            return list(self._items.values())
        return self.by_index(NAMESPACE_INDEX, namespace)

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        """Objects whose ``index`` function yields ``value``.  ``KeyError`` for an unknown index."""
        refs = self._indexes[index].get(value)
        if not refs:
            return []
        return [self._items[ref] for ref in refs]

    def index_keys(self, index: str, value: str) -> builtins.list[ObjectRef]:
        """References of the objects whose ``index`` function yields ``value``."""
        return list(self._indexes[index].get(value, ()))

    @property
    def indexes(self) -> tuple[str, ...]:
        return tuple(self._index_funcs)

    # -- indexes --

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Add an index computed by ``func``; ``ValueError`` if the name is taken by another function
        (adding the same function again is a no-op, so that controllers sharing an informer may each
        declare what they need)."""
        existing = self._index_funcs.get(name)
        if existing is func:
            return
        if existing is not None:
            raise ValueError(f"index {name!r} already exists with a different function")
        self._index_funcs[name] = func
        entries: dict[str, set[ObjectRef]] = {}
        for ref, obj in self._items.items():
            for value in func(obj):
                entries.setdefault(value, set()).add(ref)
        self._indexes[name] = entries

    # -- writing (the informer's job) --

    def upsert(self, obj: Obj) -> Obj | None:
        """Insert or replace ``obj``; return the previous version, if any."""
        ref = ObjectRef.of(obj)
        items = self._items
        old = items.get(ref)
        items[ref] = obj
        if old is None:
            self._index(ref, obj)
        else:
            self._reindex(ref, old, obj)
        return old

    def remove(self, ref: ObjectRef) -> Obj | None:
        """Drop the object; return it, or ``None`` if it was not there."""
        old = self._items.pop(ref, None)
        if old is not None:
            self._unindex(ref, old)
        return old

    def replace(
        self, objects: Iterable[Obj]
    ) -> tuple[builtins.list[Obj], builtins.list[tuple[Obj, Obj]], builtins.list[Obj]]:
        """Make the store hold exactly ``objects`` (a relist).  Returns what changed:
        ``(added, [(old, new) updated], deleted)``; an object whose resourceVersion did not change is
        kept as it is and reported nowhere."""
        added: builtins.list[Obj] = []
        updated: builtins.list[tuple[Obj, Obj]] = []
        seen: set[ObjectRef] = set()
        for obj in objects:
            ref = ObjectRef.of(obj)
            seen.add(ref)
            old = self._items.get(ref)
            if old is None:
                self.upsert(obj)
                added.append(obj)
            elif _rv(old) != _rv(obj):
                self.upsert(obj)
                updated.append((old, obj))
        deleted = [self._items[ref] for ref in self._items if ref not in seen]
        for obj in deleted:
            self.remove(ObjectRef.of(obj))
        return added, updated, deleted

    def _index(self, ref: ObjectRef, obj: Obj) -> None:
        for name, func in self._index_funcs.items():
            entries = self._indexes[name]
            for value in func(obj):
                bucket = entries.get(value)
                if bucket is None:
                    entries[value] = {ref}
                else:
                    bucket.add(ref)

    def _reindex(self, ref: ObjectRef, old: Obj, new: Obj) -> None:
        # Most updates (status writes, spec edits) leave every index value as it was: compare the
        # values and touch the buckets only for an index that changed.  An index bucket can hold
        # thousands of references (every object of a namespace), so the saving is the set updates.
        # The built-in indexes read only the namespace and the owner references: when those are
        # equal, they are not even computed.
        indexes = self._indexes
        old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
        builtins_same = old_meta.get("namespace") == new_meta.get("namespace") and old_meta.get(
            "ownerReferences"
        ) == new_meta.get("ownerReferences")
        for name, func in self._index_funcs.items():
            if builtins_same and _BUILTIN_INDEXES.get(name) is func:
                continue
            before, after = func(old), func(new)
            if type(before) is type(after) and before == after:
                continue
            entries = indexes[name]
            after = set(after)
            for value in before:
                if value in after:
                    continue
                bucket = entries.get(value)
                if bucket is not None:
                    bucket.discard(ref)
                    if not bucket:
                        del entries[value]
            for value in after:
                bucket = entries.get(value)
                if bucket is None:
                    entries[value] = {ref}
                else:
                    bucket.add(ref)

    def _unindex(self, ref: ObjectRef, obj: Obj) -> None:
        for name, func in self._index_funcs.items():
            entries = self._indexes[name]
            for value in func(obj):
                bucket = entries.get(value)
                if bucket is not None:
                    bucket.discard(ref)
                    if not bucket:
                        del entries[value]


def _rv(obj: Obj) -> Any:
    return (obj.get("metadata") or {}).get("resourceVersion")
