"""Validation and defaults of CustomResourceDefinitions themselves, as upstream's apiextensions
validation words them (``k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation``).

Pure functions over CRD objects (dicts), used by the CRD strategy in ``_crd.py``; the structural
schema rules and CEL compilation come from ``kubevisor.api``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubevisor.api import (
    CompiledSchema,
    FieldError,
    check_structural,
    is_dns1035_label,
    is_dns1123_subdomain,
)
from kubevisor.api._schema_nodes import BuildContext, build_node
from kubevisor.server._jsonpath import JSONPath, JSONPathError

__all__ = [
    "compile_schema",
    "condition",
    "default_crd",
    "dict_of",
    "has_default",
    "list_of",
    "schema_of",
    "set_condition",
    "storage_version",
    "str_of",
    "validate_crd",
    "versions_of",
]

_APPROVAL_ANNOTATION = "api-approved.kubernetes.io"
_HOISTED_SCHEMA = "spec.validation.openAPIV3Schema"
_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
_COLUMN_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")
_MAX_SELECTABLE_FIELDS = 8


# ------------------------------------------------------------------------------------------------
# small helpers


def dict_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def list_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def str_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


def versions_of(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [v for v in list_of(spec.get("versions")) if isinstance(v, dict)]


def storage_version(spec: Mapping[str, Any]) -> str:
    for version in versions_of(spec):
        if version.get("storage") is True:
            return str_of(version.get("name"))
    return ""


def schema_of(version: Mapping[str, Any]) -> dict[str, Any] | None:
    schema = dict_of(version.get("schema")).get("openAPIV3Schema")
    return schema if isinstance(schema, dict) else None


def condition(conditions: Sequence[Any], kind: str) -> dict[str, Any] | None:
    for item in conditions:
        if isinstance(item, dict) and item.get("type") == kind:
            return item
    return None


def set_condition(
    conditions: list[dict[str, Any]], kind: str, status: str, reason: str, message: str, at: str
) -> None:
    """Upstream's ``SetCRDCondition``: update the condition of that type in place (its transition
    time moves only when its status does) or append it."""
    current = condition(conditions, kind)
    if current is None:
        conditions.append(
            {"type": kind, "status": status, "lastTransitionTime": at, "reason": reason, "message": message}
        )
        return
    if current.get("status") != status:
        current["lastTransitionTime"] = at
    current.update(status=status, reason=reason, message=message)


def _joined(errors: Iterable[str]) -> str:
    return ",".join(errors)


def has_default(schema: Any) -> bool:
    if isinstance(schema, Mapping):
        return "default" in schema or any(has_default(v) for v in schema.values())
    if isinstance(schema, list):
        return any(has_default(v) for v in schema)
    return False


# ------------------------------------------------------------------------------------------------
# CRD defaults and validation


def default_crd(crd: dict[str, Any]) -> None:
    """Upstream's ``SetDefaults_CustomResourceDefinitionSpec`` (mutates ``crd``): singular from the
    kind, listKind ``<Kind>List``, conversion strategy ``None``."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict):
        kind = str_of(names.get("kind"))
        if not names.get("singular") and kind:
            names["singular"] = kind.lower()
        if not names.get("listKind") and kind:
            names["listKind"] = kind + "List"
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}


def _protected_group(group: str) -> bool:
    return any(group == d or group.endswith("." + d) for d in ("k8s.io", "kubernetes.io"))


def _names_errors(names: Mapping[str, Any], path: str) -> list[FieldError]:
    """Upstream's ``ValidateCustomResourceDefinitionNames``."""
    errors: list[FieldError] = []
    for key, mixed in (("plural", False), ("singular", False), ("kind", True), ("listKind", True)):
        value = str_of(names.get(key))
        problems = is_dns1035_label(value.lower() if mixed else value) if value else []
        if problems:
            detail = _joined(problems)
            if mixed:
                detail = "may have mixed case, but should otherwise match: " + detail
            errors.append(FieldError.invalid(f"{path}.{key}", value, detail))
    for i, short in enumerate(list_of(names.get("shortNames"))):
        problems = is_dns1035_label(short) if isinstance(short, str) else ["must be a string"]
        if problems:
            errors.append(FieldError.invalid(f"{path}.shortNames[{i}]", short, _joined(problems)))
    kind, list_kind = str_of(names.get("kind")), str_of(names.get("listKind"))
    if kind and kind == list_kind:
        errors.append(
            FieldError.invalid(f"{path}.listKind", list_kind, "kind and listKind may not be the same")
        )
    for i, category in enumerate(list_of(names.get("categories"))):
        problems = is_dns1035_label(category) if isinstance(category, str) else ["must be a string"]
        if problems:
            errors.append(FieldError.invalid(f"{path}.categories[{i}]", category, _joined(problems)))
    return errors


