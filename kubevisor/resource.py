"""Typed custom resources: pydantic v2 models that know their API identity and yield their CRD.

Declare a resource by subclassing :class:`Resource` with class keywords::

    class TodoSpec(BaseModel):
        \"\"\"What to do.\"\"\"
        title: Annotated[str, Field(min_length=1, max_length=80)]
        done: bool = False

    class TodoStatus(BaseModel):
        phase: Literal["Pending", "Done"] = "Pending"

    class Todo(Resource, group="example.com", version="v1", kind="Todo", short_names=["td"]):
        spec: TodoSpec
        status: TodoStatus = Field(default_factory=TodoStatus)

``Todo.crd()`` is the apiextensions.k8s.io/v1 CustomResourceDefinition (its schema structural,
checked by :func:`kubevisor.api.check_structural` and compiled with
:class:`kubevisor.api.CompiledSchema` before it is returned); ``Todo.resource_info()``,
``Todo.from_wire(obj)`` and ``todo.to_wire()`` are what the client needs (its ``TypedResource``
protocol).  The Python type → schema mapping is documented in ``docs/resources.md``.

A model that cannot become a structural schema (an unconstrained union of objects, a recursive
model, an unsupported type) raises ``TypeError`` naming the class and field at fault.
"""

from __future__ import annotations

import copy
import enum
import inspect
import re
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping, MutableSequence, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, Self, cast, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from kubevisor.api import (
    CompiledSchema,
    Invalid,
    ResourceInfo,
    check_structural,
    is_dns1035_label,
    is_dns1123_subdomain,
    join_api_version,
)

__all__ = [
    "Atomic",
    "Condition",
    "EmbeddedResource",
    "ListMap",
    "ListSet",
    "ObjectMeta",
    "OpenAPI",
    "OwnerReference",
    "PrinterColumn",
    "Resource",
    "Rule",
    "Scale",
    "crd_for",
    "pluralize",
]


# -- schema annotations ------------------------------------------------------------------------


@dataclass(frozen=True, init=False)
class ListMap:
    """``Annotated[list[Port], ListMap("name", "protocol")]``: a list merged by key
    (``x-kubernetes-list-type: map``).  Items must be models whose key fields are scalars that
    are required or have a default."""

    keys: tuple[str, ...]

    def __init__(self, *keys: str) -> None:
        if not keys or not all(isinstance(k, str) and k for k in keys):
            raise TypeError("ListMap needs at least one key name")
        object.__setattr__(self, "keys", tuple(keys))


@dataclass(frozen=True)
class ListSet:
    """``Annotated[list[str], ListSet()]``: a list of unique scalars (``x-kubernetes-list-type:
    set``) that keeps its order; ``set[str]`` means the same but does not keep order."""


@dataclass(frozen=True)
class Atomic:
    """Replace the whole list or object on apply instead of merging it
    (``x-kubernetes-list-type: atomic`` / ``x-kubernetes-map-type: atomic``)."""


@dataclass(frozen=True)
class EmbeddedResource:
    """``Annotated[dict[str, Any], EmbeddedResource()]``: a complete Kubernetes object (with
    ``apiVersion``, ``kind`` and ``metadata``) inside this one, e.g. a Pod template."""


@dataclass(frozen=True)
class Rule:
    """A CEL validation rule (``x-kubernetes-validations``) on a field
    (``Annotated[int, Rule("self >= 0")]``) or, listed in ``__rules__``, on a model.

    ``self`` is the annotated value; a rule reading ``oldSelf`` is a transition rule, checked
    only on updates.  ``reason`` is one of ``FieldValueInvalid`` (default),
    ``FieldValueForbidden``, ``FieldValueRequired``, ``FieldValueDuplicate``; ``field_path``
    (``".spec.x"``) attributes a model-level failure to one field.
    """

    rule: str
    message: str | None = None
    message_expression: str | None = None
    reason: str | None = None
    field_path: str | None = None

    def to_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule}
        if self.message is not None:
            out["message"] = self.message
        if self.message_expression is not None:
            out["messageExpression"] = self.message_expression
        if self.reason is not None:
            out["reason"] = self.reason
        if self.field_path is not None:
            out["fieldPath"] = self.field_path
        return out


@dataclass(frozen=True, init=False)
class OpenAPI:
    """Raw OpenAPI keywords merged into a field's schema, for what the Python type cannot say:
    ``Annotated[str, OpenAPI(format="hostname")]`` or ``OpenAPI({"x-kubernetes-map-type": ...})``.
    The result must still be structural (checked when the CRD is built)."""

    keywords: tuple[tuple[str, Any], ...]

    def __init__(self, keywords: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        merged = {**(keywords or {}), **more}
        object.__setattr__(self, "keywords", tuple(merged.items()))


# -- CRD options -------------------------------------------------------------------------------

_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry shown by ``kubectl get``."""

    name: str
    json_path: str
    type: str = "string"
    """One of integer, number, string, boolean, date."""
    description: str = ""
    format: str = ""
    priority: int = 0
    """0 shows the column always, more only with ``-o wide``."""

    def to_crd(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            out["description"] = self.description
        if self.format:
            out["format"] = self.format
        if self.priority:
            out["priority"] = self.priority
        return out


@dataclass(frozen=True)
class Scale:
    """The ``/scale`` subresource: where the replica counts and the label selector live."""

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = None
    """A string field under ``.status`` or ``.spec`` holding the serialised label selector."""

    def to_crd(self) -> dict[str, Any]:
        out = {"specReplicasPath": self.spec_replicas_path, "statusReplicasPath": self.status_replicas_path}
        if self.label_selector_path:
            out["labelSelectorPath"] = self.label_selector_path
        return out


@dataclass(frozen=True)
class _Config:
    """The resolved class keywords of one resource class."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()
    status_subresource: bool | None = None
    scale: Scale | None = None
    selectable_fields: tuple[str, ...] = ()
    storage: bool | None = None
    served: bool = True
    deprecated: bool = False
    deprecation_warning: str | None = None

    @property
    def api_version(self) -> str:
        return join_api_version(self.group, self.version)


def pluralize(kind: str) -> str:
    """The default plural resource name of a kind: lower-cased, with the usual English rules
    (``Policy`` → ``policies``, ``Box`` → ``boxes``, ``Todo`` → ``todos``)."""
    word = kind.lower()
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


# -- metadata models ---------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class _WireModel(BaseModel):
    # Unknown fields are kept: metadata written by newer servers must survive a round trip.
    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=_camel)


