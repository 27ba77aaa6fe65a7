"""Upstream's apimachinery validation: names, label keys and values, and ``ObjectMeta``.

Every message is upstream's text, character for character
(``k8s.io/apimachinery/pkg/util/validation`` and ``pkg/api/validation``), because kubectl users,
tests and tools match on them.  The ``is_*`` predicates return a list of messages, empty when the
value is valid; the ``validate_*`` functions return :class:`FieldError` lists whose field paths are
upstream's (``metadata.labels``, ``metadata.ownerReferences.uid``), ready for
:meth:`Invalid.for_fields`.

Lengths are counted in UTF-8 bytes, as Go's ``len`` does, so a non-ASCII value gets the same
verdict it would get from a real API server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kubevisor.api._errors import FieldError

__all__ = [
    "FINALIZER_DELETE_DEPENDENTS",
    "FINALIZER_ORPHAN_DEPENDENTS",
    "TOTAL_ANNOTATION_SIZE_LIMIT",
    "NameValidator",
    "finalizer_warnings",
    "is_dns1035_label",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_qualified_name",
    "is_valid_label_value",
    "is_valid_path_segment_name",
    "mask_generate_name",
    "validate_annotations",
    "validate_finalizers",
    "validate_label_selector",
    "validate_labels",
    "validate_object_meta",
    "validate_object_meta_update",
    "validate_owner_references",
]

NameValidator = Callable[[str], list[str]]
"""Checks a full object name and returns upstream's messages (empty when valid)."""

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
"""Upstream's ``TotalAnnotationSizeLimitB``: keys plus values, in bytes."""

FINALIZER_ORPHAN_DEPENDENTS = "orphan"
FINALIZER_DELETE_DEPENDENTS = "foregroundDeletion"

# Finalizers upstream accepts without a domain prefix (``IsStandardFinalizerName``).
_STANDARD_FINALIZERS = frozenset({"kubernetes", FINALIZER_ORPHAN_DEPENDENTS, FINALIZER_DELETE_DEPENDENTS})

_QNAME_CHAR = "[A-Za-z0-9]"
_QNAME_EXT_CHAR = "[-A-Za-z0-9_.]"
_QUALIFIED_NAME_FMT = f"({_QNAME_CHAR}{_QNAME_EXT_CHAR}*)?{_QNAME_CHAR}"
_QUALIFIED_NAME_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_QUALIFIED_NAME_MAX = 63
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MAX = 63
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_ERR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_MAX = 63
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MAX = 253
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_ERR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_DNS1035_LABEL_MAX = 63

# Go's regexp anchors ``^...$`` match the whole text; Python's ``$`` would also accept a trailing
# newline, so every check uses fullmatch.  ASCII-only classes make re.ASCII unnecessary.
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)


def _quote(value: str) -> str:
    """Go's ``%q`` for the strings that occur here."""
    return json.dumps(value, ensure_ascii=False)


def _byte_len(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    """Upstream's ``RegexError``, including its doubled space between examples."""
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    listed = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {listed}regex used for validation is '{fmt}')"


_EMPTY_ERROR = "must be non-empty"


