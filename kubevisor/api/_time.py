"""Timestamps as the API writes them: RFC 3339 in UTC, whole seconds (``Time``) or microseconds
(``MicroTime``, used by Leases and events.k8s.io Events)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "format_microtime", "format_time", "now", "parse_time"]

Clock = Callable[[], datetime]
"""An injectable source of the current time (tests pass a fake one)."""


def now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """``2024-01-02T03:04:05Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_microtime(moment: datetime) -> str:
    """``2024-01-02T03:04:05.123456Z`` (six fractional digits, as client-go writes MicroTime)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (with ``Z`` or an offset, with or without fractions).

    Raises ``ValueError`` naming the text when it is not one.
    """
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"invalid RFC 3339 timestamp {text!r}") from exc
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return value.astimezone(UTC)
