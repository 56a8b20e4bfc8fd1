"""One value of an uploaded document, checked before it becomes a column: numbers and times.

A number must be finite and fit its Kusto column (`long` is int64, `int` int32, `real` float64);
one whose unit cannot be negative (bytes, seconds, MB, GB, counts) must not be. A time is either
form the metrics format uses: Unix epoch seconds or milliseconds (integer or float), or ISO 8601
text with `Z`, `+05:30` or `+0530` (no offset: UTC). Anything else raises `BadValue`, whose text
is the reason the quarantine records; the caller drops that one value and keeps the document.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from etl.schema import INTEGER_RANGES
from etl.timeutil import to_utc_naive

#: Units whose quantities cannot be negative; a percentage difference or a score can.
NON_NEGATIVE_UNITS = frozenset({"bytes", "seconds", "MB", "GB", "count"})
#: Epoch numbers at or above this are milliseconds: as seconds it would be the year 5138, and as
#: milliseconds it is 1973-03-03, so no build time of either form is mistaken for the other.
EPOCH_MILLISECONDS_FROM = 100_000_000_000
#: 9999-12-31T23:59:59Z, the last second Kusto's datetime holds.
_EPOCH_MAX_SECONDS = 253_402_300_799


class BadValue(ValueError):
    """A value that cannot be stored in its column; str() is the reason."""


def shown(value: Any, limit: int = 80) -> str:
    """A value as the reason quotes it: repr, cut to *limit* characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def number(value: Any, kusto_type: str = "real", unit: str | None = None) -> int | float | None:
    """*value* as a number fit for a column of *kusto_type*; None for null or empty; BadValue otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadValue(f"expected a number, got {shown(value)}")
    try:
        as_float = float(value)
    except (ValueError, OverflowError):
        raise BadValue(f"expected a number, got {shown(value)}") from None
    if not math.isfinite(as_float):
        raise BadValue(f"{shown(value)} is not a finite number")
    if unit in NON_NEGATIVE_UNITS and as_float < 0:
        raise BadValue(f"{shown(value)} is negative; {unit} cannot be")
    if kusto_type in INTEGER_RANGES:
        low, high = INTEGER_RANGES[kusto_type]
        whole = value if isinstance(value, int) else None
        if whole is None:
            if not as_float.is_integer():
                raise BadValue(f"expected a whole number, got {shown(value)}")
            whole = int(as_float)
        if not low <= whole <= high:
            raise BadValue(f"{shown(value)} is outside the range of a Kusto {kusto_type}")
        return whole
    return as_float


def epoch_time(value: int | float) -> datetime:
    """A Unix epoch number (seconds, or milliseconds from EPOCH_MILLISECONDS_FROM up) as naive UTC."""
    if not math.isfinite(value):
        raise BadValue(f"{shown(value)} is not a finite number")
    seconds = value / 1000 if abs(value) >= EPOCH_MILLISECONDS_FROM else value
    if not 0 <= seconds <= _EPOCH_MAX_SECONDS:
        raise BadValue(f"epoch time {shown(value)} is outside 1970-01-01..9999-12-31")
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def time(value: Any) -> datetime | None:
    """*value* as naive UTC from either time form of the metrics format; None for null or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadValue(f"invalid datetime {shown(value)}")
    if isinstance(value, int | float):
        return epoch_time(value)
    if not isinstance(value, str):
        raise BadValue(f"invalid datetime {shown(value)}")
    try:
        return to_utc_naive(value)
    except (TypeError, ValueError, OverflowError):
        raise BadValue(f"invalid datetime {shown(value)}") from None


def text(value: Any) -> str | None:
    """*value* as text: strings as they are, numbers written out; an object or array is a BadValue."""
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise BadValue(f"expected text, got {'an object' if isinstance(value, dict) else 'an array'}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadValue(f"{shown(value)} is not text")
    return str(value)
