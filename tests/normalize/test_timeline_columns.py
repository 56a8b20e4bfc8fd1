"""Staging reads timeline records column-wise; `normalize_timelines` (row dicts) stays the reference.

Whatever the column path takes, it must stage exactly the tables the reference stages (after the
privacy policy and the typing), with the same issue rows, attempts and quarantine; whatever it
cannot read so, it refuses whole, and the build takes the reference path.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from etl.columns import Columns
from etl.normalize.builds import normalize_timelines
from etl.normalize.timeline_columns import timeline_record_columns
from etl.privacy import Scrubber, apply_policy
from etl.schema import load_tables
from etl.stage.outbox import typed_rows
from etl.warehouse.rows import RowError, to_arrow
from tests.normalize.test_normalize_samples import FACTS, Sink, body, make_ctx
from tests.normalize.test_normalize_timeline_list import TIMELINES, VARIANTS

Timelines = list[tuple[str | None, Any]]


def staged(timelines: Timelines, columns: bool) -> tuple[pa.Table | None, list[dict[str, Any]], int, list[Any]]:
    """(TimelineRecords as staged, issue rows, max attempt, quarantine) of one read of *timelines*."""
    sink = Sink()
    ctx = replace(make_ctx(sink), columns=columns)
    timelines = copy.deepcopy(timelines)
    fast = timeline_record_columns(ctx, FACTS, timelines) if columns else None
    records, issues, attempts = fast if fast is not None else normalize_timelines(ctx, FACTS, timelines)
    policy = lambda table, rows: apply_policy(ctx.scrubber, table, rows)  # noqa: E731
    table = typed_rows(policy, "TimelineRecords", records) if records else None
    return table, issues, attempts, sink.items


def assert_same_staging(timelines: Timelines) -> None:
    (table, issues, attempts, quarantined), (ref_table, ref_issues, ref_attempts, ref_quarantined) = (
        staged(timelines, True), staged(timelines, False))
    assert (table is None) == (ref_table is None)
    if table is not None:
        assert table.to_pylist() == ref_table.to_pylist()
        assert table.schema == ref_table.schema
    assert (issues, attempts, quarantined) == (ref_issues, ref_attempts, ref_quarantined)


def two_records(**variant: Any) -> Timelines:
    return [("tl", [{"id": "root", "type": "Stage", "order": 1},
                    {"id": "r1", "parentId": "root", "type": "Task", "name": "Build", "order": 2, **variant}])]


def test_the_rest_sample_takes_the_column_path_and_the_powershell_one_does_not() -> None:
    taken = {p.name: timeline_record_columns(make_ctx(), FACTS, [(body(p).get("id"), body(p).get("records"))]) is not None
             for p in TIMELINES}
    assert taken == {"GET__build_builds__knownBuildId__timeline.json": True, "buildTimeline.json": False,
                     "buildTimelineEmptyRecords.json": True}


@pytest.mark.parametrize("path", TIMELINES, ids=lambda p: p.name)
def test_sample_timelines_stage_the_reference_tables(path: Path) -> None:
    data = body(path)
    assert_same_staging([(data.get("id"), data.get("records"))])


TIME_VARIANTS = [
    {"startTime": "2020-03-13T14:03:03.4166667Z", "finishTime": "2020-03-13T14:03:03.42Z"},  # Azure DevOps' 7 digits
    {"startTime": "2020-03-13T14:03:03.999999999Z", "finishTime": "2020-03-13T14:03:04Z"},
    {"startTime": "1969-12-31T23:59:59.9999999Z", "finishTime": "1970-01-01T00:00:00.0000001Z"},
    {"startTime": "2026-11-01T06:00:00+00:00"}, {"startTime": "2026-11-01 06:00:00Z"}, {"startTime": "2026-11-01T06:00:00z"},
    {"startTime": "2026-02-29T06:00:00Z"}, {"startTime": "2024-02-29T06:00:00Z"}, {"startTime": "2026-04-31T06:00:00Z"},
    {"startTime": "2026-11-01T23:59:60Z"}, {"startTime": "2026-11-01T24:00:00Z"}, {"startTime": "0000-11-01T06:00:00Z"},
    {"startTime": "9999-12-31T23:59:59.999999Z"}, {"startTime": "2026-11-01"}, {"startTime": "2026-11-01T06:00:00.Z"},
    {"startTime": "0001-01-01T00:00:00.0000000Z", "lastModified": "0001-01-01garbage"},
    {"finishTime": "2026-11-01T06:00:00Z"}, {"startTime": "2026-11-01T06:00:01.0005Z", "finishTime": "2026-11-01T06:00:00Z"},
]


@pytest.mark.parametrize("variant", VARIANTS + TIME_VARIANTS, ids=repr)
def test_payload_variants_stage_the_reference_tables(variant: dict[str, Any]) -> None:
    assert_same_staging(two_records(**variant))


def test_the_column_path_refuses_every_value_it_would_have_to_coerce() -> None:
    refused = [v for v in VARIANTS + TIME_VARIANTS if timeline_record_columns(make_ctx(), FACTS, two_records(**v)) is None]
    assert refused == [
        {"startTime": "0001-01-02T00:00:00", "finishTime": "0001-01-02T00:00:00Z"},
        {"startTime": None, "finishTime": "2026-11-01T06:00:00.1234567+05:30"},
        {"startTime": 1700000000, "finishTime": 1.7e9},
        {"attempt": ""}, {"attempt": 0}, {"attempt": "2"}, {"attempt": 2.0}, {"attempt": -1}, {"attempt": True},
        {"issues": "text"}, {"issues": [{"type": "error", "message": "m", "data": 5}]},
        {"previousAttempts": {"attempt": 1}},
        {"task": "@{id=f7c5; name=TfxInstaller; version=2.0.18}"}, {"task": "text without pairs"},
        {"log": "@{id=11; type=Container; url=http://x/logs/11}"}, {"log": {"id": "11"}},
        {"order": "3", "queueId": 4.0, "changeId": None, "errorCount": 1, "warningCount": 0},
        {"startTime": "2026-11-01T06:00:00+00:00"}, {"startTime": "2026-11-01 06:00:00Z"},
        {"startTime": "2026-11-01T06:00:00z"}, {"startTime": "2026-02-29T06:00:00Z"},
        {"startTime": "2026-04-31T06:00:00Z"}, {"startTime": "2026-11-01T23:59:60Z"},
        {"startTime": "2026-11-01T24:00:00Z"}, {"startTime": "0000-11-01T06:00:00Z"},
        {"startTime": "2026-11-01"}, {"startTime": "2026-11-01T06:00:00.Z"},
    ]


def test_a_previous_attempt_and_its_partial_timeline_stage_the_reference_tables() -> None:
    latest = [{"id": "stage", "type": "Stage", "order": 1, "attempt": 2},
              {"id": "job", "parentId": "stage", "type": "Job", "order": 1, "attempt": 2, "workerName": "agent-9",
               "issues": [{"type": "error", "message": "agent-9 lost", "data": {"logFileLineNumber": 7}}]},
              {"id": "task", "parentId": "job", "type": "Task", "order": 3, "result": "failed",
               "task": {"name": "CmdLine", "version": "2.1.0"}}]
    previous = [{"id": "job", "parentId": "stage", "type": "Job", "order": 1, "attempt": 1, "result": "canceled"},
                {"id": "task", "parentId": "job", "type": "Task", "order": 3}]
    timelines: Timelines = [("t2", latest), ("t1", previous)]
    table, issues, attempts, _ = staged(timelines, True)
    assert table is not None
    assert [(r["RecordId"], r["Attempt"], r["TimelineId"], r["Path"]) for r in table.to_pylist()] == [
        ("stage", 2, "t2", "0001"), ("job", 2, "t2", "0001.0001"), ("task", 1, "t2", "0001.0001.0003"),
        ("job", 1, "t1", "0001.0001")]
    assert (len(issues), attempts) == (1, 2)
    assert_same_staging(timelines)


def test_records_that_are_not_a_list_are_refused() -> None:
    assert timeline_record_columns(make_ctx(), FACTS, [("tl", {"r1": {}})]) is None


def test_a_timeline_without_records_gives_no_rows() -> None:
    assert timeline_record_columns(make_ctx(), FACTS, [("tl", None), ("t0", [])]) == ([], [], 1)


def test_the_policy_treats_columns_as_it_treats_the_same_rows() -> None:
    rows = [{"Organization": "org", "Name": "token ghp_" + "a" * 36, "WorkerName": "agent-1", "BuildId": 1},
            {"Organization": "org", "Name": "ran on agent-1", "WorkerName": None, "BuildId": 2}]
    columns = Columns({k: [r[k] for r in rows] for k in rows[0]}, 2)
    treated = apply_policy(Scrubber(b"k" * 32), "TimelineRecords", columns)
    expected = apply_policy(Scrubber(b"k" * 32), "TimelineRecords", copy.deepcopy(rows))
    assert isinstance(treated, Columns)
    assert list(treated.rows()) == expected
    assert "ghp_" not in str(expected) and "agent-1" not in str(expected)


def test_a_column_value_past_its_type_is_an_error_naming_the_row_key() -> None:
    columns = Columns({"Organization": ["o"], "Project": ["p"], "BuildId": [1], "RecordId": ["r"], "Attempt": [1],
                       "RecordOrder": [2**63]}, 1)
    with pytest.raises(RowError) as err:
        to_arrow(load_tables()["TimelineRecords"], columns)
    assert str(err.value).startswith("TimelineRecords {'Organization': 'o', 'Project': 'p', 'BuildId': 1, "
                                     "'RecordId': 'r', 'Attempt': 1}: column RecordOrder: 9223372036854775808 does "
                                     "not fit a long")


def test_a_column_the_table_lacks_is_an_error() -> None:
    with pytest.raises(RowError, match=r"TimelineRecords: column\(s\) not in the table: \['Nope'\]"):
        to_arrow(load_tables()["TimelineRecords"], Columns({"Nope": [1]}, 1))


def test_the_column_path_reads_every_field_the_list_validator_declares() -> None:
    from etl.normalize.timeline_columns import _Record
    from etl.sources.azure_devops.models import TimelineRecordData

    assert _Record.__struct_fields__ == tuple(TimelineRecordData.__annotations__)
