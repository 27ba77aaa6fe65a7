"""The reconcile contract: :class:`Action`, :class:`PermanentError` and the :class:`Context` in which a
reconcile *registers intent* (descendants, status, conditions, events) for the framework to apply.

A reconcile is a plain async function ``reconcile(obj, ctx) -> Action``.  It reads ``obj`` (a copy:
mutating it changes nothing) and registers what it wants through ``ctx``; it does not write to the
API itself.  After it returns, the controller applies the intent: descendants by server-side apply,
pruning of descendants no longer registered, one status patch if the status changed, events.  Since a
:class:`Context` needs no server, a reconcile is unit tested by calling it::

    ctx = Context.for_object(todo)
    action = await reconcile(todo, ctx)
    assert ctx.descendants[0]["kind"] == "ConfigMap"
    assert ctx.status.phase == "Done"
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar

import orjson
from pydantic import BaseModel

from kubevisor.api import format_time, now
from kubevisor.runtime._store import ObjectRef

if TYPE_CHECKING:
    from kubevisor.client import Client

__all__ = [
    "Action",
    "Context",
    "EventType",
    "PermanentError",
    "RecordedEvent",
    "set_condition",
    "to_wire",
]

Obj = dict[str, Any]
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True, slots=True)
class Action:
    """What a reconcile asks for next.  Build with :meth:`done` or :meth:`requeue`."""

    requeue_after: float | None = None
    """Reconcile again after this many seconds (``0``: as soon as possible); ``None``: not unless
    something changes."""
    rate_limited: bool = False
    """Requeue through the rate limiter (growing backoff) instead of after a fixed delay."""

    @classmethod
    def done(cls) -> Action:
        """Nothing more to do until the object (or something mapped to it) changes."""
        return _DONE

    @classmethod
    def requeue(cls, after: float | None = None) -> Action:
        """Reconcile again: after ``after`` seconds, or (without it) after the rate limiter's delay,
        which grows with each consecutive requeue of the object, as for an error but not logged
        as one (controller-runtime's ``Requeue: true``)."""
        if after is None:
            return cls(requeue_after=0.0, rate_limited=True)
        if after < 0:
            raise ValueError("requeue delay must not be negative")
        return cls(requeue_after=float(after))


_DONE = Action()


class PermanentError(Exception):
    """A failure that retrying cannot fix (an invalid spec, a missing referenced object that only a
    user can create).  The object is not requeued; the error is recorded as a ``False`` condition and a
    ``Warning`` event, and the object is reconciled again when it changes.

    ``reason`` is the CamelCase reason of the condition and the event.
    """

    def __init__(self, message: str, *, reason: str = "ReconcileFailed") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event a reconcile registered (``Context.events``)."""

    type: EventType
    reason: str
    message: str
    action: str | None = None


def to_wire(value: Any) -> Any:
    """The JSON-ready form of a registered value: dicts as they are, typed resources through
    ``to_wire()``, other pydantic models as :class:`kubevisor.resource.Resource` writes nested models
    (by alias; a field left out when it was never set and still holds its default, so that what came
    from the server is written back exactly and nothing else is invented)."""
    if value is None or isinstance(value, dict):
        return value
    if _has_to_wire(type(value)):
        return value.to_wire()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude=_exclusions(value))
    to_wire_method = getattr(value, "to_wire", None)
    if callable(to_wire_method):
        return to_wire_method()
    raise TypeError(
        f"cannot serialise {type(value).__name__}: expected a dict, a TypedResource or a pydantic model"
    )


_TO_WIRE: dict[type, bool] = {}


def _has_to_wire(cls: type) -> bool:
    # Per class, once: pydantic answers a missing attribute through __getattr__ (on the instance
    # and on the model class alike), which costs more than the whole dump of a small model.
    known = _TO_WIRE.get(cls)
    if known is None:
        known = _TO_WIRE[cls] = callable(getattr(cls, "to_wire", None))
    return known


def _exclusions(model: BaseModel) -> Any:
    """``model_dump``'s ``exclude`` tree: fields never set that still equal their default (a default
    mutated in place counts as set)."""
    excluded: dict[Any, Any] = {}
    fields_set = model.model_fields_set
    for name, default in _defaults(type(model)):
        value = getattr(model, name)
        if name not in fields_set and default is not _NO_DEFAULT and value == default:
            excluded[name] = True
            continue
        nested = _nested_exclusions(value)
        if nested:
            excluded[name] = nested
    return excluded or None


@functools.cache
def _defaults(model: type[BaseModel]) -> tuple[tuple[str, Any], ...]:
    """Each field with its default (``_NO_DEFAULT`` when required or built from other fields), per
    class: computing defaults is the expensive part of the comparison, and they are only compared."""
    defaults: list[tuple[str, Any]] = []
    for name, info in model.model_fields.items():
        default = _NO_DEFAULT
        if not info.is_required():
            try:
                default = info.get_default(call_default_factory=True, validated_data={})
            except TypeError:
                default = _NO_DEFAULT
        defaults.append((name, default))
    return tuple(defaults)


def _nested_exclusions(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _exclusions(value)
    if isinstance(value, list | tuple):
        return {i: ex for i, item in enumerate(value) if (ex := _nested_exclusions(item))} or None
    if isinstance(value, dict):
        return {k: ex for k, item in value.items() if (ex := _nested_exclusions(item))} or None
    return None


_NO_DEFAULT: Any = object()

_ATOMIC: Final = frozenset({str, int, float, bool, type(None), bytes})


def _copy_model(model: M) -> M:
    """A deep copy of a pydantic model: a shallow copy whose non-scalar values are copied in turn.
    Several times faster than ``model_copy(deep=True)`` for the mostly scalar models statuses are;
    unlike ``copy.deepcopy`` it does not preserve aliasing between two fields (no status shares one
    mutable value between fields)."""
    new = model.model_copy()
    for values in (new.__dict__, new.__pydantic_extra__, new.__pydantic_private__):
        if not values:
            continue
        for key, value in values.items():
            if type(value) not in _ATOMIC:
                values[key] = _copy_model(value) if isinstance(value, BaseModel) else copy.deepcopy(value)
    return new


def _json_copy(value: Any) -> Any:
    # orjson's round trip is several times faster than copy.deepcopy on API objects.
    return orjson.loads(orjson.dumps(value))


def set_condition(
    conditions: list[Obj],
    type: str,
    status: str,
    *,
    reason: str,
    message: str = "",
    observed_generation: int | None = None,
    transition_time: str,
) -> bool:
    """Set a ``metav1.Condition`` in ``conditions`` (mutated), following upstream's
    ``meta.SetStatusCondition``: a new condition gets ``lastTransitionTime = transition_time``; an
    existing one keeps its ``lastTransitionTime`` unless its status changes, and takes the new reason,
    message and observedGeneration.  Returns whether anything changed."""
    for existing in conditions:
        if existing.get("type") != type:
            continue
        before = dict(existing)
        if existing.get("status") != status:
            existing["status"] = status
            existing["lastTransitionTime"] = transition_time
        existing.setdefault("lastTransitionTime", transition_time)
        existing["reason"] = reason
        existing["message"] = message
        if observed_generation is not None:
            existing["observedGeneration"] = observed_generation
        return existing != before
    condition: Obj = {
        "type": type,
        "status": status,
        "lastTransitionTime": transition_time,
        "reason": reason,
        "message": message,
    }
    if observed_generation is not None:
        condition["observedGeneration"] = observed_generation
    conditions.append(condition)
    return True


def _condition_status(status: bool | str | None) -> str:
    if status is True:
        return "True"
    if status is False:
        return "False"
    if status is None:
        return "Unknown"
    if status in ("True", "False", "Unknown"):
        return status
    raise ValueError(
        f"condition status must be True, False, None or 'True'/'False'/'Unknown', got {status!r}"
    )


_UNSET: Any = object()


class Context(Generic[T]):
    """What one reconcile of one object registers; applied by the controller once it returns.

    Registering never performs I/O, so a reconcile is testable with :meth:`for_object` alone.  The
    controller applies, in order: descendants (server-side apply, owned, labelled), pruning of
    descendants registered before and not now, the status (one patch, only if it changed), events.
    Nothing is applied when the reconcile raises (except the condition and event recording a
    :class:`PermanentError`).

    Attributes of interest in tests: :attr:`descendants`, :attr:`status`, :attr:`conditions`,
    :attr:`events`.
    """

    def __init__(
        self,
        obj: T,
        wire: Obj,
        *,
        client: Client | None = None,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        clock: Callable[[], datetime] = now,
        deleting: bool = False,
        children: Callable[[Any], list[Obj]] | None = None,
    ) -> None:
        """``obj`` is what the reconcile receives, ``wire`` the stored object it came from (read-only;
        the status baseline).  Prefer :meth:`for_object` outside the runtime."""
        self.object: T = obj
        """The object being reconciled (the reconcile's own copy)."""
        self.client = client
        """The manager's client, for reads the cache does not cover; ``None`` in unit tests."""
        self.log = logger if logger is not None else logging.getLogger("kubevisor.reconcile")
        self.deleting = deleting
        """Whether this is a cleanup (the object has a deletionTimestamp): no descendants then."""
        self._wire = wire
        self._clock = clock
        self._children = children
        meta = wire.get("metadata") or {}
        self.ref = ObjectRef(meta.get("namespace") or "", meta.get("name") or "")
        self.uid: str = meta.get("uid") or ""
        self.generation: int | None = meta.get("generation")
        self.descendants: list[Obj] = []
        """Registered descendants, in wire form, in registration order."""
        self.conditions: list[Obj] = []
        """Registered conditions (``type``, ``status``, ``reason``, ``message``), latest per type."""
        self.events: list[RecordedEvent] = []
        """Registered events, in order."""
        self._status: Any = _UNSET
        self._status_assigned = False
        self._keys: set[tuple[str, str, str, str]] = set()

    @classmethod
    def for_object(
        cls,
        obj: Any,
        *,
        client: Client | None = None,
        clock: Callable[[], datetime] = now,
        deleting: bool = False,
    ) -> Context[Any]:
        """A context for ``obj`` (a typed resource or a wire dict), with no server behind it."""
        wire = to_wire(obj)
        if not isinstance(wire, dict):
            raise TypeError("the object must be a dict or a TypedResource")
        return cls(obj, wire, client=client, clock=clock, deleting=deleting)

    # -- descendants --

    def apply(self, child: Any) -> None:
        """Register a descendant (a wire dict or typed resource with ``apiVersion``, ``kind`` and
        ``metadata.name``).  The controller server-side applies it under its field manager with a
        controller owner reference to this object (``blockOwnerDeletion``), the
        ``app.kubernetes.io/managed-by`` label and the owner-UID label, in this object's namespace
        unless it names one.  Its kind must be among the controller's ``owns``.

        Raises ``ValueError`` for an object without apiVersion/kind/name, one registered twice, or
        any descendant during cleanup.
        """
        if self.deleting:
            raise ValueError("descendants cannot be registered while the object is being deleted")
        wire = _json_copy(to_wire(child))
        if not isinstance(wire, dict):
            raise ValueError("a descendant must be an object")
        api_version, kind = wire.get("apiVersion"), wire.get("kind")
        meta = wire.get("metadata")
        if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
            raise ValueError("a descendant needs apiVersion and kind")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
            raise ValueError(f"a descendant {kind} needs metadata.name (generateName cannot be applied)")
        key = (api_version, kind, meta.get("namespace") or "", meta["name"])
        if key in self._keys:
            raise ValueError(f"descendant {kind} {meta['name']!r} registered twice")
        self._keys.add(key)
        self.descendants.append(wire)

    def children(self, kind: Any) -> list[Obj]:
        """Cached objects of an owned ``kind`` whose controller is this object (read-only dicts).
        Empty in unit tests unless the test supplied them."""
        if self._children is None:
            return []
        return self._children(kind)

    # -- status --

    @property
    def status(self) -> Any:
        """The status this reconcile wants: starts as a copy of the stored one (the typed status
        model for typed resources, a dict otherwise); mutate it or assign a new one.  The controller
        patches the status subresource once, only if the result (with conditions and
        ``observedGeneration``) differs from what is stored."""
        if self._status is _UNSET:
            self._status = self._initial_status()
        return self._status

    @status.setter
    def status(self, value: Any) -> None:
        self._status = value
        self._status_assigned = True

    @property
    def status_touched(self) -> bool:
        """Whether the reconcile read, mutated or assigned :attr:`status`."""
        return self._status is not _UNSET

    def _initial_status(self) -> Any:
        if not isinstance(self.object, dict) and hasattr(self.object, "status"):
            current = self.object.status
            if current is None:
                return None
            stored = self._wire.get("status")
            if isinstance(current, BaseModel) and isinstance(stored, dict):
                # Validating the stored status again is several times faster than a deep copy of the
                # model, and yields what the reconcile's object held before it could mutate it.
                return type(current).model_validate(stored)
            if isinstance(current, BaseModel):
                return _copy_model(current)
            return copy.deepcopy(current)
        stored = self._wire.get("status")
        return _json_copy(stored) if isinstance(stored, dict) else {}

    def condition(
        self,
        type: str,
        status: bool | str | None,
        *,
        reason: str,
        message: str = "",
    ) -> None:
        """Register a ``metav1.Condition``: ``status`` ``True``/``False``/``None`` (Unknown).  Applied
        into ``status.conditions`` with upstream's rules: ``lastTransitionTime`` moves only when the
        status changes; ``observedGeneration`` is the object's generation.  Registering a type
        again replaces the earlier registration.  ``ValueError`` for an empty type or reason."""
        if not type or not reason:
            raise ValueError("a condition needs a type and a reason")
        entry = {"type": type, "status": _condition_status(status), "reason": reason, "message": message}
        self.conditions = [c for c in self.conditions if c["type"] != type]
        self.conditions.append(entry)

    def desired_status(self, *, observed_generation: bool = True) -> Obj | None:
        """The status wire the controller will converge to, or ``None`` when this reconcile leaves
        the status alone (it never touched :attr:`status` nor registered a condition, and the stored
        ``observedGeneration``, if any, is current)."""
        stored = self._wire.get("status")
        stored = stored if isinstance(stored, dict) else None
        generation = self.generation if observed_generation else None
        if not self.status_touched and not self.conditions:
            if stored is None or generation is None or "observedGeneration" not in stored:
                return None
            if stored.get("observedGeneration") == generation:
                return None
            return {**stored, "observedGeneration": generation}
        value = self._status
        wire = to_wire(value) if value is not _UNSET else stored
        desired: Obj = dict(wire) if isinstance(wire, dict) else {}
        if self.conditions:
            # A typed status model without a conditions field still keeps the stored ones (and so
            # their transition times).
            base = desired.get("conditions")
            if base is None and stored is not None:
                base = stored.get("conditions")
            conditions = [dict(c) for c in base or () if isinstance(c, dict)]
            transition = format_time(self._clock())
            for registered in self.conditions:
                set_condition(
                    conditions,
                    registered["type"],
                    registered["status"],
                    reason=registered["reason"],
                    message=registered["message"],
                    observed_generation=self.generation,
                    transition_time=transition,
                )
            desired["conditions"] = conditions
        if generation is not None:
            desired["observedGeneration"] = generation
        return desired

    # -- events --

    def event(self, type: EventType, reason: str, message: str, *, action: str | None = None) -> None:
        """Register a core/v1 Event about this object (``type`` ``Normal`` or ``Warning``).  Repeats
        are aggregated by the recorder (count and lastTimestamp), as client-go does."""
        if type not in ("Normal", "Warning"):
            raise ValueError(f"event type must be 'Normal' or 'Warning', got {type!r}")
        if not reason:
            raise ValueError("an event needs a reason")
        self.events.append(RecordedEvent(type, reason, message, action))


def descendant_ref(wire: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """``(apiVersion, kind, namespace, name)`` of a registered descendant."""
    meta = wire.get("metadata") or {}
    return wire["apiVersion"], wire["kind"], meta.get("namespace") or "", meta["name"]