class OwnerReference(_WireModel):
    """An entry of ``metadata.ownerReferences``."""

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(_WireModel):
    """``metadata`` of an object.  Timestamps stay the server's strings (lossless); unknown
    fields are kept."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None
    managed_fields: list[dict[str, Any]] | None = None


class Condition(_WireModel):
    """Condition contains details for one aspect of the current state of this resource."""

    # Declare a list of these as Annotated[list[Condition], ListMap("type")], as metav1.Condition is.

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


# -- the resource base -------------------------------------------------------------------------

_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values."
)
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. In CamelCase."
)
_KIND_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


# -- model-instance defaults -------------------------------------------------------------------

_Copy = Callable[[], Any]

# Immutable values, shared by a copy rather than duplicated: nothing can tell the two apart but
# ``is``.  Exact types only, since a subclass may add mutable state.
_SHARED_TYPES: frozenset[type] = frozenset(
    {type(None), bool, int, float, complex, str, bytes, datetime, date, time, timedelta, Decimal, uuid.UUID}
)


class _NotPlainData(Exception):
    """A value that :func:`_copy_plan` cannot copy exactly as ``copy.deepcopy`` would."""


def _copy_plan(value: Any, seen: dict[int, Any]) -> _Copy | None:
    """How to deep-copy ``value`` fast: ``None`` when it is immutable and can be shared, else a
    function returning a fresh copy equal to ``value`` (models with the same fields set, extra
    fields and private attributes, as pydantic's ``__deepcopy__`` makes them).

    The plan captures ``value`` itself, which must therefore never change afterwards (callers pass
    a private snapshot).  Raises ``_NotPlainData`` for anything whose copy would differ from
    ``copy.deepcopy``'s: a type with a copy protocol of its own (a model overriding
    ``__deepcopy__``, ``RootModel``), a container subclass, or an object reachable twice (deepcopy
    keeps that aliasing, a plan would not).  ``seen`` maps the ids of the mutable objects met so far
    to the objects, which it keeps alive: an id is unique only among live objects, and planning
    makes temporaries (a model's private attributes without the unset ones).
    """
    kind = type(value)
    if kind in _SHARED_TYPES:
        return None
    if isinstance(value, enum.Enum) and getattr(kind, "__deepcopy__", None) is _ENUM_DEEPCOPY:
        return None  # an Enum's deepcopy is the member itself
    if kind is tuple or kind is frozenset:
        # Checked for aliasing only when they hold something mutable: shared, they are immutable.
        item_plans = [_copy_plan(item, seen) for item in value]
        if all(plan is None for plan in item_plans):
            return None
        if kind is frozenset or id(value) in seen:
            raise _NotPlainData(f"a {kind.__name__} holding mutable values")
        seen[id(value)] = value
        pairs = tuple(zip(value, item_plans, strict=True))
        return lambda: tuple(item if plan is None else plan() for item, plan in pairs)
    if id(value) in seen:
        raise _NotPlainData(f"a {kind.__name__} reachable twice")
    seen[id(value)] = value
    if kind is list:
        item_plans = [_copy_plan(item, seen) for item in value]
        if all(plan is None for plan in item_plans):
            return cast(_Copy, value.copy)
        pairs = tuple(zip(value, item_plans, strict=True))
        return lambda: [item if plan is None else plan() for item, plan in pairs]
    if kind is dict:
        if any(_copy_plan(key, seen) is not None for key in value):
            raise _NotPlainData("a dict with mutable keys")
        entries = tuple((key, item, _copy_plan(item, seen)) for key, item in value.items())
        if all(plan is None for _, _, plan in entries):
            return cast(_Copy, value.copy)
        return lambda: {key: item if plan is None else plan() for key, item, plan in entries}
    if kind is set:
        if any(_copy_plan(item, seen) is not None for item in value):
            raise _NotPlainData("a set of mutable values")
        return cast(_Copy, value.copy)
    if isinstance(value, BaseModel) and getattr(kind, "__deepcopy__", None) is _MODEL_DEEPCOPY:
        return _model_copy_plan(value, seen)
    raise _NotPlainData(f"a {kind.__name__}")


_ENUM_DEEPCOPY = enum.Enum.__deepcopy__
_MODEL_DEEPCOPY = BaseModel.__deepcopy__


def _model_copy_plan(model: BaseModel, seen: dict[int, Any]) -> _Copy:
    """A plan for a pydantic model: the four slots pydantic's ``__deepcopy__`` fills, filled the
    same way."""
    seen[id(model)] = model
    cls = type(model)
    fields = _copy_plan(model.__dict__, seen)
    extra = model.__pydantic_extra__
    extra_plan = None if extra is None else _copy_plan(extra, seen)
    private = getattr(model, "__pydantic_private__", None)
    if private is not None:
        # pydantic's deepcopy leaves out private attributes never given a value; so does the plan.
        private = {key: item for key, item in private.items() if item is not PydanticUndefined}
    private_plan = None if private is None else _copy_plan(private, seen)
    fields_set = frozenset(model.__pydantic_fields_set__)
    new = cls.__new__
    put = object.__setattr__

    def copy_model() -> BaseModel:
        m = new(cls)
        put(m, "__dict__", fields() if fields is not None else {})
        put(m, "__pydantic_extra__", extra_plan() if extra_plan is not None else None)
        put(m, "__pydantic_fields_set__", set(fields_set))
        put(m, "__pydantic_private__", private_plan() if private_plan is not None else None)
        return m

    return copy_model


def _is_class_var(annotation: Any) -> bool:
    if isinstance(annotation, str):  # ``from __future__ import annotations``: not evaluated yet
        return re.match(r"^\s*(?:\w+\.)*ClassVar\b", annotation) is not None
    return annotation is ClassVar or get_origin(annotation) is ClassVar


def _factories_for_model_defaults(cls: type[BaseModel]) -> None:
    """Turn the model-instance defaults this class declares (``status: S = S()``) into default
    factories, before pydantic collects the fields.

    Why: pydantic deep-copies an unhashable default each time it uses it (every validation of an
    object without that field, every ``FieldInfo.get_default``), and ``copy.deepcopy`` through the
    models' Python ``__deepcopy__`` was half of a ``Todo.from_wire`` without a status.  The factory
    returns the same deep copy of the default (as it was when the class was created), built by a
    plan made once, four to five times faster.  Transparent: validation, ``to_wire``, equality and the CRD's ``default`` are
    unchanged, and every instance still gets a copy of its own.  What shows is what any
    ``Field(default_factory=...)`` shows: ``model_fields[name].default_factory`` instead of
    ``default``, and no ``default`` in pydantic's own ``model_json_schema``.

    Left alone, so that pydantic handles them as before: hashable defaults (pydantic shares those),
    defaults given through ``Field(...)``, private and class variables, and defaults that hold
    anything but plain data (see :func:`_copy_plan`).
    """
    for name, annotation in inspect.get_annotations(cls).items():
        value = cls.__dict__.get(name)
        if not isinstance(value, BaseModel) or name.startswith("_") or _is_class_var(annotation):
            continue
        if getattr(type(value), "__deepcopy__", None) is not _MODEL_DEEPCOPY:
            continue
        try:
            hash(value)
            continue
        except TypeError:
            pass
        try:
            plan = _model_copy_plan(copy.deepcopy(value), {})
        except _NotPlainData:
            continue
        setattr(cls, name, Field(default_factory=plan))


class Resource(BaseModel):
    """Base class of typed custom resources (see the module docstring for an example).

    Class keywords: ``group`` and ``version`` (required for a concrete resource), ``kind``
    (default: the class name), ``plural`` (default: :func:`pluralize` of the kind),
    ``singular`` (default: lower-cased kind), ``scope`` (``"Namespaced"`` or ``"Cluster"``),
    ``short_names``, ``categories``, ``printer_columns`` (:class:`PrinterColumn`),
    ``status_subresource`` (default: on when the class has a ``status`` field), ``scale``
    (:class:`Scale` or ``True``), ``selectable_fields`` (JSON paths of scalar fields),
    ``storage`` / ``served`` / ``deprecated`` / ``deprecation_warning`` for this version.  A
    subclass of a concrete resource inherits every keyword but ``storage``, so
    ``class TodoV2(Todo, version="v2")`` is the next version of the same kind.

    Instances carry ``metadata`` (:class:`ObjectMeta`) and the fields the subclass declares;
    ``apiVersion`` and ``kind`` come from the class.  A model instance given as the default of a
    field the subclass declares (``status: S = S()``) becomes an equivalent default factory, so
    that reads do not pay for pydantic's deep copies (see ``docs/resources.md``).
    """

    model_config = ConfigDict(populate_by_name=True)

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    __resource__: ClassVar[_Config | None] = None
    __rules__: ClassVar[Sequence[Rule]] = ()

    def __init_subclass__(
        cls,
        *,
        group: str | None = None,
        version: str | None = None,
        kind: str | None = None,
        plural: str | None = None,
        singular: str | None = None,
        scope: Literal["Namespaced", "Cluster"] | None = None,
        short_names: Iterable[str] | None = None,
        categories: Iterable[str] | None = None,
        printer_columns: Iterable[PrinterColumn] | None = None,
        status_subresource: bool | None = None,
        scale: Scale | bool | None = None,
        selectable_fields: Iterable[str] | None = None,
        storage: bool | None = None,
        served: bool | None = None,
        deprecated: bool | None = None,
        deprecation_warning: str | None = None,
        **kwargs: Any,
    ) -> None:
        _factories_for_model_defaults(cls)
        super().__init_subclass__(**kwargs)
        parent: _Config | None = next(
            (b.__dict__["__resource__"] for b in cls.__mro__[1:] if b.__dict__.get("__resource__")), None
        )
        group = group if group is not None else (parent.group if parent else None)
        version = version if version is not None else (parent.version if parent else None)
        if group is None or version is None:
            if any(v is not None for v in (kind, plural, singular, scope, scale, storage)):
                raise TypeError(f"{cls.__name__}: a resource needs both group= and version=")
            cls.__resource__ = None
            return
        kind = kind or (parent.kind if parent else cls.__name__)
        default_plural = parent.plural if parent and parent.kind == kind else pluralize(kind)
        default_singular = parent.singular if parent and parent.kind == kind else kind.lower()
        if scale is True:
            resolved_scale: Scale | None = Scale()
        elif scale is False:
            resolved_scale = None
        else:
            resolved_scale = scale if scale is not None else (parent.scale if parent else None)
        config = _Config(
            group=group,
            version=version,
            kind=kind,
            plural=plural or default_plural,
            singular=singular or default_singular,
            namespaced=(scope or ("Namespaced" if not parent or parent.namespaced else "Cluster"))
            == "Namespaced",
            short_names=_tuple(short_names, parent.short_names if parent else ()),
            categories=_tuple(categories, parent.categories if parent else ()),
            printer_columns=_tuple(printer_columns, parent.printer_columns if parent else ()),
            status_subresource=status_subresource
            if status_subresource is not None
            else (parent.status_subresource if parent else None),
            scale=resolved_scale,
            selectable_fields=_tuple(selectable_fields, parent.selectable_fields if parent else ()),
            storage=storage,
            served=served if served is not None else (parent.served if parent else True),
            deprecated=deprecated if deprecated is not None else False,
            deprecation_warning=deprecation_warning,
        )
        _check_config(cls.__name__, config, scope)
        cls.__resource__ = config

    # -- the client's TypedResource protocol ---------------------------------------------------

    @classmethod
    def resource_info(cls) -> ResourceInfo:
        """What the client addresses: group, version, plural, scope, subresources, and the
        version's ``openAPIV3Schema``.  ``TypeError`` for an abstract (group-less) class."""
        return _resource_info(cls)

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any]) -> Self:
        """Build an instance from a decoded wire object.

        Raises ``ValueError`` when the object declares another ``apiVersion`` or ``kind`` and
        pydantic's ``ValidationError`` (a ``ValueError``) when it does not fit the model.
        Fields the model does not declare are dropped exactly where the server prunes them;
        models with ``extra="allow"`` (preserve-unknown-fields) and ``metadata`` keep them.
        """
        config = _concrete(cls)
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if (api_version is not None and api_version != config.api_version) or (
            kind is not None and kind != config.kind
        ):
            raise ValueError(
                f"{cls.__name__} is {config.api_version}, Kind={config.kind}; got {api_version}, Kind={kind}"
            )
        return cls.model_validate(obj)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready wire object, with ``apiVersion`` and ``kind``.

        Lossless: fields that came from the wire (or were set) are written back as they are;
        fields never set that still hold their default are left out (the CRD defaults them, so
        the server's object is the same), which is also what server-side apply wants.  A default
        mutated in place (``todo.status.phase = "Done"``) counts as set.
        """
        config = _concrete(type(self))
        body = self.model_dump(mode="json", by_alias=True, exclude=cast(Any, _exclusions(self)))
        wire: dict[str, Any] = {"apiVersion": config.api_version, "kind": config.kind}
        wire["metadata"] = body.pop("metadata", None) or {}
        body.pop("apiVersion", None)
        body.pop("kind", None)
        wire.update(body)
        return wire

    @model_serializer(mode="wrap")
    def _with_identity(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Every dump of a resource (also one embedded in another model) names its kind.
        data: dict[str, Any] = handler(self)
        config = type(self).__resource__
        if config is None:
            return data
        return {"apiVersion": config.api_version, "kind": config.kind, **data}

    # -- CRD -----------------------------------------------------------------------------------

    @classmethod
    def openapi_schema(cls) -> dict[str, Any]:
        """This version's ``openAPIV3Schema`` (a fresh copy), structural by construction."""
        return copy.deepcopy(_version_entry(cls)["schema"]["openAPIV3Schema"])

    @classmethod
    def crd(cls) -> dict[str, Any]:
        """The CustomResourceDefinition serving just this version (see :func:`crd_for`)."""
        return crd_for(cls)

    # -- conveniences --------------------------------------------------------------------------

    @property
    def name(self) -> str | None:
        return self.metadata.name

    @property
    def namespace(self) -> str | None:
        return self.metadata.namespace

    @property
    def uid(self) -> str | None:
        return self.metadata.uid

    @property
    def generation(self) -> int | None:
        return self.metadata.generation

    @property
    def resource_version(self) -> str | None:
        return self.metadata.resource_version

    @property
    def labels(self) -> dict[str, str]:
        """The labels, created empty on first access so that they can be edited in place."""
        if self.metadata.labels is None:
            self.metadata.labels = {}
        return self.metadata.labels

    @property
    def annotations(self) -> dict[str, str]:
        """The annotations, created empty on first access so that they can be edited in place."""
        if self.metadata.annotations is None:
            self.metadata.annotations = {}
        return self.metadata.annotations


def _tuple(value: Iterable[Any] | None, inherited: tuple[Any, ...]) -> tuple[Any, ...]:
    if value is None:
        return inherited
    if isinstance(value, str):
        raise TypeError(f"expected a list, got the string {value!r}")
    return tuple(value)


def _check_config(name: str, config: _Config, scope: str | None) -> None:
    problems: list[str] = []
    if "." not in config.group or is_dns1123_subdomain(config.group):
        problems.append(f"group {config.group!r} must be a DNS subdomain with at least one dot")
    if is_dns1035_label(config.version):
        problems.append(f"version {config.version!r} must be a DNS-1035 label (e.g. v1, v1beta1)")
    if not _KIND_PATTERN.match(config.kind):
        problems.append(f"kind {config.kind!r} must be alphanumeric and start with a letter")
    for label, value in (("plural", config.plural), ("singular", config.singular)):
        if is_dns1035_label(value):
            problems.append(f"{label} {value!r} must be a lower-case DNS-1035 label")
    for short in config.short_names:
        if not isinstance(short, str) or is_dns1035_label(short):
            problems.append(f"short name {short!r} must be a lower-case DNS-1035 label")
    for category in config.categories:
        if not isinstance(category, str) or is_dns1035_label(category):
            problems.append(f"category {category!r} must be a lower-case DNS-1035 label")
    if scope is not None and scope not in ("Namespaced", "Cluster"):
        problems.append(f'scope must be "Namespaced" or "Cluster", not {scope!r}')
    for column in config.printer_columns:
        if not isinstance(column, PrinterColumn):
            problems.append(f"printer column {column!r} must be a PrinterColumn")
        elif column.type not in _COLUMN_TYPES:
            problems.append(
                f"printer column {column.name!r} has type {column.type!r}, not one of {_COLUMN_TYPES}"
            )
        elif not column.json_path.startswith("."):
            problems.append(f"printer column {column.name!r} needs a JSON path starting with '.'")
    if config.scale is not None:
        scale = config.scale
        if not isinstance(scale, Scale):
            problems.append(f"scale must be a Scale or True, not {scale!r}")
        else:
            if not scale.spec_replicas_path.startswith(".spec."):
                problems.append(f"scale spec_replicas_path {scale.spec_replicas_path!r} must be under .spec")
            if not scale.status_replicas_path.startswith(".status."):
                problems.append(
                    f"scale status_replicas_path {scale.status_replicas_path!r} must be under .status"
                )
            selector = scale.label_selector_path
            if selector is not None and not selector.startswith((".spec.", ".status.")):
                problems.append(f"scale label_selector_path {selector!r} must be under .spec or .status")
    if problems:
        raise TypeError(f"{name}: " + "; ".join(problems))


def _concrete(cls: type[Resource]) -> _Config:
    config = cls.__resource__
    if config is None:
        raise TypeError(f"{cls.__name__} is not a concrete resource: declare it with group= and version=")
    return config


def _is_default(field_info: FieldInfo, value: Any) -> bool:
    if field_info.is_required():
        return False
    try:
        default = field_info.get_default(call_default_factory=True, validated_data={})
    except TypeError:  # a factory that needs validated data: treat the value as set
        return False
    return bool(value == default)


def _exclusions(model: BaseModel) -> dict[Any, Any] | None:
    """The ``exclude`` tree for ``model_dump``: unset fields still at their default."""
    excluded: dict[Any, Any] = {}
    fields_set = model.model_fields_set
    for name, field_info in type(model).model_fields.items():
        value = getattr(model, name)
        if name not in fields_set and _is_default(field_info, value):
            excluded[name] = True
            continue
        nested = _nested_exclusions(value)
        if nested:
            excluded[name] = nested
    return excluded or None


def _nested_exclusions(value: Any) -> dict[Any, Any] | None:
    if isinstance(value, BaseModel):
        return _exclusions(value)
    if isinstance(value, list | tuple):
        per_index = {i: ex for i, item in enumerate(value) if (ex := _nested_exclusions(item))}
        return per_index or None
    if isinstance(value, dict):
        per_key = {k: ex for k, item in value.items() if (ex := _nested_exclusions(item))}
        return per_key or None
    return None


# -- schema generation -------------------------------------------------------------------------

_SCALAR_TYPES: dict[type, dict[str, Any]] = {
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    datetime: {"type": "string", "format": "date-time"},
    date: {"type": "string", "format": "date"},
    bytes: {"type": "string", "format": "byte"},
    uuid.UUID: {"type": "string", "format": "uuid"},
}
_SEQUENCES = (list, tuple, set, frozenset, Sequence, MutableSequence, typing.AbstractSet)
_SETS = (set, frozenset, typing.AbstractSet)
_MAPPINGS = (dict, Mapping, typing.MutableMapping)


def _doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (typing.Union, types.UnionType)


class _Generator:
    """Walks Python types and pydantic fields to build one structural schema."""

    def __init__(self) -> None:
        self.stack: list[type] = []

    def resource(self, cls: type[Resource]) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
            "kind": {"type": "string", "description": _KIND_DOC},
            "metadata": {"type": "object"},
        }
        required: list[str] = []
        self.stack.append(cls)
        for name, field_info in cls.model_fields.items():
            if name == "metadata":
                continue
            key = field_info.serialization_alias or field_info.alias or name
            # The server, not the CRD, fills in status; Python defaults still apply on read.
            properties[key] = self.field(field_info, f"{cls.__name__}.{name}", with_default=key != "status")
            if field_info.is_required():
                required.append(key)
        self.stack.pop()
        schema: dict[str, Any] = {"type": "object"}
        description = _doc(cls)
        if description:
            schema["description"] = description
        schema["properties"] = properties
        if required:
            schema["required"] = required
        rules = cls.__dict__.get("__rules__") or ()
        if rules:
            schema["x-kubernetes-validations"] = [_rule(r, cls.__name__).to_schema() for r in rules]
        return schema

    def model(self, cls: type[BaseModel], where: str) -> dict[str, Any]:
        if cls in self.stack:
            raise TypeError(
                f"{where}: {cls.__name__} refers to itself; a recursive model cannot become a structural schema"
            )
        self.stack.append(cls)
        try:
            properties: dict[str, Any] = {}
            required: list[str] = []
            for name, field_info in cls.model_fields.items():
                key = field_info.serialization_alias or field_info.alias or name
                properties[key] = self.field(field_info, f"{cls.__name__}.{name}")
                if field_info.is_required():
                    required.append(key)
        finally:
            self.stack.pop()
        schema: dict[str, Any] = {"type": "object"}
        description = _doc(cls)
        if description:
            schema["description"] = description
        if properties:
            schema["properties"] = properties
        if required:
            schema["required"] = required
        if cls.model_config.get("extra") == "allow":
            schema["x-kubernetes-preserve-unknown-fields"] = True
        rules = cls.__dict__.get("__rules__") or ()
        if rules:
            schema["x-kubernetes-validations"] = [_rule(r, cls.__name__).to_schema() for r in rules]
        return schema

    def field(self, field_info: FieldInfo, where: str, *, with_default: bool = True) -> dict[str, Any]:
        annotation = field_info.annotation
        schema, optional = self.type(annotation, list(field_info.metadata), where)
        if field_info.description:
            schema["description"] = field_info.description
        if field_info.is_required():
            if optional:
                schema["nullable"] = True
            return schema
        try:
            default = field_info.get_default(call_default_factory=True, validated_data={})
        except TypeError as exc:
            raise TypeError(
                f"{where}: a default factory that needs other fields cannot become a CRD default"
            ) from exc
        if default is None:
            if optional:
                schema["nullable"] = True
            return schema
        if with_default:
            # Values equal to their own defaults are left out of nested defaults: the server
            # fills them from the nested schemas, which keeps CRDs (and kubectl explain) short.
            try:
                dumped = TypeAdapter(cast(Any, annotation)).dump_python(
                    default, mode="json", by_alias=True, exclude_defaults=True
                )
            except Exception as exc:
                raise TypeError(f"{where}: the default {default!r} cannot be written as JSON: {exc}") from exc
            if dumped is not None:
                schema["default"] = dumped
        return schema

    def type(self, tp: Any, metadata: list[Any], where: str) -> tuple[dict[str, Any], bool]:
        """``(schema, optional)`` for a Python type plus its ``Annotated`` metadata."""
        origin = get_origin(tp)
        if origin is Annotated:
            base, *extra = get_args(tp)
            return self.type(base, [*extra, *metadata], where)
        # Any admits null, so it is as optional as an explicit ``| None``.
        optional = tp is Any or tp is object
        if _is_union(tp):
            members = [a for a in get_args(tp) if a is not type(None)]
            optional = len(members) < len(get_args(tp))
            if len(members) == 1:
                schema, inner_optional = self.type(members[0], metadata, where)
                return schema, optional or inner_optional
            schema = self.union(members, where)
        else:
            schema = self.plain(tp, where)
        self.apply(schema, metadata, where)
        return schema, optional

    def union(self, members: list[Any], where: str) -> dict[str, Any]:
        bases = set()
        for member in members:
            inner = get_args(member)[0] if get_origin(member) is Annotated else member
            bases.add(inner)
        if bases == {int, str}:
            return {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
        if bases == {int, float}:
            return {"type": "number"}
        if all(get_origin(m) is Literal for m in members):
            return self.literal([v for m in members for v in get_args(m)], where)
        names = " | ".join(getattr(m, "__name__", repr(m)) for m in members)
        raise TypeError(
            f"{where}: the union {names} cannot become a structural schema; use one model with optional "
            "fields, int | str, or dict[str, Any]"
        )

    def literal(self, values: list[Any], where: str) -> dict[str, Any]:
        kinds = {type(v) for v in values}
        enum_values = [v.value if isinstance(v, enum.Enum) else v for v in values]
        kinds = {type(v) for v in enum_values}
        if kinds == {str}:
            return {"type": "string", "enum": enum_values}
        if kinds == {bool}:
            return {"type": "boolean", "enum": enum_values}
        if kinds == {int}:
            return {"type": "integer", "enum": enum_values}
        if kinds <= {int, float}:
            return {"type": "number", "enum": enum_values}
        raise TypeError(f"{where}: the values {values!r} mix types; an enum needs values of one JSON type")

    def plain(self, tp: Any, where: str) -> dict[str, Any]:
        if tp is Any or tp is object:
            return {"x-kubernetes-preserve-unknown-fields": True}
        origin = get_origin(tp)
        if origin is Literal:
            return self.literal(list(get_args(tp)), where)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self.literal(list(tp), where)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if issubclass(tp, Resource) and tp.__resource__ is not None:
                embedded = _Generator().resource(tp)
                embedded["x-kubernetes-embedded-resource"] = True
                return embedded
            return self.model(tp, where)
        if tp in _SCALAR_TYPES:
            return dict(_SCALAR_TYPES[tp])
        if isinstance(tp, type) and tp not in (bool,) and issubclass(tp, str | int | float):
            for base in (bool, int, float, str):
                if issubclass(tp, base):
                    return dict(_SCALAR_TYPES[base])
        container = origin if origin is not None else tp
        args = get_args(tp)
        if container in _MAPPINGS:
            key_type, value_type = (*args, Any, Any)[:2]
            if key_type is not str and get_origin(key_type) is not Literal and key_type is not Any:
                raise TypeError(f"{where}: object keys must be strings, not {key_type!r}")
            value_schema, value_optional = self.type(value_type, [], where)
            if value_schema == {"x-kubernetes-preserve-unknown-fields": True}:
                return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            if value_optional:
                value_schema["nullable"] = True
            return {"type": "object", "additionalProperties": value_schema}
        if container in _SEQUENCES:
            if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
                raise TypeError(
                    f"{where}: a fixed-length tuple cannot become a structural schema; use tuple[X, ...]"
                )
            item_type = args[0] if args else Any
            item_schema, item_optional = self.type(item_type, [], where)
            if item_optional:
                item_schema["nullable"] = True
            schema = {"type": "array", "items": item_schema}
            if container in _SETS:
                self.make_set(schema, where)
            return schema
        raise TypeError(f"{where}: the type {tp!r} has no Kubernetes schema equivalent")

    def make_set(self, schema: dict[str, Any], where: str) -> None:
        items = schema["items"]
        if items.get("type") in ("object", "array") or items.get("x-kubernetes-preserve-unknown-fields"):
            raise TypeError(f"{where}: a set (x-kubernetes-list-type: set) needs scalar items")
        schema["x-kubernetes-list-type"] = "set"

    def apply(self, schema: dict[str, Any], metadata: Iterable[Any], where: str) -> None:
        """Apply constraints and markers from ``Annotated`` metadata to ``schema``."""
        for item in metadata:
            if isinstance(item, FieldInfo):
                self.apply(schema, item.metadata, where)
                if item.description:
                    schema["description"] = item.description
            elif isinstance(item, ListMap):
                self.list_map(schema, item, where)
            elif isinstance(item, ListSet):
                if schema.get("type") != "array":
                    raise TypeError(f"{where}: ListSet() applies to lists only")
                self.make_set(schema, where)
            elif isinstance(item, Atomic):
                if schema.get("type") == "array":
                    schema["x-kubernetes-list-type"] = "atomic"
                elif schema.get("type") == "object":
                    schema["x-kubernetes-map-type"] = "atomic"
                else:
                    raise TypeError(f"{where}: Atomic() applies to lists and objects only")
            elif isinstance(item, EmbeddedResource):
                if schema.get("type") != "object":
                    raise TypeError(f"{where}: EmbeddedResource() applies to objects only")
                schema["x-kubernetes-embedded-resource"] = True
                schema.pop("additionalProperties", None)
                if not schema.get("properties"):
                    schema["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(item, Rule):
                schema.setdefault("x-kubernetes-validations", []).append(_rule(item, where).to_schema())
            elif isinstance(item, OpenAPI):
                schema.update(copy.deepcopy(dict(item.keywords)))
            else:
                self.constraints(schema, item)

    def constraints(self, schema: dict[str, Any], item: Any) -> None:
        kind = schema.get("type")
        number = kind in ("integer", "number") or schema.get("x-kubernetes-int-or-string")
        for attribute, keyword, exclusive in (("gt", "minimum", True), ("ge", "minimum", False)):
            bound = getattr(item, attribute, None)
            if bound is not None and number:
                schema[keyword] = bound
                if exclusive:
                    schema["exclusiveMinimum"] = True
        for attribute, keyword, exclusive in (("lt", "maximum", True), ("le", "maximum", False)):
            bound = getattr(item, attribute, None)
            if bound is not None and number:
                schema[keyword] = bound
                if exclusive:
                    schema["exclusiveMaximum"] = True
        multiple = getattr(item, "multiple_of", None)
        if multiple is not None and number:
            schema["multipleOf"] = multiple
        lengths = {"string": ("minLength", "maxLength"), "array": ("minItems", "maxItems")}
        names = lengths.get(str(kind), ("minProperties", "maxProperties") if kind == "object" else None)
        if names is None and schema.get("x-kubernetes-int-or-string"):
            names = ("minLength", "maxLength")
        if names is not None:
            for attribute, keyword in zip(("min_length", "max_length"), names, strict=True):
                value = getattr(item, attribute, None)
                if value is not None:
                    schema[keyword] = value
        pattern = getattr(item, "pattern", None)
        if pattern is not None:
            schema["pattern"] = pattern if isinstance(pattern, str) else pattern.pattern

    def list_map(self, schema: dict[str, Any], marker: ListMap, where: str) -> None:
        items = schema.get("items") if schema.get("type") == "array" else None
        if not isinstance(items, dict) or items.get("type") != "object":
            raise TypeError(f"{where}: ListMap() applies to lists of models")
        properties = items.get("properties", {})
        required = items.get("required", [])
        for key in marker.keys:
            sub = properties.get(key)
            if sub is None:
                raise TypeError(f"{where}: list-map key {key!r} is not a field of the items")
            if sub.get("type") in ("object", "array") or sub.get("nullable"):
                raise TypeError(f"{where}: list-map key {key!r} must be a non-nullable scalar")
            if key not in required and "default" not in sub:
                raise TypeError(f"{where}: list-map key {key!r} must be required or have a default")
        schema["x-kubernetes-list-type"] = "map"
        schema["x-kubernetes-list-map-keys"] = list(marker.keys)


def _rule(rule: Any, where: str) -> Rule:
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, str):
        return Rule(rule)
    raise TypeError(f"{where}: __rules__ entries must be Rule objects or strings, not {rule!r}")


# -- CRD assembly ------------------------------------------------------------------------------


def _find(schema: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The schema node a simple JSON path (``.spec.replicas``) names; ``{}`` under preserved
    subtrees; ``None`` if undeclared."""
    node: Mapping[str, Any] = schema
    for part in path.lstrip(".").split("."):
        properties = node.get("properties") or {}
        if part in properties:
            node = properties[part]
        elif isinstance(node.get("additionalProperties"), Mapping):
            node = node["additionalProperties"]
        elif node.get("x-kubernetes-preserve-unknown-fields"):
            return {}
        else:
            return None
    return node


@cache
def _version_entry(cls: type[Resource]) -> dict[str, Any]:
    config = _concrete(cls)
    schema = _Generator().resource(cls)
    problems = [str(e) for e in check_structural(schema, "openAPIV3Schema")]
    if problems:
        raise TypeError(f"{cls.__name__}: the generated schema is not structural: " + "; ".join(problems))
    try:
        CompiledSchema.compile(schema, path="openAPIV3Schema")
    except Invalid as exc:
        detail = "; ".join(f"{c.get('field')}: {c.get('message')}" for c in exc.causes)
        raise TypeError(f"{cls.__name__}: {detail}") from exc

    has_status = "status" in schema["properties"]
    status = config.status_subresource if config.status_subresource is not None else has_status
    if status and not has_status:
        raise TypeError(f"{cls.__name__}: status_subresource=True needs a status field")
    problems = []
    for column in config.printer_columns:
        # ObjectMeta is served for every object but the CRD schema may not describe it (only
        # name/generateName are allowed at the root), so metadata paths are always accepted.
        path = column.json_path.split("[")[0]
        if not path.startswith(".metadata.") and _find(schema, path) is None:
            problems.append(
                f"printer column {column.name!r} names {column.json_path}, which is not in the schema"
            )
    for path in config.selectable_fields:
        node = _find(schema, path)
        if node is None:
            problems.append(f"selectable field {path} is not in the schema")
        elif node and node.get("type") not in ("string", "integer", "boolean"):
            problems.append(f"selectable field {path} must be a string, integer or boolean")
    if len(config.selectable_fields) > 8:
        problems.append("at most 8 selectable fields are allowed")
    if config.scale is not None:
        scale_paths: tuple[tuple[str, str | None, str], ...] = (
            ("spec_replicas_path", config.scale.spec_replicas_path, "integer"),
            ("status_replicas_path", config.scale.status_replicas_path, "integer"),
            ("label_selector_path", config.scale.label_selector_path, "string"),
        )
        for label, scale_path, wanted in scale_paths:
            if scale_path is None:
                continue
            node = _find(schema, scale_path)
            if node is None:
                problems.append(f"scale {label} {scale_path} is not in the schema")
            elif node and node.get("type") != wanted:
                problems.append(f"scale {label} {scale_path} must be a {wanted} field")
    if problems:
        raise TypeError(f"{cls.__name__}: " + "; ".join(problems))

    entry: dict[str, Any] = {
        "name": config.version,
        "served": config.served,
        "storage": bool(config.storage),
    }
    if config.deprecated:
        entry["deprecated"] = True
        if config.deprecation_warning:
            entry["deprecationWarning"] = config.deprecation_warning
    entry["schema"] = {"openAPIV3Schema": schema}
    subresources: dict[str, Any] = {}
    if status:
        subresources["status"] = {}
    if config.scale is not None:
        subresources["scale"] = config.scale.to_crd()
    if subresources:
        entry["subresources"] = subresources
    if config.printer_columns:
        entry["additionalPrinterColumns"] = [c.to_crd() for c in config.printer_columns]
    if config.selectable_fields:
        entry["selectableFields"] = [{"jsonPath": p} for p in config.selectable_fields]
    return entry


@cache
def _resource_info(cls: type[Resource]) -> ResourceInfo:
    config = _concrete(cls)
    entry = _version_entry(cls)
    return ResourceInfo(
        group=config.group,
        version=config.version,
        kind=config.kind,
        plural=config.plural,
        singular=config.singular,
        namespaced=config.namespaced,
        short_names=config.short_names,
        categories=config.categories,
        subresources=tuple(entry.get("subresources", {})),
        list_kind=f"{config.kind}List",
        schema=copy.deepcopy(entry["schema"]["openAPIV3Schema"]),
    )


def crd_for(*versions: type[Resource]) -> dict[str, Any]:
    """One apiextensions.k8s.io/v1 CustomResourceDefinition serving ``versions`` of a kind.

    All classes must share group, kind, plural, singular, scope, short names and categories,
    and name distinct versions.  Exactly one version is stored: the one declared
    ``storage=True``, or the only version when there is one.  ``ValueError`` names the
    disagreeing or competing classes; ``TypeError`` a class that is not a concrete resource or
    whose schema cannot be generated.
    """
    if not versions:
        raise ValueError("crd_for() needs at least one resource class")
    configs = [(cls, _concrete(cls)) for cls in versions]
    first_cls, first = configs[0]
    for cls, config in configs[1:]:
        for attribute in ("group", "kind", "plural", "singular", "namespaced", "short_names", "categories"):
            if getattr(config, attribute) != getattr(first, attribute):
                raise ValueError(
                    f"{first_cls.__name__} and {cls.__name__} disagree on {attribute}: "
                    f"{getattr(first, attribute)!r} != {getattr(config, attribute)!r}"
                )
    seen: dict[str, type[Resource]] = {}
    for cls, config in configs:
        if config.version in seen:
            raise ValueError(
                f"{seen[config.version].__name__} and {cls.__name__} both declare version {config.version}"
            )
        seen[config.version] = cls
    claimed = [cls for cls, config in configs if config.storage]
    if len(claimed) > 1:
        competing = " and ".join(c.__name__ for c in claimed)
        raise ValueError(f"{competing} all claim storage=True; exactly one version must be stored")
    if not claimed:
        if len(configs) > 1:
            listed = ", ".join(c.__name__ for c, _ in configs)
            raise ValueError(f"none of {listed} claims storage=True; exactly one version must be stored")
        claimed = [first_cls]
    entries = []
    for cls, _ in configs:
        entry = copy.deepcopy(_version_entry(cls))
        entry["storage"] = cls is claimed[0]
        entries.append(entry)
    names: dict[str, Any] = {
        "kind": first.kind,
        "listKind": f"{first.kind}List",
        "plural": first.plural,
        "singular": first.singular,
    }
    if first.short_names:
        names["shortNames"] = list(first.short_names)
    if first.categories:
        names["categories"] = list(first.categories)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{first.plural}.{first.group}"},
        "spec": {
            "group": first.group,
            "names": names,
            "scope": "Namespaced" if first.namespaced else "Cluster",
            "versions": entries,
        },
    }
