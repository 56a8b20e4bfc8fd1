"""Normalizers: raw payloads → rows exactly as `kql/tables/*.kql` define them, scrubbed and classified.

`normalize_bundle` turns everything read for one build into rows per table. Every free text goes
through the scrubber (redact), names of people and machines through pseudonymize, and dynamic data
through scrub_data, before the rows are staged. A payload that cannot be read is quarantined; the
rest of the build still produces its rows.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from etl.normalize.builds import name_masker, normalize_build, normalize_timelines, validation_issue_rows
from etl.normalize.context import NormalizeContext, describe_validation_error
from etl.normalize.metrics import MetricsDocumentError, normalize_metrics_document
from etl.normalize.testruns import normalize_results, normalize_run
from etl.privacy import Scrubber
from etl.sources.azure_devops.extract import BuildBundle

__all__ = ["NormalizeContext", "normalize_bundle", "raw_for_staging", "scrub_raw"]

_IDENTITY_KEYS = {"uniqueName", "displayName", "imageUrl", "descriptor"}
_NAME_KEYS = {"workerName", "hostname", "requestedFor"}


def scrub_raw(scrubber: Scrubber, value: Any) -> Any:
    """A raw payload fit for staging: identities pseudonymized, machine names pseudonymized, texts redacted."""
    if isinstance(value, dict):
        if "uniqueName" in value or ("displayName" in value and ("imageUrl" in value or "descriptor" in value)):
            # An identity reference (requestedFor, lastChangedBy, owner...): keep only a stable pseudonym.
            return {"id": scrubber.pseudonymize(value.get("uniqueName") or value.get("displayName"))}
        out = {}
        for k, v in value.items():
            if (k in _NAME_KEYS or k in _IDENTITY_KEYS) and isinstance(v, str):
                out[k] = scrubber.pseudonymize(v)
            else:
                out[k] = scrub_raw(scrubber, v)
        return out
    if isinstance(value, list):
        return [scrub_raw(scrubber, v) for v in value]
    if isinstance(value, str):
        return scrubber.redact(value)
    return value


def raw_for_staging(scrubber: Scrubber, bundle: BuildBundle) -> dict[str, Any]:
    """The bundle's raw payloads as staged: the build's agent names masked in every text, then scrub_raw."""
    names = {r.get("workerName") for _, recs in bundle.timelines for r in recs or [] if isinstance(r, dict)}
    return scrub_raw(scrubber, name_masker(scrubber.pseudonymize, names)(bundle.to_raw()))


def normalize_bundle(ctx: NormalizeContext, bundle: BuildBundle) -> dict[str, list[dict[str, Any]]]:
    """Rows per table for one build; the build itself failing validation quarantines the whole build."""
    tables: dict[str, list[dict[str, Any]]] = {}
    try:
        build_row, facts = normalize_build(ctx, bundle.project, bundle.build)
    except ValidationError as exc:
        field, reason = describe_validation_error(exc)
        ctx.quarantine(ctx.source, f"build {bundle.build.get('id')}", field, reason, bundle.build)
        return tables
    records, issues, attempts = normalize_timelines(ctx, facts, bundle.timelines)
    build_row["Attempts"] = attempts
    issues.extend(validation_issue_rows(ctx, facts, bundle.build))
    tables["TimelineBuilds"] = [build_row]
    tables["TimelineRecords"] = records
    tables["TimelineIssues"] = issues
    runs, results = [], []
    for raw in bundle.test_runs:
        try:
            run_row, run = normalize_run(ctx, facts, raw)
        except ValidationError as exc:
            field, reason = describe_validation_error(exc)
            rid = raw.get("id") if isinstance(raw, dict) else None
            ctx.quarantine(ctx.source, f"build {facts.build_id} test run {rid}", field, reason, raw)
            continue
        runs.append(run_row)
        results.extend(normalize_results(ctx, facts, run, bundle.test_results.get(run.id, [])))
    tables["TestRuns"] = runs
    tables["TestResults"] = results
    metrics, stages, samples = [], [], []
    for doc in bundle.metrics:
        obj = f"build {facts.build_id} artifact {doc.artifact} {doc.file_name}"
        if doc.error:
            ctx.quarantine(ctx.source, obj, "(document)", doc.error, doc.body)
            continue
        key = f"{facts.project}/{facts.build_id}/{doc.file_name}"
        try:
            row, stage_rows, sample_rows = normalize_metrics_document(ctx, key, doc.file_name, doc.body, facts,
                                                                          obj=obj)
        except MetricsDocumentError as exc:
            ctx.quarantine(ctx.source, obj, exc.field, exc.reason, doc.body)
            continue
        metrics.append(row)
        stages.extend(stage_rows)
        samples.extend(sample_rows)
    tables["BuildMetrics"] = metrics
    tables["BuildStages"] = stages
    tables["MetricSamples"] = samples
    return tables
