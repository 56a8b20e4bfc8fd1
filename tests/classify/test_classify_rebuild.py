"""`ci-telemetry classify --rebuild`: re-applies edited rules and human overrides, changing exactly the affected rows."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from etl.cli import app
from etl.config import load_config
from etl.warehouse.local import LocalWarehouse

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
QUEUED = NOW - timedelta(days=1)
SINCE = (NOW - timedelta(days=3)).date().isoformat()
WIDGET_RULE = {"id": "widget-explosion", "category": "infrastructure", "message": {"contains": "widget exploded"}}


def _build(build_id: int, attempts: int = 1) -> dict:
    return {"Organization": "org", "Project": "app", "BuildId": build_id, "Attempts": attempts, "DefinitionId": 1,
            "Definition": "ci\\main", "SourceBranch": "refs/heads/main", "BuildKind": "Rolling", "Result": "failed",
            "QueueTime": QUEUED, "FinishTime": QUEUED + timedelta(hours=1), "IngestedAt": QUEUED}


def _record(build_id: int, record_id: str, attempt: int, result: str, **extra) -> dict:
    return {"Organization": "org", "Project": "app", "BuildId": build_id, "RecordId": record_id, "Attempt": attempt,
            "Type": "Task", "Name": "Run script", "TaskName": "Bash", "Result": result, "Definition": "ci\\main",
            "QueueTime": QUEUED, "IngestedAt": QUEUED, **extra}


def _issue(build_id: int, record_id: str, attempt: int, index: int, message: str, kind: str = "error") -> dict:
    return {"Organization": "org", "Project": "app", "BuildId": build_id, "RecordId": record_id, "Attempt": attempt,
            "IssueIndex": index, "Type": kind, "Message": message, "TaskName": "Bash", "RecordName": "Run script",
            "Data": '{"code": "1"}', "Definition": "ci\\main", "QueueTime": QUEUED, "IngestedAt": QUEUED}


def seed(wh: LocalWarehouse) -> None:
    """Three builds: a network failure, an OOM-killed record, a retried widget explosion; plus tests and an upload."""
    wh.ingest("TimelineBuilds", [_build(1), _build(2), _build(3, attempts=2)], "seed-builds")
    wh.ingest("TimelineRecords", [
        _record(1, "r1", 1, "failed"),
        _record(2, "r2", 1, "failed", ResultCode="Bash exited with code 137"),
        _record(3, "r3", 1, "failed"),
        _record(3, "r3b", 2, "succeeded"),
    ], "seed-records")
    wh.ingest("TimelineIssues", [
        _issue(1, "r1", 1, 0, "fatal: unable to access 'https://github.com/x/y/': Could not resolve host: github.com"),
        _issue(1, "r1", 1, 1, "Node 12 is deprecated", kind="warning"),
        _issue(3, "r3", 1, 0, "The widget exploded at /home/<user>/w/1/s (code 7)"),
        _issue(2, "", 1, 0, "TF401019: The Git repository with name or identifier app does not exist"),
    ], "seed-issues")
    wh.ingest("TestResults", [
        {"Organization": "org", "Project": "app", "RunId": 10, "ResultId": 1, "BuildId": 3, "Attempt": 1,
         "TestName": "App.Tests.WidgetTest", "Outcome": "Failed", "ErrorMessage": "widget exploded under load",
         "QueueTime": QUEUED, "IngestedAt": QUEUED},
        {"Organization": "org", "Project": "app", "RunId": 10, "ResultId": 2, "BuildId": 3, "Attempt": 1,
         "TestName": "App.Tests.MathTest", "Outcome": "Failed", "ErrorMessage": "Assert.Equal() Failure\nExpected: 1",
         "QueueTime": QUEUED, "IngestedAt": QUEUED},
        {"Organization": "org", "Project": "app", "RunId": 10, "ResultId": 3, "BuildId": 3, "Attempt": 1,
         "TestName": "App.Tests.Ok", "Outcome": "Passed", "QueueTime": QUEUED, "IngestedAt": QUEUED},
    ], "seed-tests")
    wh.ingest("BuildMetrics", [
        {"Source": "simulated", "Key": "app/2/metrics.json", "Organization": "org", "Project": "app", "BuildId": 2,
         "FailureReason": "widget exploded while packing", "FailureStage": "package", "QueueTime": QUEUED,
         "IngestedAt": QUEUED},
    ], "seed-metrics")


@pytest.fixture
def store(write_config: Callable[..., Path], tmp_path: Path) -> Path:
    """A config whose rule and known-issue files are copies the test may edit; the store seeded."""
    rules = tmp_path / "config" / "failure-rules.yaml"
    rules.parent.mkdir(exist_ok=True)
    shutil.copy(ROOT / "config" / "failure-rules.yaml", rules)
    (tmp_path / "config" / "known-issues.yaml").write_text("version: 1\nissues: []\n", encoding="utf-8")
    path = write_config({
        "sources": [{"kind": "simulator"}],
        "warehouse": {"kind": "local", "path": "data/warehouse.duckdb"},
        "staging": {"dir": "data/staging"},
        "classification": {"rules": "config/failure-rules.yaml", "known_issues": "config/known-issues.yaml"},
    })
    wh = LocalWarehouse(tmp_path / "data" / "warehouse.duckdb")
    wh.apply_schema()
    seed(wh)
    wh.close()
    return path


def run_classify(config: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["classify", *args, "--since", SINCE, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return result.output


def query(config: Path, kql: str) -> list[dict]:
    settings = load_config(config)
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        frame = wh.query(kql)
        return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
                for r in frame.to_dict("records")]
    finally:
        wh.close()


def add_rule_first(config: Path, rule: dict) -> None:
    path = config.parent / "failure-rules.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["rules"].insert(0, rule)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def test_first_rebuild_classifies_every_failure_and_second_changes_nothing(store: Path) -> None:
    first = run_classify(store, "--rebuild")
    assert "  TimelineIssues: 4 changed (of 4 examined)" in first
    assert "  TimelineRecords: 3 changed (of 3 examined)" in first
    assert "  TestResults: 2 changed (of 2 examined)" in first
    assert "  BuildMetrics: 1 changed (of 1 examined)" in first
    second = run_classify(store, "--rebuild")
    assert "  TimelineIssues: 0 changed (of 4 examined)" in second
    assert "  TimelineRecords: 0 changed (of 3 examined)" in second
    assert "  TestResults: 0 changed (of 2 examined)" in second
    assert "  BuildMetrics: 0 changed (of 1 examined)" in second


def test_rebuild_writes_the_same_classification_as_the_rules(store: Path) -> None:
    run_classify(store, "--rebuild")
    rows = query(store, "LatestTimelineIssues | where Type == 'error' | project BuildId, FailureCategory, RuleId"
                        " | order by BuildId asc")
    assert [(r["BuildId"], r["FailureCategory"], r["RuleId"]) for r in rows] == [
        (1, "network", "network-dns"), (2, "permission", "permission-denied"), (3, "unknown", None)]
    records = query(store, "LatestTimelineRecords | where Result == 'failed' | project BuildId, FailureCategory"
                           " | order by BuildId asc")
    assert [(r["BuildId"], r["FailureCategory"]) for r in records] == [(1, "network"), (2, "resource"), (3, "unknown")]


def test_editing_a_rule_changes_exactly_the_affected_rows(store: Path) -> None:
    run_classify(store, "--rebuild")
    add_rule_first(store, WIDGET_RULE)
    edited = run_classify(store, "--rebuild")
    assert "  TimelineIssues: 1 changed (of 4 examined)" in edited
    assert "  TimelineRecords: 1 changed (of 3 examined)" in edited
    assert "  TestResults: 1 changed (of 2 examined)" in edited
    assert "  BuildMetrics: 1 changed (of 1 examined)" in edited
    again = run_classify(store, "--rebuild")
    assert "  TimelineIssues: 0 changed" in again and "  TestResults: 0 changed" in again
    rows = query(store, "LatestTimelineRecords | where BuildId == 3 and Attempt == 1 | project FailureCategory")
    assert rows == [{"FailureCategory": "infrastructure"}]


def test_dry_run_reports_changes_without_writing(store: Path) -> None:
    out = run_classify(store)
    assert "  TimelineIssues: 4 would change (of 4 examined)" in out
    assert "Dry run: nothing written" in out
    assert query(store, "LatestTimelineIssues | where isnotempty(FailureCategory) | count") == [{"Count": 0}]


def test_human_triage_wins_over_rules_and_records_follow_their_first_error(store: Path) -> None:
    run_classify(store, "--rebuild")
    result = CliRunner().invoke(app, ["classify", "triage", "--project", "app", "--build", "1", "--record", "r1",
                                      "--attempt", "1", "--index", "0", "--category", "configuration",
                                      "--by", "jane.doe@contoso.com", "--note", "proxy misconfigured by ops@x.org",
                                      "--config", str(store)])
    assert result.exit_code == 0, result.output
    out = run_classify(store, "--rebuild")
    assert "  TimelineIssues: 1 changed (of 4 examined)" in out
    assert "  TimelineRecords: 1 changed (of 3 examined)" in out
    issue = query(store, "LatestTimelineIssues | where BuildId == 1 and IssueIndex == 0"
                         " | project FailureCategory, FailureOrigin, RuleId")
    assert issue == [{"FailureCategory": "configuration", "FailureOrigin": "code", "RuleId": "triage"}]
    triage = query(store, "LatestFailureTriage | project Organization, TriagedBy, Note")
    assert triage[0]["Organization"] == "org"
    assert triage[0]["TriagedBy"].startswith("anon-")
    assert triage[0]["Note"] == "proxy misconfigured by <email>"


def test_record_level_triage_overrides_a_record_without_issues(store: Path) -> None:
    result = CliRunner().invoke(app, ["classify", "triage", "--project", "app", "--build", "2", "--record", "r2",
                                      "--index", "-1", "--category", "infrastructure", "--config", str(store)])
    assert result.exit_code == 0, result.output
    run_classify(store, "--rebuild")
    assert query(store, "LatestTimelineRecords | where BuildId == 2 | project FailureCategory") == [
        {"FailureCategory": "infrastructure"}]


def test_triage_rejects_an_unknown_category(store: Path) -> None:
    result = CliRunner().invoke(app, ["classify", "triage", "--project", "app", "--build", "1", "--category",
                                      "gremlins", "--config", str(store)])
    assert result.exit_code == 2
    assert "--category 'gremlins': expected one of network" in result.output


def test_a_broken_rule_file_is_a_one_line_error_naming_file_and_rule(store: Path) -> None:
    add_rule_first(store, {"id": "broken", "category": "test", "message": {"regex": "(x)\\1"}})
    result = CliRunner().invoke(app, ["classify", "--config", str(store)])
    assert result.exit_code == 2
    assert "failure-rules.yaml: rule 'broken' message: regex" in result.output


def test_classify_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["classify", "--help"])
    assert "Example: ci-telemetry classify --rebuild" in result.output
    triage_help = CliRunner().invoke(app, ["classify", "triage", "--help"])
    assert "Example: ci-telemetry classify triage" in triage_help.output


def test_rebuild_after_a_real_etl_run_changes_nothing(write_config: Callable[..., Path]) -> None:
    """The normalizers and the rebuild classify with the same inputs: a fresh store needs no correction."""
    from etl.run import run_etl

    config = write_config({"sources": [{"kind": "simulator", "seed": 7, "days": 2, "builds_per_day": 12}],
                           "warehouse": {"kind": "local", "path": "data/warehouse.duckdb"},
                           "staging": {"dir": "data/staging"}})
    run_etl(load_config(config))
    out = run_classify(config)
    changed = [line for line in out.splitlines() if "would change" in line]
    assert len(changed) == 4
    assert all(" 0 would change" in line for line in changed), out
    assert "(of 0 examined)" not in changed[0]
