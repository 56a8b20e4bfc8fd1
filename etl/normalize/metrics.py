"""Uploaded metrics documents → BuildMetrics, BuildStages and MetricSamples rows.

`metrics.json` is the build-telemetry format's document (build_session, memory_metrics,
network_metrics, build_metrics with build_stages, performance_metrics), which `ci-telemetry
collect` also writes; `build-summary.json` is its summary, whose `telemetry` object's numeric
fields become `summary:<field>` samples and whose figures fill the BuildMetrics row. Fields are
found by name at their documented place first and anywhere in the document second, so producers
that nest a field one level differently still load.

Validation is field by field (`etl.normalize.values`): a bad value drops only that value, a bad
stage or memory sample only that item, each with a quarantine entry naming the source, the object
and the field; the rest of the document loads. Only a document that is not a JSON object raises
MetricsDocumentError. The format is described in docs/metrics-format.md.

MetricSamples names are the contract regression detection reads: duration_seconds, peak_memory_mb,
bytes_downloaded, bytes_uploaded, performance_score, packages_built, memory_mb,
stage_duration_seconds:<stage>, summary:<field>.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from etl.classify import CATEGORIES
from etl.normalize import values
from etl.normalize.builds import BuildFacts
from etl.normalize.context import NormalizeContext
from etl.normalize.values import BadValue
from etl.schema import table
from etl.timeutil import to_utc_naive

PER_BUILD = {
    "duration_seconds": "seconds",
    "peak_memory_mb": "MB",
    "bytes_downloaded": "bytes",
    "bytes_uploaded": "bytes",
    "performance_score": "score",
    "packages_built": "count",
}

#: (BuildMetrics column, field as quarantine names it, section searched first, names, unit) of each number.
NUMBER_FIELDS: tuple[tuple[str, str, str, tuple[str, ...], str | None], ...] = (
    ("CpuCores", "build_session.cpu_cores", "build_session", ("cpu_cores",), "count"),
    ("MemoryTotalMb", "build_session.memory_total_mb", "build_session", ("memory_total_mb",), "MB"),
    ("DiskAvailableGb", "build_session.disk_available_gb", "build_session", ("disk_available_gb",), "GB"),
    ("DurationSeconds", "build_session.duration_seconds", "build_session",
     ("duration_seconds", "total_duration_seconds", "build_duration_seconds"), "seconds"),
    ("PeakMemoryMb", "memory_metrics.peak_usage_mb", "memory_metrics", ("peak_usage_mb", "peak_memory_mb"), "MB"),
    ("BytesDownloaded", "network_metrics.bytes_downloaded", "network_metrics",
     ("bytes_downloaded", "network_downloaded_bytes"), "bytes"),
    ("BytesUploaded", "network_metrics.bytes_uploaded", "network_metrics",
     ("bytes_uploaded", "network_uploaded_bytes"), "bytes"),
    ("ConnectionCount", "network_metrics.connection_count", "network_metrics", ("connection_count",), "count"),
    ("PackagesBuilt", "build_metrics.packages_built", "build_metrics", ("packages_built",), "count"),
    ("PackagesFailed", "build_metrics.packages_failed", "build_metrics", ("packages_failed",), "count"),
    ("PerformanceScore", "performance_metrics.performance_score", "performance_metrics", ("performance_score",),
     "score"),
)

#: Units of `summary:<field>` samples, by the field name's ending.
SUMMARY_UNITS = (("_seconds", "seconds"), ("_mb", "MB"), ("_gb", "GB"), ("_bytes", "bytes"), ("_count", "count"))


class MetricsDocumentError(ValueError):
    """A metrics document is not a JSON object at all; names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field}: {reason}")
        self.field = field
        self.reason = reason


