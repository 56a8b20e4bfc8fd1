"""Regression series → Alerts rows, deduplicated across runs, and the resolve lifecycle (store + CLI)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from etl.analysis import alerts, regressions
from etl.analysis.monitors import Monitor, Monitors, load_monitors
from etl.cli import app
from etl.config import PROJECT_ROOT

T0 = datetime(2026, 3, 1)


def samples(values: list[float], metric: str = "duration_seconds", platform: str = "linux") -> pd.DataFrame:
    return pd.DataFrame([
        {"Organization": "o", "Project": "p", "Definition": "ci\\main", "Metric": metric, "Platform": platform,
         "BuildId": 100 + i, "SourceVersion": f"c{100 + i}", "Timestamp": T0 + timedelta(hours=i), "Value": v}
        for i, v in enumerate(values)
    ])


def step_values(n: int = 40, at: int = 25, factor: float = 1.3) -> list[float]:
    rng = np.random.default_rng(5)
    v = 100 + rng.normal(0, 1.5, n)
    v[at:] *= factor
    return v.tolist()


MONITORS = Monitors(monitors=[Monitor(metric="duration_seconds", lower_is_better=True),
                              Monitor(metric="performance_score", lower_is_better=False)])


def test_a_slower_build_is_one_regression_alert_naming_the_builds_and_commits_around_the_change() -> None:
    found = regressions.detect_regressions(samples(step_values()), MONITORS, detected_at=T0)
    assert len(found) == 1
    row = found.iloc[0]
    assert (row["BuildBefore"], row["BuildAfter"], row["CommitBefore"], row["CommitAfter"]) == (124, 125, "c124", "c125")
    assert (row["Direction"], row["Status"], row["Resolution"], row["Series"]) == ("regression", "open", "", "p/ci\\main/linux")
    assert 27 < row["ChangePercent"] < 33


def test_a_higher_score_where_higher_is_better_is_an_improvement() -> None:
    found = regressions.detect_regressions(samples(step_values(), metric="performance_score"), MONITORS, detected_at=T0)
    assert found["Direction"].tolist() == ["improvement"]


def test_alert_id_is_a_stable_hash_of_metric_series_and_change_build() -> None:
    assert regressions.alert_id("o", "m", "s", 5) == regressions.alert_id("o", "m", "s", 5)
    assert regressions.alert_id("o", "m", "s", 5) != regressions.alert_id("o", "m", "s", 6)


def test_series_shorter_than_min_points_are_not_judged() -> None:
    assert regressions.detect_regressions(samples(step_values(n=15, at=8)), MONITORS).empty


def test_monitor_only_changes_are_rows_of_mode_monitor_and_no_alert_mode_rows() -> None:
    m = Monitors(monitors=[Monitor(metric="duration_seconds", mode="monitor")])
    found = regressions.detect_regressions(samples(step_values()), m)
    assert len(found) == 1
    assert regressions.to_alert_rows(found, "alert") == []
    assert [r["Details"]["mode"] for r in regressions.to_alert_rows(found)] == ["monitor"]


def test_a_metric_without_a_declared_direction_has_changes_never_regressions() -> None:
    m = Monitors(monitors=[Monitor(metric="duration_seconds")])
    found = regressions.detect_regressions(samples(step_values()), m, detected_at=T0)
    assert (found["Kind"].tolist(), found["Direction"].tolist()) == (["change"], ["change"])


def test_a_step_the_noise_test_cannot_tell_from_noise_is_not_recorded() -> None:
    monitors = Monitors(monitors=[Monitor(metric="duration_seconds", direction="lower_is_better")])
    noisy = np.random.default_rng(2).normal(100, 40, 60)
    noisy[:2] = 400.0  # two wild builds at the start: a short "segment" the detector may cut off
    found = regressions.detect_regressions(samples(noisy.tolist()), monitors, detected_at=T0)
    assert found.empty


def test_direction_and_lower_is_better_must_agree() -> None:
    with pytest.raises(ValueError, match="lower_is_better contradicts direction 'higher_is_better'"):
        Monitor(metric="m", direction="higher_is_better", lower_is_better=True)


def test_monitors_yaml_of_the_project_is_valid_and_unknown_keys_are_errors(tmp_path: Path) -> None:
    assert load_monitors(PROJECT_ROOT / "config" / "monitors.yaml").get("duration_seconds") is not None
    bad = tmp_path / "monitors.yaml"
    bad.write_text("monitors:\n  - metric: x\n    lower_is_beter: true\n")
    with pytest.raises(ValueError, match=r"monitors\.0\.lower_is_beter: unknown setting"):
        load_monitors(bad)


def test_re_running_detection_adds_no_duplicate_alerts(warehouse) -> None:
    rows = regressions.to_alert_rows(regressions.detect_regressions(samples(step_values()), MONITORS, detected_at=T0))
    assert alerts.record_alerts(warehouse, rows) == (1, 0)
    rows_again = regressions.to_alert_rows(regressions.detect_regressions(samples(step_values()), MONITORS, detected_at=T0 + timedelta(days=1)))
    assert alerts.record_alerts(warehouse, rows_again) == (0, 1)
    assert len(alerts.list_alerts(warehouse)) == 1


def test_a_resolved_alert_stays_resolved_when_detection_finds_it_again(warehouse) -> None:
    rows = regressions.to_alert_rows(regressions.detect_regressions(samples(step_values()), MONITORS, detected_at=T0))
    alerts.record_alerts(warehouse, rows)
    alerts.resolve_alert(warehouse, rows[0]["AlertId"], "wontfix", now=T0 + timedelta(hours=1))
    alerts.record_alerts(warehouse, rows)
    stored = alerts.list_alerts(warehouse)
    assert stored[["Status", "Resolution"]].values.tolist() == [["resolved", "WONTFIX"]]
    assert alerts.list_alerts(warehouse, "open").empty


def test_resolve_rejects_an_unknown_resolution_and_an_unknown_id(warehouse) -> None:
    with pytest.raises(alerts.AlertError, match="expected one of FIXED, WONTFIX, INVALID, WORKSFORME"):
        alerts.resolve_alert(warehouse, "x", "DONE")
    with pytest.raises(alerts.AlertError, match="alert 'nope': not found"):
        alerts.resolve_alert(warehouse, "nope", "FIXED")


def test_alerts_cli_lists_open_alerts_and_resolves_one(write_config) -> None:
    from etl.config import load_config
    from etl.warehouse import connected

    cfg = write_config({"sources": [{"kind": "simulator"}], "warehouse": {"kind": "local", "path": "data/w.duckdb"}})
    rows = regressions.to_alert_rows(regressions.detect_regressions(samples(step_values()), MONITORS, detected_at=T0))
    with connected(load_config(cfg)) as wh:
        wh.apply_schema()
        alerts.record_alerts(wh, rows)
    runner = CliRunner()
    listed = runner.invoke(app, ["alerts", "list", "--status", "open", "-c", str(cfg)])
    assert listed.exit_code == 0 and rows[0]["AlertId"] in listed.stdout
    bad = runner.invoke(app, ["alerts", "resolve", rows[0]["AlertId"], "--resolution", "DONE", "-c", str(cfg)])
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "error: --resolution 'DONE': expected one of FIXED, WONTFIX, INVALID, WORKSFORME"
    ok = runner.invoke(app, ["alerts", "resolve", rows[0]["AlertId"], "--resolution", "FIXED", "-c", str(cfg)])
    assert ok.stdout.strip() == f"{rows[0]['AlertId']}: resolved (FIXED)"
    assert runner.invoke(app, ["alerts", "list", "--status", "open", "-c", str(cfg)]).stdout.strip() == "(no alerts)"


def test_a_glob_monitor_watches_every_matching_metric_and_an_exact_name_wins() -> None:
    m = Monitors(monitors=[Monitor(metric="stage_duration_seconds:*", mode="monitor"),
                           Monitor(metric="stage_duration_seconds:test", mode="alert")])
    assert m.get("stage_duration_seconds:compile").mode == "monitor"
    assert m.get("stage_duration_seconds:test").mode == "alert"
    assert m.get("duration_seconds") is None
    found = regressions.detect_regressions(samples(step_values(), metric="stage_duration_seconds:compile"), m)
    assert found["Metric"].tolist() == ["stage_duration_seconds:compile"]


def daily_samples(days: int = 10, shift_day: int = 6, per_day: int = 30) -> pd.DataFrame:
    """Memory samples of one build per day (BuildId 200 + day); from *shift_day* on they are 40% higher."""
    rng = np.random.default_rng(11)
    rows = []
    for day in range(days):
        for k, v in enumerate(rng.normal(1000, 30, per_day) * (1.4 if day >= shift_day else 1.0)):
            rows.append({"Organization": "o", "Project": "p", "Definition": "ci\\main", "Metric": "memory_mb",
                         "Platform": "linux", "BuildId": 200 + day, "SourceVersion": f"c{200 + day}",
                         "Timestamp": T0 + timedelta(days=day, minutes=k), "Value": float(v)})
    return pd.DataFrame(rows)


CDF_MONITORS = Monitors(monitors=[Monitor(metric="memory_mb", direction="lower_is_better", technique="cdf",
                                          args={"threshold": 0.03, "back": 3})])


def test_a_shifted_daily_distribution_is_one_cdf_alert_at_the_first_shifted_day() -> None:
    found = regressions.detect_regressions(daily_samples(), CDF_MONITORS)
    assert found[["Technique", "BuildBefore", "BuildAfter", "Direction", "ChangeAt"]].to_dict(orient="records") == [
        {"Technique": "cdf", "BuildBefore": 205, "BuildAfter": 206, "Direction": "regression",
         "ChangeAt": T0 + timedelta(days=6)}]
    assert round(found["ChangePercent"].iloc[0]) == 40


def test_an_unchanged_daily_distribution_raises_no_cdf_alert() -> None:
    assert regressions.detect_regressions(daily_samples(shift_day=99), CDF_MONITORS).empty


def test_cdf_is_not_accepted_as_the_per_build_default_technique() -> None:
    with pytest.raises(ValueError, match="unknown default technique 'cdf'"):
        Monitors.model_validate({"defaults": {"technique": "cdf"}})
