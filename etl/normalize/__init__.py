"""Normalizers: raw payloads → rows exactly as `kql/tables/*.kql` define them, scrubbed and classified.

`normalize_bundle` turns everything read for one build into rows per table. The rows carry values as
received: each text column gets its treatment (kept, redacted, pseudonymized) from
`etl.privacy.FIELD_POLICY` in one place, `apply_policy`, as the outbox stages them. A payload that cannot be read is quarantined; the
rest of the build still produces its rows.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from etl.columns import Columns
from etl.json_line import json_line
from etl.normalize.builds import normalize_build, normalize_timelines, validation_issue_rows
from etl.normalize.context import NormalizeContext, describe_validation_error
from etl.normalize.held_timelines import HeldTimelines
from etl.normalize.metrics import MetricsDocumentError, normalize_metrics_document
from etl.normalize.testruns import normalize_results, normalize_run
from etl.normalize.timeline_columns import record_columns, timeline_record_columns
from etl.privacy import Scrubber, scrub_payload, scrub_payload_serialized
from etl.privacy_bytes import HeldArray, scrub_serialized_with_arrays
from etl.sources.azure_devops.extract import BuildBundle

__all__ = ["NormalizeContext", "normalize_bundle", "raw_for_staging", "scrub_raw"]

def scrub_raw(scrubber: Scrubber, value: Any) -> Any:
    """A raw payload fit for staging (see `etl.privacy.scrub_payload`): keys and texts redacted, names pseudonymized."""
    return scrub_payload(scrubber, value)


def raw_for_staging(scrubber: Scrubber, bundle: BuildBundle, held: HeldTimelines | None = None) -> bytes:
    """The bundle's raw payloads as staged, one JSON line: its agent and person names masked in every text,
    the rest redacted. With *held*, the timelines held as bytes are staged from their records' bytes.

    Scrubbed in place, so the bundle is consumed: normalize it first.
    """
    raw = bundle.to_raw()
    if held is None:
        return scrub_payload_serialized(scrubber, raw, json_line)
    arrays = [HeldArray(raw["timelines"][i], "records", elements) for i, elements in held.elements.items()]
    return scrub_serialized_with_arrays(scrubber, raw, arrays, json_line)


def normalize_bundle(ctx: NormalizeContext, bundle: BuildBundle,
                     held: HeldTimelines | None = None) -> dict[str, list[dict[str, Any]] | Columns]:
    """Rows per table for one build; the build itself failing validation quarantines the whole build.

    With *held* (its timelines read from their bytes), the records are read from there.
    """
    tables: dict[str, list[dict[str, Any]] | Columns] = {}
    try:
        build_row, facts = normalize_build(ctx, bundle.project, bundle.build)
    except ValidationError as exc:
        field, reason = describe_validation_error(exc)
        ctx.quarantine(ctx.source, f"build {bundle.build.get('id')}", field, reason, bundle.build)
        return tables
    if held is not None:
        fast = record_columns(ctx, facts, held.parsed)
    else:
        fast = timeline_record_columns(ctx, facts, bundle.timelines) if ctx.columns else None
    if fast is None:
        fast = normalize_timelines(ctx, facts, bundle.unpacked().timelines)
    records, issues, attempts = fast
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
