"""`ci-telemetry collect -- COMMAND`: runs a real command and writes the metrics document the ETL reads."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.collect import StageTracker, failure_reason, network_delta

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

#: Allocates ~64 MB, holds it across two marked stages (long enough for 50 ms sampling to see it).
BUILD_SCRIPT = """
import sys, time
print("##ci-telemetry[stage]compile", flush=True)
block = b"x" * (64 * 1024 * 1024)  # written, so the pages are resident
time.sleep(0.4)
print("##ci-telemetry[stage]test", flush=True)
print("running tests", flush=True)
time.sleep(0.3)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""

FAILING_SCRIPT = """
import sys
for i in range(1, 31):
    print(f"error line {i}", file=sys.stderr)
sys.exit(3)
"""


def collect(tmp_path: Path, *args: str, command: list[str]) -> tuple[int, str, dict[str, Any]]:
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["collect", "--output", str(out), "--sample-interval", "0.05", *args, "--",
                                      *command])
    return result.exit_code, result.output, json.loads(out.read_text())


def test_the_document_has_every_field_the_etl_reads_with_valid_values(tmp_path: Path) -> None:
    code, _, doc = collect(tmp_path, "--stage", "compile", "--stage", "test",
                           command=[sys.executable, "-c", BUILD_SCRIPT])
    assert code == 0
    assert list(doc) == ["build_session", "memory_metrics", "network_metrics", "build_metrics", "performance_metrics"]
    session = doc["build_session"]
    assert sorted(session) == ["cpu_cores", "disk_available_gb", "duration_seconds", "end_time", "hostname",
                               "memory_total_mb", "os_info", "start_time"]
    assert ISO_Z.match(session["start_time"]) and ISO_Z.match(session["end_time"])
    assert session["start_time"] < session["end_time"]
    assert session["duration_seconds"] >= 0.7  # the script sleeps 0.7 s in total
    assert session["cpu_cores"] >= 1 and session["memory_total_mb"] > 0
    assert sorted(doc["network_metrics"]) == ["bytes_downloaded", "bytes_uploaded", "connection_count", "interface"]
    assert all(isinstance(doc["network_metrics"][k], int) for k in ("bytes_downloaded", "bytes_uploaded"))
    assert doc["performance_metrics"] == {"regressions_detected": [], "performance_score": None,
                                          "baseline_comparison": {"duration_diff_percent": None,
                                                                  "memory_diff_percent": None}}


def test_memory_of_the_command_is_sampled_and_its_peak_kept(tmp_path: Path) -> None:
    _, _, doc = collect(tmp_path, command=[sys.executable, "-c", BUILD_SCRIPT])
    memory = doc["memory_metrics"]
    values = [s["memory_mb"] for s in memory["samples"]]
    assert memory["peak_usage_mb"] >= 64
    assert memory["peak_usage_mb"] == max(values)
    assert all(ISO_Z.match(s["timestamp"]) for s in memory["samples"])
    assert [s["timestamp"] for s in memory["samples"]] == sorted({s["timestamp"] for s in memory["samples"]})


def test_stage_markers_become_stages_in_order(tmp_path: Path) -> None:
    _, _, doc = collect(tmp_path, "--stage", "compile", "--stage", "test", "--stage", "package",
                        command=[sys.executable, "-c", BUILD_SCRIPT])
    stages = doc["build_metrics"]["build_stages"]
    assert [(s["name"], s["status"]) for s in stages] == [("compile", "success"), ("test", "success"),
                                                          ("package", "skipped")]
    # compile runs from the command's start to the `test` marker, past a 0.4 s sleep
    assert stages[0]["duration"] >= 0.4 and stages[1]["duration"] > 0 and stages[2]["duration"] == 0.0
    assert stages[0]["duration"] + stages[1]["duration"] <= doc["build_session"]["duration_seconds"] + 0.002


def test_output_passes_through_including_markers(tmp_path: Path) -> None:
    _, output, _ = collect(tmp_path, "--stage", "compile", command=[sys.executable, "-c", BUILD_SCRIPT])
    assert output.splitlines()[:3] == ["##ci-telemetry[stage]compile", "##ci-telemetry[stage]test", "running tests"]


def test_without_declared_stages_the_whole_command_is_one_stage(tmp_path: Path) -> None:
    _, _, doc = collect(tmp_path, command=[sys.executable, "-c", BUILD_SCRIPT])
    assert [(s["name"], s["status"]) for s in doc["build_metrics"]["build_stages"]] == [
        (Path(sys.executable).name, "success")]


def test_the_commands_exit_code_is_the_collectors_and_the_failure_is_described(tmp_path: Path) -> None:
    code, _, doc = collect(tmp_path, "--stage", "compile", "--stage", "test",
                           command=[sys.executable, "-c", BUILD_SCRIPT, "5"])
    assert code == 5
    metrics = doc["build_metrics"]
    assert (metrics["failure_category"], metrics["failure_stage"], metrics["failure_reason"]) == (
        "command_failed", "test", "exit code 5")
    assert [s["status"] for s in metrics["build_stages"]] == ["success", "failed"]


