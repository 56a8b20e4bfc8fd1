"""A Jenkins build as read (`JenkinsBuild`) → rows of the Azure DevOps tables, in their vocabulary.

Organization = the source's label (Jenkins has none), Project = the first segment of the job's full
name, Definition = the full name, BuildId = a stable 63-bit hash of (full name, number of the
build's *root*). A restart or replay is its own Jenkins build, linked to the build it retries by its
cause; it is written as the next `Attempt` of its root, so its rows share the root's BuildId and the
retry analysis sees it like an Azure DevOps retry. Each stage becomes a `Stage` record and a `Job`
record under it (the unit that reruns), each step a `Task` record under the job with `TaskName` =
the step function (`sh`, `bat`, ...). The table in docs/sources.md ("Jenkins") is the reference.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from etl.normalize.batch import Normalized, normalize_payload, scrub_raw
from etl.normalize.builds import BuildFacts, _iso
from etl.normalize.context import NormalizeContext, describe_validation_error
from etl.normalize.junit import read_junit, run_id_for
from etl.normalize.metrics import MetricsDocumentError, normalize_metrics_document
from etl.normalize.testruns import result_row, run_row
from etl.sources.jenkins.models import Case, FlowNode, ListedBuild, StageDetail, TestReport
from etl.sources.jenkins.steps import step_function

_RESULTS = {"SUCCESS": "succeeded", "FAILURE": "failed", "FAILED": "failed", "ABORTED": "canceled",
            "UNSTABLE": "partiallySucceeded", "NOT_BUILT": "none"}
_RECORD_RESULTS = {"SUCCESS": "succeeded", "FAILED": "failed", "FAILURE": "failed", "ABORTED": "canceled",
                   "UNSTABLE": "succeededWithIssues", "NOT_EXECUTED": "skipped", "SKIPPED": "skipped",
                   "NOT_BUILT": "skipped"}
_PENDING = {"IN_PROGRESS": "inProgress", "PAUSED_PENDING_INPUT": "inProgress", "QUEUED": "pending"}
_OUTCOMES = {"PASSED": "Passed", "FIXED": "Passed", "FAILED": "Failed", "REGRESSION": "Failed",
             "SKIPPED": "NotExecuted"}
_FAILED = {"failed", "canceled"}
_PR_JOB = re.compile(r"^PR-(\d+)$")


def stable_id(key: str) -> int:
    """A positive 63-bit id that is the same for the same *key* in every run."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") >> 1


def build_id(job: str, root_number: int) -> int:
    """BuildId of a Jenkins build: its job's full name and the number of the root of its retry chain."""
    return stable_id(f"{job}#{root_number}")


@dataclass
class Document:
    """An archived artifact as read: its bytes, or why it was not read."""

    path: str
    data: bytes | None = None
    error: str | None = None


@dataclass
class JenkinsBuild:
    """Everything read for one Jenkins build: the payload of one Item."""

    source: str
    organization: str
    job: str
    build: dict[str, Any]
    root_number: int
    root_timestamp: int
    attempt: int = 1
    retry_kind: str | None = None
    root_causes: list[dict[str, Any]] = field(default_factory=list)
    describe: dict[str, Any] | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)
    test_report: dict[str, Any] | None = None
    metrics: list[Document] = field(default_factory=list)
    junit: list[Document] = field(default_factory=list)
    #: A later attempt of the same root is in the same batch: it writes the root's build row, this one does not
    #: (rows of one batch share their IngestedAt, so "latest wins" could not tell them apart in the cluster).
    superseded: bool = False

    @property
    def project(self) -> str:
        return self.job.split("/")[0]

    @property
    def number(self) -> int:
        return int(self.build["number"])

    @property
    def body(self) -> dict[str, Any]:
        """What the quarantine keeps when normalizing this build fails (`normalize_batch` reads `body`)."""
        return self.to_raw()

    def to_raw(self) -> dict[str, Any]:
        """The JSON payloads as received (artifacts by path and size only)."""
        return {"job": self.job, "build": self.build, "root": self.root_number, "attempt": self.attempt,
                "describe": self.describe, "stages": self.stages, "testReport": self.test_report,
                "artifacts": [{"path": d.path, "bytes": len(d.data or b""), "error": d.error}
                              for d in [*self.metrics, *self.junit]]}


