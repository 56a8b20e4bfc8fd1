"""Test runs and results → TestRuns and TestResults rows (every outcome, so rates have denominators)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from etl.normalize.builds import BuildFacts, utc
from etl.normalize.context import NormalizeContext, describe_validation_error, validated_list, validated_time
from etl.sources.azure_devops.models import TEST_RESULTS, SubResult, TestResult, TestRun

#: Error messages are bounded: a stack trace of megabytes helps nobody in a table.
MAX_ERROR_BYTES = 4096
#: Outcomes counted as failures (lower case), in every system's vocabulary mapped to Azure DevOps'.
FAILED_OUTCOMES = {"failed", "aborted", "error", "timeout"}


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
        failed = sum(v for k, v in totals.items() if k in FAILED_OUTCOMES)
        not_executed = sum(v for k, v in totals.items() if k in ("notexecuted", "notapplicable", "inconclusive",
                                                                   "blocked", "none"))
        return totals.get("passed", 0), failed, not_executed
    failed = run.unanalyzedTests
    not_executed = None
    if run.notApplicableTests is not None or run.incompleteTests is not None:
        not_executed = (run.notApplicableTests or 0) + (run.incompleteTests or 0)
    return run.passedTests, failed, not_executed


def run_row(
    ctx: NormalizeContext, facts: BuildFacts, *, run_id: int, name: str | None, attempt: int,
    state: str | None, started: datetime | None, completed: datetime | None, total: int | None,
    passed: int | None, failed: int | None, not_executed: int | None,
    stage: str | None = None, phase: str | None = None, job: str | None = None,
) -> dict[str, Any]:
    """One TestRuns row in the table's shape, whatever system the run came from (values as received)."""
    return {
        "Organization": facts.organization,
        "Project": facts.project,
        "BuildId": facts.build_id,
        "RunId": run_id,
        "Name": name,
        "Attempt": attempt,
        "StageName": stage,
        "PhaseName": phase,
        "JobName": job,
        "State": state,
        "StartedDate": utc(started),
        "CompletedDate": utc(completed),
        "TotalTests": total,
        "PassedTests": passed,
        "FailedTests": failed,
        "NotExecutedTests": not_executed,
        "SourceVersion": facts.source_version,
        **facts.filters,
        "IngestedAt": ctx.ingested_at,
    }


def result_row(
    ctx: NormalizeContext, facts: BuildFacts, *, run_id: int, result_id: int, attempt: int,
    test_name: str | None, storage: str | None, outcome: str | None, duration_ms: float | None,
    group_type: str | None, passed_on_rerun: bool, error_message: str | None,
    started: datetime | None = None, completed: datetime | None = None, job: str | None = None,
) -> dict[str, Any]:
    """One TestResults row: values as received (FIELD_POLICY treats them when staged), the message bounded,
    a failed outcome classified."""
    message = bound(error_message)
    row = {
        "Organization": facts.organization,
        "Project": facts.project,
        "RunId": run_id,
        "ResultId": result_id,
        "BuildId": facts.build_id,
        "Attempt": attempt,
        "TestName": test_name,
        "TestStorage": storage,
        "Outcome": outcome,
        "DurationMs": duration_ms,
        "ResultGroupType": group_type,
        "PassedOnRerun": passed_on_rerun,
        "ErrorMessage": message,
        "StartedDate": utc(started),
        "CompletedDate": utc(completed),
        "SourceVersion": facts.source_version,
        "JobName": job,
        **facts.filters,
        "IngestedAt": ctx.ingested_at,
    }
    if (outcome or "").lower() in FAILED_OUTCOMES:
        # The classifier sees redacted text, so signatures do not vary with the secrets in a message.
        c = ctx.classifier.classify(message=ctx.scrubber.redact(message), test_name=ctx.scrubber.redact(test_name),
                                    result=outcome)
        row.update({"FailureCategory": c.category, "FailureOrigin": c.origin, "Signature": c.signature})
    return row


def normalize_run(ctx: NormalizeContext, facts: BuildFacts, raw: dict[str, Any]) -> tuple[dict[str, Any], TestRun]:
    """One TestRuns row; raises ValidationError for an unreadable run."""
    run = TestRun.model_validate(raw)
    ref = run.pipelineReference
    passed, failed, not_executed = _counts(run)
    row = run_row(
        ctx, facts, run_id=run.id, name=run.name, attempt=run.attempt, state=run.state,
        started=run.startedDate, completed=run.completedDate, total=run.totalTests,
        passed=passed, failed=failed, not_executed=not_executed,
        stage=ref.stageReference.stageName if ref and ref.stageReference else None,
        phase=ref.phaseReference.phaseName if ref and ref.phaseReference else None,
        job=ref.jobReference.jobName if ref and ref.jobReference else None,
    )
    return row, run


def _failed_before_pass(subs: list[SubResult]) -> bool:
    return any((sub.outcome or "").lower() in FAILED_OUTCOMES or _failed_before_pass(sub.subResults) for sub in subs)


def passed_on_rerun(result: TestResult) -> bool:
    """Outcome Passed, grouped as a rerun, with an earlier Failed attempt among its sub-results."""
    return (
        (result.outcome or "").lower() == "passed"
        and (result.resultGroupType or "").lower() == "rerun"
        and _failed_before_pass(result.subResults)
    )


def _failed_before_pass_data(subs: Any) -> bool:
    # `_failed_before_pass` over validated dicts; sub-results that are not a list are none.
    return isinstance(subs, list) and any(
        (sub["outcome"] or "").lower() in FAILED_OUTCOMES or _failed_before_pass_data(sub["subResults"]) for sub in subs)


def _validated_results(ctx: NormalizeContext, facts: BuildFacts, run: TestRun, results: Any) -> list[dict[str, Any]]:
    """The run's results as validated dicts of `TestResult`'s fields, in order; the unreadable ones quarantined.

    One core call for the whole list (no model per result); only the results it rejects go through
    the model, which reads the variants the list validator leaves to it, or quarantines the result
    alone with its own reason (`validated_list`).
    """

    def by_model(raw: Any) -> dict[str, Any] | None:
        try:
            return TestResult.model_validate(raw).model_dump()
        except ValidationError as exc:
            field, reason = describe_validation_error(exc)
            rid = raw.get("id") if isinstance(raw, dict) else None
            ctx.quarantine(ctx.source, f"build {facts.build_id} test run {run.id} result {rid}", field, reason, raw)
            return None

    return validated_list(TEST_RESULTS, results, by_model)


def normalize_results(
    ctx: NormalizeContext, facts: BuildFacts, run: TestRun, results: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """TestResults rows of one run; an unreadable result is quarantined, the others load."""
    rows = []
    ref = run.pipelineReference
    job = ref.jobReference.jobName if ref and ref.jobReference else None
    attempt = run.attempt
    for result in _validated_results(ctx, facts, run, results):
        outcome, group_type = result["outcome"], result["resultGroupType"]
        rerun = ((outcome or "").lower() == "passed" and (group_type or "").lower() == "rerun"
                 and _failed_before_pass_data(result["subResults"]))
        rows.append(result_row(
            ctx, facts, run_id=run.id, result_id=result["id"], attempt=attempt,
            test_name=result["automatedTestName"] or result["testCaseTitle"], storage=result["automatedTestStorage"],
            outcome=outcome, duration_ms=result["durationInMs"], group_type=group_type,
            passed_on_rerun=rerun, error_message=result["errorMessage"],
            started=validated_time(result["startedDate"]), completed=validated_time(result["completedDate"]), job=job,
        ))
    return rows
