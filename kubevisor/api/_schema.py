"""Structural schemas of custom resources: check, compile, validate, default and prune.

The embedded API server runs every custom-resource write through one :class:`CompiledSchema`
(prune, default, validate) and every read through :meth:`CompiledSchema.default`, so the work
here is done once at compile time and each call is a single walk over the object.  Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubevisor.api._errors import FieldError, Invalid
from kubevisor.api._schema_nodes import MISSING, BuildContext, Node, build_node
from kubevisor.api._schema_structural import DEFAULT_SCHEMA_PATH, check_structural

__all__ = ["CompiledSchema", "check_structural"]

_CRD_KIND = "CustomResourceDefinition"
_CRD_GROUP = "apiextensions.k8s.io"


class CompiledSchema:
    """A structural ``openAPIV3Schema`` compiled for repeated use.

    Build with :meth:`compile`; instances are immutable and safe to share between requests.
    ``validate`` never changes its input; ``default`` and ``prune`` change it in place (the
    server owns the freshly decoded object) and return it for chaining.  Paths in errors are
    relative to the object root (``spec.replicas``), as in upstream's 422 causes.
    """

    __slots__ = ("_root", "schema")

    def __init__(self, schema: Mapping[str, Any], root: Node) -> None:
        self.schema = schema
        self._root = root

    @classmethod
    def compile(
        cls, schema: Mapping[str, Any], *, path: str = DEFAULT_SCHEMA_PATH, name: str | None = None
    ) -> CompiledSchema:
        """Check and compile ``schema``, the ``openAPIV3Schema`` of a resource root.

        Raises :class:`Invalid` (kind ``CustomResourceDefinition``, named ``name`` when given)
        with one cause per problem: every :func:`check_structural` finding and every
        ``x-kubernetes-validations`` rule or ``messageExpression`` that does not compile, each
        on its path under ``path``.
        """
        errors = check_structural(schema, path)
        context = BuildContext(with_rules=True)
        root = build_node(schema, path, context, resource=True) if isinstance(schema, Mapping) else None
        errors.extend(context.errors)
        if errors or root is None:
            raise Invalid.for_fields(_CRD_KIND, _CRD_GROUP, name, errors)
        return cls(schema, root)

    @property
    def has_rules(self) -> bool:
        """Whether any node carries CEL rules (callers may skip work for old objects if not)."""
        return self._root.rules_below

    @property
    def has_transition_rules(self) -> bool:
        """Whether any rule reads ``oldSelf`` (only then does ``validate`` look at ``old``)."""
        return self._root.needs_old

    def validate(self, obj: Any, old: Any = None) -> list[FieldError]:
        """Every violation in ``obj`` (one error per violated keyword or rule and field).

        ``old`` is the stored object on update; transition rules (those reading ``oldSelf``)
        run only when it is given and the corresponding old value exists.  The root's
        ``apiVersion``, ``kind`` and ``metadata`` are validated only as far as the schema
        constrains them; ObjectMeta validation is the server's job.
        """
        errors: list[FieldError] = []
        self._root.validate(obj, "", MISSING if old is None else old, errors)
        return errors

    def default(self, obj: Any) -> Any:
        """Apply the schema's defaults to ``obj`` in place and return it: absent fields (and
        ``null`` in non-nullable fields) that declare a default get a copy of it, recursively,
        inside existing objects and inside defaults just applied."""
        if self._root.defaults_below or self._root.default is not MISSING:
            self._root.apply_defaults(obj)
        return obj

    def prune(self, obj: Any) -> Any:
        """Drop fields the schema does not specify from ``obj`` in place and return it.

        ``x-kubernetes-preserve-unknown-fields`` keeps a subtree (pruning resumes under the
        properties declared inside it); an embedded resource keeps ``apiVersion`` and ``kind``
        and its ``metadata`` is cut to ObjectMeta's fields; the root's ``apiVersion``, ``kind``
        and ``metadata`` are never touched.  ``null`` in a non-nullable field without a default
        is dropped too, as upstream does before defaulting.
        """
        self._root.prune(obj)
        return obj
