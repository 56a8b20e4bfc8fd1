"""Values of uploaded documents: both time forms of the metrics format, numbers within their Kusto column."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from etl.normalize.values import BadValue, number, time

HALF_PAST = datetime(2022, 1, 18, 10, 30)


@pytest.mark.parametrize("value", [1642501800, 1642501800.0, 1642501800000, 1642501800000.0,
                                   "2022-01-18T10:30:00Z", "2022-01-18T16:00:00+05:30", "2022-01-18T16:00:00+0530",
                                   "2022-01-18T05:30:00-0500", "2022-01-18T10:30:00.0000000Z", "2022-01-18T10:30:00"],
                         ids=str)
def test_every_time_form_of_the_format_reads_as_the_same_utc_instant(value: Any) -> None:
    assert time(value) == HALF_PAST


def test_fractional_epoch_seconds_and_milliseconds_keep_their_fraction() -> None:
    assert (time(1642501800.25), time(1642501800250)) == (datetime(2022, 1, 18, 10, 30, 0, 250000),) * 2


@pytest.mark.parametrize(("value", "reason"), [
    (-1, "epoch time -1 is outside 1970-01-01..9999-12-31"),
    (1e300, "epoch time 1e+300 is outside 1970-01-01..9999-12-31"),
    (float("nan"), "nan is not a finite number"),
    (True, "invalid datetime True"),
    ("2022-13-01T00:00:00Z", "invalid datetime '2022-13-01T00:00:00Z'"),
    ({"t": 1}, "invalid datetime {'t': 1}"),
])
def test_a_time_that_is_no_instant_is_refused_with_a_reason(value: Any, reason: str) -> None:
    with pytest.raises(BadValue) as info:
        time(value)
    assert str(info.value) == reason


@pytest.mark.parametrize(("value", "kusto_type", "unit", "expected"), [
    (52428800, "long", "bytes", 52428800), (2**63 - 1, "long", "bytes", 2**63 - 1), (12.0, "long", "count", 12),
    ("45", "real", "GB", 45.0), (-12.5, "real", "percent", -12.5), (1e300, "real", None, 1e300),
    (None, "long", "bytes", None), ("", "real", "MB", None),
])
def test_a_number_within_its_column_is_kept(value: Any, kusto_type: str, unit: str | None, expected: Any) -> None:
    assert number(value, kusto_type, unit) == expected


@pytest.mark.parametrize(("value", "kusto_type", "unit", "reason"), [
    (1e300, "long", "bytes", "1e+300 is outside the range of a Kusto long"),
    (2**63, "long", "bytes", "9223372036854775808 is outside the range of a Kusto long"),
    (2**31, "int", "count", "2147483648 is outside the range of a Kusto int"),
    (float("nan"), "real", "MB", "nan is not a finite number"),
    (float("-inf"), "real", None, "-inf is not a finite number"),
    ("Infinity", "real", "MB", "'Infinity' is not a finite number"),
    (-1, "long", "bytes", "-1 is negative; bytes cannot be"),
    (-0.5, "real", "seconds", "-0.5 is negative; seconds cannot be"),
    (True, "long", "count", "expected a number, got True"),
    ([1], "real", None, "expected a number, got [1]"),
    ("lots", "real", None, "expected a number, got 'lots'"),
    (10**400, "real", None, "expected a number, got " + repr(10**400)[:77] + "..."),
])
def test_a_number_outside_its_column_is_refused_with_a_reason(value: Any, kusto_type: str, unit: str | None,
                                                              reason: str) -> None:
    with pytest.raises(BadValue) as info:
        number(value, kusto_type, unit)
    assert str(info.value) == reason
