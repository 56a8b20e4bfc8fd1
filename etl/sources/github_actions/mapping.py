"""GitHub Actions payloads → TimelineBuilds and TimelineRecords rows, in Azure DevOps' vocabulary.

Organization = owner, Project = repository, Definition = workflow, BuildId = run id, Attempt =
run_attempt. A job is a `Job` record (Path `0001`, ordered by job id, i.e. by creation) and each of
its steps a `Task` record under it (Path `0001.0003` for step number 3). Status and conclusion are
translated so reports filter every system alike (`Result == "failed"`); the raw conclusion is kept
in ResultCode. Values are stored as received: `etl.privacy.FIELD_POLICY` pseudonymizes (actor,
runner) and redacts (names, URLs) them when the rows are staged. The table in docs/sources.md
("GitHub Actions") is the reference.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from etl.normalize.builds import BuildFacts, _classify_issue, _iso, _issue_base, _seconds
from etl.normalize.context import NormalizeContext
from etl.sources.github_actions.models import Annotation, Artifact, Job, Repository, Step, WorkflowRun

_KINDS = {
    "pull_request": "PullRequest",
    "pull_request_target": "PullRequest",
    "merge_group": "PullRequest",
    "push": "Rolling",
    "schedule": "Scheduled",
    "workflow_dispatch": "Manual",
    "repository_dispatch": "Manual",
}
_STATES = {"queued": "pending", "waiting": "pending", "requested": "pending", "pending": "pending",
           "in_progress": "inProgress", "completed": "completed"}
_RESULTS = {"success": "succeeded", "failure": "failed", "timed_out": "failed", "startup_failure": "failed",
            "cancelled": "canceled", "skipped": "skipped", "neutral": "succeeded",
            "action_required": "failed", "stale": "canceled"}
_FAILED = {"failed", "canceled"}
# The default name of a `uses:` step; a step named by its author does not say which action it runs.
_USES = re.compile(r"^(?:Post )?Run ([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?)@(\S+)$")


def build_kind(event: str | None) -> str:
    """PullRequest, Rolling, Scheduled, Manual or Other, from a run's `event`."""
    return _KINDS.get((event or "").lower(), "Other")


def state(status: str | None) -> str | None:
    """A GitHub status as an Azure DevOps record state (pending, inProgress, completed)."""
    return _STATES.get((status or "").lower(), status)


def result(conclusion: str | None) -> str | None:
    """A GitHub conclusion as an Azure DevOps result (succeeded, failed, canceled, skipped)."""
    return _RESULTS.get((conclusion or "").lower(), conclusion) if conclusion else None


def step_action(name: str) -> tuple[str | None, str | None]:
    """(owner/name, ref) of a step GitHub named `Run owner/name@ref`; (None, None) for any other step."""
    m = _USES.match(name)
    return (m.group(1), m.group(2)) if m else (None, None)


def _branch(name: str | None) -> str | None:
    if not name:
        return None
    return name if name.startswith("refs/") else f"refs/heads/{name}"


def workflow_name(run: WorkflowRun, fallback: str | None = None) -> str | None:
    """The workflow's name; webhooks send `name: ""`, so then the caller's name or the file's stem."""
    if run.name:
        return run.name
    if fallback:
        return fallback
    return PurePosixPath((run.path or "").split("@")[0]).stem or None


