"""Uploaded metrics documents → BuildMetrics, BuildStages and MetricSamples rows."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from etl.analysis.monitors import load_monitors
from etl.classify import Classifier
from etl.normalize.builds import BuildFacts
from etl.normalize.context import NormalizeContext
from etl.normalize.metrics import MetricsDocumentError, normalize_metrics_document, platform_of
from etl.privacy import Scrubber, apply_policy
from tests.conftest import PROJECT_ROOT, SAMPLES

FACTS = BuildFacts("org", "proj", 42, "abc123", {"DefinitionId": 7, "Definition": "ci\\main",
                                                "SourceBranch": "refs/heads/main", "TargetBranch": "refs/heads/main",
                                                "BuildKind": "Rolling", "QueueTime": None},
                   datetime(2026, 11, 1, 7, 0))

#: The shape `ci-telemetry collect` writes.
METRICS = {
    "build_session": {"start_time": "2026-11-01T06:00:00Z", "end_time": "2026-11-01T06:10:00Z",
                      "duration_seconds": 600.0, "hostname": "builder-7.corp", "os_info": "macOS-14.5-arm64",
                      "cpu_cores": 10, "memory_total_mb": 16384.0, "disk_available_gb": 50.0},
    "memory_metrics": {"peak_usage_mb": 900.5, "samples": [{"timestamp": "2026-11-01T06:05:00Z", "memory_mb": 800.0}]},
    "network_metrics": {"bytes_downloaded": 2048, "bytes_uploaded": 0, "interface": "en0", "connection_count": 4},
    "build_metrics": {"failure_category": "command_failed", "failure_stage": "test",
                      "failure_reason": "exit code 1: see /Users/carol/build.log", "packages_built": 3,
                      "packages_failed": 1, "build_stages": [{"name": "compile", "status": "success", "duration": 400},
                                                             {"name": "test", "status": "failed", "duration": 200}]},
    "performance_metrics": {"regressions_detected": [], "performance_score": None,
                            "baseline_comparison": {"duration_diff_percent": 5.0, "memory_diff_percent": None}},
}


class Sink:
    """Collects quarantine entries: (source, object, field, reason, payload)."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.items.append(args)


def ctx(sink: Sink | None = None) -> NormalizeContext:
    return NormalizeContext("ado", "org", datetime(2026, 11, 23), Scrubber(b"k"), Classifier(), sink or Sink())


def test_metrics_document_gives_one_row_its_stages_and_named_samples() -> None:
    row, stages, samples = normalize_metrics_document(ctx(), "proj/42/metrics.json", "metrics.json", METRICS, FACTS)
    assert (row["Key"], row["BuildId"], row["Platform"], row["CpuCores"], row["PackagesBuilt"]) == (
        "proj/42/metrics.json", 42, "macos", 10, 3)
    # Stored values get their treatment from FIELD_POLICY as the rows are staged.
    stored = apply_policy(Scrubber(b"k"), "BuildMetrics", [dict(row)])[0]
    assert stored["Hostname"] == Scrubber(b"k").pseudonymize("builder-7.corp")
    assert stored["FailureReason"] == "exit code 1: see /Users/<user>/build.log"
    assert row["FailureCategory"] is not None and row["Signature"]
    assert [(s["StageIndex"], s["Stage"], s["Status"], s["DurationSeconds"]) for s in stages] == [
        (0, "compile", "success", 400.0), (1, "test", "failed", 200.0)]
    assert sorted((s["Metric"], s["Timestamp"], s["Value"]) for s in samples) == [
        ("bytes_downloaded", datetime(2026, 11, 1, 6, 10, 0), 2048.0),
        ("bytes_uploaded", datetime(2026, 11, 1, 6, 10, 0), 0.0),
        ("duration_seconds", datetime(2026, 11, 1, 6, 10, 0), 600.0),
        ("memory_mb", datetime(2026, 11, 1, 6, 5, 0), 800.0),
        ("packages_built", datetime(2026, 11, 1, 6, 10, 0), 3.0),
        ("peak_memory_mb", datetime(2026, 11, 1, 6, 10, 0), 900.5),
        ("stage_duration_seconds:compile", datetime(2026, 11, 1, 6, 10, 0), 400.0),
        ("stage_duration_seconds:test", datetime(2026, 11, 1, 6, 10, 0), 200.0),
    ]
    assert json.loads(samples[0]["Dimensions"]) == {"stage_index": 0}