def _simple_json_path(value: str, path: str) -> list[FieldError]:
    """Upstream's ``validateSimpleJSONPath`` plus a parse in the printer's JSONPath subset."""
    if not value:
        return [FieldError.invalid(path, value, "must not be empty")]
    if not value.startswith("."):
        return [FieldError.invalid(path, value, "must be a simple json path starting with .")]
    try:
        JSONPath.parse(value)
    except JSONPathError as exc:
        return [FieldError.invalid(path, value, f"must be a valid JSONPath: {exc}")]
    return []


def _subresource_errors(subresources: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    scale = dict_of(subresources).get("scale")
    if not isinstance(scale, dict):
        return errors
    for key, prefixes, under in (
        ("specReplicasPath", (".spec.",), ".spec"),
        ("statusReplicasPath", (".status.",), ".status"),
        ("labelSelectorPath", (".spec.", ".status."), "either .spec or .status"),
    ):
        value = str_of(scale.get(key))
        sub = f"{path}.scale.{key}"
        if not value:
            if key != "labelSelectorPath":
                errors.append(FieldError.required(sub))
            continue
        problems = _simple_json_path(value, sub)
        if problems:
            errors.extend(problems)
        elif not value.startswith(prefixes):
            errors.append(FieldError.invalid(sub, value, f"should be a json path under {under}"))
    return errors


def _column_errors(column: Any, path: str) -> list[FieldError]:
    """Upstream's ``ValidateCustomResourceColumnDefinition``."""
    col = dict_of(column)
    errors: list[FieldError] = []
    if not col.get("name"):
        errors.append(FieldError.required(f"{path}.name"))
    kind = str_of(col.get("type"))
    if not kind:
        errors.append(FieldError.required(f"{path}.type", "must be one of " + ",".join(_COLUMN_TYPES)))
    elif kind not in _COLUMN_TYPES:
        errors.append(FieldError.invalid(f"{path}.type", kind, "must be one of " + ",".join(_COLUMN_TYPES)))
    fmt = str_of(col.get("format"))
    if fmt and fmt not in _COLUMN_FORMATS:
        errors.append(
            FieldError.invalid(f"{path}.format", fmt, "must be one of " + ",".join(_COLUMN_FORMATS))
        )
    json_path = str_of(col.get("jsonPath"))
    if not json_path:
        errors.append(FieldError.required(f"{path}.JSONPath"))
    else:
        errors.extend(_simple_json_path(json_path, f"{path}.JSONPath"))
    return errors


def _schema_at(schema: Mapping[str, Any] | None, dotted: str) -> Mapping[str, Any] | None:
    node: Any = schema
    for part in dotted.split("."):
        properties = dict_of(node).get("properties") if isinstance(node, Mapping) else None
        if not isinstance(properties, Mapping) or not isinstance(properties.get(part), Mapping):
            return None
        node = properties[part]
    return node if isinstance(node, Mapping) else None


def _selectable_errors(fields: Any, schema: Mapping[str, Any] | None, path: str) -> list[FieldError]:
    """Upstream's ``ValidateCustomResourceSelectableFields``."""
    errors: list[FieldError] = []
    if schema is None:
        return [
            FieldError.invalid(
                path,
                "",
                "selectableFields may only be set when version.schema.openAPIV3Schema is not included",
            )
        ]
    seen: set[str] = set()
    for i, item in enumerate(list_of(fields)):
        sub = f"{path}[{i}].jsonPath"
        json_path = str_of(dict_of(item).get("jsonPath"))
        if not json_path:
            errors.append(FieldError.required(sub))
            continue
        try:
            dotted = JSONPath.parse(json_path).dotted if json_path.startswith(".") else None
        except JSONPathError:
            dotted = None
        node = _schema_at(schema, dotted) if dotted else None
        if dotted is None or node is None:
            errors.append(
                FieldError.invalid(sub, json_path, "is an invalid path: does not refer to a valid field")
            )
            continue
        if dotted.split(".")[0] == "metadata":
            errors.append(FieldError.invalid(sub, json_path, "must not point to fields in metadata"))
        if node.get("type") not in ("string", "boolean", "integer"):
            errors.append(
                FieldError.invalid(
                    sub,
                    json_path,
                    "must point to a field of type string, boolean or integer. Enum string fields and strings "
                    "with formats are allowed.",
                )
            )
        if dotted in seen:
            errors.append(FieldError.duplicate(sub, json_path))
        seen.add(dotted)
    if len(seen) > _MAX_SELECTABLE_FIELDS:
        errors.append(
            FieldError(
                FieldError.TOO_MANY, path, len(seen), f"must have at most {_MAX_SELECTABLE_FIELDS} items"
            )
        )
    return errors


def compile_schema(schema: Mapping[str, Any], path: str) -> tuple[CompiledSchema | None, list[FieldError]]:
    """Check and compile one ``openAPIV3Schema`` (found at ``path``, for messages): the structural
    rules and every CEL rule.  Returns the compiled schema, or ``None`` with the problems."""
    errors = check_structural(schema, path)
    context = BuildContext(with_rules=True)
    root = build_node(schema, path, context, resource=True)
    errors.extend(context.errors)
    if errors:
        return None, errors
    return CompiledSchema(schema, root), []


def _identical(values: Sequence[Any]) -> bool:
    return bool(values) and all(v is not None and v == values[0] for v in values)


def validate_crd(crd: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[FieldError]:
    """Upstream's CustomResourceDefinition validation (create, or update when ``old`` is given),
    beyond ObjectMeta, with upstream's messages.  Per-version schemas, subresources and printer
    columns that are identical in every version are reported under ``spec.validation``,
    ``spec.subresources`` and ``spec.additionalPrinterColumns``, as upstream hoists them."""
    errors: list[FieldError] = []
    meta = dict_of(crd.get("metadata"))
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [FieldError.required("spec")]
    group = str_of(spec.get("group"))
    names = dict_of(spec.get("names"))
    plural = str_of(names.get("plural"))
    name = meta.get("name")
    if isinstance(name, str) and name and name != f"{plural}.{group}":
        errors.append(FieldError.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))

    if not group:
        errors.append(FieldError.required("spec.group"))
    elif problems := is_dns1123_subdomain(group):
        errors.append(FieldError.invalid("spec.group", group, _joined(problems)))
    elif len(group.split(".")) < 2:
        errors.append(FieldError.invalid("spec.group", group, "should be a domain with at least one dot"))

    scope = spec.get("scope")
    if not scope:
        errors.append(FieldError.required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        errors.append(FieldError.not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))

    versions = versions_of(spec)
    schemas = [schema_of(v) for v in versions]
    subresources = [v.get("subresources") for v in versions]
    columns = [v.get("additionalPrinterColumns") or None for v in versions]
    hoist_schema = _identical(schemas)
    hoist_subresources = _identical(subresources)
    hoist_columns = _identical(columns)
    storage_count = 0
    seen: set[str] = set()
    unique = True
    for i, version in enumerate(versions):
        vpath = f"spec.versions[{i}]"
        version_name = str_of(version.get("name"))
        if version.get("storage") is True:
            storage_count += 1
        if version_name in seen:
            unique = False
        seen.add(version_name)
        if problems := is_dns1035_label(version_name):
            errors.append(FieldError.invalid(f"{vpath}.name", version_name, _joined(problems)))
        if version.get("deprecationWarning") is not None and version.get("deprecated") is not True:
            errors.append(
                FieldError.invalid(
                    f"{vpath}.deprecationWarning",
                    version.get("deprecationWarning"),
                    "can only be set for deprecated versions",
                )
            )
        schema = schemas[i]
        if schema is None:
            errors.append(FieldError.required(f"{vpath}.schema.openAPIV3Schema", "schemas are required"))
        elif not hoist_schema:
            errors.extend(compile_schema(schema, f"{vpath}.schema.openAPIV3Schema")[1])
        if not hoist_subresources:
            errors.extend(_subresource_errors(subresources[i], f"{vpath}.subresources"))
        if not hoist_columns:
            for j, column in enumerate(list_of(version.get("additionalPrinterColumns"))):
                errors.extend(_column_errors(column, f"{vpath}.additionalPrinterColumns[{j}]"))
        if version.get("selectableFields"):
            errors.extend(
                _selectable_errors(version["selectableFields"], schema, f"{vpath}.selectableFields")
            )
    if hoist_schema and schemas[0] is not None:
        errors.extend(compile_schema(schemas[0], _HOISTED_SCHEMA)[1])
    if hoist_subresources:
        errors.extend(_subresource_errors(subresources[0], "spec.subresources"))
    if hoist_columns:
        for j, column in enumerate(list_of(columns[0])):
            errors.extend(_column_errors(column, f"spec.additionalPrinterColumns[{j}]"))
    if not unique:
        errors.append(FieldError.invalid("spec.versions", versions, "must contain unique version names"))
    if storage_count != 1:
        errors.append(
            FieldError.invalid(
                "spec.versions", versions, "must have exactly one version marked as storage version"
            )
        )

    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            errors.append(FieldError.required(f"spec.names.{key}"))
    errors.extend(_names_errors(names, "spec.names"))

    conversion = dict_of(spec.get("conversion"))
    strategy = conversion.get("strategy")
    if strategy not in ("None", "Webhook"):
        if not strategy:
            errors.append(FieldError.required("spec.conversion.strategy"))
        else:
            errors.append(FieldError.not_supported("spec.conversion.strategy", strategy, ["None", "Webhook"]))
    elif strategy == "None":
        for key in ("webhookClientConfig", "conversionReviewVersions"):
            if conversion.get(key):
                errors.append(
                    FieldError.forbidden(
                        f"spec.conversion.{key}", "should not be set when strategy is not set to Webhook"
                    )
                )
    if spec.get("preserveUnknownFields") is True and not (
        old is not None and dict_of(old.get("spec")).get("preserveUnknownFields") is True
    ):
        errors.append(
            FieldError.invalid(
                "spec.preserveUnknownFields",
                True,
                "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
            )
        )

    if old is not None:
        old_spec = dict_of(old.get("spec"))
        old_names = dict_of(old_spec.get("names"))
        established = condition(list_of(dict_of(old.get("status")).get("conditions")), "Established")
        if established is not None and established.get("status") == "True":
            if spec.get("scope") != old_spec.get("scope"):
                errors.append(FieldError.invalid("spec.scope", spec.get("scope"), "field is immutable"))
            if names.get("kind") != old_names.get("kind"):
                errors.append(FieldError.invalid("spec.names.kind", names.get("kind"), "field is immutable"))
        if group != old_spec.get("group"):
            errors.append(FieldError.invalid("spec.group", group, "field is immutable"))
        if plural != old_names.get("plural"):
            errors.append(FieldError.invalid("spec.names.plural", plural, "field is immutable"))

    status = dict_of(crd.get("status"))
    errors.extend(_names_errors(dict_of(status.get("acceptedNames")), "status.acceptedNames"))
    errors.extend(_stored_versions_errors(list_of(status.get("storedVersions")), versions))
    errors.extend(_approval_errors(crd, old))
    return errors


def _stored_versions_errors(stored: list[Any], versions: list[dict[str, Any]]) -> list[FieldError]:
    path = "status.storedVersions"
    if not stored:
        return [FieldError.invalid(path, stored, "must have at least one stored version")]
    errors: list[FieldError] = []
    remaining = {v: i for i, v in enumerate(stored)}
    for version in versions:
        name = version.get("name")
        if version.get("storage") is True and name not in remaining:
            errors.append(FieldError.invalid(path, stored, f"must have the storage version {name}"))
        remaining.pop(name, None)
    for name, i in remaining.items():
        errors.append(
            FieldError.invalid(
                f"{path}[{i}]",
                name,
                f"missing from spec.versions; {name} was previously a storage version, and must remain in "
                f"spec.versions until a storage migration ensures no data remains persisted in {name} and "
                f"removes {name} from status.storedVersions",
            )
        )
    return errors


def _approval_errors(crd: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[FieldError]:
    """Upstream's ``validateAPIApproval`` for the protected ``*.k8s.io`` / ``*.kubernetes.io`` groups."""
    group = str_of(dict_of(crd.get("spec")).get("group"))
    if not _protected_group(group):
        return []

    def state(obj: Mapping[str, Any]) -> tuple[str, Any]:
        value = dict_of(dict_of(obj.get("metadata")).get("annotations")).get(_APPROVAL_ANNOTATION)
        if value is None:
            return "missing", value
        if isinstance(value, str) and (
            value.startswith("unapproved") or value.startswith(("http://", "https://"))
        ):
            return "ok", value
        return "invalid", value

    new_state, value = state(crd)
    if old is not None and state(old)[0] == new_state:
        return []
    path = f"metadata.annotations[{_APPROVAL_ANNOTATION}]"
    if new_state == "missing":
        return [
            FieldError.required(
                path,
                f'protected groups must have approval annotation "{_APPROVAL_ANNOTATION}", see '
                "https://github.com/kubernetes/enhancements/pull/1111",
            )
        ]
    if new_state == "invalid":
        return [
            FieldError.invalid(
                path,
                value,
                f'protected groups must have approval annotation "{_APPROVAL_ANNOTATION}" with either a URL or a '
                'reason starting with "unapproved", see https://github.com/kubernetes/enhancements/pull/1111',
            )
        ]
    return []