def normalize_run(ctx: NormalizeContext, run: WorkflowRun, repository: Repository | None = None,
                  workflow: str | None = None) -> tuple[dict[str, Any], BuildFacts]:
    """One TimelineBuilds row and the facts its records denormalize; *repository* when the run lacks one."""
    repo = run.repository or repository
    if repo is None:
        raise ValueError(f"workflow run {run.id}: repository: missing")
    definition = workflow_name(run, workflow)
    kind = build_kind(run.event)
    pr = run.pull_requests[0] if run.pull_requests else None
    target = _branch(pr.base.ref) if pr and pr.base and pr.base.ref else None
    if target is None and kind != "PullRequest":
        target = _branch(run.head_branch)  # as for Azure DevOps: a rolling run "targets" what it built
    completed = (run.status or "").lower() == "completed"
    finish = run.updated_at if completed else None  # the REST run has no finish time; updated_at is its last change
    filters = {
        "DefinitionId": run.workflow_id,
        "Definition": definition,
        "SourceBranch": _branch(run.head_branch),
        "TargetBranch": target,
        "BuildKind": kind,
        "QueueTime": _iso(run.created_at),
    }
    actor = run.triggering_actor or run.actor
    row = {
        "System": "github_actions",
        "Organization": repo.owner.login,
        "Project": repo.name,
        "BuildId": run.id,
        "BuildNumber": str(run.run_number) if run.run_number is not None else None,
        "DefinitionId": run.workflow_id,
        "Definition": definition,
        "Repository": repo.full_name or f"{repo.owner.login}/{repo.name}",
        "Reason": run.event,
        "BuildKind": kind,
        "Status": state(run.status),
        "Result": result(run.conclusion),
        "QueueTime": filters["QueueTime"],
        "StartTime": _iso(run.run_started_at),
        "FinishTime": _iso(finish),
        "QueueSeconds": _seconds(run.created_at, run.run_started_at),
        "DurationSeconds": _seconds(run.run_started_at, finish),
        "SourceBranch": filters["SourceBranch"],
        "TargetBranch": target,
        "PullRequestNumber": pr.number if pr else None,
        "SourceVersion": run.head_sha,
        "RequestedFor": actor.login if actor else None,
        "QueueName": None,
        "Tags": json.dumps([]),
        "Attempts": run.run_attempt,
        "LastChangedDate": _iso(run.updated_at),
        "Url": run.html_url,
        "IngestedAt": ctx.ingested_at,
    }
    facts = BuildFacts(repo.owner.login, repo.name, run.id, run.head_sha, filters, finish)
    return row, facts


def facts_for_job(repository: Repository, job: Job) -> BuildFacts:
    """Facts of a job known without its run (a `workflow_job` webhook): no event, so BuildKind Other."""
    filters = {
        "DefinitionId": None,
        "Definition": job.workflow_name,
        "SourceBranch": _branch(job.head_branch),
        "TargetBranch": None,
        "BuildKind": "Other",
        "QueueTime": _iso(job.created_at),
    }
    return BuildFacts(repository.owner.login, repository.name, job.run_id, job.head_sha, filters, None)


def _record(ctx: NormalizeContext, facts: BuildFacts, **values: Any) -> dict[str, Any]:
    row = {
        "Organization": facts.organization,
        "Project": facts.project,
        "BuildId": facts.build_id,
        "TimelineId": None,
        "ResultCode": None,
        "QueueId": None,
        "TaskId": None,
        "TaskName": None,
        "TaskVersion": None,
        "ErrorCount": None,
        "WarningCount": None,
        "LogId": None,
        "LogUrl": None,
        "ChangeId": None,
        "LastModified": None,
        "WorkerName": None,
        "Identifier": None,
        **values,
        **facts.filters,
        "IngestedAt": ctx.ingested_at,
    }
    if (row["Result"] or "") in _FAILED:
        # The classifier sees redacted text, as for Azure DevOps records, so signatures carry no secrets.
        redact = ctx.scrubber.redact
        c = ctx.classifier.classify(task_name=row["TaskName"], record_name=redact(row["Name"]),
                                    result=row["Result"], message=redact(row["ResultCode"]))
        row.update({"FailureCategory": c.category, "FailureOrigin": c.origin, "Signature": c.signature})
    return row


