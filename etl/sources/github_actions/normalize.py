"""A workflow run as read (`RunBundle`) → rows of every table, registered with `normalize_payload`.

Importing this module registers the normalizer; the source imports it, so any run that reads
GitHub can normalize what it stages. A run, job, annotation or document that fails validation is
quarantined alone (one line naming source, object and field); the rest of the run loads.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from etl.normalize import scrub_raw
from etl.normalize.batch import Normalized, normalize_payload
from etl.normalize.builds import name_masker
from etl.normalize.context import NormalizeContext, describe_validation_error
from etl.normalize.junit import read_junit
from etl.normalize.metrics import MetricsDocumentError, normalize_metrics_document
from etl.sources.github_actions.extract import RunBundle
from etl.sources.github_actions.mapping import annotation_rows, normalize_jobs, normalize_run
from etl.sources.github_actions.models import Annotation, Job, WorkflowRun

TABLES = ("TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults", "BuildMetrics",
          "BuildStages", "MetricSamples")


def _valid(ctx: NormalizeContext, model: type, raw: Any, obj: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        field, reason = describe_validation_error(exc)
        ctx.quarantine(ctx.source, obj, field, reason, raw)
        return None


def normalize_run_bundle(ctx: NormalizeContext, bundle: RunBundle) -> dict[str, list[dict[str, Any]]]:
    """Rows per table for one workflow run with every attempt's jobs, annotations, JUnit reports and metrics."""
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    where = f"{bundle.owner}/{bundle.repo} run {bundle.run.get('id')}"
    run = _valid(ctx, WorkflowRun, bundle.run, where)
    if run is None:
        return tables
    build, facts = normalize_run(ctx, run, bundle.repository())
    tables["TimelineBuilds"] = [build]
    records: dict[tuple[str, int], dict[str, Any]] = {}
    for attempt, raw_jobs in bundle.attempts:
        jobs = [j for j in (_valid(ctx, Job, raw, f"{where} attempt {attempt} job {raw.get('id') if isinstance(raw, dict) else '?'}")
                            for raw in raw_jobs) if j is not None]
        for row in normalize_jobs(ctx, facts, jobs, attempt=attempt, usages=bundle.usages):
            records.setdefault((row["RecordId"], row["Attempt"]), row)  # a job listed again under a later attempt
    tables["TimelineRecords"] = list(records.values())
    build["Attempts"] = max([run.run_attempt, *(a for _, a in records)])
    by_job = {r["RecordId"]: r for r in records.values() if r["Type"] == "Job"}
    mask = name_masker(ctx.scrubber.pseudonymize, {r.get("WorkerName") for r in by_job.values()})
    for job_id, raws in bundle.annotations.items():
        job = by_job.get(job_id)
        if job is None:
            continue
        found = [a for a in (_valid(ctx, Annotation, raw, f"{where} job {job_id} annotation {i}")
                             for i, raw in enumerate(raws)) if a is not None]
        tables["TimelineIssues"].extend(annotation_rows(ctx, facts, job, found, mask))
    for report in bundle.junit:
        obj = f"{where} artifact {report.artifact} {report.path}"
        if report.error is not None:
            ctx.quarantine(ctx.source, obj, "(artifact)", report.error, {"artifact": report.artifact, "path": report.path})
            continue
        key = f"{bundle.owner}/{bundle.repo}/{run.id}/{report.artifact}/{report.path}"
        runs, results = read_junit(ctx, facts, report.data or b"", name=report.path, key=key, attempt=report.attempt,
                                   job=report.job)
        tables["TestRuns"].extend(runs)
        tables["TestResults"].extend(results)
    for doc in bundle.metrics:
        obj = f"{where} artifact {doc.artifact} {doc.file_name}"
        if doc.error:
            ctx.quarantine(ctx.source, obj, "(document)", doc.error, doc.body)
            continue
        key = f"{bundle.owner}/{bundle.repo}/{run.id}/{doc.file_name}"
        try:
            # Runner names masked first, as in annotations: a failure reason often quotes the runner.
            row, stages, samples = normalize_metrics_document(ctx, key, doc.file_name, mask(doc.body), facts, obj=obj)
        except MetricsDocumentError as exc:
            ctx.quarantine(ctx.source, obj, exc.field, exc.reason, doc.body)
            continue
        tables["BuildMetrics"].append(row)
        tables["BuildStages"].extend(stages)
        tables["MetricSamples"].extend(samples)
    return tables


@normalize_payload.register
def _run_bundle(payload: RunBundle, ctx: NormalizeContext, obj: str) -> Normalized:
    return Normalized(scrub_raw(ctx.scrubber, payload.to_raw()), normalize_run_bundle(ctx, payload))
