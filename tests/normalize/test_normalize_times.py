"""Times stay typed from parse to load: rows carry naive-UTC datetimes (microseconds), never text to re-read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from etl.normalize.builds import normalize_build, normalize_timelines
from etl.timeutil import to_utc_naive
from tests.normalize.test_normalize_samples import FACTS, make_ctx


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-01T06:00:00.1234567Z", datetime(2026, 11, 1, 6, 0, 0, 123456)),  # 7 digits: truncated to µs
    ("2026-11-01T06:00:00.9999999Z", datetime(2026, 11, 1, 6, 0, 0, 999999)),  # truncated, never rounded up
    ("2026-11-01T06:00:00.1234567+05:30", datetime(2026, 11, 1, 0, 30, 0, 123456)),
    ("2026-11-01T01:00:00.5-08:00", datetime(2026, 11, 1, 9, 0, 0, 500000)),
    ("2026-11-01T06:00:00Z", datetime(2026, 11, 1, 6, 0)),
    ("2026-11-01T06:00:00", datetime(2026, 11, 1, 6, 0)),  # no offset: UTC
    ("0001-01-01T00:00:00", None),  # DateTime.MinValue: "not set"
])
def test_timeline_record_times_are_naive_utc_datetimes(text: str, expected: datetime | None) -> None:
    raw = {"id": "r1", "type": "Task", "name": "Build", "order": 1, "startTime": text, "finishTime": text,
           "lastModified": text}
    records, _, _ = normalize_timelines(make_ctx(), FACTS, [("tl", [raw])])
    assert [records[0][c] for c in ("StartTime", "FinishTime", "LastModified")] == [expected] * 3


def test_build_times_and_the_staging_time_are_naive_utc_datetimes() -> None:
    raw = {"id": 7, "queueTime": "2026-11-01T05:59:59.9999999Z", "startTime": "2026-11-01T07:00:00.25+01:00",
           "finishTime": "2026-11-01T06:30:00Z", "lastChangedDate": "0001-01-01T00:00:00"}
    row, facts = normalize_build(make_ctx(), "proj", raw)
    assert [row[c] for c in ("QueueTime", "StartTime", "FinishTime", "LastChangedDate", "IngestedAt")] == [
        datetime(2026, 11, 1, 5, 59, 59, 999999), datetime(2026, 11, 1, 6, 0, 0, 250000),
        datetime(2026, 11, 1, 6, 30), None, datetime(2026, 11, 23, 6, 0)]
    assert (row["QueueSeconds"], row["DurationSeconds"], facts.filters["QueueTime"]) == (
        0.25, 1799.75, datetime(2026, 11, 1, 5, 59, 59, 999999))


@pytest.mark.parametrize(("value", "expected"), [
    (datetime(2026, 11, 1, 6, 0, 0, 123456), datetime(2026, 11, 1, 6, 0, 0, 123456)),
    (datetime(2026, 11, 1, 6, 0, tzinfo=UTC), datetime(2026, 11, 1, 6, 0)),
    (datetime(2026, 11, 1, 6, 0, tzinfo=timezone(timedelta(hours=-3, minutes=-30))), datetime(2026, 11, 1, 9, 30)),
])
def test_a_datetime_is_made_naive_utc_without_text(value: datetime, expected: datetime) -> None:
    assert to_utc_naive(value) == expected
