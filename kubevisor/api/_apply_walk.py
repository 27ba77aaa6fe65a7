"""The typed-value algorithms of server-side apply, over plain JSON values and :class:`ApplyType`.

These are the operations of structured-merge-diff's ``typed`` package, with its semantics:

* :func:`field_paths`: every path a value *sets* (``ToFieldSet``): scalars, atomic nodes, list items,
  undeclared map entries, and declared fields whose value is ``null`` or ``{}``;
* :func:`merge`: a partial object merged onto a live one (``Merge``): leaves and atomic nodes from the
  right, granular maps key by key, map and set lists item by item in upstream's order;
* :func:`compare`: what changed between two values (``Compare``): ``added`` and ``removed`` include
  granular containers that appear or disappear, ``modified`` only leaves;
* :func:`remove_paths`: a value with the nodes at some paths removed (``RemoveItems``);
* :func:`ensure_named_fields`: a set closed under declared struct fields (``EnsureNamedFieldsAreMembers``);
* :func:`reconcile_with_schema`: a stored set adjusted to a schema that made a node atomic.

Values that do not fit their type (a string where the schema says object) are treated as leaves
rather than rejected: validating objects is the schema validator's job, and ownership tracking must
never make an otherwise acceptable write fail.  Only :func:`field_paths` with ``errors`` collects
upstream's typing errors for an apply configuration.

Nothing here mutates its arguments; :func:`merge` and :func:`remove_paths` return values that share no
mutable container with their inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import orjson

from kubevisor.api._apply_types import (
    LIST,
    LIST_MAP,
    LIST_SET,
    MAP,
    UNTYPED,
    UNTYPED_MAP,
    UNTYPED_TYPE,
    ApplyType,
)
from kubevisor.api._fieldset import Path, format_path, index_element, key_element, value_element
from kubevisor.api._patch import json_equal

__all__ = [
    "Comparison",
    "compare",
    "copy_json",
    "ensure_named_fields",
    "field_paths",
    "format_errors",
    "item_element",
    "merge",
    "reconcile_with_schema",
    "remove_paths",
    "same_json",
    "type_at",
]

_ABSENT: Final = object()
_EMPTIED: Final = object()

PathErrors = list[tuple[Path, str]]


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def same_json(a: Any, b: Any) -> bool:
    """JSON equality (numbers by value, booleans not numbers, maps regardless of order), with fast
    paths for scalars and for equal containers."""
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return kind in (int, float) and type(b) in (int, float) and a == b
    if kind is dict or kind is list:
        if a != b:
            # Python equality is implied by JSON equality, so a difference here is final.
            return False
        try:
            # Equal to Python; rule out True == 1 by comparing the serialised forms, falling back to
            # the exact comparison only for values that serialise differently (1 vs 1.0).
            opts = orjson.OPT_SORT_KEYS
            if orjson.dumps(a, option=opts) == orjson.dumps(b, option=opts):
                return True
        except TypeError:
            pass
        return json_equal(a, b)
    return bool(a == b)


def _map_type(t: ApplyType, value: Any) -> ApplyType | None:
    """The granular map type to walk ``value`` with, or ``None`` when the node is a leaf."""
    kind = t.kind
    if kind == MAP:
        if not t.atomic and (value is None or isinstance(value, dict)):
            return t
        return None
    if kind == UNTYPED and isinstance(value, dict):
        return UNTYPED_MAP
    return None


def _is_list(t: ApplyType, value: Any) -> bool:
    """Whether ``value`` is walked item by item (a set or map list)."""
    return t.kind == LIST and not t.atomic and (value is None or isinstance(value, list))


def _field_type(t: ApplyType, name: str) -> ApplyType:
    found = t.fields.get(name)
    if found is not None:
        return found
    return t.elem if t.elem is not None else UNTYPED_TYPE


def item_element(t: ApplyType, item: Any, index: int, errors: PathErrors | None, path: Path) -> str:
    """The path element of a list item: ``k:`` by its key fields (or their defaults) in a map list,
    ``v:`` by value in a set, ``i:`` by position otherwise."""
    if t.list_type == LIST_MAP:
        if isinstance(item, dict):
            fields: dict[str, Any] = {}
            for key in t.keys:
                value = item.get(key)
                if value is None:
                    value = t.key_defaults.get(key)
                    if value is None:
                        if errors is not None:
                            errors.append(
                                (
                                    path,
                                    f'element {index}: associative list with keys has an element that omits key field "{key}" (and doesn\'t have default value)',
                                )
                            )
                        continue
                fields[key] = value
            if fields:
                return key_element(fields)
        elif errors is not None:
            errors.append((path, f"element {index}: expected map, got {_go_kind(item)}"))
        return index_element(index)
    if t.list_type == LIST_SET:
        if errors is not None and isinstance(item, dict | list):
            errors.append(
                (path, f"element {index}: associative list without keys has an element that's a map type")
            )
        return value_element(item)
    return index_element(index)


def _go_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return "scalar"


# --- ToFieldSet ----------------------------------------------------------------------------------------


def field_paths(value: Any, t: ApplyType, errors: PathErrors | None = None) -> list[Path]:
    """Every path ``value`` sets (upstream's ``ToFieldSet``), possibly with repeats.

    With ``errors`` (an apply configuration), undeclared fields, list items without their keys and
    duplicate list items are reported there (and undeclared fields left out); without it (a stored
    object), undeclared fields are treated as untyped and the first of duplicate items counts.
    """
    out: list[Path] = []
    _to_set(value, t, (), out, errors)
    return out


def _to_set(value: Any, t: ApplyType, path: Path, out: list[Path], errors: PathErrors | None) -> None:
    map_type = _map_type(t, value)
    if map_type is not None:
        if not value:
            return
        fields = map_type.fields
        elem = map_type.elem
        for key, child in value.items():
            child_path = (*path, "f:" + key)
            child_type = fields.get(key)
            if child_type is not None:
                _to_set(child, child_type, child_path, out, errors)
                if child is None or (isinstance(child, dict) and not child):
                    out.append(child_path)
                continue
            if elem is None:
                if errors is not None:
                    errors.append((child_path, "field not declared in schema"))
                    continue
                elem_type = UNTYPED_TYPE
            else:
                elem_type = elem
            _to_set(child, elem_type, child_path, out, errors)
            out.append(child_path)
        return
    if _is_list(t, value):
        if not value:
            return
        elem = t.elem if t.elem is not None else UNTYPED_TYPE
        seen: set[str] = set()
        for index, item in enumerate(value):
            element = item_element(t, item, index, errors, path)
            if element in seen:
                if errors is not None:
                    errors.append((path, f"duplicate entries for key {format_path((element,))}"))
                continue
            seen.add(element)
            item_path = (*path, element)
            _to_set(item, elem, item_path, out, errors)
            out.append(item_path)
        return
    if path:
        out.append(path)


# --- Merge ---------------------------------------------------------------------------------------------


def merge(live: Any, config: Any, t: ApplyType) -> Any:
    """``config`` merged onto ``live`` (upstream's ``Merge``); the result is freshly allocated."""
    return _merge(live, config, t)


_SCALARS: Final = (str, int, float, bool)


def _merge(lhs: Any, rhs: Any, t: ApplyType) -> Any:
    if type(rhs) in _SCALARS:
        # A scalar on the right always wins (null does not: it merges as an empty container).
        return rhs
    if rhs is _ABSENT:
        return copy_json(lhs)
    if lhs is _ABSENT:
        return copy_json(rhs)
    map_type = _map_type(t, lhs)
    if map_type is not None and _map_type(t, rhs) is map_type:
        if not lhs and not rhs:
            return copy_json(rhs)
        return _merge_map(lhs or {}, rhs or {}, map_type)
    if _is_list(t, lhs) and _is_list(t, rhs):
        if not lhs and not rhs:
            return copy_json(rhs)
        return _merge_list(lhs or [], rhs or [], t)
    return copy_json(rhs)


def _merge_map(lhs: dict[str, Any], rhs: dict[str, Any], t: ApplyType) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, left in lhs.items():
        right = rhs.get(key, _ABSENT)
        out[key] = copy_json(left) if right is _ABSENT else _merge(left, right, _field_type(t, key))
    for key, right in rhs.items():
        if key not in lhs:
            out[key] = copy_json(right)
    return out


def _index(t: ApplyType, items: list[Any]) -> tuple[list[str], dict[str, list[Any]]]:
    order: list[str] = []
    by_element: dict[str, list[Any]] = {}
    for index, item in enumerate(items):
        element = item_element(t, item, index, None, ())
        found = by_element.get(element)
        if found is None:
            by_element[element] = [item]
            order.append(element)
        else:
            found.append(item)
    return order, by_element


def _merge_list(lhs: list[Any], rhs: list[Any], t: ApplyType) -> list[Any]:
    """Items merged by identity; the order is upstream's: the right-hand order for the items it
    names, with items only on the left kept at their relative positions."""
    elem = t.elem if t.elem is not None else UNTYPED_TYPE
    left_order, left = _index(t, lhs)
    right_order, right = _index(t, rhs)
    out: list[Any] = []

    def merged(element: str) -> None:
        left_items = left.get(element)
        right_items = right.get(element)
        if right_items is None:
            assert left_items is not None
            out.extend(copy_json(item) for item in left_items)
        elif left_items is None:
            out.append(copy_json(right_items[0]))
        elif len(left_items) > 1:
            # Duplicates in the live list: the applied item replaces them all.
            out.append(copy_json(right_items[0]))
        else:
            out.append(_merge(left_items[0], right_items[0], elem))

    shared = iter([e for e in right_order if e in left])
    next_shared = next(shared, None)
    li = ri = 0
    left_len, right_len = len(left_order), len(right_order)
    while li < left_len or ri < right_len:
        if li < left_len and ri < right_len:
            element = left_order[li]
            if element == right_order[ri]:
                merged(element)
                li += 1
                ri += 1
                next_shared = next(shared, None)
                continue
            if element in right and next_shared is not None and next_shared != element:
                li += 1
                continue
        if li < left_len:
            element = left_order[li]
            if element not in right:
                merged(element)
                li += 1
                continue
        if ri < right_len:
            element = right_order[ri]
            merged(element)
            ri += 1
            if next_shared is not None and next_shared == element:
                next_shared = next(shared, None)
        elif li < left_len:
            # Only reachable with inconsistent input; never loop forever.
            li += 1
    return out


# --- Compare -------------------------------------------------------------------------------------------


class Comparison:
    """The result of :func:`compare`: lists of paths (possibly with repeats)."""

    __slots__ = ("added", "modified", "removed")

    def __init__(self) -> None:
        self.added: list[Path] = []
        self.modified: list[Path] = []
        self.removed: list[Path] = []


def compare(lhs: Any, rhs: Any, t: ApplyType) -> Comparison:
    """What changed from ``lhs`` to ``rhs`` (upstream's ``Compare``)."""
    result = Comparison()
    _compare(lhs, rhs, t, (), result)
    return result


def _compare(lhs: Any, rhs: Any, t: ApplyType, path: Path, acc: Comparison) -> None:
    if lhs is _ABSENT and rhs is not _ABSENT:
        _added(rhs, t, path, acc)
        return
    if lhs is not _ABSENT and rhs is not _ABSENT and same_json(lhs, rhs):
        return
    left_map = None if lhs is _ABSENT else _map_type(t, lhs)
    right_map = None if rhs is _ABSENT else _map_type(t, rhs)
    left_list = lhs is not _ABSENT and _is_list(t, lhs)
    right_list = rhs is not _ABSENT and _is_list(t, rhs)
    container_left = left_map is not None or left_list
    container_right = right_map is not None or right_list
    both_maps = (left_map is not None or lhs is _ABSENT) and (right_map is not None or rhs is _ABSENT)
    both_lists = (left_list or lhs is _ABSENT) and (right_list or rhs is _ABSENT)
    if (container_left or container_right) and (both_maps or both_lists):
        if (lhs is _ABSENT or not lhs) and (rhs is _ABSENT or not rhs):
            # Empty (or null) containers are compared as leaves, keeping {} and null distinct.
            _leaf(lhs, rhs, path, acc)
            return
        if both_maps:
            map_type = left_map if left_map is not None else right_map
            assert map_type is not None
            _compare_maps(lhs, rhs, map_type, path, acc)
        else:
            _compare_lists(lhs, rhs, t, path, acc)
        if lhs is _ABSENT:
            acc.added.append(path)
        elif rhs is _ABSENT:
            acc.removed.append(path)
        return
    # A leaf, or a node whose shape changed (a map that became a string): the node itself is
    # modified, and whatever the container side held is removed or added below it.
    _leaf(lhs, rhs, path, acc)
    if lhs is not _ABSENT and rhs is not _ABSENT:
        if container_left:
            _children(lhs, left_map or t, path, acc, removed=True)
        if container_right:
            _children(rhs, right_map or t, path, acc, removed=False)


def _added(value: Any, t: ApplyType, path: Path, acc: Comparison) -> None:
    """``_compare(_ABSENT, value, ...)``, the whole of a create, without the questions whose
    answers are known when nothing was there before: every node below ``value`` is added, children
    before their container, and an empty container is a leaf."""
    map_type = _map_type(t, value)
    if map_type is not None:
        if value:
            for key, child in value.items():
                _added(child, _field_type(map_type, key), (*path, "f:" + key), acc)
            acc.added.append(path)
        elif path:
            acc.added.append(path)
        return
    if value and _is_list(t, value):
        elem = t.elem if t.elem is not None else UNTYPED_TYPE
        order, items = _index(t, value)
        for element in order:
            _added(items[element][0], elem, (*path, element), acc)
        acc.added.append(path)
    elif path:
        acc.added.append(path)


def _children(value: Any, t: ApplyType, path: Path, acc: Comparison, *, removed: bool) -> None:
    """Record everything below a container as removed (or added), but not the container itself."""
    if isinstance(value, dict):
        for key, child in value.items():
            left, right = (child, _ABSENT) if removed else (_ABSENT, child)
            _compare(left, right, _field_type(t, key), (*path, "f:" + key), acc)
    elif isinstance(value, list):
        elem = t.elem if t.elem is not None else UNTYPED_TYPE
        order, items = _index(t, value)
        for element in order:
            item = items[element][0]
            left, right = (item, _ABSENT) if removed else (_ABSENT, item)
            _compare(left, right, elem, (*path, element), acc)


def _leaf(lhs: Any, rhs: Any, path: Path, acc: Comparison) -> None:
    if not path:
        return
    if lhs is _ABSENT:
        acc.added.append(path)
    elif rhs is _ABSENT:
        acc.removed.append(path)
    elif not json_equal(lhs, rhs):
        acc.modified.append(path)


def _compare_maps(lhs: Any, rhs: Any, t: ApplyType, path: Path, acc: Comparison) -> None:
    left = lhs if isinstance(lhs, dict) else {}
    right = rhs if isinstance(rhs, dict) else {}
    for key, value in left.items():
        other = right.get(key, _ABSENT)
        if other is not _ABSENT and (value is other):
            continue
        _compare(value, other, _field_type(t, key), (*path, "f:" + key), acc)
    for key, value in right.items():
        if key not in left:
            _compare(_ABSENT, value, _field_type(t, key), (*path, "f:" + key), acc)


def _compare_lists(lhs: Any, rhs: Any, t: ApplyType, path: Path, acc: Comparison) -> None:
    elem = t.elem if t.elem is not None else UNTYPED_TYPE
    left_order, left = _index(t, lhs if isinstance(lhs, list) else [])
    right_order, right = _index(t, rhs if isinstance(rhs, list) else [])
    for element in left_order:
        left_items = left[element]
        right_items = right.get(element)
        item_path = (*path, element)
        if right_items is None:
            _compare(left_items[0], _ABSENT, elem, item_path, acc)
        elif len(left_items) > 1 or len(right_items) > 1:
            # Duplicated items are compared as a whole, as upstream does.
            if not json_equal(left_items, right_items):
                acc.modified.append(item_path)
        else:
            _compare(left_items[0], right_items[0], elem, item_path, acc)
    for element in right_order:
        if element not in left:
            _compare(_ABSENT, right[element][0], elem, (*path, element), acc)


# --- RemoveItems ---------------------------------------------------------------------------------------


def remove_paths(value: Any, paths: Iterable[Path], t: ApplyType, *, keep_emptied: bool) -> Any:
    """``value`` without the nodes at ``paths`` (and everything below them), as upstream's
    ``RemoveItems``: only granular maps and set/map lists are descended.

    A container whose every child is removed becomes ``null`` when ``keep_emptied`` (upstream's
    exact result, needed for the intermediate steps of pruning); otherwise it is dropped from its
    parent, which is what a stored object ends up as once ``null`` values are cleared.
    """
    targets = paths if isinstance(paths, frozenset | set) else frozenset(paths)
    if not targets:
        return copy_json(value)
    prefixes: set[Path] = set()
    for path in targets:
        for i in range(1, len(path)):
            prefixes.add(path[:i])
    result = _remove(value, t, (), targets, prefixes, keep_emptied)
    if result is _EMPTIED:
        return None if keep_emptied else {}
    return result


def _remove(
    value: Any,
    t: ApplyType,
    path: Path,
    targets: frozenset[Path] | set[Path],
    prefixes: set[Path],
    keep_emptied: bool,
) -> Any:
    map_type = _map_type(t, value)
    if map_type is not None:
        if not value:
            return copy_json(value)
        out: dict[str, Any] = {}
        for key, child in value.items():
            child_path = (*path, "f:" + key)
            if child_path in targets:
                continue
            if child_path in prefixes:
                child = _remove(
                    child, _field_type(map_type, key), child_path, targets, prefixes, keep_emptied
                )
                if child is _EMPTIED:
                    if keep_emptied:
                        out[key] = None
                    continue
                out[key] = child
            else:
                out[key] = copy_json(child)
        return out if out else _EMPTIED
    if _is_list(t, value):
        if not value:
            return copy_json(value)
        elem = t.elem if t.elem is not None else UNTYPED_TYPE
        items: list[Any] = []
        for index, item in enumerate(value):
            item_path = (*path, item_element(t, item, index, None, ()))
            if item_path in targets:
                continue
            if item_path in prefixes:
                item = _remove(item, elem, item_path, targets, prefixes, keep_emptied)
                if item is _EMPTIED:
                    if keep_emptied:
                        items.append(None)
                    continue
                items.append(item)
            else:
                items.append(copy_json(item))
        return items if items else _EMPTIED
    return copy_json(value)


# --- EnsureNamedFieldsAreMembers ----------------------------------------------------------------------


def ensure_named_fields(paths: Iterable[Path], t: ApplyType) -> set[Path]:
    """``paths`` plus every proper prefix of one of them that ends in a *declared* struct field
    (so that ``.spec.template`` counts as owned when ``.spec.template.spec.x`` is; map entries and
    list items are not added)."""
    out = set(paths)
    for path in list(out):
        current = t
        for i in range(len(path) - 1):
            element = path[i]
            if element[0] == "f":
                name = element[2:]
                declared = current.fields.get(name) if current.kind == MAP else None
                if declared is not None:
                    out.add(path[: i + 1])
                    current = declared
                elif current.kind == MAP and current.elem is not None:
                    current = current.elem
                else:
                    current = UNTYPED_TYPE
            elif current.kind == LIST and current.elem is not None:
                current = current.elem
            else:
                current = UNTYPED_TYPE
    return out


# --- schema reconciliation ----------------------------------------------------------------------------


def type_at(t: ApplyType, path: Path, cache: dict[Path, ApplyType]) -> ApplyType:
    """The type of the node at ``path`` (memoised in ``cache``)."""
    found = cache.get(path)
    if found is not None:
        return found
    if not path:
        return t
    parent = type_at(t, path[:-1], cache)
    element = path[-1]
    if element[0] == "f":
        result = _field_type(parent, element[2:]) if parent.kind == MAP else UNTYPED_TYPE
    elif parent.kind == LIST and parent.elem is not None:
        result = parent.elem
    else:
        result = UNTYPED_TYPE
    cache[path] = result
    return result


def reconcile_with_schema(
    paths: frozenset[Path], t: ApplyType, cache: dict[Path, ApplyType]
) -> frozenset[Path] | None:
    """``paths`` adjusted to a schema under which some owned granular node became atomic: the paths
    below the atomic node are replaced by the node itself (upstream's
    ``ReconcileFieldSetWithSchema``, granular-to-atomic half).  ``None`` when nothing changes.

    The other half, expanding a node owned as a whole into the fields currently under it when the
    schema made it granular, is deliberately not done: a set cannot tell such a node from an empty
    map the manager set, and expanding that would hand the manager fields other managers set.
    """
    collapse: set[Path] = set()
    for path in paths:
        for i in range(1, len(path)):
            prefix = path[:i]
            node = type_at(t, prefix, cache)
            if node.atomic and node.kind in (MAP, LIST):
                collapse.add(prefix)
                break
    if not collapse:
        return None
    kept = {p for p in paths if not any(p[:i] in collapse for i in range(1, len(p)))}
    return frozenset(kept | collapse)


def format_errors(errors: PathErrors) -> str:
    """Upstream's ``ValidationErrors`` text: ``<path>: <message>``, several as an indented list."""
    lines = [f"{format_path(path)}: {message}" for path, message in errors]
    if len(lines) == 1:
        return lines[0]
    return "\n".join(["errors:", *("  " + line for line in lines)])
