"""The Kubernetes ``Status`` error model, shared by the server (which raises and serialises these)
and the client (which rebuilds them from the server's Status bodies).

The classes form a small closed tree rooted at :class:`ApiError`; each carries the full Status
object so that nothing the server said is lost.  Messages follow upstream's wording
(``k8s.io/apimachinery/pkg/api/errors``) because users and tools match on them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "Conflict",
    "Expired",
    "FieldError",
    "Forbidden",
    "Invalid",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "RequestEntityTooLarge",
    "ServerError",
    "ServerTimeout",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "error_from_status",
    "qualified_resource",
]


def qualified_resource(resource: str, group: str = "") -> str:
    """``deployments.apps`` for a grouped resource, ``pods`` for the core group (upstream's
    ``GroupResource.String()``)."""
    return f"{resource}.{group}" if group else resource


class ApiError(Exception):
    """An error the API server reported (or would report) as a ``Status`` object.

    ``status`` is the complete Status dict as it travels on the wire; ``code``, ``reason`` and
    ``message`` are shortcuts into it.
    """

    default_code: ClassVar[int] = 500
    default_reason: ClassVar[str] = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
        status: Mapping[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        if status is None:
            body: dict[str, Any] = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": reason if reason is not None else self.default_reason,
                "code": code if code is not None else self.default_code,
            }
            if details:
                body["details"] = dict(details)
            if retry_after is not None:
                body.setdefault("details", {})["retryAfterSeconds"] = retry_after
            status = body
        self.status: dict[str, Any] = dict(status)

    @property
    def code(self) -> int:
        return int(self.status.get("code") or self.default_code)

    @property
    def reason(self) -> str:
        return str(self.status.get("reason") or "")

    @property
    def message(self) -> str:
        return str(self.status.get("message") or "")

    @property
    def details(self) -> dict[str, Any]:
        return dict(self.status.get("details") or {})

    @property
    def causes(self) -> list[dict[str, Any]]:
        return list(self.details.get("causes") or [])

    @property
    def retry_after(self) -> int | None:
        value = self.details.get("retryAfterSeconds")
        return int(value) if value is not None else None

    def to_status(self) -> dict[str, Any]:
        """The Status body to send on the wire (a copy)."""
        copied: dict[str, Any] = json.loads(json.dumps(self.status))
        return copied

    def __str__(self) -> str:
        return f"({self.code} {self.reason}) {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


def _details(resource: str, group: str, name: str | None, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": resource}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details.update({k: v for k, v in extra.items() if v is not None})
    return details


class BadRequest(ApiError):
    default_code = 400
    default_reason = "BadRequest"


class Unauthorized(ApiError):
    default_code = 401
    default_reason = "Unauthorized"


class Forbidden(ApiError):
    default_code = 403
    default_reason = "Forbidden"

    @classmethod
    def for_resource(cls, resource: str, group: str, name: str | None, reason: str) -> Forbidden:
        what = qualified_resource(resource, group)
        subject = f'{what} "{name}"' if name else what
        return cls(f"{subject} is forbidden: {reason}", details=_details(resource, group, name))


class NotFound(ApiError):
    default_code = 404
    default_reason = "NotFound"

    @classmethod
    def for_resource(cls, resource: str, group: str, name: str) -> NotFound:
        return cls(
            f'{qualified_resource(resource, group)} "{name}" not found',
            details=_details(resource, group, name),
        )


class MethodNotAllowed(ApiError):
    default_code = 405
    default_reason = "MethodNotAllowed"


class NotAcceptable(ApiError):
    default_code = 406
    default_reason = "NotAcceptable"


class AlreadyExists(ApiError):
    """409 AlreadyExists: a create named an object that exists.  Deliberately not a subclass of
    :class:`Conflict`, so that retry-on-conflict loops do not swallow it."""

    default_code = 409
    default_reason = "AlreadyExists"

    @classmethod
    def for_resource(cls, resource: str, group: str, name: str) -> AlreadyExists:
        return cls(
            f'{qualified_resource(resource, group)} "{name}" already exists',
            details=_details(resource, group, name),
        )


class Conflict(ApiError):
    """409 Conflict: a stale resourceVersion, a failed precondition, or an apply conflict."""

    default_code = 409
    default_reason = "Conflict"

    @classmethod
    def for_resource(cls, resource: str, group: str, name: str, detail: str) -> Conflict:
        return cls(
            f'Operation cannot be fulfilled on {qualified_resource(resource, group)} "{name}": {detail}',
            details=_details(resource, group, name),
        )

    @classmethod
    def stale(cls, resource: str, group: str, name: str) -> Conflict:
        return cls.for_resource(
            resource,
            group,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )


class Expired(ApiError):
    """410 Gone, reason Expired: the requested resourceVersion is no longer available."""

    default_code = 410
    default_reason = "Expired"


class RequestEntityTooLarge(ApiError):
    default_code = 413
    default_reason = "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    default_code = 415
    default_reason = "UnsupportedMediaType"


@dataclass(frozen=True)
class FieldError:
    """One violated field, as upstream's ``field.Error``.

    ``type`` is one of the upstream error types below; ``value`` is the offending value (omitted
    from the message for ``Required`` and ``Forbidden``); ``detail`` the human explanation.
    """

    REQUIRED: ClassVar[str] = "FieldValueRequired"
    INVALID: ClassVar[str] = "FieldValueInvalid"
    DUPLICATE: ClassVar[str] = "FieldValueDuplicate"
    NOT_SUPPORTED: ClassVar[str] = "FieldValueNotSupported"
    FORBIDDEN: ClassVar[str] = "FieldValueForbidden"
    TOO_LONG: ClassVar[str] = "FieldValueTooLong"
    TOO_MANY: ClassVar[str] = "FieldValueTooMany"
    TYPE_INVALID: ClassVar[str] = "FieldValueTypeInvalid"
    NOT_FOUND: ClassVar[str] = "FieldValueNotFound"

    _LABELS: ClassVar[dict[str, str]] = {
        "FieldValueRequired": "Required value",
        "FieldValueInvalid": "Invalid value",
        "FieldValueDuplicate": "Duplicate value",
        "FieldValueNotSupported": "Unsupported value",
        "FieldValueForbidden": "Forbidden",
        "FieldValueTooLong": "Too long",
        "FieldValueTooMany": "Too many",
        "FieldValueTypeInvalid": "Invalid value",
        "FieldValueNotFound": "Not found",
    }
    _UNSET: ClassVar[object] = object()

    type: str
    field: str
    value: Any = _UNSET
    detail: str = ""

    @classmethod
    def invalid(cls, field: str, value: Any, detail: str) -> FieldError:
        return cls(cls.INVALID, field, value, detail)

    @classmethod
    def required(cls, field: str, detail: str = "") -> FieldError:
        return cls(cls.REQUIRED, field, cls._UNSET, detail)

    @classmethod
    def forbidden(cls, field: str, detail: str) -> FieldError:
        return cls(cls.FORBIDDEN, field, cls._UNSET, detail)

    @classmethod
    def duplicate(cls, field: str, value: Any) -> FieldError:
        return cls(cls.DUPLICATE, field, value)

    @classmethod
    def not_supported(cls, field: str, value: Any, supported: Iterable[Any]) -> FieldError:
        quoted = ", ".join(_format_value(v) for v in supported)
        return cls(cls.NOT_SUPPORTED, field, value, f"supported values: {quoted}")

    @classmethod
    def too_long(cls, field: str, value: Any, max_length: int) -> FieldError:
        return cls(cls.TOO_LONG, field, cls._UNSET, f"may not be more than {max_length} bytes")

    @classmethod
    def type_invalid(cls, field: str, value: Any, detail: str) -> FieldError:
        return cls(cls.TYPE_INVALID, field, value, detail)

    def body(self) -> str:
        """The message without the field path (upstream's ``ErrorBody``), used as a cause message."""
        label = self._LABELS.get(self.type, "Invalid value")
        text = label
        if self.value is not self._UNSET and self.type not in (self.REQUIRED, self.FORBIDDEN):
            text += f": {_format_value(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> dict[str, Any]:
        return {"reason": self.type, "message": self.body(), "field": self.field}


def _format_value(value: Any) -> str:
    """Format a value as upstream's field errors do (Go's ``%#v`` for composites): strings quoted,
    numbers and booleans bare, ``[]string{"a", "b"}`` for string lists and
    ``map[string]interface {}{"name":"http"}`` for objects (keys sorted, as Go prints maps)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{json.dumps(str(k))}:{_format_value(value[k])}" for k in sorted(value, key=str))
        return "map[string]interface {}{" + items + "}"
    if isinstance(value, Sequence):
        element = "string" if value and all(isinstance(v, str) for v in value) else "interface {}"
        return f"[]{element}{{" + ", ".join(_format_value(v) for v in value) + "}"
    return json.dumps(str(value))


class Invalid(ApiError):
    """422 Invalid, with one cause per violated field."""

    default_code = 422
    default_reason = "Invalid"

    @classmethod
    def for_fields(cls, kind: str, group: str, name: str | None, errors: Sequence[FieldError]) -> Invalid:
        """Upstream's ``NewInvalid``: ``<Kind>.<group> "<name>" is invalid: <errors>`` where several
        errors are bracketed and comma-separated."""
        what = qualified_resource(kind, group)
        listed = [str(e) for e in errors]
        joined = listed[0] if len(listed) == 1 else "[" + ", ".join(listed) + "]"
        return cls(
            f'{what} "{name or ""}" is invalid: {joined}',
            details=_details(kind, group, name, causes=[e.cause() for e in errors]),
        )

    @property
    def field_errors(self) -> list[dict[str, Any]]:
        return self.causes


class TooManyRequests(ApiError):
    default_code = 429
    default_reason = "TooManyRequests"


class ServerError(ApiError):
    default_code = 500
    default_reason = "InternalError"


class ServiceUnavailable(ApiError):
    default_code = 503
    default_reason = "ServiceUnavailable"


class ServerTimeout(ApiError):
    default_code = 504
    default_reason = "Timeout"


_BY_REASON: dict[str, type[ApiError]] = {
    "BadRequest": BadRequest,
    "Unauthorized": Unauthorized,
    "Forbidden": Forbidden,
    "NotFound": NotFound,
    "MethodNotAllowed": MethodNotAllowed,
    "NotAcceptable": NotAcceptable,
    "AlreadyExists": AlreadyExists,
    "Conflict": Conflict,
    "Gone": Expired,
    "Expired": Expired,
    "RequestEntityTooLarge": RequestEntityTooLarge,
    "UnsupportedMediaType": UnsupportedMediaType,
    "Invalid": Invalid,
    "TooManyRequests": TooManyRequests,
    "InternalError": ServerError,
    "ServiceUnavailable": ServiceUnavailable,
    "Timeout": ServerTimeout,
}
_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
    409: Conflict,
    410: Expired,
    413: RequestEntityTooLarge,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
    503: ServiceUnavailable,
    504: ServerTimeout,
}


def error_from_status(status: Mapping[str, Any], http_code: int | None = None) -> ApiError:
    """Rebuild the typed error for a Status body (by reason first, then by code).

    A body that is not a Status (a proxy's HTML page, say) still yields an error of the right class
    for ``http_code``, with the body's text as the message.
    """
    if not isinstance(status, Mapping) or status.get("kind") != "Status":
        code = http_code or 500
        cls = _BY_CODE.get(code, ServerError)
        return cls(str(status)[:1000], code=code, reason=cls.default_reason)
    code = int(status.get("code") or http_code or 500)
    cls = _BY_REASON.get(str(status.get("reason") or "")) or _BY_CODE.get(code) or ServerError
    body = dict(status)
    body.setdefault("code", code)
    return cls(str(body.get("message") or ""), status=body)
