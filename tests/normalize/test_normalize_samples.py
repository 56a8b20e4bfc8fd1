"""Every Azure DevOps sample the ETL reads parses and normalizes; a few exact values per kind."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from etl.classify import Classifier
from etl.normalize import NormalizeContext, normalize_bundle
from etl.normalize.builds import BuildFacts, build_kind, normalize_build
from etl.normalize.testruns import bound, normalize_results, normalize_run, passed_on_rerun
from etl.privacy import Scrubber, apply_policy
from etl.schema import table
from etl.sources.azure_devops.extract import BuildBundle
from etl.sources.azure_devops.models import Artifact, TestResult, TestRun
from tests.conftest import SAMPLES

ADO = SAMPLES / "azure-devops"


def body(path: Path) -> Any:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["responses"]["200"]["body"] if "responses" in data else data


def kind_of(data: Any) -> str:
    if isinstance(data, dict) and "records" in data:
        return "timeline"
    if isinstance(data, dict) and "buildNumber" in data:
        return "build"
    if (isinstance(data, dict) and "automatedTestName" in data) or (isinstance(data, dict) and "testRun" in data):
        return "result"
    values = data.get("value") if isinstance(data, dict) else data
    if isinstance(values, list) and values and isinstance(values[0], dict):
        first = values[0]
        if "buildNumber" in first:
            return "builds"
        if "outcome" in first and "testRun" in first:
            return "results"
        if "totalTests" in first or "isAutomated" in first:
            return "runs"
        if "resource" in first and "name" in first:
            return "artifacts"
    if isinstance(data, dict) and ("totalTests" in data or "isAutomated" in data):
        return "run"
    return "other"


READ_KINDS = {"timeline", "build", "builds", "result", "results", "runs", "run", "artifacts"}
FILES = sorted(p for p in ADO.rglob("*.json") if kind_of(body(p)) in READ_KINDS)


class Sink:
    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.items.append(args)


def make_ctx(sink: Sink | None = None) -> NormalizeContext:
    return NormalizeContext("samples", "org", datetime(2026, 11, 23, 6, 0), Scrubber(b"test-key"), Classifier(),
                            sink or Sink())


FACTS = BuildFacts("org", "proj", 1, "abc", {"DefinitionId": 1, "Definition": "d", "SourceBranch": "refs/heads/main",
                                            "TargetBranch": "refs/heads/main", "BuildKind": "Rolling",
                                            "QueueTime": None}, None)


def assert_fits(table_name: str, rows: list[dict[str, Any]]) -> None:
    from etl.warehouse.rows import to_arrow

    assert to_arrow(table(table_name), rows).num_rows == len(rows)


def test_the_samples_cover_every_kind_the_etl_reads() -> None:
    assert {kind_of(body(p)) for p in FILES} == READ_KINDS


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ADO)))
def test_sample_normalizes_without_error(path: Path) -> None:
    data = body(path)
    kind = kind_of(data)
    sink = Sink()
    ctx = make_ctx(sink)
    if kind in ("build", "builds"):
        for raw in [data] if kind == "build" else data["value"]:
            tables = normalize_bundle(ctx, BuildBundle("proj", raw))
            assert_fits("TimelineBuilds", tables["TimelineBuilds"])
            assert len(tables["TimelineBuilds"]) == 1
    elif kind == "timeline":
        tables = normalize_bundle(ctx, BuildBundle("proj", {"id": 1}, [(data.get("id"), data.get("records") or [])]))
        assert len(tables["TimelineRecords"]) == len(data.get("records") or [])
        assert_fits("TimelineRecords", tables["TimelineRecords"])
        assert_fits("TimelineIssues", tables["TimelineIssues"])
    elif kind == "artifacts":
        artifacts = [Artifact.model_validate(a) for a in data["value"]]
        assert all(a.resource is not None and a.resource.type for a in artifacts)
    elif kind in ("run", "runs"):
        for raw in [data] if kind == "run" else data["value"]:
            row, _ = normalize_run(ctx, FACTS, raw)
            assert_fits("TestRuns", [row])
    else:
        results = [data] if kind == "result" else data["value"]
        run = TestRun(id=5)
        rows = normalize_results(ctx, FACTS, run, results)
        assert len(rows) == len(results)
        assert_fits("TestResults", rows)
    assert sink.items == []


def test_timeline_with_null_records_gives_no_rows() -> None:
    data = body(ADO / "recorded/vsteam/buildTimelineEmptyRecords.json")
    tables = normalize_bundle(make_ctx(), BuildBundle("proj", {"id": 822}, [(data["id"], data["records"])]))
    assert tables["TimelineRecords"] == []


def test_record_paths_and_powershell_serialized_task_are_read() -> None:
    data = body(ADO / "recorded/vsteam/buildTimeline.json")
    tables = normalize_bundle(make_ctx(), BuildBundle("proj", {"id": 822}, [(data["id"], data["records"])]))
    by_name = {r["Name"]: r for r in tables["TimelineRecords"]}
    assert by_name["TfxInstaller"]["Path"] == "0001.0001.0012"
    assert by_name["TfxInstaller"]["TaskName"] == "TfxInstaller"
    assert by_name["TfxInstaller"]["TaskVersion"] == "2.0.18"
    assert by_name["Show Files"]["LogId"] == 11
    assert by_name["TfxInstaller"]["LastModified"] is None


def test_azure_sdk_result_with_string_ids_and_float_duration() -> None:
    data = body(ADO / "recorded/azure-sdk-test-results/cpp.json")
    rows = normalize_results(make_ctx(), FACTS, TestRun(id=44418368), [data])
    assert rows[0]["ResultId"] == 100000
    assert rows[0]["DurationMs"] == 143.0
    assert rows[0]["TestName"] == "./sdk/storage/azure-storage-common/test/ut/azure-storage-common.CryptFunctionsTest.HmacSha256"


def test_azure_sdk_result_without_duration_has_null_duration() -> None:
    data = body(ADO / "recorded/azure-sdk-test-results/go.json")
    rows = normalize_results(make_ctx(), FACTS, TestRun(id=44424416), [data])
    assert rows[0]["DurationMs"] is None


def test_build_with_seven_digit_fractions_and_requested_for_pseudonymized() -> None:
    data = body(ADO / "recorded/azcli-recording/azcli_build_show_GET_builds_638.json")
    ctx = make_ctx()
    row, facts = normalize_build(ctx, "buildtests", data)
    row = apply_policy(ctx.scrubber, "TimelineBuilds", [row])[0]  # stored values get FIELD_POLICY's treatment
    assert row["QueueTime"] == datetime(2026, 4, 1, 10, 48, 33, 306379)
    assert row["RequestedFor"].startswith("anon-") or row["RequestedFor"] != "test@example.com"
    assert "example.com" not in json.dumps(row, default=str)
    assert row["BuildKind"] == "Manual"
    assert row["Definition"] == "BuildTests Definition1"
    assert facts.filters["TargetBranch"] == "refs/heads/main"


@pytest.mark.parametrize(("reason", "kind"), [("pullRequest", "PullRequest"), ("individualCI", "Rolling"),
                                               ("batchedCI", "Rolling"), ("schedule", "Scheduled"),
                                               ("manual", "Manual"), ("resourceTrigger", "Other"), (None, "Other")])
def test_build_kind_from_reason(reason: str | None, kind: str) -> None:
    assert build_kind(reason) == kind


def test_pull_request_target_branch_and_number_from_parameters() -> None:
    raw = {"id": 9, "reason": "pullRequest", "sourceBranch": "refs/pull/77/merge",
           "parameters": json.dumps({"system.pullRequest.targetBranch": "release/1.0",
                                     "system.pullRequest.pullRequestNumber": "77"})}
    row, _ = normalize_build(make_ctx(), "p", raw)
    assert (row["TargetBranch"], row["PullRequestNumber"]) == ("refs/heads/release/1.0", 77)


def test_pull_request_number_from_trigger_info() -> None:
    raw = {"id": 9, "reason": "pullRequest", "sourceBranch": "refs/heads/feature",
           "triggerInfo": {"pr.number": "12", "pr.targetBranch": "refs/heads/main"}}
    row, _ = normalize_build(make_ctx(), "p", raw)
    assert (row["TargetBranch"], row["PullRequestNumber"]) == ("refs/heads/main", 12)


def test_passed_on_rerun_needs_an_earlier_failed_sub_result() -> None:
    flaky = TestResult.model_validate({"id": 1, "outcome": "Passed", "resultGroupType": "rerun",
                                       "subResults": [{"outcome": "Failed"}, {"outcome": "Passed"}]})
    clean = TestResult.model_validate({"id": 2, "outcome": "Passed", "resultGroupType": "rerun",
                                       "subResults": [{"outcome": "Passed"}]})
    assert (passed_on_rerun(flaky), passed_on_rerun(clean)) == (True, False)


def test_error_message_is_bounded_to_4_kb() -> None:
    assert len(bound("é" * 5000).encode()) <= 4096
    assert bound("short") == "short"


def test_invalid_record_start_time_is_quarantined_with_field_and_value() -> None:
    sink = Sink()
    records = [{"id": "good", "type": "Job", "order": 1},
               {"id": "bad", "type": "Task", "order": 2, "parentId": "good", "startTime": "x"}]
    tables = normalize_bundle(make_ctx(sink), BuildBundle("proj", {"id": 123}, [("tl", records)]))
    assert [r["RecordId"] for r in tables["TimelineRecords"]] == ["good"]
    assert [(s[1], s[2], s[3]) for s in sink.items] == [("build 123 timeline record bad", "startTime",
                                                         "invalid datetime 'x'")]
