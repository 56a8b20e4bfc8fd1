"""Datetimes as both stores keep them: naive UTC, microsecond precision."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any


def utc_now() -> datetime:
    """The current time as naive UTC, the way both stores keep datetimes."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc_naive(value: Any) -> datetime | None:
    """A datetime (or ISO-8601 text) as naive UTC, the way both stores keep datetimes.

    Text is read by `datetime.fromisoformat`, which since Python 3.11 takes a trailing `Z` and the
    7 fractional digits Azure DevOps sends (truncated to microseconds).
    """
    if type(value) is datetime:  # the common case, first: every parsed payload time
        if value.tzinfo is None:
            return value
        offset = value.utcoffset()
        if offset is not None:
            # What astimezone(UTC) computes for an aware time, at about half its cost (pydantic's times
            # carry a fixed offset, mostly zero).
            naive = value.replace(tzinfo=None)
            return naive - offset if offset else naive
        return value.astimezone(UTC).replace(tzinfo=None)
    # value != value: NaN and pandas' NaT, without importing pandas into every caller
    if value is None or (isinstance(value, str) and not value.strip()) or value != value:
        return None
    if hasattr(value, "to_pydatetime"):  # a pandas Timestamp: truncated to microseconds, as the stores keep
        value = value.to_pydatetime(warn=False)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value
