"""Test runs and results → TestRuns and TestResults rows (every outcome, so rates have denominators)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from etl.normalize.builds import BuildFacts, _iso
from etl.normalize.context import NormalizeContext, describe_validation_error
from etl.sources.azure_devops.models import SubResult, TestResult, TestRun

#: Error messages are bounded: a stack trace of megabytes helps nobody in a table.
MAX_ERROR_BYTES = 4096
_FAILED = {"failed", "aborted", "error", "timeout"}


def bound(text: str | None, limit: int = MAX_ERROR_BYTES) -> str | None:
    """*text* cut to at most *limit* UTF-8 bytes (never inside a character)."""
    if text is None:
        return None
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", errors="ignore") + "..."


def _counts(run: TestRun) -> tuple[int | None, int | None, int | None]:
    """(passed, failed, not executed) from runStatistics when present, else the run's own counters."""
    if run.runStatistics:
        totals: dict[str, int] = {}
        for stat in run.runStatistics:
            outcome = str(stat.get("outcome") or "").lower()
            totals[outcome] = totals.get(outcome, 0) + int(stat.get("count") or 0)
        failed = sum(v for k, v in totals.items() if k in _FAILED)
        not_executed = sum(v for k, v in totals.items() if k in ("notexecuted", "notapplicable", "inconclusive",
                                                                   "blocked", "none"))
        return totals.get("passed", 0), failed, not_executed
    failed = run.unanalyzedTests
    not_executed = None
    if run.notApplicableTests is not None or run.incompleteTests is not None:
        not_executed = (run.notApplicableTests or 0) + (run.incompleteTests or 0)
    return run.passedTests, failed, not_executed


def normalize_run(ctx: NormalizeContext, facts: BuildFacts, raw: dict[str, Any]) -> tuple[dict[str, Any], TestRun]:
    """One TestRuns row; raises ValidationError for an unreadable run."""
    run = TestRun.model_validate(raw)
    ref = run.pipelineReference
    passed, failed, not_executed = _counts(run)
    row = {
        "Organization": facts.organization,
        "Project": facts.project,
        "BuildId": facts.build_id,
        "RunId": run.id,
        "Name": run.name,
        "Attempt": run.attempt,
        "StageName": ref.stageReference.stageName if ref and ref.stageReference else None,
        "PhaseName": ref.phaseReference.phaseName if ref and ref.phaseReference else None,
        "JobName": ref.jobReference.jobName if ref and ref.jobReference else None,
        "State": run.state,
        "StartedDate": _iso(run.startedDate),
        "CompletedDate": _iso(run.completedDate),
        "TotalTests": run.totalTests,
        "PassedTests": passed,
        "FailedTests": failed,
        "NotExecutedTests": not_executed,
        "SourceVersion": facts.source_version,
        **facts.filters,
        "IngestedAt": ctx.ingested_iso,
    }
    return row, run


def _failed_before_pass(subs: list[SubResult]) -> bool:
    return any((sub.outcome or "").lower() in _FAILED or _failed_before_pass(sub.subResults) for sub in subs)


def passed_on_rerun(result: TestResult) -> bool:
    """Outcome Passed, grouped as a rerun, with an earlier Failed attempt among its sub-results."""
    return (
        (result.outcome or "").lower() == "passed"
        and (result.resultGroupType or "").lower() == "rerun"
        and _failed_before_pass(result.subResults)
    )


def normalize_results(
    ctx: NormalizeContext, facts: BuildFacts, run: TestRun, results: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """TestResults rows of one run; an unreadable result is quarantined, the others load."""
    rows = []
    ref = run.pipelineReference
    job = ref.jobReference.jobName if ref and ref.jobReference else None
    for raw in results:
        try:
            result = TestResult.model_validate(raw)
        except ValidationError as exc:
            field, reason = describe_validation_error(exc)
            rid = raw.get("id") if isinstance(raw, dict) else None
            ctx.quarantine(ctx.source, f"build {facts.build_id} test run {run.id} result {rid}", field, reason, raw)
            continue
        message = bound(result.errorMessage)
        row = {
            "Organization": facts.organization,
            "Project": facts.project,
            "RunId": run.id,
            "ResultId": result.id,
            "BuildId": facts.build_id,
            "Attempt": run.attempt,
            "TestName": result.automatedTestName or result.testCaseTitle,
            "TestStorage": result.automatedTestStorage,
            "Outcome": result.outcome,
            "DurationMs": result.durationInMs,
            "ResultGroupType": result.resultGroupType,
            "PassedOnRerun": passed_on_rerun(result),
            "ErrorMessage": message,
            "StartedDate": _iso(result.startedDate),
            "CompletedDate": _iso(result.completedDate),
            "SourceVersion": facts.source_version,
            "JobName": job,
            **facts.filters,
            "IngestedAt": ctx.ingested_iso,
        }
        if (result.outcome or "").lower() in _FAILED:
            # The classifier sees redacted text, so signatures do not vary with the secrets in a message.
            c = ctx.classifier.classify(message=ctx.scrubber.redact(message),
                                        test_name=ctx.scrubber.redact(row["TestName"]), result=result.outcome)
            row.update({"FailureCategory": c.category, "FailureOrigin": c.origin, "Signature": c.signature})
        rows.append(row)
    return rows
