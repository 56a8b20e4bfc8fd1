"""Uploaded metrics documents → BuildMetrics, BuildStages and MetricSamples rows."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from etl.classify import Classifier
from etl.normalize.builds import BuildFacts
from etl.normalize.context import NormalizeContext
from etl.normalize.metrics import MetricsDocumentError, normalize_metrics_document, platform_of
from etl.privacy import Scrubber

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
    assert row["Hostname"] != "builder-7.corp"
    assert "carol" not in row["FailureReason"]
    assert row["FailureCategory"] is not None and row["Signature"]
    assert [(s["StageIndex"], s["Stage"], s["Status"], s["DurationSeconds"]) for s in stages] == [
        (0, "compile", "success", 400.0), (1, "test", "failed", 200.0)]
    assert sorted((s["Metric"], s["Timestamp"], s["Value"]) for s in samples) == [
        ("bytes_downloaded", "2026-11-01T06:10:00", 2048.0),
        ("bytes_uploaded", "2026-11-01T06:10:00", 0.0),
        ("duration_seconds", "2026-11-01T06:10:00", 600.0),
        ("memory_mb", "2026-11-01T06:05:00", 800.0),
        ("packages_built", "2026-11-01T06:10:00", 3.0),
        ("peak_memory_mb", "2026-11-01T06:10:00", 900.5),
        ("stage_duration_seconds:compile", "2026-11-01T06:10:00", 400.0),
        ("stage_duration_seconds:test", "2026-11-01T06:10:00", 200.0),
    ]
    assert json.loads(samples[0]["Dimensions"]) == {"stage_index": 0}


def test_build_summary_telemetry_numbers_become_summary_samples() -> None:
    doc = {"package": "zlib", "version": "1.3", "status": "success",
           "telemetry": {"tests_run": 120, "cache_hit_ratio": 0.75, "runner": "linux-x64", "ok": True}}
    row, stages, samples = normalize_metrics_document(ctx(), "proj/42/build-summary.json", "build-summary.json",
                                                      doc, FACTS)
    assert (row["Package"], row["Version"], row["EndTime"]) == ("zlib", "1.3", "2026-11-01T07:00:00")
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