def is_qualified_name(value: str) -> list[str]:
    """A label key, annotation key or finalizer: an optional DNS-1123 subdomain prefix and ``/``,
    then a name of at most 63 characters (``example.com/MyName``, ``my.name``)."""
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part " + _EMPTY_ERROR)
        else:
            errors.extend("prefix part " + msg for msg in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_NAME_ERR, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errors.append("name part " + _EMPTY_ERROR)
    elif _byte_len(name) > _QUALIFIED_NAME_MAX:
        errors.append("name part " + _max_len_error(_QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errors.append(
            "name part "
            + _regex_error(_QUALIFIED_NAME_ERR, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errors


def is_valid_label_value(value: str) -> list[str]:
    """Empty, or at most 63 alphanumerics, ``-``, ``_`` and ``.`` starting and ending alphanumeric."""
    errors: list[str] = []
    if _byte_len(value) > _LABEL_VALUE_MAX:
        errors.append(_max_len_error(_LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errors.append(_regex_error(_LABEL_VALUE_ERR, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


def is_dns1123_label(value: str) -> list[str]:
    """A lowercase RFC 1123 label (namespace names, most "DNS label" names): at most 63 characters."""
    errors: list[str] = []
    if _byte_len(value) > _DNS1123_LABEL_MAX:
        errors.append(_max_len_error(_DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            # A valid subdomain that is not a valid label can only be failing on its dots.
            errors.append("must not contain dots")
        else:
            errors.append(_regex_error(_DNS1123_LABEL_ERR, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errors


def is_dns1123_subdomain(value: str) -> list[str]:
    """A lowercase RFC 1123 subdomain (the default for object names): at most 253 characters."""
    errors: list[str] = []
    if _byte_len(value) > _DNS1123_SUBDOMAIN_MAX:
        errors.append(_max_len_error(_DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errors.append(_regex_error(_DNS1123_SUBDOMAIN_ERR, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


def is_dns1035_label(value: str) -> list[str]:
    """An RFC 1035 label (Service names): starts with a letter, at most 63 characters."""
    errors: list[str] = []
    if _byte_len(value) > _DNS1035_LABEL_MAX:
        errors.append(_max_len_error(_DNS1035_LABEL_MAX))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errors.append(_regex_error(_DNS1035_LABEL_ERR, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errors


def is_valid_path_segment_name(value: str) -> list[str]:
    """Upstream's ``IsValidPathSegmentName``: the minimum every name must meet to be usable in a URL
    path (RBAC objects are validated with only this)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in value]


def mask_generate_name(prefix: str) -> str:
    """Upstream's ``maskTrailingDash``: a ``generateName`` prefix is validated as a name after its
    trailing dash is replaced, since a random suffix will follow it.

    Upstream drops the last *two* characters and appends ``a``; that quirk is reproduced so the same
    prefixes are accepted and rejected.
    """
    if len(prefix) > 1 and prefix.endswith("-"):
        return prefix[:-2] + "a"
    return prefix


def _type_error(path: str, value: Any, expected: str) -> FieldError:
    return FieldError.type_invalid(path, value, f"must be of type {expected}")


def _string_map(value: Any, path: str, errors: list[FieldError]) -> dict[str, str]:
    """The string-to-string map at ``path``; a wrong type is reported and treated as empty."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errors.append(_type_error(path, value, "object"))
        return {}
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            errors.append(_type_error(f"{path}[{key}]", item, "string"))
            continue
        result[str(key)] = item
    return result


def validate_labels(labels: Mapping[str, str] | None, path: str = "metadata.labels") -> list[FieldError]:
    """Keys must be qualified names and values label values; every error is reported on ``path``
    itself, as upstream does."""
    errors: list[FieldError] = []
    for key, value in _string_map(labels, path, errors).items():
        errors.extend(FieldError.invalid(path, key, msg) for msg in is_qualified_name(key))
        errors.extend(FieldError.invalid(path, value, msg) for msg in is_valid_label_value(value))
    return errors


def validate_annotations(
    annotations: Mapping[str, str] | None, path: str = "metadata.annotations"
) -> list[FieldError]:
    """Keys must be qualified names (case-insensitively); keys plus values at most 256 KiB."""
    errors: list[FieldError] = []
    checked = _string_map(annotations, path, errors)
    for key in checked:
        errors.extend(FieldError.invalid(path, key, msg) for msg in is_qualified_name(key.lower()))
    total = sum(_byte_len(key) + _byte_len(value) for key, value in checked.items())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errors.append(FieldError.too_long(path, "", TOTAL_ANNOTATION_SIZE_LIMIT))
    return errors


def validate_finalizers(
    finalizers: Sequence[str] | None, path: str = "metadata.finalizers"
) -> list[FieldError]:
    """Each finalizer must be a qualified name, and ``orphan`` excludes ``foregroundDeletion``."""
    errors: list[FieldError] = []
    if finalizers is None:
        return errors
    if not isinstance(finalizers, list | tuple):
        return [_type_error(path, finalizers, "array")]
    for index, finalizer in enumerate(finalizers):
        if not isinstance(finalizer, str):
            errors.append(_type_error(f"{path}[{index}]", finalizer, "string"))
            continue
        errors.extend(FieldError.invalid(path, finalizer, msg) for msg in is_qualified_name(finalizer))
    if FINALIZER_ORPHAN_DEPENDENTS in finalizers and FINALIZER_DELETE_DEPENDENTS in finalizers:
        errors.append(
            FieldError.invalid(
                path,
                list(finalizers),
                f"finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set",
            )
        )
    return errors


def finalizer_warnings(finalizers: Iterable[str] | None, path: str = "metadata.finalizers") -> list[str]:
    """The ``Warning`` header texts upstream returns for finalizers without a domain: such names are
    accepted, but risk colliding with another controller's."""
    warnings: list[str] = []
    for finalizer in finalizers or ():
        if isinstance(finalizer, str) and "/" not in finalizer and finalizer not in _STANDARD_FINALIZERS:
            warnings.append(
                f"{path}: {_quote(finalizer)}: prefer a domain-qualified finalizer name "
                "including a path (/) to avoid accidental conflicts with other finalizer writers"
            )
    return warnings


def validate_owner_references(
    references: Sequence[Mapping[str, Any]] | None, path: str = "metadata.ownerReferences"
) -> list[FieldError]:
    """apiVersion (with a version), kind, name and uid are required on every reference, core/v1
    Events may not own anything, and at most one reference may have ``controller: true``.

    Upstream reports per-reference errors on ``path`` without an index; so does this.
    """
    errors: list[FieldError] = []
    if references is None:
        return errors
    if not isinstance(references, list | tuple):
        return [_type_error(path, references, "array")]
    first_controller = ""
    for index, ref in enumerate(references):
        if not isinstance(ref, Mapping):
            errors.append(_type_error(f"{path}[{index}]", ref, "object"))
            continue
        api_version = ref.get("apiVersion") or ""
        kind = ref.get("kind") or ""
        name = ref.get("name") or ""
        uid = ref.get("uid") or ""
        group, _, version = str(api_version).rpartition("/")
        if not version:
            errors.append(FieldError.invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not kind:
            errors.append(FieldError.invalid(f"{path}.kind", kind, "kind must not be empty"))
        if not name:
            errors.append(FieldError.invalid(f"{path}.name", name, "name must not be empty"))
        if not uid:
            errors.append(FieldError.invalid(f"{path}.uid", uid, "uid must not be empty"))
        if (group, version, kind) == ("", "v1", "Event"):
            errors.append(
                FieldError.invalid(path, dict(ref), "/v1, Kind=Event is disallowed from being an owner")
            )
        if ref.get("controller") is True:
            current = f"{kind}/{name}"
            if first_controller:
                errors.append(
                    FieldError.invalid(
                        path,
                        list(references),
                        'Only one reference can have Controller set to true. Found "true" in references for '
                        f"{first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return errors


def _validate_managed_fields(entries: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if entries is None:
        return errors
    if not isinstance(entries, list | tuple):
        return [_type_error(path, entries, "array")]
    for index, entry in enumerate(entries):
        at = f"{path}[{index}]"
        if not isinstance(entry, Mapping):
            errors.append(_type_error(at, entry, "object"))
            continue
        operation = entry.get("operation", "")
        if operation not in ("Apply", "Update"):
            errors.append(FieldError.invalid(f"{at}.operation", operation, "must be `Apply` or `Update`"))
        fields_type = entry.get("fieldsType", "")
        if fields_type and fields_type != "FieldsV1":
            errors.append(FieldError.invalid(f"{at}.fieldsType", fields_type, "must be `FieldsV1`"))
    return errors


def _string_field(meta: Mapping[str, Any], key: str, path: str, errors: list[FieldError]) -> str:
    value = meta.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(_type_error(f"{path}.{key}", value, "string"))
        return ""
    return value


def validate_object_meta(
    meta: Mapping[str, Any],
    *,
    namespaced: bool,
    name_validator: NameValidator = is_dns1123_subdomain,
    path: str = "metadata",
) -> list[FieldError]:
    """Upstream's ``ValidateObjectMetaAccessor`` for an object being created (after any
    ``generateName`` has been turned into a name).

    Checks, in upstream's order: ``generateName`` (masked by :func:`mask_generate_name`) and
    ``name`` (required, "name or generateName is required") with ``name_validator``; ``namespace``
    (required and a DNS-1123 label when ``namespaced``, forbidden otherwise); ``generation`` not
    negative; labels; annotations; ownerReferences; finalizers; managedFields operation and type.
    Values of the wrong JSON type are reported as type errors, never raised.
    """
    errors: list[FieldError] = []
    if not isinstance(meta, Mapping):
        return [_type_error(path, meta, "object")]
    generate_name = _string_field(meta, "generateName", path, errors)
    name = _string_field(meta, "name", path, errors)
    namespace = _string_field(meta, "namespace", path, errors)
    if generate_name:
        errors.extend(
            FieldError.invalid(f"{path}.generateName", generate_name, msg)
            for msg in name_validator(mask_generate_name(generate_name))
        )
    if not name:
        errors.append(FieldError.required(f"{path}.name", "name or generateName is required"))
    else:
        errors.extend(FieldError.invalid(f"{path}.name", name, msg) for msg in name_validator(name))
    if namespaced:
        if not namespace:
            errors.append(FieldError.required(f"{path}.namespace"))
        else:
            errors.extend(
                FieldError.invalid(f"{path}.namespace", namespace, msg) for msg in is_dns1123_label(namespace)
            )
    elif namespace:
        errors.append(FieldError.forbidden(f"{path}.namespace", "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and not isinstance(generation, bool) and generation < 0:
        errors.append(
            FieldError.invalid(f"{path}.generation", generation, "must be greater than or equal to 0")
        )
    errors.extend(validate_labels(meta.get("labels"), f"{path}.labels"))
    errors.extend(validate_annotations(meta.get("annotations"), f"{path}.annotations"))
    errors.extend(validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences"))
    errors.extend(validate_finalizers(meta.get("finalizers"), f"{path}.finalizers"))
    errors.extend(_validate_managed_fields(meta.get("managedFields"), f"{path}.managedFields"))
    return errors


_IMMUTABLE = "field is immutable"


def validate_object_meta_update(
    new: Mapping[str, Any], old: Mapping[str, Any], *, path: str = "metadata"
) -> list[FieldError]:
    """Upstream's ``ValidateObjectMetaAccessorUpdate``: what an update may not change.

    No new finalizers once ``deletionTimestamp`` is set; ``resourceVersion`` must be given;
    ``generation`` may not go down; name, namespace, uid, creationTimestamp, deletionTimestamp and
    deletionGracePeriodSeconds are immutable; labels, annotations, ownerReferences and managedFields
    are validated as on create.
    """
    errors: list[FieldError] = []
    if old.get("deletionTimestamp"):
        added = sorted(set(new.get("finalizers") or ()) - set(old.get("finalizers") or ()))
        if added:
            listed = ", ".join(_quote(f) for f in added)
            errors.append(
                FieldError.forbidden(
                    f"{path}.finalizers",
                    "no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers []string{{{listed}}}",
                )
            )
    if not new.get("resourceVersion"):
        errors.append(
            FieldError.invalid(
                f"{path}.resourceVersion", new.get("resourceVersion") or "", "must be specified for an update"
            )
        )
    new_generation, old_generation = new.get("generation") or 0, old.get("generation") or 0
    if (
        isinstance(new_generation, int)
        and isinstance(old_generation, int)
        and new_generation < old_generation
    ):
        errors.append(FieldError.invalid(f"{path}.generation", new_generation, "must not be decremented"))
    for key in (
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ):
        # Absent and empty are the same value in Go's zero-valued ObjectMeta.
        if (new.get(key) or None) != (old.get(key) or None):
            errors.append(FieldError.invalid(f"{path}.{key}", new.get(key), _IMMUTABLE))
    errors.extend(validate_labels(new.get("labels"), f"{path}.labels"))
    errors.extend(validate_annotations(new.get("annotations"), f"{path}.annotations"))
    errors.extend(validate_owner_references(new.get("ownerReferences"), f"{path}.ownerReferences"))
    errors.extend(_validate_managed_fields(new.get("managedFields"), f"{path}.managedFields"))
    return errors


def validate_label_selector(selector: Mapping[str, Any] | None, path: str) -> list[FieldError]:
    """Upstream's ``ValidateLabelSelector`` for a ``metav1.LabelSelector`` held in an object (a
    Deployment's ``spec.selector``, say): matchLabels as labels, and for each matchExpression a
    supported operator, values present exactly when the operator needs them, a qualified key and
    label-valued values."""
    errors: list[FieldError] = []
    if selector is None:
        return errors
    if not isinstance(selector, Mapping):
        return [_type_error(path, selector, "object")]
    errors.extend(validate_labels(selector.get("matchLabels"), f"{path}.matchLabels"))
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list | tuple):
        return [*errors, _type_error(f"{path}.matchExpressions", expressions, "array")]
    for index, expression in enumerate(expressions):
        at = f"{path}.matchExpressions[{index}]"
        if not isinstance(expression, Mapping):
            errors.append(_type_error(at, expression, "object"))
            continue
        operator = expression.get("operator", "")
        values = expression.get("values") or []
        if not isinstance(values, list | tuple):
            errors.append(_type_error(f"{at}.values", values, "array"))
            values = []
        if operator in ("In", "NotIn"):
            if not values:
                errors.append(
                    FieldError.required(
                        f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                    )
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errors.append(
                    FieldError.forbidden(
                        f"{at}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        else:
            errors.append(FieldError.invalid(f"{at}.operator", operator, "not a valid selector operator"))
        key = expression.get("key", "")
        if not isinstance(key, str):
            errors.append(_type_error(f"{at}.key", key, "string"))
        else:
            errors.extend(FieldError.invalid(f"{at}.key", key, msg) for msg in is_qualified_name(key))
        for value_index, value in enumerate(values):
            if not isinstance(value, str):
                errors.append(_type_error(f"{at}.values[{value_index}]", value, "string"))
                continue
            errors.extend(
                FieldError.invalid(f"{at}.values[{value_index}]", value, msg)
                for msg in is_valid_label_value(value)
            )
    return errors
