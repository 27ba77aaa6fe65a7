"""Strategic merge patch (``application/strategic-merge-patch+json``), applied server-side.

Upstream's semantics (``k8s.io/apimachinery/pkg/util/strategicpatch``, the "apply" half), driven by
the OpenAPI extensions of the target schema instead of Go struct tags:

* maps merge recursively; a ``null`` value deletes the key; scalars replace;
* a list whose field carries ``x-kubernetes-patch-strategy: merge`` merges: lists of objects by the
  ``x-kubernetes-patch-merge-key`` (items present on both sides merge recursively, new items are
  added), lists of primitives as a set union (``metadata.finalizers``); every other list is
  replaced by the patch's list (after dropping ``null`` map entries, as upstream decodes them);
* directives: ``$patch: replace`` (the map, or the whole merging list when it is a list item, is
  replaced by the patch), ``$patch: delete`` (the map is emptied; as a list item, every item with
  that merge key is removed); like upstream, ``$patch: merge`` is rejected (merging is the default);
  ``$deleteFromPrimitiveList/<field>: [...]`` removes values from a primitive list;
  ``$setElementOrder/<field>: [...]`` fixes the order of a merged list;
  ``$retainKeys: [...]`` clears every key of the map not listed (patch strategy ``retainKeys``,
  e.g. ``Deployment.spec.strategy``, ``Pod.spec.volumes[*]``).
* order of a merged list without ``$setElementOrder``: items named by the patch take the patch's
  order, other items keep theirs, interleaved by their original positions; so upstream places a
  new item first, and kubectl, which always sends ``$setElementOrder``, gets exactly its order.

Values a patch introduces where the original has nothing (or something of another type) are taken
from the patch with ``null`` map entries dropped and directives applied, as upstream does.

The functions never mutate their inputs and never share structure between the result and them.
A malformed patch raises :class:`~kubevisor.api.BadRequest` with a message naming the offending
path.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, Final

import orjson

from kubevisor.api._builtins import builtin_definitions, definition_name, definition_ref
from kubevisor.api._errors import BadRequest, UnsupportedMediaType
from kubevisor.api._meta import GroupVersionKind
from kubevisor.api._patch import json_copy

__all__ = ["strategic_merge", "strategic_merge_patch"]

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_PREFIX = "$deleteFromPrimitiveList"
_ORDER_PREFIX = "$setElementOrder"

_REPLACE = "replace"
_DELETE = "delete"
_MERGE = "merge"

# How deep a $ref chain may go before a schema is considered cyclic (definitions reference each
# other recursively through properties, never directly, so real chains are length 1 or 2).
_MAX_REF_HOPS: Final = 32

# Media types a custom resource (or any kind without a built-in schema) accepts for PATCH.
_NON_STRATEGIC_PATCH_TYPES = (
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)

_MISSING: Final = object()

Schema = Mapping[str, Any]


def strategic_merge_patch(
    original: dict[str, Any], patch: dict[str, Any], gvk: GroupVersionKind
) -> dict[str, Any]:
    """Apply a strategic merge ``patch`` to ``original``, an object of the built-in kind ``gvk``.

    Returns a new object; neither input is modified.  Raises ``BadRequest`` for a malformed patch
    and, like upstream for custom resources, ``UnsupportedMediaType`` when ``gvk`` is not a
    built-in kind (strategic merge needs the kind's patch metadata).
    """
    name = definition_name(gvk)
    if name is None:
        raise UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: "
            + _NON_STRATEGIC_PATCH_TYPES
        )
    return strategic_merge(original, patch, definition_ref(name), builtin_definitions())


def strategic_merge(
    original: Mapping[str, Any],
    patch: Mapping[str, Any],
    schema: Schema | None,
    definitions: Mapping[str, Schema],
) -> dict[str, Any]:
    """Apply ``patch`` to ``original`` using the patch metadata of ``schema``.

    ``schema`` is an OpenAPI schema (v2 or v3 form) whose ``$ref``s (``#/definitions/<name>``,
    ``#/components/schemas/<name>``) resolve in ``definitions``; ``None`` (or any part of the
    object the schema does not describe) means plain merge semantics: maps merge, lists replace.
    Patch metadata is read from ``x-kubernetes-patch-strategy`` (``merge``, ``retainKeys``,
    ``replace``, comma-separated) and ``x-kubernetes-patch-merge-key`` on each field's schema.

    Returns a new object sharing no structure with either input.  Raises ``BadRequest`` when the
    patch is malformed.
    """
    if not isinstance(patch, Mapping):
        raise BadRequest("a strategic merge patch must be a JSON object")
    merger = _Merger(_Schemas(definitions))
    try:
        return merger.merge_map(json_copy(original), patch, schema, "")
    except RecursionError:
        raise BadRequest("the strategic merge patch or the object is nested too deeply") from None


class _Schemas:
    """Navigation in an OpenAPI schema: resolve references, find fields, read patch metadata."""

    def __init__(self, definitions: Mapping[str, Schema]) -> None:
        self._definitions = definitions

    def resolve(self, node: Schema | None) -> Schema | None:
        for _ in range(_MAX_REF_HOPS):
            if node is None:
                return None
            ref = node.get("$ref")
            if isinstance(ref, str):
                node = self._definitions.get(ref.rpartition("/")[2])
                continue
            # OpenAPI v3 documents wrap a reference that has sibling keywords as allOf: [{$ref}].
            all_of = node.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and "properties" not in node:
                node = all_of[0] if isinstance(all_of[0], Mapping) else None
                continue
            return node
        return None

    def field(self, parent: Schema | None, key: str) -> Schema | None:
        """The (unresolved) schema of ``key`` in the object described by ``parent`` (resolved)."""
        if parent is None:
            return None
        properties = parent.get("properties")
        if isinstance(properties, Mapping) and isinstance(properties.get(key), Mapping):
            field: Schema = properties[key]
            return field
        additional = parent.get("additionalProperties")
        return additional if isinstance(additional, Mapping) else None

    def items(self, node: Schema | None) -> Schema | None:
        resolved = self.resolve(node)
        items = resolved.get("items") if resolved is not None else None
        return items if isinstance(items, Mapping) else None

    def patch_meta(self, node: Schema | None) -> tuple[frozenset[str], str | None]:
        """``(strategies, merge key)`` of a field.  The extensions sit beside the ``$ref`` on the
        field itself; the referenced schema is consulted only when the field has none."""
        strategy: Any = None
        merge_key: Any = None
        for candidate in (node, self.resolve(node)):
            if candidate is None:
                continue
            if strategy is None:
                strategy = candidate.get("x-kubernetes-patch-strategy")
            if merge_key is None:
                merge_key = candidate.get("x-kubernetes-patch-merge-key")
        strategies = (
            frozenset(s.strip() for s in strategy.split(",")) if isinstance(strategy, str) else frozenset()
        )
        return strategies, merge_key if isinstance(merge_key, str) and merge_key else None


class _Merger:
    def __init__(self, schemas: _Schemas) -> None:
        self._schemas = schemas

    # -- maps ---------------------------------------------------------------------------------

    def merge_map(
        self, target: dict[str, Any], patch: Mapping[str, Any], schema: Schema | None, path: str
    ) -> dict[str, Any]:
        """Merge ``patch`` into ``target`` (owned by the caller, modified in place) and return the
        result, which is ``target`` unless a ``$patch`` directive replaces the whole map."""
        if _PATCH in patch:
            directive = patch[_PATCH]
            if directive == _REPLACE:
                rest = {key: value for key, value in patch.items() if key != _PATCH}
                return self.merge_map({}, rest, schema, path)
            if directive == _DELETE:
                return {}
            # Upstream rejects anything else here, "merge" included: a patch that only this server
            # accepted would break when the operator meets a real cluster.
            raise BadRequest(
                f"{_where(path)}unknown patch type {_show(directive)} in $patch: expected replace or delete"
            )

        resolved = self._schemas.resolve(schema)
        if _RETAIN_KEYS in patch:
            self._retain_keys(target, patch, path)

        # $setElementOrder lists are merged together with their list, before the other fields, as
        # upstream does; their list is then skipped below.
        ordered: set[str] = set()
        for key, value in patch.items():
            if key.startswith(_ORDER_PREFIX):
                name = _directive_field(key, _ORDER_PREFIX, path)
                self._merge_ordered_list(target, name, value, patch, resolved, path)
                ordered.add(name)

        deletions: list[tuple[str, Any]] = []
        for key, value in patch.items():
            if key == _RETAIN_KEYS or key in ordered or key.startswith(_ORDER_PREFIX):
                continue
            if key.startswith(_DELETE_PREFIX):
                deletions.append((_directive_field(key, _DELETE_PREFIX, path), value))
                continue
            self._merge_field(target, key, value, resolved, path)
        # Deletions run last so that a patch adding and deleting from one list is order-independent.
        for name, values in deletions:
            self._delete_from_primitive_list(target, name, values, path)
        return target

    def _retain_keys(self, target: dict[str, Any], patch: Mapping[str, Any], path: str) -> None:
        retain = patch[_RETAIN_KEYS]
        if not isinstance(retain, list) or not all(isinstance(key, str) for key in retain):
            raise BadRequest(
                f"{_where(path)}invalid patch format of retainKeys: $retainKeys must be a list of field names"
            )
        kept = set(retain)
        for key, value in patch.items():
            if value is None or key.startswith("$"):
                continue
            if key not in kept:
                raise BadRequest(
                    f"{_where(path)}patch content doesn't match retainKeys list: {key!r} is not listed"
                )
        for key in [key for key in target if key not in kept]:
            del target[key]

    def _merge_field(
        self, target: dict[str, Any], key: str, value: Any, parent: Schema | None, path: str
    ) -> None:
        if value is None:
            target.pop(key, None)
            return
        field_path = _join(path, key)
        node = self._schemas.field(parent, key)
        strategies, merge_key = self._schemas.patch_meta(node)
        current = target.get(key, _MISSING)
        if isinstance(value, Mapping):
            if isinstance(current, dict) and _REPLACE not in strategies:
                target[key] = self.merge_map(current, value, node, field_path)
            elif value.get(_PATCH) == _DELETE:
                # Nothing to merge into: deleting yields no field at all (upstream drops it too).
                target.pop(key, None)
            else:
                target[key] = self.merge_map({}, value, node, field_path)
        elif isinstance(value, list):
            base = current if isinstance(current, list) else []
            target[key] = self.merge_list(base, value, node, strategies, merge_key, field_path)
        else:
            target[key] = value

    # -- lists --------------------------------------------------------------------------------

    def merge_list(
        self,
        base: list[Any],
        patch: list[Any],
        node: Schema | None,
        strategies: frozenset[str],
        merge_key: str | None,
        path: str,
    ) -> list[Any]:
        """Merge the patch list into ``base`` (owned, may be modified) per the field's strategy."""
        if _MERGE not in strategies:
            return [_clean(item) for item in patch]
        if not base and not patch:
            return []
        if not _all_maps(base, patch, path):
            merged = _unique([*base, *patch])
            return _normalize_order(merged, patch, base, _scalar_key)

        if merge_key is None:
            raise BadRequest(f"{_where(path)}cannot merge a list of objects without a patch merge key")
        items_schema = self._schemas.items(node)
        key_of = _merge_key_function(merge_key)
        plain: list[Mapping[str, Any]] = []
        replace = False
        for index, item in enumerate(patch):
            if _PATCH not in item:
                plain.append(item)
                continue
            directive = item[_PATCH]
            if directive == _DELETE:
                doomed = _require_merge_key(item, merge_key, f"{path}[{index}]")
                base = [entry for entry in base if key_of(entry) != doomed]
            elif directive == _REPLACE:
                replace = True
            elif directive == _MERGE:
                raise BadRequest(f"{_where(path)}merging lists cannot yet be specified in the patch")
            else:
                raise BadRequest(
                    f"{_where(path)}unknown patch type {_show(directive)} in $patch: expected replace or delete"
                )
        if replace:
            base = []
        original_order = list(base)
        for index, item in enumerate(plain):
            wanted = _require_merge_key(item, merge_key, f"{path}[{index}]")
            item_path = f"{path}[{merge_key}={_show(item[merge_key])}]"
            position = next((i for i, entry in enumerate(base) if key_of(entry) == wanted), None)
            if position is None:
                base.append(self.merge_map({}, item, items_schema, item_path))
            else:
                base[position] = self.merge_map(base[position], item, items_schema, item_path)
        return _normalize_order(base, plain, original_order, key_of)

    def _merge_ordered_list(
        self,
        target: dict[str, Any],
        name: str,
        order: Any,
        patch: Mapping[str, Any],
        parent: Schema | None,
        path: str,
    ) -> None:
        field_path = _join(path, name)
        if not isinstance(order, list):
            raise BadRequest(
                f"{_where(path)}invalid patch format of setElementOrder list: {_ORDER_PREFIX}/{name} must be a list"
            )
        current = target.get(name)
        if current is not None and not isinstance(current, list):
            raise BadRequest(f"{_where(field_path)}{_ORDER_PREFIX}/{name} given but the field is not a list")
        patch_list = patch.get(name, _MISSING)
        if patch_list is not _MISSING and not isinstance(patch_list, list):
            raise BadRequest(
                f"{_where(field_path)}{_ORDER_PREFIX}/{name} given but the patch value is not a list"
            )
        patch_items: list[Any] = patch_list if isinstance(patch_list, list) else []

        node = self._schemas.field(parent, name)
        strategies, merge_key = self._schemas.patch_meta(node)
        maps = _all_maps(current or [], [*patch_items, *order], field_path)
        if maps and merge_key is None:
            raise BadRequest(f"{_where(field_path)}cannot order a list of objects without a patch merge key")
        key_of = _merge_key_function(merge_key) if maps and merge_key else _scalar_key
        _check_order(patch_items, order, key_of, merge_key if maps else None, field_path, name)

        if patch_list is _MISSING:
            if current is None:
                return
            merged = current  # only the order changes
        else:
            merged = self.merge_list(
                list(current or []), patch_items, node, strategies, merge_key, field_path
            )
        target[name] = _normalize_order(merged, order, current or [], key_of)

    def _delete_from_primitive_list(self, target: dict[str, Any], name: str, values: Any, path: str) -> None:
        field_path = _join(path, name)
        if not isinstance(values, list):
            raise BadRequest(
                f"{_where(path)}invalid patch format of primitive list: {_DELETE_PREFIX}/{name} must be a list"
            )
        current = target.get(name)
        if current is None:
            return
        if not isinstance(current, list) or any(isinstance(item, dict | list) for item in current):
            raise BadRequest(
                f"{_where(field_path)}{_DELETE_PREFIX}/{name} applies only to a list of primitives"
            )
        doomed = {_scalar_key(value) for value in values if not isinstance(value, dict | list)}
        target[name] = [item for item in current if _scalar_key(item) not in doomed]


# -- helpers ------------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """A copy of a patch value with ``null`` map entries dropped (unset, as upstream decodes them)."""
    if isinstance(value, Mapping):
        return {key: _clean(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


def _scalar_key(value: Any) -> Hashable:
    """Identity of a JSON value for set semantics: JSON types never compare equal across kinds
    (``true`` is not ``1``), and numbers compare by value (``1`` is ``1.0``, as in Go's float64)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if value is None:
        return ("null",)
    return ("json", orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def _json_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null" if value is None else type(value).__name__


def _merge_key_function(merge_key: str) -> Callable[[Any], Hashable]:
    def key_of(item: Any) -> Hashable:
        if isinstance(item, Mapping) and merge_key in item:
            return _scalar_key(item[merge_key])
        # Items without the key never match anything, not even each other.
        return ("unkeyed", id(item))

    return key_of


def _require_merge_key(item: Mapping[str, Any], merge_key: str, path: str) -> Hashable:
    if merge_key not in item:
        raise BadRequest(f"{_where(path)}map: {_show(item)} does not contain declared merge key: {merge_key}")
    return _scalar_key(item[merge_key])


def _all_maps(base: list[Any], patch: list[Any], path: str) -> bool:
    """Whether the elements are objects (else primitives); mixed or nested lists are malformed."""
    kinds: set[str] = set()
    for item in (*base, *patch):
        if isinstance(item, list):
            raise BadRequest(f"{_where(path)}lists of lists are not supported")
        kinds.add(_json_kind(item))
    if len(kinds) > 1:
        raise BadRequest(f"{_where(path)}list element types are not identical: {', '.join(sorted(kinds))}")
    return kinds == {"object"}


def _unique(items: list[Any]) -> list[Any]:
    seen: set[Hashable] = set()
    out = []
    for item in items:
        key = _scalar_key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _normalize_order(
    merged: list[Any], patch_order: list[Any], server_order: list[Any], key_of: Callable[[Any], Hashable]
) -> list[Any]:
    """Upstream's element order: items named in ``patch_order`` follow it, the others keep their
    ``server_order``; the two runs interleave by position in ``server_order``, an item the server
    list does not know going before the server-only items still pending."""
    patch_index = _first_positions(patch_order, key_of)
    server_index = _first_positions(server_order, key_of)
    from_patch = [item for item in merged if key_of(item) in patch_index]
    server_only = [item for item in merged if key_of(item) not in patch_index]
    from_patch.sort(key=lambda item: patch_index[key_of(item)])
    server_only.sort(key=lambda item: server_index.get(key_of(item), len(server_index)))

    out: list[Any] = []
    i = j = 0
    while i < len(server_only) and j < len(from_patch):
        left = server_index.get(key_of(server_only[i]))
        right = server_index.get(key_of(from_patch[j]))
        if left is not None and right is not None and left < right:
            out.append(server_only[i])
            i += 1
        else:
            out.append(from_patch[j])
            j += 1
    out.extend(server_only[i:])
    out.extend(from_patch[j:])
    return out


def _first_positions(items: list[Any], key_of: Callable[[Any], Hashable]) -> dict[Hashable, int]:
    positions: dict[Hashable, int] = {}
    for index, item in enumerate(items):
        positions.setdefault(key_of(item), index)
    return positions


def _check_order(
    patch_items: list[Any],
    order: list[Any],
    key_of: Callable[[Any], Hashable],
    merge_key: str | None,
    path: str,
    name: str,
) -> None:
    """The patch list must name its (non-directive) items in the relative order of the
    ``$setElementOrder`` list, which may name more items."""
    if merge_key is not None:
        for index, entry in enumerate(order):
            if not isinstance(entry, Mapping):
                raise BadRequest(f"{_where(path)}{_ORDER_PREFIX}/{name}[{index}] must be an object")
            _require_merge_key(entry, merge_key, f"{path}.{_ORDER_PREFIX}/{name}[{index}]")
    items = [item for item in patch_items if not (isinstance(item, Mapping) and _PATCH in item)]
    if merge_key is not None:
        for index, item in enumerate(items):
            _require_merge_key(item, merge_key, f"{path}[{index}]")
    position = 0
    for entry in order:
        if position < len(items) and key_of(items[position]) == key_of(entry):
            position += 1
    if position < len(items):
        raise BadRequest(
            f"{_where(path)}the order in the patch list doesn't match the {_ORDER_PREFIX}/{name} list"
        )


def _directive_field(key: str, prefix: str, path: str) -> str:
    name = key[len(prefix) + 1 :] if key.startswith(prefix + "/") else ""
    if not name:
        raise BadRequest(f"{_where(path)}invalid patch directive {key!r}: expected {prefix}/<field>")
    return name


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _where(path: str) -> str:
    return f"{path}: " if path else ""


def _show(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= 200 else text[:197] + "..."