def test_the_failure_reason_keeps_only_the_last_stderr_lines(tmp_path: Path) -> None:
    code, _, doc = collect(tmp_path, command=[sys.executable, "-c", FAILING_SCRIPT])
    assert code == 3
    assert doc["build_metrics"]["failure_reason"] == "exit code 3: " + "\n".join(
        f"error line {i}" for i in range(11, 31))


def test_a_successful_command_has_no_failure_fields(tmp_path: Path) -> None:
    _, _, doc = collect(tmp_path, command=[sys.executable, "-c", "pass"])
    metrics = doc["build_metrics"]
    assert (metrics["failure_category"], metrics["failure_stage"], metrics["failure_reason"]) == (None, None, None)


def test_a_declared_stage_starts_with_the_command_without_a_marker(tmp_path: Path) -> None:
    _, _, doc = collect(tmp_path, "--stage", "build", command=[sys.executable, "-c", "print('no markers')"])
    assert [(s["name"], s["status"]) for s in doc["build_metrics"]["build_stages"]] == [("build", "success")]


def test_a_command_that_cannot_start_exits_127_and_still_writes_the_document(tmp_path: Path) -> None:
    code, _, doc = collect(tmp_path, command=["./no-such-build-script"])
    assert code == 127
    assert doc["build_metrics"]["failure_reason"].startswith(
        "exit code 127: cannot start './no-such-build-script': ")


def test_a_missing_command_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["collect", "--output", str(tmp_path / "m.json")])
    assert result.exit_code == 2
    assert not (tmp_path / "m.json").exists()


def test_failure_reason_is_bounded() -> None:
    reason = failure_reason(1, ["x" * 5000])
    assert (len(reason), reason.endswith("…")) == (2000, True)


def test_a_stage_runs_from_its_marker_to_the_next_marker() -> None:
    ticks = iter([0.0, 2.0, 7.5, 10.0])
    tracker = StageTracker(["restore", "build"], whole_name="make", clock=lambda: next(ticks))
    tracker.start()           # 0.0: restore starts with the command
    tracker.mark("restore")   # 2.0: confirms the running first stage, no new stage
    tracker.mark("build")     # 7.5
    assert tracker.finish(0) == [{"name": "restore", "status": "success", "duration": 7.5},
                                 {"name": "build", "status": "success", "duration": 2.5}]


def test_network_bytes_are_the_delta_on_non_loopback_interfaces() -> None:
    before = {"lo": (100, 100), "eth0": (1_000, 500), "eth1": (10, 10)}
    after = {"lo": (9_999, 9_999), "eth0": (4_000, 700), "eth1": (20, 10)}
    assert network_delta(before, after) == {"bytes_downloaded": 3_010, "bytes_uploaded": 200, "interface": "eth0"}


def test_a_collected_document_loads_into_build_metrics_and_metric_samples(
    tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    pytest.importorskip("etl.run")
    from etl.config import load_config
    from etl.run import run_etl
    from etl.warehouse.local import LocalWarehouse

    _, _, doc = collect(tmp_path, "--stage", "compile", "--stage", "test",
                        command=[sys.executable, "-c", BUILD_SCRIPT])
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "build-42.json").write_text(json.dumps({**doc, "key": "nightly/42", "project": "eng"}))
    settings = load_config(write_config({
        "sources": [{"kind": "inbox", "name": "uploads", "path": "inbox"}],
        "warehouse": {"kind": "local", "path": "etl.duckdb"},
        "staging": {"dir": "staging"},
        # The project's own rule files; a relative path would resolve under tmp_path.
        "classification": {"rules": str(PROJECT_ROOT / "config" / "failure-rules.yaml"),
                           "known_issues": str(PROJECT_ROOT / "config" / "known-issues.yaml")},
    }))
    summary = run_etl(settings)
    assert summary.errors == []
    wh = LocalWarehouse(tmp_path / "etl.duckdb", read_only=True)
    try:
        metrics = wh.query("LatestBuildMetrics | project Source, Key, Platform, PeakMemoryMb, EndTime")
        stages = wh.query("LatestBuildStages | project StageIndex, Stage, Status").sort_values("StageIndex")
        samples = wh.query("LatestMetricSamples | summarize N = count() by Metric")
    finally:
        wh.close()
    row = metrics.to_dict("records")[0]
    assert (len(metrics), row["Source"], row["Key"], row["Platform"]) == (1, "uploads", "nightly/42", "linux")
    assert row["PeakMemoryMb"] == doc["memory_metrics"]["peak_usage_mb"]
    assert row["EndTime"] == datetime.fromisoformat(doc["build_session"]["end_time"].replace("Z", "+00:00")).replace(
        tzinfo=None)
    assert stages[["Stage", "Status"]].to_dict("records") == [{"Stage": "compile", "Status": "success"},
                                                             {"Stage": "test", "Status": "success"}]
    counts = dict(zip(samples["Metric"], samples["N"], strict=True))
    assert counts == {
        "memory_mb": len(doc["memory_metrics"]["samples"]),
        "duration_seconds": 1, "peak_memory_mb": 1, "bytes_downloaded": 1, "bytes_uploaded": 1,
        "stage_duration_seconds:compile": 1, "stage_duration_seconds:test": 1,
    }