def _when(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else round(ms / 1000, 3)


def build_result(value: str | None) -> str | None:
    """A Jenkins build result as an Azure DevOps one (succeeded, partiallySucceeded, failed, canceled, none)."""
    return _RESULTS.get((value or "").upper(), value.lower()) if value else None


def record_result(status: str | None) -> tuple[str | None, str | None]:
    """(State, Result) of a wfapi status: completed + succeeded/succeededWithIssues/failed/canceled/skipped."""
    upper = (status or "").upper()
    if upper in _PENDING:
        return _PENDING[upper], None
    if not upper:
        return None, None
    return "completed", _RECORD_RESULTS.get(upper, status.lower() if status else None)


def build_kind(job: str, causes: list[dict[str, Any]]) -> str:
    """PullRequest (a multibranch `PR-n` job), Scheduled (timer), Rolling (SCM, branch events), Manual, Other."""
    if _PR_JOB.match(job.rsplit("/", 1)[-1]):
        return "PullRequest"
    names = " ".join(str(c.get("_class") or "") for c in causes if isinstance(c, dict))
    if "TimerTrigger" in names:
        return "Scheduled"
    if any(k in names for k in ("SCMTrigger", "BranchIndexingCause", "BranchEventCause", "GitHubPushCause",
                                "GitLabWebHookCause", "UpstreamCause")):
        return "Rolling"
    if "UserIdCause" in names or "UserCause" in names:
        return "Manual"
    return "Other"


def _reason(causes: list[dict[str, Any]]) -> str | None:
    for cause in causes:
        if isinstance(cause, dict) and cause.get("_class"):
            return str(cause["_class"]).rsplit(".", 1)[-1].split("$")[-1]
    return None


def _revision(build: dict[str, Any]) -> tuple[str | None, str | None]:
    """(SHA, branch as refs/heads/...) from the git plugin's `lastBuiltRevision`, when the build has one."""
    for action in build.get("actions") or []:
        rev = action.get("lastBuiltRevision") if isinstance(action, dict) else None
        if isinstance(rev, dict):
            branches = rev.get("branch") or []
            name = branches[0].get("name") if branches and isinstance(branches[0], dict) else None
            if isinstance(name, str):
                name = re.sub(r"^(refs/remotes/)?origin/", "", name)
                name = name if name.startswith("refs/") else f"refs/heads/{name}"
            return (rev.get("SHA1") if isinstance(rev.get("SHA1"), str) else None), name
    return None, None


def normalize_build(ctx: NormalizeContext, payload: JenkinsBuild,
                    listed: ListedBuild) -> tuple[dict[str, Any], BuildFacts]:
    """One TimelineBuilds row (the root's row, as of this attempt) and the facts its rows carry."""
    job = payload.job
    sha, branch = _revision(payload.build)
    pr = _PR_JOB.match(job.rsplit("/", 1)[-1])
    causes = payload.root_causes or [c.model_dump(by_alias=True) for c in listed.causes]
    kind = build_kind(job, causes)
    queue = _iso(_when(payload.root_timestamp))
    finish = _when(listed.completed_ms)
    ident = build_id(job, payload.root_number)
    filters = {
        "DefinitionId": stable_id(job),
        "Definition": job,
        "SourceBranch": branch,
        "TargetBranch": branch if kind != "PullRequest" else None,
        "BuildKind": kind,
        "QueueTime": queue,
    }
    user = next((c.userId or c.userName for c in listed.causes if c.userId or c.userName), None)
    row = {
        "System": "jenkins",
        "Organization": payload.organization,
        "Project": payload.project,
        "BuildId": ident,
        "BuildNumber": str(payload.root_number),
        "DefinitionId": filters["DefinitionId"],
        "Definition": job,
        "Repository": None,
        "Reason": payload.retry_kind or _reason(causes),
        "BuildKind": kind,
        "Status": "completed",
        "Result": build_result(listed.result),
        "QueueTime": queue,
        "StartTime": _iso(_when(listed.timestamp)),
        "FinishTime": _iso(finish),
        "QueueSeconds": None,
        "DurationSeconds": _seconds(listed.duration),
        "SourceBranch": branch,
        "TargetBranch": filters["TargetBranch"],
        "PullRequestNumber": int(pr.group(1)) if pr else None,
        "SourceVersion": sha,
        "RequestedFor": user,
        "QueueName": None,
        "Tags": json.dumps([]),
        "Attempts": payload.attempt,
        "LastChangedDate": _iso(finish),
        "Url": listed.url,
        "IngestedAt": ctx.ingested_at,
    }
    return row, BuildFacts(payload.organization, payload.project, ident, sha, filters, finish)


def _record(ctx: NormalizeContext, facts: BuildFacts, attempt: int, **values: Any) -> dict[str, Any]:
    row = {
        "Organization": facts.organization, "Project": facts.project, "BuildId": facts.build_id,
        "Attempt": attempt, "TimelineId": None, "ResultCode": None, "QueueId": None, "TaskId": None,
        "TaskName": None, "TaskVersion": None, "ErrorCount": None, "WarningCount": None, "LogId": None,
        "LogUrl": None, "ChangeId": None, "LastModified": None, "WorkerName": None, "Identifier": None,
        **values, **facts.filters, "IngestedAt": ctx.ingested_at,
    }
    if (row["Result"] or "") in _FAILED:
        redact = ctx.scrubber.redact
        c = ctx.classifier.classify(task_name=row["TaskName"], record_name=redact(row["Name"]),
                                    result=row["Result"], message=redact(values.get("_message")))
        row.update({"FailureCategory": c.category, "FailureOrigin": c.origin, "Signature": c.signature})
    row.pop("_message", None)
    return row


def _node_values(node: FlowNode) -> dict[str, Any]:
    state, result = record_result(node.status)
    start = _when(node.startTimeMillis)
    end = _when(node.startTimeMillis + node.durationMillis) if node.startTimeMillis is not None and \
        node.durationMillis is not None else None
    return {"State": state, "Result": result, "ResultCode": node.status, "StartTime": _iso(start),
            "FinishTime": _iso(end), "DurationSeconds": _seconds(node.durationMillis)}


def normalize_stages(ctx: NormalizeContext, facts: BuildFacts, payload: JenkinsBuild,
                     obj: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(TimelineRecords, TimelineIssues) of the build's stages and steps; an unreadable stage is quarantined."""
    records: list[dict[str, Any]] = []
    issues: list[dict[str, Any]] = []
    attempt = payload.attempt
    for order, raw in enumerate(payload.stages, start=1):
        try:
            stage = StageDetail.model_validate(raw)
        except ValidationError as exc:
            fld, reason = describe_validation_error(exc)
            ctx.quarantine(ctx.source, f"{obj} stage {order}", fld, reason, raw)
            continue
        path = f"{order:04d}"
        job_id = f"{stage.id}.job"
        message = stage.error.message if stage.error else None
        common = _node_values(stage)
        records.append(_record(ctx, facts, attempt, RecordId=stage.id, ParentId=None, Type="Stage", Name=stage.name,
                               Identifier=stage.name, Path=path, RecordOrder=order, _message=message, **common))
        records.append(_record(ctx, facts, attempt, RecordId=job_id, ParentId=stage.id, Type="Job", Name=stage.name,
                               Identifier=stage.name, Path=f"{path}.0001", RecordOrder=1, _message=message, **common))
        for index, step in enumerate(stage.stageFlowNodes, start=1):
            values = _node_values(step)
            task = step_function(step.name)
            error = step.error.message if step.error else None
            records.append(_record(ctx, facts, attempt, RecordId=step.id, ParentId=job_id, Type="Task",
                                   Name=step.name, Path=f"{path}.0001.{index:04d}", RecordOrder=index,
                                   TaskName=task, TaskVersion=None, _message=error,
                                   ErrorCount=1 if error else 0, **values))
            if error and values["Result"] in _FAILED:
                issues.append(_issue(ctx, facts, attempt, step, f"{path}.0001.{index:04d}", task, error,
                                     values["Result"]))
    return records, issues


def _issue(ctx: NormalizeContext, facts: BuildFacts, attempt: int, step: FlowNode, path: str, task: str | None,
           message: str, result: str | None) -> dict[str, Any]:
    row = {
        "Organization": facts.organization, "Project": facts.project, "BuildId": facts.build_id,
        "RecordId": step.id, "Attempt": attempt, "IssueIndex": 0, "TimelineId": None, "Path": path,
        "RecordName": step.name, "RecordType": "Task", "TaskName": task, "Type": "error",
        "Category": step.error.type if step.error and step.error.type else "General", "Message": message,
        "LogLine": None, "Data": None, **facts.filters, "IngestedAt": ctx.ingested_at,
    }
    c = ctx.classifier.classify(message=ctx.scrubber.redact(message), task_name=task,
                                record_name=ctx.scrubber.redact(step.name), result=result)
    row.update({"Bucket": c.bucket, "FailureCategory": c.category, "FailureOrigin": c.origin,
                "RuleId": c.rule_id, "Signature": c.signature})
    return row


def _case_name(case: Case) -> str:
    return f"{case.className}.{case.name}" if case.className else case.name


def normalize_test_report(ctx: NormalizeContext, facts: BuildFacts, payload: JenkinsBuild,
                          obj: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One TestRuns row for the build's test report and a TestResults row per case."""
    if payload.test_report is None:
        return [], []
    try:
        report = TestReport.model_validate(payload.test_report)
    except ValidationError as exc:
        fld, reason = describe_validation_error(exc)
        ctx.quarantine(ctx.source, f"{obj} testReport", fld, reason, payload.test_report)
        return [], []
    listed = ListedBuild.model_validate(payload.build)
    run_id = run_id_for(f"{payload.job}/{payload.number}/testReport")
    results, counts = [], {"Passed": 0, "Failed": 0, "NotExecuted": 0}
    position = 0
    for suite in report.suites:
        for case in suite.cases:
            position += 1
            outcome = "NotExecuted" if case.skipped else _OUTCOMES.get((case.status or "").upper(), case.status)
            counts[outcome] = counts.get(outcome, 0) + 1
            results.append(result_row(
                ctx, facts, run_id=run_id, result_id=position, attempt=payload.attempt,
                test_name=_case_name(case), storage=suite.name, outcome=outcome,
                duration_ms=round(case.duration * 1000, 3) if case.duration is not None else None,
                group_type=None, passed_on_rerun=False, error_message=case.errorDetails))
    started = _when(listed.timestamp)
    run = run_row(ctx, facts, run_id=run_id, name=f"{payload.job} #{payload.number}", attempt=payload.attempt,
                  state="Completed", started=started, completed=_when(listed.completed_ms), total=position,
                  passed=counts["Passed"], failed=counts["Failed"], not_executed=counts["NotExecuted"])
    return [run], results


def _normalize(payload: JenkinsBuild, ctx: NormalizeContext, obj: str) -> Normalized:
    raw = scrub_raw(ctx.scrubber, payload.to_raw())
    try:
        listed = ListedBuild.model_validate(payload.build)
    except ValidationError as exc:
        fld, reason = describe_validation_error(exc)
        ctx.quarantine(ctx.source, obj, fld, reason, payload.build)
        return Normalized(raw)
    build_row, facts = normalize_build(ctx, payload, listed)
    records, issues = normalize_stages(ctx, facts, payload, obj)
    runs, results = normalize_test_report(ctx, facts, payload, obj)
    for doc in payload.junit:
        name = f"{obj} artifact {doc.path}"
        if doc.error is not None or doc.data is None:
            ctx.quarantine(ctx.source, name, "(document)", doc.error or "unreadable", None)
            continue
        r, rs = read_junit(ctx, facts, doc.data, name=doc.path, key=f"{payload.job}/{payload.number}/{doc.path}",
                           attempt=payload.attempt)
        runs.extend(r)
        results.extend(rs)
    metrics, stage_rows, samples = _metrics(ctx, facts, payload, obj)
    return Normalized(raw, {"TimelineBuilds": [] if payload.superseded else [build_row], "TimelineRecords": records, "TimelineIssues": issues,
                            "TestRuns": runs, "TestResults": results, "BuildMetrics": metrics,
                            "BuildStages": stage_rows, "MetricSamples": samples})


def _metrics(ctx: NormalizeContext, facts: BuildFacts, payload: JenkinsBuild,
             obj: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    from etl.sources.bounded import parse_json_document

    metrics: list[dict[str, Any]] = []
    stages: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    for doc in payload.metrics:
        name = f"{obj} artifact {doc.path}"
        if doc.error is not None or doc.data is None:
            ctx.quarantine(ctx.source, name, "(document)", doc.error or "unreadable", None)
            continue
        parsed = parse_json_document(doc.data)
        if not parsed.ok:
            ctx.quarantine(ctx.source, name, "(document)", parsed.error or "unreadable", parsed.excerpt)
            continue
        file_name = doc.path.rsplit("/", 1)[-1]
        try:
            row, st, sa = normalize_metrics_document(ctx, f"{payload.job}/{payload.number}/{doc.path}", file_name,
                                                     parsed.body, facts, obj=name)
        except MetricsDocumentError as exc:
            ctx.quarantine(ctx.source, name, exc.field, exc.reason, parsed.body)
            continue
        metrics.append(row)
        stages.extend(st)
        samples.extend(sa)
    return metrics, stages, samples


normalize_payload.register(JenkinsBuild, _normalize)