class _Fields:
    """Reads one document's values; each bad one is dropped with a quarantine entry for its field."""

    def __init__(self, ctx: NormalizeContext, obj: str) -> None:
        self.ctx = ctx
        self.obj = obj

    def drop(self, field: str, reason: str, value: Any) -> None:
        self.ctx.quarantine(self.ctx.source, self.obj, field, reason, {"field": field, "value": values.shown(value)})

    def number(self, field: str, value: Any, kusto_type: str = "real", unit: str | None = None) -> int | float | None:
        try:
            return values.number(value, kusto_type, unit)
        except BadValue as exc:
            self.drop(field, str(exc), value)
            return None

    def time(self, field: str, value: Any) -> datetime | None:
        try:
            return values.time(value)
        except BadValue as exc:
            self.drop(field, str(exc), value)
            return None

    def dynamic(self, field: str, value: Any) -> str | None:
        """*value* as the JSON text of a dynamic column; NaN and Infinity are no JSON, so they drop it."""
        if value is None:
            return None
        try:
            return json.dumps(value, sort_keys=True, allow_nan=False)
        except ValueError:
            self.drop(field, "holds a number that is not finite (NaN or Infinity)", value)
            return None

    def text(self, field: str, value: Any) -> str | None:
        try:
            return values.text(value)
        except BadValue as exc:
            self.drop(field, str(exc), value)
            return None


def _find(doc: Any, *names: str, places: tuple[str, ...] = ()) -> Any:
    """The first non-null value of any of *names*: under each of *places* first, then anywhere (breadth-first)."""
    if not isinstance(doc, dict):
        return None
    for place in places:
        section = doc.get(place)
        if isinstance(section, dict):
            for name in names:
                if section.get(name) is not None:
                    return section[name]
    queue = [doc]
    while queue:
        node = queue.pop(0)
        for name in names:
            if node.get(name) is not None:
                return node[name]
        queue.extend(v for v in node.values() if isinstance(v, dict))
    return None


def platform_of(os_info: str | None) -> str | None:
    """linux, windows or macos from a platform string (`Linux-6.1-x86_64`, `Windows-10`, `macOS-14`, `Darwin`)."""
    text = (os_info or "").lower()
    if not text:
        return None
    if "windows" in text or text.startswith("win"):
        return "windows"
    if "darwin" in text or "mac" in text or "osx" in text:
        return "macos"
    if "linux" in text or "ubuntu" in text or "debian" in text:
        return "linux"
    return None


def _kusto_type(column: str) -> str:
    return table("BuildMetrics").column(column).kusto_type


