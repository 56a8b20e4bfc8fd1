"""Re-apply the current rules and human overrides to stored failures; write back only what changed.

`ci-telemetry classify --rebuild` reads failed rows from the deduplicating views (`Latest<Table>`),
classifies them exactly as the normalizers do (same inputs, same precedence), applies
`FailureTriage` overrides (they win over rules), and re-ingests only the rows whose classification
differs — same key, so the store upserts them. A second run finds nothing to change.

Overrides: a `FailureTriage` row keyed like a `TimelineIssues` row overrides that issue; one with
`IssueIndex` -1 overrides the failed `TimelineRecords` row itself (a record without error issues).
A record whose first error issue is overridden follows it, as records follow their first error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from etl.classify import Classification, Classifier, signature
from etl.classify.rules import CATEGORIES, DEFAULT_ORIGINS
from etl.timeutil import utc_now

#: Result / outcome values the normalizers classify (etl/normalize/builds.py, tests.py).
FAILED_RECORD_RESULTS = ("failed", "canceled", "abandoned")
FAILED_TEST_OUTCOMES = ("failed", "aborted", "error", "timeout")
TRIAGE_RULE_ID = "triage"
RECORD_TRIAGE_INDEX = -1

_Q_ISSUES = """declare query_parameters(since:datetime);
LatestTimelineIssues | where QueueTime >= since"""
_Q_RECORDS = """declare query_parameters(since:datetime);
LatestTimelineRecords | where QueueTime >= since"""
_Q_TESTS = """declare query_parameters(since:datetime);
LatestTestResults | where QueueTime >= since and tolower(Outcome) in ("failed", "aborted", "error", "timeout")"""
_Q_METRICS = """declare query_parameters(since:datetime);
LatestBuildMetrics | where QueueTime >= since and isnotempty(FailureReason)"""
_Q_TRIAGE = "LatestFailureTriage"

_ISSUE_FIELDS = ("Bucket", "FailureCategory", "FailureOrigin", "RuleId", "Signature")
_FAILURE_FIELDS = ("FailureCategory", "FailureOrigin", "Signature")


@dataclass
class RebuildOutcome:
    """Rows examined and rows changed, per table."""

    examined: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)


def _clean(value: Any) -> Any:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        return value
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _rows(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    return [{k: _clean(v) for k, v in r.items()} for r in frame.to_dict("records")]


def _data_code(data: Any) -> str | None:
    """The `code` of an issue's Data (JSON text or a mapping), as the normalizer passes exit_code."""
    if data is None:
        return None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    return data.get("code") if isinstance(data, dict) else None


def _lower(value: Any) -> str:
    return str(value or "").lower()


class Triage:
    """FailureTriage overrides by key."""

    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        self._by_key: dict[tuple, dict[str, Any]] = {}
        for r in rows:
            key = (r["Organization"], r["Project"], int(r["BuildId"]), str(r["RecordId"] or ""), int(r["Attempt"]),
                   int(r["IssueIndex"]))
            self._by_key[key] = r

    def apply(self, key: tuple, values: dict[str, Any]) -> dict[str, Any]:
        """*values* with a human override applied when one exists for *key*."""
        t = self._by_key.get(key)
        if t is None or not t.get("FailureCategory"):
            return values
        category = str(t["FailureCategory"]).lower()
        if category not in CATEGORIES:
            return values  # a typo in a triage row must not corrupt the table; the rule result stands
        origin = t.get("FailureOrigin") or DEFAULT_ORIGINS[category]
        return {**values, "FailureCategory": category, "FailureOrigin": origin, "RuleId": TRIAGE_RULE_ID}


def _issue_key(r: dict[str, Any]) -> tuple:
    return (r["Organization"], r["Project"], int(r["BuildId"]), str(r["RecordId"] or ""), int(r["Attempt"]),
            int(r["IssueIndex"]))


def _record_key(r: dict[str, Any]) -> tuple:
    return (r["Organization"], r["Project"], int(r["BuildId"]), str(r["RecordId"] or ""), int(r["Attempt"]))


def _as_issue_fields(c: Classification) -> dict[str, Any]:
    return {"Bucket": c.bucket, "FailureCategory": c.category, "FailureOrigin": c.origin, "RuleId": c.rule_id,
            "Signature": c.signature}


