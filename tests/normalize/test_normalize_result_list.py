"""Test results are validated as one list per run; the per-result model stays the reference.

The list path must give exactly the rows the model path gives, and a result it rejects must be
quarantined alone with the model's one-line reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from etl.normalize import testruns
from etl.normalize.testruns import normalize_results
from etl.sources.azure_devops.models import TEST_RESULTS, TestRun
from tests.normalize.test_normalize_samples import FACTS, FILES, Sink, body, kind_of, make_ctx

RESULTS = [p for p in FILES if kind_of(body(p)) in ("result", "results")]
RUN = TestRun.model_validate({"id": 5, "pipelineReference": {"jobReference": {"jobName": "Build", "attempt": 2}}})

#: Stands in for the list validator so that every result goes through the model, the reference.
REJECT_ALL = TypeAdapter(list[bool])


def results_of(path: Path) -> list[dict[str, Any]]:
    data = body(path)
    return [data] if kind_of(data) == "result" else data["value"]


def by_model(monkeypatch: pytest.MonkeyPatch, results: Any, sink: Sink | None = None) -> list[dict[str, Any]]:
    with monkeypatch.context() as m:
        m.setattr(testruns, "TEST_RESULTS", REJECT_ALL)
        return normalize_results(make_ctx(sink), FACTS, RUN, results)


def test_the_samples_hold_test_results() -> None:
    assert (len(RESULTS), sum(len(results_of(p)) for p in RESULTS)) == (9, 12)


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_sample_result_rows_equal_the_model_path(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = results_of(path)
    rows = normalize_results(make_ctx(), FACTS, RUN, results)
    assert rows == by_model(monkeypatch, results)
    assert len(rows) == len(results)


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_sample_results_pass_the_list_validator_whole(path: Path) -> None:
    results = results_of(path)
    assert [r["id"] for r in TEST_RESULTS.validate_python(results)] == [int(r["id"]) for r in results]


VARIANTS = [
    {"id": "7"}, {"startedDate": "0001-01-01T00:00:00", "completedDate": ""},
    {"startedDate": "2026-11-01T06:00:00.1234567Z", "completedDate": "2026-11-01T07:00:00+01:00"},
    {"durationInMs": 12}, {"durationInMs": "12.5"}, {"durationInMs": None},
    {"automatedTestName": None, "testCaseTitle": "Title"},
    {"outcome": "Failed", "errorMessage": "boom at C:\\agent\\_work\\1"},
    {"outcome": "Passed", "resultGroupType": "rerun", "subResults": [{"outcome": "Failed"}, {"outcome": "Passed"}]},
    {"outcome": "Passed", "resultGroupType": "Rerun", "subResults": [{"subResults": [{"outcome": "Timeout"}]}]},
    {"outcome": "Passed", "resultGroupType": "rerun", "subResults": ""},
    {"outcome": "Passed", "resultGroupType": "rerun", "subResults": "text"},
    {"outcome": "Passed", "resultGroupType": "rerun", "subResults": [{"outcome": "Failed", "subResults": 5}]},
    {"testRun": {"id": 5, "name": "run"}, "build": {"id": "9"}}, {"testRun": {"id": [1]}},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=repr)
def test_payload_variants_give_the_model_path_rows(variant: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    results = [{"id": 1, "outcome": "Passed", "automatedTestName": "A.B.first"},
               {"id": 2, "automatedTestName": "A.B.second", **variant}]
    sink, model_sink = Sink(), Sink()
    assert normalize_results(make_ctx(sink), FACTS, RUN, results) == by_model(monkeypatch, results, model_sink)
    assert sink.items == model_sink.items


def test_one_bad_result_among_valid_ones_is_quarantined_alone_with_the_model_reason() -> None:
    sink = Sink()
    results = [{"id": 1, "outcome": "Passed"}, {"id": "x", "outcome": "Failed"},
               {"id": 3, "startedDate": "yesterday"}, {"id": 4, "outcome": "Failed", "errorMessage": "boom"}]
    rows = normalize_results(make_ctx(sink), FACTS, RUN, results)
    assert [(r["ResultId"], r["Outcome"], r["Attempt"], r["JobName"]) for r in rows] == [
        (1, "Passed", 2, "Build"), (4, "Failed", 2, "Build")]
    assert [(s[1], s[2], s[3]) for s in sink.items] == [
        ("build 1 test run 5 result x", "id", "invalid number 'x'"),
        ("build 1 test run 5 result 3", "startedDate", "invalid datetime 'yesterday'")]