def normalize_metrics_document(
    ctx: NormalizeContext,
    key: str,
    file_name: str,
    doc: Any,
    facts: BuildFacts | None,
    project: str | None = None,
    organization: str | None = None,
    *,
    obj: str | None = None,
    observed_at: datetime | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(BuildMetrics row, BuildStages rows, MetricSamples rows) of one document.

    *obj* names the document in quarantine entries (default: *key*). Per-build samples are dated
    by the document's end time, else the build's finish time, else *observed_at* (an inbox file's
    arrival). MetricsDocumentError only when *doc* is not a JSON object.
    """
    if not isinstance(doc, dict):
        raise MetricsDocumentError("(document)", f"expected a JSON object, got {type(doc).__name__}")
    fields = _Fields(ctx, obj or key)
    session = ("build_session",)
    start = fields.time("build_session.start_time", _find(doc, "start_time", "started_at", places=session))
    end = fields.time("build_session.end_time", _find(doc, "end_time", "ended_at", "finished_at", places=session))
    if end is None and facts is not None:
        end = to_utc_naive(facts.finish_time)
    figures = {column: fields.number(name, _find(doc, *names, places=(place,)), _kusto_type(column), unit)
               for column, name, place, names, unit in NUMBER_FIELDS}
    if figures["DurationSeconds"] is None and start and end and end >= start:
        figures["DurationSeconds"] = round((end - start).total_seconds(), 3)
    when = end or observed_at
    os_info = fields.text("build_session.os_info", _find(doc, "os_info", "os", places=session))
    platform = platform_of(os_info) or (fields.text("platform", _find(doc, "platform")) or "").lower() or None
    metrics = ("build_metrics",)
    perf = ("performance_metrics",)
    baseline = _find(doc, "baseline_comparison", places=perf)
    baseline = baseline if isinstance(baseline, dict) else {}
    regressions = _find(doc, "regressions_detected", "performance_regressions", places=perf)
    reason = fields.text("build_metrics.failure_reason", _find(doc, "failure_reason", places=metrics)) or None
    stage = fields.text("build_metrics.failure_stage", _find(doc, "failure_stage", places=metrics)) or None
    category = _category(fields, _find(doc, "failure_category", places=metrics))
    filters = facts.filters if facts else {}
    source_version = facts.source_version if facts else fields.text(
        "source_version", _find(doc, "source_version", "commit"))
    build_id = facts.build_id if facts else fields.number("build_id", _find(doc, "build_id"), "long", "count")
    organization = facts.organization if facts else (organization or ctx.organization)
    project = facts.project if facts else project
    package_places = ("build_session", "build_metrics")
    row: dict[str, Any] = {
        "Source": ctx.source,
        "Key": key,
        "Organization": organization,
        "Project": project,
        "BuildId": build_id,
        "Package": fields.text("package", _find(doc, "package", "package_name", "name", places=package_places)),
        "Version": fields.text("version", _find(doc, "version", "package_version", places=package_places)),
        "Hostname": fields.text("build_session.hostname", _find(doc, "hostname", "host", places=session)),
        "OsInfo": os_info,
        "Platform": platform,
        "StartTime": start,
        "EndTime": end,
        **figures,
        "NetworkInterface": fields.text("network_metrics.interface", _find(doc, "interface",
                                                                           places=("network_metrics",))),
        "FailureCategory": category,
        "FailureOrigin": ctx.classifier.origins.get(category) if category else None,
        "FailureStage": stage,
        "FailureReason": reason,
        "BaselineDurationDiffPercent": fields.number("baseline_comparison.duration_diff_percent",
                                                     baseline.get("duration_diff_percent"), "real", "percent"),
        "BaselineMemoryDiffPercent": fields.number("baseline_comparison.memory_diff_percent",
                                                   baseline.get("memory_diff_percent"), "real", "percent"),
        "RegressionsDetected": fields.dynamic("performance_metrics.regressions_detected", regressions),
        "SourceVersion": source_version,
        **filters,
        "IngestedAt": ctx.ingested_at,
    }
    if reason:
        # The classifier reads redacted text; the stored columns get theirs from FIELD_POLICY when staged.
        c = ctx.classifier.classify(message=ctx.scrubber.redact(reason), record_name=ctx.scrubber.redact(stage),
                                    result="failed")
        row["Signature"] = c.signature
        # The format's own category (the uploader saw the whole log) wins; the classifier's fills in
        # where the uploader gave none, `unknown`, or a word outside the taxonomy.
        if category in (None, "unknown"):
            row.update({"FailureCategory": c.category, "FailureOrigin": c.origin})

    base = {
        "Organization": organization,
        "Project": project,
        "BuildId": build_id,
        "SourceVersion": row["SourceVersion"],
        **filters,
        "IngestedAt": ctx.ingested_at,
    }
    stage_rows, samples = _stages(ctx, fields, key, doc, platform, base, when)
    if when is not None:
        if file_name != "build-summary.json":
            per_build = {"duration_seconds": "DurationSeconds", "peak_memory_mb": "PeakMemoryMb",
                         "bytes_downloaded": "BytesDownloaded", "bytes_uploaded": "BytesUploaded",
                         "performance_score": "PerformanceScore", "packages_built": "PackagesBuilt"}
            for metric, column in per_build.items():
                if row[column] is not None:
                    samples.append(_sample(ctx, key, metric, when, float(row[column]), PER_BUILD[metric], platform,
                                           base))
        samples.extend(_summary_samples(ctx, fields, key, doc.get("telemetry"), when, platform, base))
    samples.extend(_memory_samples(ctx, fields, key, doc, platform, base))
    return row, stage_rows, samples


def _category(fields: _Fields, value: Any) -> str | None:
    """The uploader's failure category: a taxonomy word, `unknown` for another word, None for none ("")."""
    text = fields.text("build_metrics.failure_category", value)
    if not text:
        return None
    word = text.strip().lower()
    return word if word in CATEGORIES else "unknown"


def _stages(ctx: NormalizeContext, fields: _Fields, key: str, doc: dict[str, Any], platform: str | None,
            base: dict[str, Any], when: datetime | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    stages_raw = _find(doc, "build_stages", "stages", places=("build_metrics",))
    stage_rows: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    for index, item in enumerate(stages_raw if isinstance(stages_raw, list) else []):
        field = f"build_metrics.build_stages[{index}]"
        if not isinstance(item, dict):
            fields.drop(field, f"expected an object, got {values.shown(item)}", item)
            continue
        name = fields.text(f"{field}.name", item.get("name") or item.get("stage"))
        seconds = fields.number(f"{field}.duration", _first(item, "duration", "duration_seconds"), "real", "seconds")
        stage_rows.append({
            "Source": ctx.source, "Key": key, "StageIndex": index, "Stage": name,
            "Status": fields.text(f"{field}.status", item.get("status")), "DurationSeconds": seconds,
            "Message": fields.text(f"{field}.message", item.get("message")),
            "Platform": platform, **base,
        })
        if seconds is not None and name and when is not None:
            samples.append(_sample(ctx, key, f"stage_duration_seconds:{name}", when, seconds, "seconds", platform,
                                   base, {"stage_index": index}))
    return stage_rows, samples


def _summary_samples(ctx: NormalizeContext, fields: _Fields, key: str, telemetry: Any, when: datetime,
                     platform: str | None, base: dict[str, Any]) -> list[dict[str, Any]]:
    """`summary:<field>` samples of a build-summary's numeric `telemetry` fields (texts and lists are not series)."""
    if not isinstance(telemetry, dict):
        return []
    samples = []
    for name, raw in sorted(telemetry.items()):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            continue
        unit = next((u for suffix, u in SUMMARY_UNITS if name.endswith(suffix)), None)
        value = fields.number(f"telemetry.{name}", raw, "real", unit)
        if value is not None:
            samples.append(_sample(ctx, key, f"summary:{name}", when, float(value), unit, platform, base))
    return samples


def _memory_samples(ctx: NormalizeContext, fields: _Fields, key: str, doc: dict[str, Any], platform: str | None,
                    base: dict[str, Any]) -> list[dict[str, Any]]:
    mem = _find(doc, "samples", "memory_samples", places=("memory_metrics",))
    samples = []
    for index, item in enumerate(mem if isinstance(mem, list) else []):
        field = f"memory_metrics.samples[{index}]"
        if not isinstance(item, dict):
            fields.drop(field, f"expected an object, got {values.shown(item)}", item)
            continue
        missing = _missing(item)
        if missing:
            fields.drop(field, f"missing {' and '.join(sorted(missing))}", item)
            continue
        when = fields.time(f"{field}.timestamp", _first(item, "timestamp", "time", "ts"))
        value = fields.number(f"{field}.memory_mb", _first(item, "memory_mb", "rss_mb", "value"), "real", "MB")
        if when is None or value is None:
            continue  # dropped with the bad value's own reason
        samples.append(_sample(ctx, key, "memory_mb", when, float(value), "MB", platform, base))
    return samples


def _missing(item: dict[str, Any]) -> set[str]:
    """Which of a memory sample's two fields are absent (under any of their names)."""
    missing = set()
    if _first(item, "timestamp", "time", "ts") in (None, ""):
        missing.add("timestamp")
    if _first(item, "memory_mb", "rss_mb", "value") in (None, ""):
        missing.add("memory_mb")
    return missing


def _first(item: dict[str, Any], *names: str) -> Any:
    for name in names:
        if item.get(name) is not None:
            return item[name]
    return None


def _sample(ctx: NormalizeContext, key: str, metric: str, when: datetime, value: float, unit: str | None,
            platform: str | None, base: dict[str, Any], dims: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "Source": ctx.source, "Key": key, "Metric": metric, "Timestamp": when, "Value": value,
        "Unit": unit, "Platform": platform, "Dimensions": json.dumps(dims, sort_keys=True) if dims else None,
        **base,
    }
