"""Timeline records are validated as one list per timeline; the per-record model stays the reference.

The list path must give exactly the rows the model path gives, and a record it rejects must be
quarantined alone with the model's one-line reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from etl.normalize import builds
from etl.normalize.builds import normalize_timelines
from etl.sources.azure_devops.models import TIMELINE_RECORDS
from tests.normalize.test_normalize_samples import FACTS, FILES, Sink, body, kind_of, make_ctx

TIMELINES = [p for p in FILES if kind_of(body(p)) == "timeline"]

#: Stands in for the list validator so that every record goes through the model, the reference.
REJECT_ALL = TypeAdapter(list[int])


def by_model(monkeypatch: pytest.MonkeyPatch, timelines: list[tuple[str | None, Any]],
             sink: Sink | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    with monkeypatch.context() as m:
        m.setattr(builds, "TIMELINE_RECORDS", REJECT_ALL)
        return normalize_timelines(make_ctx(sink), FACTS, timelines)


def test_the_samples_hold_timelines() -> None:
    assert [p.name for p in TIMELINES] == ["GET__build_builds__knownBuildId__timeline.json", "buildTimeline.json",
                                           "buildTimelineEmptyRecords.json"]


@pytest.mark.parametrize("path", TIMELINES, ids=lambda p: p.name)
def test_sample_timeline_rows_equal_the_model_path(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = body(path)
    timelines = [(data.get("id"), data.get("records"))]
    assert normalize_timelines(make_ctx(), FACTS, timelines) == by_model(monkeypatch, timelines)


def test_plain_rest_records_pass_the_list_validator_whole() -> None:
    records = body(TIMELINES[0])["records"]
    assert [r["id"] for r in TIMELINE_RECORDS.validate_python(records)] == [r["id"] for r in records]


VARIANTS = [
    {"startTime": "0001-01-01T00:00:00", "finishTime": "0001-01-01T00:00:00Z", "lastModified": ""},
    {"startTime": "0001-01-02T00:00:00", "finishTime": "0001-01-02T00:00:00Z"},  # not "never": kept
    {"startTime": None, "finishTime": "2026-11-01T06:00:00.1234567+05:30"}, {"startTime": 1700000000, "finishTime": 1.7e9},
    {"attempt": ""}, {"attempt": None}, {"attempt": 0}, {"attempt": "2"}, {"attempt": 2.0}, {"attempt": 3},
    {"attempt": -1}, {"attempt": True},
    {"issues": ""}, {"issues": None}, {"issues": "text"}, {"issues": [{"type": "error", "message": "m", "data": 5}]},
    {"issues": [{"type": "warning", "data": {"logFileLineNumber": "12", "code": "X1"}}]},
    {"previousAttempts": ""}, {"previousAttempts": {"attempt": 1}},
    {"previousAttempts": [{"attempt": 1, "timelineId": "t0"}]},
    {"task": "@{id=f7c5; name=TfxInstaller; version=2.0.18}"}, {"task": "text without pairs"}, {"task": {}},
    {"log": "@{id=11; type=Container; url=http://x/logs/11}"}, {"log": {"id": "11"}},
    {"order": "3", "queueId": 4.0, "changeId": None, "errorCount": 1, "warningCount": 0},
    {"result": "failed", "resultCode": "exit code 1", "workerName": "agent-007"},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=repr)
def test_payload_variants_give_the_model_path_rows(variant: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    records = [{"id": "root", "type": "Stage", "order": 1},
               {"id": "r1", "parentId": "root", "type": "Task", "name": "Build", "order": 2, **variant}]
    sink, model_sink = Sink(), Sink()
    rows = normalize_timelines(make_ctx(sink), FACTS, [("tl", records)])
    assert rows == by_model(monkeypatch, [("tl", records)], model_sink)
    assert sink.items == model_sink.items


def test_one_bad_record_among_valid_ones_is_quarantined_alone_with_the_model_reason() -> None:
    sink = Sink()
    latest = [{"id": "a", "type": "Job", "order": 1}, {"id": "b", "parentId": "a", "order": 2, "startTime": "x"},
              {"id": "c", "parentId": "a", "order": 3}]
    previous = [{"id": "d", "order": 4, "previousAttempts": [{"attempt": "one"}]}, {"id": "e", "order": 5}]
    records, _, _ = normalize_timelines(make_ctx(sink), FACTS, [("t2", latest), ("t1", previous)])
    assert [(r["RecordId"], r["TimelineId"], r["Path"]) for r in records] == [
        ("a", "t2", "0001"), ("c", "t2", "0001.0003"), ("e", "t1", "0005")]
    assert [(s[1], s[2], s[3]) for s in sink.items] == [
        ("build 1 timeline record b", "startTime", "invalid datetime 'x'"),
        ("build 1 timeline record d", "previousAttempts.0.attempt", "invalid number 'one'")]


def test_records_that_are_not_a_list_are_read_one_by_one_as_before() -> None:
    sink = Sink()
    records, _, _ = normalize_timelines(make_ctx(sink), FACTS, [("tl", {"r1": {}})])
    assert records == []
    assert [(s[1], s[2], s[3]) for s in sink.items] == [("build 1 timeline record None", "(payload)",
                                                         "Input should be a valid dictionary or instance of "
                                                         "TimelineRecord 'r1'")]


def test_a_number_past_its_column_quarantines_its_record_alone_not_the_build() -> None:
    sink = Sink()
    latest = [{"id": "a", "type": "Job", "order": 2**63}, {"id": "b", "order": 2, "errorCount": 2**31},
              {"id": "c", "order": 2**63 - 1, "errorCount": 2**31 - 1}]
    records, _, _ = normalize_timelines(make_ctx(sink), FACTS, [("tl", latest)])
    assert [(r["RecordId"], r["RecordOrder"], r["ErrorCount"]) for r in records] == [("c", 2**63 - 1, 2**31 - 1)]
    assert [(s[1], s[2], s[3]) for s in sink.items] == [
        ("build 1 timeline record a", "order", "Input should be less than or equal to 9223372036854775807 "
                                               "9223372036854775808"),
        ("build 1 timeline record b", "errorCount", "Input should be less than or equal to 2147483647 2147483648")]


def test_a_huge_number_is_quoted_by_its_size_not_its_digits() -> None:
    sink = Sink()
    normalize_timelines(make_ctx(sink), FACTS, [("tl", [{"id": "a", "order": 10**400}])])
    assert [(s[1], s[2], s[3]) for s in sink.items] == [
        ("build 1 timeline record a", "order", "Input should be less than or equal to 9223372036854775807 "
                                               "an integer of 1329 bits")]


def test_a_long_text_is_quoted_by_its_start_and_its_length() -> None:
    sink = Sink()
    normalize_timelines(make_ctx(sink), FACTS, [("tl", [{"id": "a", "startTime": "soon " * 100}])])
    assert [(s[1], s[2], s[3]) for s in sink.items] == [
        ("build 1 timeline record a", "startTime", "invalid datetime 'soon soon soon soon soon soon soon soon soon soon "
                                                   "soon soon… "
                                                   "(500 characters)")]