def test_build_summary_telemetry_numbers_become_summary_samples() -> None:
    doc = {"package": "zlib", "version": "1.3", "status": "success",
           "telemetry": {"tests_run": 120, "cache_hit_ratio": 0.75, "runner": "linux-x64", "ok": True}}
    row, stages, samples = normalize_metrics_document(ctx(), "proj/42/build-summary.json", "build-summary.json",
                                                      doc, FACTS)
    assert (row["Package"], row["Version"], row["EndTime"]) == ("zlib", "1.3", datetime(2026, 11, 1, 7, 0, 0))
    assert stages == []
    assert sorted((s["Metric"], s["Value"]) for s in samples) == [("summary:cache_hit_ratio", 0.75),
                                                                   ("summary:tests_run", 120.0)]


def test_unreadable_number_drops_that_value_and_names_the_field() -> None:
    sink = Sink()
    doc = {**METRICS, "network_metrics": {"bytes_downloaded": "lots", "bytes_uploaded": 7}}
    row, _, _ = normalize_metrics_document(ctx(sink), "k", "metrics.json", doc, FACTS, obj="build 42 metrics.json")
    assert (row["BytesDownloaded"], row["BytesUploaded"]) == (None, 7)
    assert sink.items == [("ado", "build 42 metrics.json", "network_metrics.bytes_downloaded",
                           "expected a number, got 'lots'", {"field": "network_metrics.bytes_downloaded",
                                                             "value": "'lots'"})]


def test_a_document_that_is_not_an_object_is_refused_whole() -> None:
    with pytest.raises(MetricsDocumentError) as info:
        normalize_metrics_document(ctx(), "k", "metrics.json", [1, 2], FACTS)
    assert str(info.value) == "field (document): expected a JSON object, got list"


@pytest.mark.parametrize(("text", "platform"), [("Linux-6.8.0-x86_64-with-glibc2.39", "linux"),
                                                ("Windows-11-10.0.22631-SP0", "windows"),
                                                ("macOS-14.5-arm64-arm-64bit", "macos"), ("Darwin", "macos"),
                                                ("", None)])
def test_platform_from_os_info(text: str, platform: str | None) -> None:
    assert platform_of(text) == platform


# --- the build-telemetry format's own documents --------------------------------------------------

FORMAT = SAMPLES / "build-telemetry"
ARRIVED = datetime(2026, 11, 20, 8, 0)