def _step_row(ctx: NormalizeContext, facts: BuildFacts, job: Job, attempt: int, path: str, step: Step,
              usages: dict[str, Any] | None) -> dict:
    key = f"{job.id}.{step.number}"
    if usages is not None and key in usages:
        action, ref = usages[key] or (None, None)  # read from the workflow file (etl.sources.github_actions.workflow)
    else:
        action, ref = step_action(step.name)
    return _record(
        ctx, facts,
        RecordId=f"{job.id}.{step.number}",
        Attempt=attempt,
        ParentId=str(job.id),
        Type="Task",
        Name=step.name,
        Path=f"{path}.{step.number:04d}",
        RecordOrder=step.number,
        State=state(step.status),
        Result=result(step.conclusion),
        ResultCode=step.conclusion,
        StartTime=_iso(step.started_at),
        FinishTime=_iso(step.completed_at),
        DurationSeconds=_seconds(step.started_at, step.completed_at),
        TaskName=action,
        TaskVersion=ref,
    )


def normalize_jobs(ctx: NormalizeContext, facts: BuildFacts, jobs: list[Job],
                   attempt: int | None = None, usages: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """TimelineRecords rows: a Job record per job and a Task record per step, keyed (RecordId, Attempt).

    *attempt* applies to jobs that do not say theirs (the REST example omits `run_attempt`).
    *usages* maps `jobid.stepnumber` to the step's (action, ref) as the workflow file says; steps
    it does not list keep what their names say (`Run owner/name@ref`).
    """
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for order, job in enumerate(sorted(jobs, key=lambda j: j.id), start=1):
        job_attempt = job.run_attempt or attempt or 1
        if (str(job.id), job_attempt) in seen:  # a job can appear on two overlapping pages
            continue
        seen.add((str(job.id), job_attempt))
        path = f"{order:04d}"
        rows.append(_record(
            ctx, facts,
            RecordId=str(job.id),
            Attempt=job_attempt,
            ParentId=None,
            Type="Job",
            Name=job.name,
            Path=path,
            RecordOrder=order,
            State=state(job.status),
            Result=result(job.conclusion),
            ResultCode=job.conclusion,
            StartTime=_iso(job.started_at),
            FinishTime=_iso(job.completed_at),
            DurationSeconds=_seconds(job.started_at, job.completed_at),
            WorkerName=job.runner_name,
            QueueId=job.runner_group_id,
            LogUrl=job.html_url,
        ))
        rows.extend(_step_row(ctx, facts, job, job_attempt, path, step, usages) for step in job.steps)
    return rows


_LEVELS = {"failure": "error", "warning": "warning", "notice": "notice"}


def annotation_rows(ctx: NormalizeContext, facts: BuildFacts, job_record: dict[str, Any],
                    annotations: list[Annotation], mask: Callable[[Any], Any] = lambda v: v) -> list[dict[str, Any]]:
    """TimelineIssues rows of one job's check-run annotations (failure → error, warning, notice).

    *mask* replaces the run's runner names inside messages with their pseudonyms before they are
    classified, so a signature does not depend on which names the scrubber has met so far.
    """
    rows = []
    for index, a in enumerate(annotations):
        kind = _LEVELS.get((a.annotation_level or "").lower(), a.annotation_level)
        row = _issue_base(ctx, facts, job_record["RecordId"], job_record["Attempt"], index, None,
                          job_record["Path"], job_record["Name"], "Job", None)
        message = a.message if not a.title or a.title in (a.message or "") else f"{a.title}: {a.message}"
        message = mask(message)
        data = {k: v for k, v in (("path", a.path), ("start_line", a.start_line), ("end_line", a.end_line))
                if v is not None}
        row.update({"Type": kind, "Category": "Annotation", "Message": message, "LogLine": a.start_line,
                    "Data": json.dumps(data, sort_keys=True)})
        _classify_issue(ctx, row, message, kind, None, job_record["Name"], job_record.get("Result"))
        rows.append(row)
    return rows


def wanted_artifacts(artifacts: list[Artifact], names: set[str]) -> list[Artifact]:
    """The artifacts named in *names* (`*` globs allowed) that can still be downloaded; an expired one is absent."""
    return [a for a in artifacts if not a.expired and any(fnmatch.fnmatchcase(a.name, n) for n in names)]
