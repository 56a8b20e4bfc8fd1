"""Datetimes as both stores keep them: naive UTC, microsecond precision."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from etl.timeutil import to_utc_naive, utc_now


def test_seven_fraction_digits_and_z_as_azure_devops_sends_them_truncate_to_microseconds():
    assert to_utc_naive("2026-03-01T10:20:30.1234567Z") == datetime(2026, 3, 1, 10, 20, 30, 123456)


def test_an_offset_is_converted_to_utc():
    assert to_utc_naive("2026-03-01T10:20:30.5+02:00") == datetime(2026, 3, 1, 8, 20, 30, 500000)


def test_an_aware_datetime_becomes_naive_utc():
    assert to_utc_naive(datetime(2026, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=-5)))) == datetime(2026, 3, 1, 6, 0)


@pytest.mark.parametrize(("value", "expected"), [
    (datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Paris")), datetime(2026, 3, 29, 1, 30)),  # summer time
    (datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris")), datetime(2026, 10, 25, 1, 30)),
    (datetime(2026, 10, 25, 2, 30, fold=0, tzinfo=ZoneInfo("Europe/Paris")), datetime(2026, 10, 25, 0, 30)),
    (datetime(2026, 1, 1, 0, 0, 0, 7, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 0, 7)),
])
def test_a_zoned_datetime_becomes_the_naive_utc_of_its_own_offset(value, expected):
    assert to_utc_naive(value) == expected


def test_a_date_is_its_midnight():
    assert to_utc_naive(date(2026, 3, 1)) == datetime(2026, 3, 1)


@pytest.mark.parametrize("missing", [None, "", "  ", float("nan"), pd.NaT])
def test_missing_values_are_none(missing):
    assert to_utc_naive(missing) is None


def test_a_pandas_timestamp_is_a_plain_datetime():
    value = to_utc_naive(pd.Timestamp("2026-03-01 10:00", tz="UTC"))
    assert (type(value), value) == (datetime, datetime(2026, 3, 1, 10, 0))


def test_a_pandas_timestamp_keeps_microseconds_and_drops_nanoseconds_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = to_utc_naive(pd.Timestamp("2026-03-01T10:00:00.123456789+01:00"))
    assert value == datetime(2026, 3, 1, 9, 0, 0, 123456)


def test_text_that_is_no_datetime_is_a_value_error():
    with pytest.raises(ValueError, match="Invalid isoformat string: 'yesterday'"):
        to_utc_naive("yesterday")


def test_utc_now_is_naive_and_current():
    before = datetime.now(UTC).replace(tzinfo=None)
    now = utc_now()
    assert now.tzinfo is None and before <= now <= datetime.now(UTC).replace(tzinfo=None)