def load_format_document(name: str) -> tuple[Sink, dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    sink = Sink()
    doc = json.loads((FORMAT / name).read_text(encoding="utf-8"))
    file_name = name.rsplit("/", 1)[-1]
    row, stages, samples = normalize_metrics_document(ctx(sink), f"inbox/{file_name}", file_name, doc, None,
                                                      obj=f"inbox file {file_name}", observed_at=ARRIVED)
    return sink, row, stages, samples


def test_published_metrics_json_loads_every_sample_stage_and_figure_with_nothing_quarantined() -> None:
    sink, row, stages, samples = load_format_document("telemetry-data/metrics.json")
    assert sink.items == []
    assert (row["StartTime"], row["EndTime"], row["DurationSeconds"]) == (
        datetime(2025, 1, 18, 5, 0, 0), datetime(2025, 1, 18, 5, 7, 0), 420.0)  # +0530 offsets, in UTC
    assert (row["BytesDownloaded"], row["BytesUploaded"], row["NetworkInterface"], row["ConnectionCount"]) == (
        52428800, 1048576, "eth0", 15)
    assert (row["CpuCores"], row["MemoryTotalMb"], row["DiskAvailableGb"], row["PeakMemoryMb"]) == (2, 8192.0, 45.0,
                                                                                                 2048.0)
    assert (row["FailureCategory"], row["FailureStage"], row["FailureReason"]) == (None, None, None)
    assert (row["PackagesBuilt"], row["PackagesFailed"], row["PerformanceScore"]) == (12, 0, 75.0)
    assert (row["BaselineDurationDiffPercent"], row["BaselineMemoryDiffPercent"]) == (25.0, 15.0)
    assert json.loads(row["RegressionsDetected"]) == ["Build duration increased by 25%",
                                                      "Memory usage increased by 15%"]
    assert [(s["StageIndex"], s["Stage"], s["Status"], s["DurationSeconds"]) for s in stages] == [
        (0, "build_initialization", "success", 2.0), (1, "architecture_amd64", "success", 180.0),
        (2, "architecture_arm64", "success", 220.0)]
    assert sorted((s["Metric"], s["Timestamp"], s["Value"], s["Unit"]) for s in samples) == [
        ("bytes_downloaded", datetime(2025, 1, 18, 5, 7, 0), 52428800.0, "bytes"),
        ("bytes_uploaded", datetime(2025, 1, 18, 5, 7, 0), 1048576.0, "bytes"),
        ("duration_seconds", datetime(2025, 1, 18, 5, 7, 0), 420.0, "seconds"),
        ("memory_mb", datetime(2022, 1, 18, 10, 30, 0), 512.0, "MB"),  # epoch seconds 1642501800
        ("memory_mb", datetime(2022, 1, 18, 10, 30, 5), 768.0, "MB"),
        ("packages_built", datetime(2025, 1, 18, 5, 7, 0), 12.0, "count"),
        ("peak_memory_mb", datetime(2025, 1, 18, 5, 7, 0), 2048.0, "MB"),
        ("performance_score", datetime(2025, 1, 18, 5, 7, 0), 75.0, "score"),
        ("stage_duration_seconds:architecture_amd64", datetime(2025, 1, 18, 5, 7, 0), 180.0, "seconds"),
        ("stage_duration_seconds:architecture_arm64", datetime(2025, 1, 18, 5, 7, 0), 220.0, "seconds"),
        ("stage_duration_seconds:build_initialization", datetime(2025, 1, 18, 5, 7, 0), 2.0, "seconds"),
    ]


def test_published_build_summary_figures_fill_the_row_and_become_summary_series() -> None:
    sink, row, stages, samples = load_format_document("build-summary.json")
    assert sink.items == []
    assert (row["Package"], row["Version"], row["FailureCategory"], row["RegressionsDetected"]) == (
        "example-package", "1.0.0", None, "[]")
    assert (row["DurationSeconds"], row["PeakMemoryMb"], row["BytesDownloaded"], row["BytesUploaded"]) == (
        420.0, 2048.0, 52428800, 1048576)
    assert stages == []
    # No time in the summary: its samples are dated when the document arrived.
    assert sorted((s["Metric"], s["Timestamp"], s["Value"], s["Unit"]) for s in samples) == [
        ("summary:build_duration_seconds", datetime(2026, 11, 20, 8, 0, 0), 420.0, "seconds"),
        ("summary:network_downloaded_bytes", datetime(2026, 11, 20, 8, 0, 0), 52428800.0, "bytes"),
        ("summary:network_uploaded_bytes", datetime(2026, 11, 20, 8, 0, 0), 1048576.0, "bytes"),
        ("summary:peak_memory_mb", datetime(2026, 11, 20, 8, 0, 0), 2048.0, "MB"),
    ]


def test_the_formats_architecture_category_is_kept_with_its_origin() -> None:
    doc = {"build_session": {"end_time": "2026-11-01T06:10:00Z"},
           "build_metrics": {"failure_category": "architecture", "failure_stage": "architecture_arm64",
                             "failure_reason": "dpkg-buildpackage -aarm64 failed"}}
    sink = Sink()
    row, _, _ = normalize_metrics_document(ctx(sink), "k", "metrics.json", doc, FACTS)
    assert (row["FailureCategory"], row["FailureOrigin"], sink.items) == ("architecture", "infrastructure", [])


def test_a_category_outside_the_taxonomy_gives_way_to_the_classifier() -> None:
    doc = {"build_session": {"end_time": "2026-11-01T06:10:00Z"},
           "build_metrics": {"failure_category": "command_failed",
                             "failure_reason": "qemu: uncaught target signal 11 (Segmentation fault)"}}
    classifier = Classifier.from_file(PROJECT_ROOT / "config" / "failure-rules.yaml")
    context = NormalizeContext("ado", "org", datetime(2026, 11, 23), Scrubber(b"k"), classifier, Sink())
    row, _, _ = normalize_metrics_document(context, "k", "metrics.json", doc, FACTS)
    assert (row["FailureCategory"], row["FailureOrigin"]) == ("architecture", "infrastructure")


# --- poison values: each dropped with its reason, the rest of the document kept -------------------

POISON = [
    ("network_metrics", "bytes_downloaded", 1e300, "BytesDownloaded",
     "1e+300 is outside the range of a Kusto long"),
    ("network_metrics", "bytes_uploaded", -5, "BytesUploaded", "-5 is negative; bytes cannot be"),
    ("memory_metrics", "peak_usage_mb", float("nan"), "PeakMemoryMb", "nan is not a finite number"),
    ("build_session", "memory_total_mb", float("inf"), "MemoryTotalMb", "inf is not a finite number"),
    ("build_session", "cpu_cores", 2**40, "CpuCores", "1099511627776 is outside the range of a Kusto int"),
    ("build_metrics", "packages_built", 2.5, "PackagesBuilt", "expected a whole number, got 2.5"),
    ("build_session", "start_time", "yesterday", "StartTime", "invalid datetime 'yesterday'"),
]


@pytest.mark.parametrize(("section", "name", "value", "column", "reason"), POISON, ids=[p[1] for p in POISON])
def test_a_poison_value_is_dropped_with_its_reason_and_the_rest_loads(section: str, name: str, value: Any,
                                                                      column: str, reason: str) -> None:
    doc = json.loads(json.dumps(METRICS))
    doc[section][name] = value
    sink = Sink()
    row, stages, samples = normalize_metrics_document(ctx(sink), "k", "metrics.json", doc, FACTS, obj="doc")
    assert row[column] is None
    assert [(s[1], s[2], s[3]) for s in sink.items] == [("doc", f"{section}.{name}", reason)]
    assert len(stages) == 2 and any(s["Metric"] == "memory_mb" for s in samples)


def test_a_bad_memory_sample_is_dropped_alone() -> None:
    doc = json.loads(json.dumps(METRICS))
    doc["memory_metrics"]["samples"] = [{"timestamp": 1762000000, "memory_mb": 10}, {"timestamp": "soon", "memory_mb": 2},
                                        {"timestamp": 1762000060}, "x", {"timestamp": 1762000120, "memory_mb": -1}]
    sink = Sink()
    _, _, samples = normalize_metrics_document(ctx(sink), "k", "metrics.json", doc, FACTS, obj="doc")
    assert [(s["Timestamp"], s["Value"]) for s in samples if s["Metric"] == "memory_mb"] == [
        (datetime(2025, 11, 1, 12, 26, 40), 10.0)]
    assert [(s[2], s[3]) for s in sink.items] == [
        ("memory_metrics.samples[1].timestamp", "invalid datetime 'soon'"),
        ("memory_metrics.samples[2]", "missing memory_mb"),
        ("memory_metrics.samples[3]", "expected an object, got 'x'"),
        ("memory_metrics.samples[4].memory_mb", "-1 is negative; MB cannot be"),
    ]


def test_a_bad_stage_is_dropped_alone_and_a_bad_stage_duration_only_loses_its_duration() -> None:
    doc = json.loads(json.dumps(METRICS))
    doc["build_metrics"]["build_stages"] = [7, {"name": "compile", "status": "success", "duration": -3}]
    sink = Sink()
    _, stages, _ = normalize_metrics_document(ctx(sink), "k", "metrics.json", doc, FACTS, obj="doc")
    assert [(s["StageIndex"], s["Stage"], s["DurationSeconds"]) for s in stages] == [(1, "compile", None)]
    assert [(s[2], s[3]) for s in sink.items] == [
        ("build_metrics.build_stages[0]", "expected an object, got 7"),
        ("build_metrics.build_stages[1].duration", "-3 is negative; seconds cannot be")]


def test_every_build_summary_figure_is_a_series_a_monitor_watches() -> None:
    _, _, _, samples = load_format_document("build-summary.json")
    monitors = load_monitors(PROJECT_ROOT / "config" / "monitors.yaml")
    watched = {s["Metric"]: monitors.get(s["Metric"]) for s in samples}
    assert {metric: (m.metric, m.lower_is_better) for metric, m in watched.items() if m} == {
        "summary:build_duration_seconds": ("summary:build_duration_seconds", True),
        "summary:peak_memory_mb": ("summary:peak_memory_mb", True),
        "summary:network_downloaded_bytes": ("summary:network_downloaded_bytes", True),
        "summary:network_uploaded_bytes": ("summary:network_uploaded_bytes", True),
    }


def test_a_non_finite_number_inside_a_dynamic_field_drops_that_field() -> None:
    doc = json.loads(json.dumps(METRICS))
    doc["performance_metrics"]["regressions_detected"] = [{"duration": float("nan")}]
    sink = Sink()
    row, _, _ = normalize_metrics_document(ctx(sink), "k", "metrics.json", doc, FACTS, obj="doc")
    assert row["RegressionsDetected"] is None
    assert [(s[2], s[3]) for s in sink.items] == [
        ("performance_metrics.regressions_detected", "holds a number that is not finite (NaN or Infinity)")]
