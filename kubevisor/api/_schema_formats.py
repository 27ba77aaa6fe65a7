"""String formats and number rendering as the API server's OpenAPI validator knows them.

Only strings are format-checked (``int32``, ``int64``, ``float`` and ``double`` describe numbers
and, as upstream, are not range-checked).  A format the validator does not know is ignored,
again as upstream does, so that schemas written for newer servers keep working.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections.abc import Callable
from datetime import date
from urllib.parse import urlparse

__all__ = ["FORMATS", "go_float", "translate_pattern"]


def go_float(value: float | int) -> str:
    """Render a number as Go's ``%v`` does for a float64 (upstream messages print schema bounds
    this way): shortest round-trip digits, exponent form below 1e-4 and from 1e6 on
    (``1e+06``), exactly as ``strconv.FormatFloat(v, 'g', -1, 64)``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number == 0:
        return "0"
    text = repr(number)
    mantissa, _, exp_text = text.partition("e")
    if exp_text:
        digits = mantissa.replace("-", "").replace(".", "")
        exponent = int(exp_text)
    else:
        whole, _, frac = mantissa.lstrip("-").partition(".")
        frac = frac.rstrip("0")
        if whole != "0":
            exponent = len(whole) - 1
            digits = (whole + frac).rstrip("0") or "0"
        else:
            stripped = frac.lstrip("0")
            exponent = -(len(frac) - len(stripped)) - 1
            digits = stripped
    digits = digits.lstrip("0") or "0"
    sign = "-" if number < 0 else ""
    # strconv's shortest %g switches to %e when the decimal exponent is < -4 or >= 6.
    if exponent < -4 or exponent >= 6:
        head, tail = digits[0], digits[1:]
        body = f"{head}.{tail}" if tail else head
        return f"{sign}{body}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    if exponent >= 0:
        if len(digits) <= exponent + 1:
            return sign + digits + "0" * (exponent + 1 - len(digits))
        return f"{sign}{digits[: exponent + 1]}.{digits[exponent + 1 :]}"
    return f"{sign}0.{'0' * (-exponent - 1)}{digits}"


def translate_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an ECMA/RE2 ``pattern`` for Python's ``re`` (matched unanchored, as upstream).

    RE2 rejects look-around and back-references, so do we (``ValueError`` naming the
    construct); ``\\z`` is RE2's end-of-text and becomes ``\\Z``.
    """
    for construct in ("(?=", "(?!", "(?<=", "(?<!"):
        if construct in pattern:
            raise ValueError(f"invalid or unsupported Perl syntax: `{construct}`")
    if re.search(r"(?<!\\)\\[1-9]", pattern):
        raise ValueError("invalid escape sequence: back-references are not supported")
    translated = re.sub(r"(?<!\\)\\z", r"\\Z", pattern)
    try:
        return re.compile(translated)
    except re.error as exc:
        raise ValueError(str(exc)) from exc


_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$"
)
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.IGNORECASE)
_UUID_VERSIONED = {
    version: re.compile(
        rf"^[0-9a-f]{{8}}-[0-9a-f]{{4}}-{version}[0-9a-f]{{3}}-[89ab][0-9a-f]{{3}}-[0-9a-f]{{12}}$",
        re.IGNORECASE,
    )
    for version in "345"
}
_HOSTNAME_LABEL = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_MAC = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$|^([0-9a-fA-F]{4}\.){2}[0-9a-fA-F]{4}$")
_HEXCOLOR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_RGBCOLOR = re.compile(
    r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,"
    r"\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$"
)
_SSN = re.compile(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$")
_BSON_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
# Go's time.ParseDuration units plus the day/week units go-openapi's strfmt also accepts.
_DURATION = re.compile(
    r"^[-+]?((\d+(\.\d*)?|\.\d+)\s*(ns|us|µs|μs|ms|s|m|h|d|w|"
    r"seconds?|minutes?|hours?|days?|weeks?|sec|min|hr)\s*)+$"
)
_ISBN10 = re.compile(r"^(?:[0-9]{9}X|[0-9]{10})$")
_ISBN13 = re.compile(r"^(?:[0-9]{13})$")


def _is_date(text: str) -> bool:
    match = _DATE.match(text)
    if not match:
        return False
    try:
        date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return False
    return True


def _is_date_time(text: str) -> bool:
    match = _DATE_TIME.match(text)
    if not match:
        return False
    try:
        date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return False
    return int(match[4]) < 24 and int(match[5]) < 60 and int(match[6]) < 61


def _is_byte(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _is_hostname(text: str) -> bool:
    labels = text.rstrip(".").split(".")
    return 0 < len(text) <= 255 and all(_HOSTNAME_LABEL.match(label) for label in labels)


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return "/" in text


def _is_uri(text: str) -> bool:
    parsed = urlparse(text)
    return bool(parsed.scheme) or text.startswith("/")


def _is_isbn(text: str) -> bool:
    compact = text.replace("-", "").replace(" ", "")
    return bool(_ISBN10.match(compact) or _ISBN13.match(compact))


def _is_credit_card(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    if len(digits) < 12 or any(not (c.isdigit() or c in " -") for c in text):
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return total % 10 == 0


FORMATS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": lambda s: bool(_BSON_OBJECT_ID.match(s)),
    "byte": _is_byte,
    "cidr": _is_cidr,
    "creditcard": _is_credit_card,
    "date": _is_date,
    "date-time": _is_date_time,
    "datetime": _is_date_time,
    "duration": lambda s: bool(_DURATION.match(s)),
    "email": lambda s: bool(_EMAIL.match(s)),
    "hexcolor": lambda s: bool(_HEXCOLOR.match(s)),
    "hostname": _is_hostname,
    "ipv4": _is_ipv4,
    "ipv6": _is_ipv6,
    "isbn": _is_isbn,
    "isbn10": lambda s: bool(_ISBN10.match(s.replace("-", "").replace(" ", ""))),
    "isbn13": lambda s: bool(_ISBN13.match(s.replace("-", "").replace(" ", ""))),
    "mac": lambda s: bool(_MAC.match(s)),
    "password": lambda s: True,
    "rgbcolor": lambda s: bool(_RGBCOLOR.match(s)),
    "ssn": lambda s: bool(_SSN.match(s)),
    "uri": _is_uri,
    "uuid": lambda s: bool(_UUID.match(s)),
    "uuid3": lambda s: bool(_UUID_VERSIONED["3"].match(s)),
    "uuid4": lambda s: bool(_UUID_VERSIONED["4"].match(s)),
    "uuid5": lambda s: bool(_UUID_VERSIONED["5"].match(s)),
}
"""Format name → predicate over the string value (upstream's strfmt registry)."""