def _differs(row: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(_clean(row.get(k)) != _clean(new.get(k)) for k in new)


def rebuild(
    warehouse: Any, classifier: Classifier, since: datetime, *, dry_run: bool = False, now: datetime | None = None
) -> RebuildOutcome:
    """Reclassify failed rows since *since*; ingest only changed rows (unless *dry_run*)."""
    now = now or utc_now()
    params = {"since": since}
    outcome = RebuildOutcome()
    triage = Triage(_rows(warehouse.query(_Q_TRIAGE)))
    records = _rows(warehouse.query(_Q_RECORDS, params))
    result_of = {_record_key(r): r.get("Result") for r in records}

    # --- issues ---
    issues = _rows(warehouse.query(_Q_ISSUES, params))
    changed_issues, first_error = [], {}
    for r in sorted(issues, key=lambda r: _issue_key(r)):
        if _lower(r.get("Type")) == "error":
            result = "failed" if not r.get("RecordId") else result_of.get(_record_key(r))
            c = classifier.classify(message=r.get("Message"), task_name=r.get("TaskName"),
                                    record_name=r.get("RecordName"), result=result, exit_code=_data_code(r.get("Data")))
            new = triage.apply(_issue_key(r), _as_issue_fields(c))
            first_error.setdefault(_record_key(r), new)
        else:
            new = {"Signature": signature(r.get("Message"))}
        if _differs(r, new):
            changed_issues.append({**r, **new, "IngestedAt": now})
    outcome.examined["TimelineIssues"] = len(issues)
    outcome.changed["TimelineIssues"] = len(changed_issues)

    # --- records (failed) ---
    changed_records, failed_records = [], 0
    for r in records:
        if _lower(r.get("Result")) not in FAILED_RECORD_RESULTS and _record_key(r) not in first_error:
            continue
        failed_records += 1
        issue = first_error.get(_record_key(r))
        if issue is not None:
            new = {k: issue.get(k) for k in _FAILURE_FIELDS}
        else:
            c = classifier.classify(task_name=r.get("TaskName"), record_name=r.get("Name"), result=r.get("Result"),
                                    message=r.get("ResultCode"))
            new = {"FailureCategory": c.category, "FailureOrigin": c.origin, "Signature": c.signature}
            new = {k: v for k, v in triage.apply((*_record_key(r), RECORD_TRIAGE_INDEX), new).items()
                   if k in _FAILURE_FIELDS}
        if _differs(r, new):
            changed_records.append({**r, **new, "IngestedAt": now})
    outcome.examined["TimelineRecords"] = failed_records
    outcome.changed["TimelineRecords"] = len(changed_records)

    # --- test results (failed) ---
    tests = _rows(warehouse.query(_Q_TESTS, params))
    changed_tests = []
    for r in tests:
        c = classifier.classify(message=r.get("ErrorMessage"), test_name=r.get("TestName"), result=r.get("Outcome"))
        new = {"FailureCategory": c.category, "FailureOrigin": c.origin, "Signature": c.signature}
        if _differs(r, new):
            changed_tests.append({**r, **new, "IngestedAt": now})
    outcome.examined["TestResults"] = len(tests)
    outcome.changed["TestResults"] = len(changed_tests)

    # --- uploaded metrics documents with a failure reason ---
    metrics = _rows(warehouse.query(_Q_METRICS, params))
    changed_metrics = []
    for r in metrics:
        c = classifier.classify(message=r.get("FailureReason"), record_name=r.get("FailureStage"), result="failed")
        new = {"FailureCategory": c.category, "FailureOrigin": c.origin, "Signature": c.signature}
        if _differs(r, new):
            changed_metrics.append({**r, **new, "IngestedAt": now})
    outcome.examined["BuildMetrics"] = len(metrics)
    outcome.changed["BuildMetrics"] = len(changed_metrics)

    if not dry_run:
        stamp = f"{now:%Y%m%dT%H%M%S%f}"
        for table, rows in (("TimelineIssues", changed_issues), ("TimelineRecords", changed_records),
                            ("TestResults", changed_tests), ("BuildMetrics", changed_metrics)):
            if rows:
                warehouse.ingest(table, rows, f"reclassify-{table}-{stamp}")
    return outcome
