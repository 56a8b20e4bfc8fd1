"""Datetimes as both stores keep them: naive UTC, microsecond precision."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pandas as pd


def to_utc_naive(value: Any) -> datetime | None:
    """A datetime (or ISO-8601 text) as naive UTC, the way both stores keep datetimes."""
    if value is None or value == "" or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return None
        value = value.to_pydatetime()
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        # Azure DevOps sends 7 fractional digits; Python takes at most 6.
        if "." in text:
            head, _, tail = text.partition(".")
            digits = ""
            rest = ""
            for i, ch in enumerate(tail):
                if ch.isdigit():
                    digits += ch
                else:
                    rest = tail[i:]
                    break
            text = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
        value = datetime.fromisoformat(text)
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value
