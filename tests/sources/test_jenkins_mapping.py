"""A Jenkins build as read → rows: the mapping table of docs/sources.md ("Jenkins"), value by value."""

from __future__ import annotations

from typing import Any

from etl.normalize.batch import normalize_payload
from etl.sources.jenkins.mapping import JenkinsBuild, build_id, record_result, stable_id
from tests.normalize.test_normalize_samples import Sink, assert_fits, make_ctx

T0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z

RESTART = {"_class": "org.jenkinsci.plugins.pipeline.modeldefinition.causes.RestartDeclarativePipelineCause",
           "originRunNumber": 7, "shortDescription": "Restarted from build #7, stage Test"}


def payload(**over: Any) -> JenkinsBuild:
    build = {"number": 9, "result": "FAILURE", "timestamp": T0 + 60_000, "duration": 90_000, "building": False,
             "url": "https://ci.example.com/job/team/job/app/9/",
             "actions": [{"causes": [RESTART]},
                         {"lastBuiltRevision": {"SHA1": "abc123", "branch": [{"name": "origin/main"}]}}]}
    stage = {"id": "6", "name": "Test", "status": "FAILED", "startTimeMillis": T0 + 61_000, "durationMillis": 80_000,
             "stageFlowNodes": [
                 {"id": "7", "name": "Shell Script", "status": "SUCCESS", "startTimeMillis": T0 + 61_000,
                  "durationMillis": 10_000, "parameterDescription": "make TOKEN=hunter2"},
                 {"id": "8", "name": "Windows Batch Script", "status": "FAILED", "startTimeMillis": T0 + 71_000,
                  "durationMillis": 5_000, "error": {"message": "script returned exit code 2",
                                                     "type": "hudson.AbortException"}},
                 {"id": "9", "name": "Notify Chat", "status": "NOT_EXECUTED", "startTimeMillis": T0 + 76_000,
                  "durationMillis": 0}]}
    report = {"suites": [{"name": "unit", "cases": [
        {"className": "app.Math", "name": "adds", "status": "PASSED", "duration": 0.25},
        {"className": "app.Math", "name": "divides", "status": "REGRESSION", "duration": 1.5, "errorDetails": "1/0"},
        {"className": "app.Math", "name": "later", "status": "SKIPPED", "skipped": True, "duration": 0}]}]}
    values = {"source": "ci", "organization": "ci.example.com", "job": "team/app", "build": build,
              "root_number": 5, "root_timestamp": T0, "attempt": 3, "retry_kind": "restart",
              "root_causes": [{"_class": "hudson.triggers.TimerTrigger$TimerTriggerCause"}],
              "describe": {"stages": [stage]}, "stages": [stage], "test_report": report, **over}
    return JenkinsBuild(**values)


def rows(p: JenkinsBuild, sink: Sink | None = None) -> dict[str, list[dict[str, Any]]]:
    return normalize_payload(p, make_ctx(sink), "team/app build 9").tables


def test_a_retry_is_the_next_attempt_of_its_root_build() -> None:
    (build,) = rows(payload())["TimelineBuilds"]
    assert {k: build[k] for k in ("System", "Organization", "Project", "BuildId", "BuildNumber", "Definition",
                                  "DefinitionId", "Attempts", "Reason", "BuildKind", "Result", "QueueTime",
                                  "StartTime", "FinishTime", "DurationSeconds", "SourceBranch", "SourceVersion")} == {
        "System": "jenkins", "Organization": "ci.example.com", "Project": "team", "BuildId": build_id("team/app", 5),
        "BuildNumber": "5", "Definition": "team/app", "DefinitionId": stable_id("team/app"), "Attempts": 3,
        "Reason": "restart", "BuildKind": "Scheduled", "Result": "failed", "QueueTime": "2025-12-01T00:00:00",
        "StartTime": "2025-12-01T00:01:00", "FinishTime": "2025-12-01T00:02:30", "DurationSeconds": 90.0,
        "SourceBranch": "refs/heads/main", "SourceVersion": "abc123"}


def test_a_stage_is_a_stage_and_a_job_record_and_its_steps_are_tasks_named_by_step_function() -> None:
    records = rows(payload())["TimelineRecords"]
    assert [(r["Type"], r["RecordId"], r["ParentId"], r["Path"], r["Name"], r["TaskName"], r["Result"], r["Attempt"])
            for r in records] == [
        ("Stage", "6", None, "0001", "Test", None, "failed", 3),
        ("Job", "6.job", "6", "0001.0001", "Test", None, "failed", 3),
        ("Task", "7", "6.job", "0001.0001.0001", "Shell Script", "sh", "succeeded", 3),
        ("Task", "8", "6.job", "0001.0001.0002", "Windows Batch Script", "bat", "failed", 3),
        ("Task", "9", "6.job", "0001.0001.0003", "Notify Chat", "Notify Chat", "skipped", 3)]
    assert {r["TaskVersion"] for r in records} == {None}
    assert_fits("TimelineRecords", records)


def test_a_failed_steps_error_is_an_issue() -> None:
    (issue,) = rows(payload())["TimelineIssues"]
    assert (issue["RecordId"], issue["Path"], issue["TaskName"], issue["Type"], issue["Category"], issue["Message"]) == (
        "8", "0001.0001.0002", "bat", "error", "hudson.AbortException", "script returned exit code 2")


def test_the_test_report_is_one_run_with_a_result_per_case() -> None:
    tables = rows(payload())
    (run,) = tables["TestRuns"]
    assert (run["TotalTests"], run["PassedTests"], run["FailedTests"], run["NotExecutedTests"], run["Attempt"]) == (
        3, 1, 1, 1, 3)
    assert [(r["ResultId"], r["TestName"], r["TestStorage"], r["Outcome"], r["DurationMs"])
            for r in tables["TestResults"]] == [
        (1, "app.Math.adds", "unit", "Passed", 250.0), (2, "app.Math.divides", "unit", "Failed", 1500.0),
        (3, "app.Math.later", "unit", "NotExecuted", 0.0)]


def test_a_superseded_attempt_writes_no_build_row_but_all_its_records() -> None:
    tables = rows(payload(superseded=True))
    assert (len(tables["TimelineBuilds"]), len(tables["TimelineRecords"])) == (0, 5)


def test_a_malformed_stage_is_quarantined_and_the_build_loads() -> None:
    sink = Sink()
    bad = {"id": "6", "name": "Test", "startTimeMillis": "soon"}
    tables = rows(payload(stages=[bad]), sink)
    assert len(tables["TimelineBuilds"]) == 1 and tables["TimelineRecords"] == []
    assert [item[:4] for item in sink.items] == [
        ("samples", "team/app build 9 stage 1", "startTimeMillis", "invalid number 'soon'")]


def test_wfapi_statuses_map_to_record_states_and_results() -> None:
    assert [record_result(s) for s in ("SUCCESS", "UNSTABLE", "FAILED", "ABORTED", "NOT_EXECUTED", "IN_PROGRESS",
                                       "PAUSED_PENDING_INPUT")] == [
        ("completed", "succeeded"), ("completed", "succeededWithIssues"), ("completed", "failed"),
        ("completed", "canceled"), ("completed", "skipped"), ("inProgress", None), ("inProgress", None)]
