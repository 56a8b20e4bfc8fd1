"""A small, hand-made store for the query and report tests: two definitions, a red streak on main, a retried
job, a flaky and a broken test, a failure message carrying markup, and a metric with a 30 % step.

Times are relative to END (exclusive end of the reported period); everything lies in the 14 days before it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import yaml

from etl.analysis.alerts import detect_and_record
from etl.analysis.data import Period
from etl.config import PROJECT_ROOT
from etl.warehouse.local import LocalWarehouse

END = datetime(2026, 3, 15)
START = END - timedelta(days=14)
XSS = "<script>alert(1)</script> error CS1002: ; expected"
ORG = "https://dev.azure.com/contoso"
MAIN = "refs/heads/main"


def _t(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def seed(warehouse) -> None:
    """Ingest the rows into *warehouse* (schema applied)."""
    now = END
    builds, jobs, issues, results, samples = [], [], [], [], []
    # ci\main: 40 rolling builds on main, every 8 h; builds 10 and 11 failed, 12 canceled, 13 green again
    for i in range(40):
        bid = 1000 + i
        result = {10: "failed", 11: "failed", 12: "canceled", 20: "partiallySucceeded"}.get(i, "succeeded")
        builds.append({"Organization": ORG, "Project": "proj", "BuildId": bid, "BuildNumber": f"2026.{i}",
                       "DefinitionId": 1, "Definition": "ci\\main", "Reason": "individualCI", "BuildKind": "Rolling",
                       "Status": "completed", "Result": result, "QueueTime": _t(8 * i), "StartTime": _t(8 * i + 0.1),
                       "FinishTime": _t(8 * i + 1), "QueueSeconds": 360.0, "DurationSeconds": 3240.0 + i,
                       "SourceBranch": MAIN, "SourceVersion": f"sha{i:03d}", "Attempts": 2 if i == 5 else 1,
                       "IngestedAt": now})
        jobs.append({"Organization": ORG, "Project": "proj", "BuildId": bid, "RecordId": f"job-{i}", "Attempt": 1,
                     "Type": "Job", "Name": "Linux", "Identifier": "build.linux", "State": "completed",
                     "Result": "failed" if i in (5, 10, 11) else "succeeded", "DurationSeconds": 600.0,
                     "Definition": "ci\\main", "SourceBranch": MAIN, "BuildKind": "Rolling", "QueueTime": _t(8 * i),
                     "IngestedAt": now})
        if i == 5:
            jobs.append({**jobs[-1], "RecordId": "job-5-retry", "Attempt": 2, "Result": "succeeded"})
        for t in ("Tests.Stable", "Tests.Flaky", "Tests.Broken"):
            outcome = "Passed"
            rerun = False
            if t == "Tests.Flaky" and i in (3, 17, 29):
                rerun = True
            if t == "Tests.Broken" and i >= 30:
                outcome = "Failed"
            results.append({"Organization": ORG, "Project": "proj", "RunId": 50000 + i, "ResultId": len(results),
                            "BuildId": bid, "Attempt": 1, "TestName": t, "Outcome": outcome, "DurationMs": 1500.0,
                            "PassedOnRerun": rerun, "ErrorMessage": XSS if outcome == "Failed" else "",
                            "SourceVersion": f"sha{i:03d}", "Definition": "ci\\main", "SourceBranch": MAIN,
                            "BuildKind": "Rolling", "QueueTime": _t(8 * i), "IngestedAt": now})
        samples.append({"Source": "simulated", "Key": f"proj/{bid}/metrics.json", "Metric": "duration_seconds",
                        "Timestamp": _t(8 * i + 1), "Value": (100.0 if i < 25 else 130.0) + (i % 3),
                        "Unit": "s", "Platform": "linux", "Organization": ORG, "Project": "proj", "BuildId": bid,
                        "SourceVersion": f"sha{i:03d}", "Definition": "ci\\main", "SourceBranch": MAIN,
                        "BuildKind": "Rolling", "QueueTime": _t(8 * i), "IngestedAt": now})
    for bid, task, origin, cat in ((1010, "DotNetCoreCLI", "code", "compile_error"), (1011, "DotNetCoreCLI", "code", "compile_error")):
        issues.append({"Organization": ORG, "Project": "proj", "BuildId": bid, "RecordId": f"task-{bid}", "Attempt": 1,
                       "IssueIndex": 0, "RecordName": "Build", "RecordType": "Task", "TaskName": task, "Type": "error",
                       "Category": "General", "Message": XSS, "FailureCategory": cat, "FailureOrigin": origin,
                       "Signature": "error CS<n>: ; expected", "Definition": "ci\\main", "SourceBranch": MAIN,
                       "BuildKind": "Rolling", "QueueTime": _t(8 * (bid - 1000)), "IngestedAt": now})
        jobs.append({"Organization": ORG, "Project": "proj", "BuildId": bid, "RecordId": f"task-{bid}", "Attempt": 1,
                     "Type": "Task", "Name": "Build", "TaskName": task, "Result": "failed", "Definition": "ci\\main",
                     "SourceBranch": MAIN, "BuildKind": "Rolling", "QueueTime": _t(8 * (bid - 1000)), "IngestedAt": now})
    # pr\validate: 6 PR builds; one needed a second attempt, one failed on agent loss (infrastructure)
    for k in range(6):
        bid = 2000 + k
        builds.append({"Organization": ORG, "Project": "proj", "BuildId": bid, "DefinitionId": 2,
                       "Definition": "pr\\validate", "Reason": "pullRequest", "BuildKind": "PullRequest",
                       "Status": "completed", "Result": "failed" if k == 4 else "succeeded", "QueueTime": _t(20 * k + 3),
                       "StartTime": _t(20 * k + 3.2), "FinishTime": _t(20 * k + 4), "QueueSeconds": 720.0,
                       "DurationSeconds": 2880.0, "SourceBranch": f"refs/pull/{k}/merge", "TargetBranch": MAIN,
                       "PullRequestNumber": 700 + k, "SourceVersion": f"pr{k}", "Attempts": 2 if k == 1 else 1,
                       "IngestedAt": now})
    issues.append({"Organization": ORG, "Project": "proj", "BuildId": 2004, "RecordId": "job-2004", "Attempt": 1,
                   "IssueIndex": 0, "RecordName": "Windows", "RecordType": "Job", "Type": "error", "Category": "General",
                   "Message": "We stopped hearing from agent Azure Pipelines 7", "FailureCategory": "agent_lost",
                   "FailureOrigin": "infrastructure", "Signature": "We stopped hearing from agent <agent>",
                   "Definition": "pr\\validate", "SourceBranch": "refs/pull/4/merge", "TargetBranch": MAIN,
                   "BuildKind": "PullRequest", "QueueTime": _t(83), "IngestedAt": now})
    warehouse.ingest("TimelineBuilds", builds, "seed-builds")
    warehouse.ingest("TimelineRecords", jobs, "seed-records")
    warehouse.ingest("TimelineIssues", issues, "seed-issues")
    warehouse.ingest("TestResults", results, "seed-results")
    warehouse.ingest("MetricSamples", samples, "seed-samples")
    warehouse.ingest("EtlRuns", [{"RunId": "run-1", "Source": "simulated", "Organization": ORG, "Project": "proj",
                                  "StartedAt": END - timedelta(hours=1), "FinishedAt": END - timedelta(minutes=50),
                                  "WatermarkTo": _t(8 * 39 + 1), "Builds": 46, "Quarantined": 0, "Status": "succeeded",
                                  "IngestedAt": now}], "seed-etlruns")


def make_config(root: Path) -> Path:
    """A config over the hand-made store under *root*, its Alerts written as the pipeline writes them."""
    (root / "config").mkdir(parents=True)
    wh = LocalWarehouse(root / "data" / "warehouse.duckdb")
    wh.apply_schema()
    seed(wh)
    # The Alerts-writing step of the pipeline, before any report reads Alerts.
    detect_and_record(wh, PROJECT_ROOT / "config" / "monitors.yaml", Period(START - timedelta(days=14), END))
    wh.close()
    path = root / "config" / "test.yaml"
    path.write_text(yaml.safe_dump({
        "sources": [{"kind": "simulator"}],
        "warehouse": {"kind": "local", "path": "data/warehouse.duckdb"},
        "reports": {"monitors": str(PROJECT_ROOT / "config" / "monitors.yaml")},
    }))
    return path
