"""Uploaded metrics documents → BuildMetrics, BuildStages and MetricSamples rows.

`metrics.json` is the document `ci-telemetry collect` writes (build_session, memory_metrics,
network_metrics, build_metrics with build_stages, performance_metrics); `build-summary.json` is a
summary whose `telemetry` object's numeric fields become `summary:<field>` samples. Fields are found
by name at their documented place first and anywhere in the document second, so producers that
nest a field one level differently still load. MetricSamples names are the contract regression
detection reads: duration_seconds, peak_memory_mb, bytes_downloaded, bytes_uploaded,
performance_score, packages_built, memory_mb, stage_duration_seconds:<stage>, summary:<field>.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from etl.normalize.builds import BuildFacts
from etl.normalize.context import NormalizeContext
from etl.timeutil import to_utc_naive

PER_BUILD = {
    "duration_seconds": "seconds",
    "peak_memory_mb": "MB",
    "bytes_downloaded": "bytes",
    "bytes_uploaded": "bytes",
    "performance_score": "score",
    "packages_built": "count",
}


class MetricsDocumentError(ValueError):
    """A metrics document lacks what it must have or holds an unreadable value; names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field}: {reason}")
        self.field = field
        self.reason = reason


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


def _number(field: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MetricsDocumentError(field, f"expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise MetricsDocumentError(field, f"expected a number, got {value!r}") from None


def _whole(field: str, value: Any) -> int | None:
    number = _number(field, value)
    if number is None:
        return None
    if not number.is_integer():
        raise MetricsDocumentError(field, f"expected a whole number, got {value!r}")
    return int(number)


def _time(field: str, value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return to_utc_naive(value)
    except (TypeError, ValueError):
        raise MetricsDocumentError(field, f"invalid datetime {value!r}") from None


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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def normalize_metrics_document(
    ctx: NormalizeContext,
    key: str,
    file_name: str,
    doc: Any,
    facts: BuildFacts | None,
    project: str | None = None,
    organization: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(BuildMetrics row, BuildStages rows, MetricSamples rows) of one document; MetricsDocumentError if unreadable."""
    if not isinstance(doc, dict):
        raise MetricsDocumentError("(document)", f"expected a JSON object, got {type(doc).__name__}")
    session = ("build_session",)
    start = _time("build_session.start_time", _find(doc, "start_time", "started_at", places=session))
    end = _time("build_session.end_time", _find(doc, "end_time", "ended_at", "finished_at", places=session))
    if end is None and facts is not None:
        end = to_utc_naive(facts.finish_time)
    duration = _number("build_session.duration_seconds",
                       _find(doc, "duration_seconds", "total_duration_seconds", places=session))
    if duration is None and start and end:
        duration = round((end - start).total_seconds(), 3)
    os_info = _find(doc, "os_info", "os", places=session)
    os_info = str(os_info) if os_info is not None else None
    platform = platform_of(os_info) or (str(_find(doc, "platform")).lower() if _find(doc, "platform") else None)
    metrics = ("build_metrics",)
    perf = ("performance_metrics",)
    baseline = _find(doc, "baseline_comparison", places=perf) or {}
    regressions = _find(doc, "regressions_detected", places=perf)
    reason = _find(doc, "failure_reason", places=metrics)
    reason = ctx.scrubber.redact(str(reason)) if reason is not None else None
    stage = _find(doc, "failure_stage", places=metrics)
    filters = facts.filters if facts else {}
    source_version = facts.source_version if facts else _find(doc, "source_version", "commit")
    build_id = facts.build_id if facts else _whole("build_id", _find(doc, "build_id"))
    organization = facts.organization if facts else (organization or ctx.organization)
    project = facts.project if facts else project
    row: dict[str, Any] = {
        "Source": ctx.source,
        "Key": key,
        "Organization": organization,
        "Project": project,
        "BuildId": build_id,
        "Package": _str(_find(doc, "package", "package_name", "name", places=("build_session", "build_metrics"))),
        "Version": _str(_find(doc, "version", "package_version", places=("build_session", "build_metrics"))),
        "Hostname": ctx.scrubber.pseudonymize(_str(_find(doc, "hostname", "host", places=session))),
        "OsInfo": ctx.scrubber.redact(os_info),
        "Platform": platform,
        "CpuCores": _whole("build_session.cpu_cores", _find(doc, "cpu_cores", places=session)),
        "MemoryTotalMb": _number("build_session.memory_total_mb", _find(doc, "memory_total_mb", places=session)),
        "DiskAvailableGb": _number("build_session.disk_available_gb",
                                   _find(doc, "disk_available_gb", places=session)),
        "StartTime": _iso(start),
        "EndTime": _iso(end),
        "DurationSeconds": duration,
        "PeakMemoryMb": _number("memory_metrics.peak_usage_mb",
                                _find(doc, "peak_usage_mb", "peak_memory_mb", places=("memory_metrics",))),
        "BytesDownloaded": _whole("network_metrics.bytes_downloaded",
                                  _find(doc, "bytes_downloaded", places=("network_metrics",))),
        "BytesUploaded": _whole("network_metrics.bytes_uploaded",
                                _find(doc, "bytes_uploaded", places=("network_metrics",))),
        "NetworkInterface": _str(_find(doc, "interface", places=("network_metrics",))),
        "ConnectionCount": _whole("network_metrics.connection_count",
                                  _find(doc, "connection_count", places=("network_metrics",))),
        "FailureCategory": _str(_find(doc, "failure_category", places=metrics)),
        "FailureStage": ctx.scrubber.redact(_str(stage)),
        "FailureReason": reason,
        "PackagesBuilt": _whole("build_metrics.packages_built", _find(doc, "packages_built", places=metrics)),
        "PackagesFailed": _whole("build_metrics.packages_failed", _find(doc, "packages_failed", places=metrics)),
        "PerformanceScore": _number("performance_metrics.performance_score",
                                    _find(doc, "performance_score", places=perf)),
        "BaselineDurationDiffPercent": _number(
            "baseline_comparison.duration_diff_percent",
            baseline.get("duration_diff_percent") if isinstance(baseline, dict) else None),
        "BaselineMemoryDiffPercent": _number(
            "baseline_comparison.memory_diff_percent",
            baseline.get("memory_diff_percent") if isinstance(baseline, dict) else None),
        "RegressionsDetected": json.dumps(ctx.scrubber.scrub_data(regressions), sort_keys=True)
        if regressions is not None else None,
        "SourceVersion": _str(source_version),
        **filters,
        "IngestedAt": ctx.ingested_iso,
    }
    if reason:
        c = ctx.classifier.classify(message=reason, record_name=row["FailureStage"], result="failed")
        # The uploader's own category is a hint ("command_failed"); the classifier's is comparable across sources.
        row.update({"FailureCategory": c.category, "FailureOrigin": c.origin, "Signature": c.signature})

    base = {
        "Organization": organization,
        "Project": project,
        "BuildId": build_id,
        "SourceVersion": row["SourceVersion"],
        **filters,
        "IngestedAt": ctx.ingested_iso,
    }
    stages_raw = _find(doc, "build_stages", "stages", places=metrics)
    stage_rows: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    for index, item in enumerate(stages_raw if isinstance(stages_raw, list) else []):
        if not isinstance(item, dict):
            raise MetricsDocumentError(f"build_stages[{index}]", "expected an object")
        name = ctx.scrubber.redact(_str(item.get("name") or item.get("stage")))
        seconds = _number(f"build_stages[{index}].duration",
                          _first(item, "duration", "duration_seconds"))
        stage_rows.append({
            "Source": ctx.source, "Key": key, "StageIndex": index, "Stage": name,
            "Status": _str(item.get("status")), "DurationSeconds": seconds,
            "Message": ctx.scrubber.redact(_str(item.get("message"))), "Platform": platform, **base,
        })
        if seconds is not None and name and end is not None:
            samples.append(_sample(ctx, key, f"stage_duration_seconds:{name}", end, seconds, "seconds", platform,
                                   base, {"stage_index": index}))
    if end is not None:
        figures = {
            "duration_seconds": row["DurationSeconds"],
            "peak_memory_mb": row["PeakMemoryMb"],
            "bytes_downloaded": row["BytesDownloaded"],
            "bytes_uploaded": row["BytesUploaded"],
            "performance_score": row["PerformanceScore"],
            "packages_built": row["PackagesBuilt"],
        }
        if file_name != "build-summary.json":
            for metric, value in figures.items():
                if value is not None:
                    samples.append(_sample(ctx, key, metric, end, float(value), PER_BUILD[metric], platform, base))
        telemetry = doc.get("telemetry")
        if isinstance(telemetry, dict):
            for field, value in sorted(telemetry.items()):
                if isinstance(value, int | float) and not isinstance(value, bool):
                    samples.append(_sample(ctx, key, f"summary:{field}", end, float(value), None, platform, base))
    mem = _find(doc, "samples", "memory_samples", places=("memory_metrics",))
    for index, item in enumerate(mem if isinstance(mem, list) else []):
        if not isinstance(item, dict):
            raise MetricsDocumentError(f"memory_metrics.samples[{index}]", "expected an object")
        when = _time(f"memory_metrics.samples[{index}].timestamp", _first(item, "timestamp", "time", "ts"))
        value = _number(f"memory_metrics.samples[{index}].memory_mb", _first(item, "memory_mb", "rss_mb", "value"))
        if when is None or value is None:
            raise MetricsDocumentError(f"memory_metrics.samples[{index}]", "needs a timestamp and memory_mb")
        samples.append(_sample(ctx, key, "memory_mb", when, value, "MB", platform, base))
    return row, stage_rows, samples


def _first(item: dict[str, Any], *names: str) -> Any:
    for name in names:
        if item.get(name) is not None:
            return item[name]
    return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _sample(ctx: NormalizeContext, key: str, metric: str, when: datetime, value: float, unit: str | None,
            platform: str | None, base: dict[str, Any], dims: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "Source": ctx.source, "Key": key, "Metric": metric, "Timestamp": when.isoformat(), "Value": value,
        "Unit": unit, "Platform": platform, "Dimensions": json.dumps(dims, sort_keys=True) if dims else None,
        **base,
    }
