"""`ci-telemetry alerts detect` after `etl` on the simulator: the planted regressions and flaky tests are in
Alerts (checked against the simulator's ground truth), and a second run adds nothing."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from etl.analysis.alerts import list_alerts
from etl.cli import app
from etl.config import PROJECT_ROOT, load_config
from etl.simulator import SimulatedOrganization
from etl.warehouse.local import LocalWarehouse

SIM = {"seed": 7, "days": 14, "builds_per_day": 12}


@pytest.mark.slow
def test_etl_then_alerts_detect_records_the_planted_regression_and_every_flaky_test_once(write_config) -> None:
    config = write_config({
        "sources": [{"kind": "simulator", "name": "simulated", **SIM}],
        "warehouse": {"kind": "local", "path": "data/warehouse.duckdb"},
        "staging": {"dir": "data/staging"},
        "reports": {"monitors": str(PROJECT_ROOT / "config" / "monitors.yaml")},
    })
    runner = CliRunner()
    for args in (["schema", "apply"], ["etl"]):
        result = runner.invoke(app, [*args, "--config", str(config)])
        assert result.exit_code == 0, result.output
    first = runner.invoke(app, ["alerts", "detect", "--days", "16", "--config", str(config)])
    second = runner.invoke(app, ["alerts", "detect", "--days", "16", "--config", str(config)])
    assert first.exit_code == 0, first.output
    truth = SimulatedOrganization(**SIM).ground_truth()
    settings = load_config(config)
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        alerts = list_alerts(wh)
    finally:
        wh.close()
    flaky = alerts[alerts["Kind"] == "flaky"]
    assert sorted(flaky["Series"]) == sorted(truth["flaky_tests"])
    planted = {(r["metric"], r["build_id"]) for r in truth["regressions"]}
    regressions = alerts[(alerts["Kind"] == "regression") & (alerts["Mode"] == "alert")]
    assert set(zip(regressions["Metric"], regressions["BuildAfter"], strict=True)) >= planted
    assert second.stdout.strip().endswith(f"0 new alert(s), {len(alerts)} already known")
    listed = runner.invoke(app, ["alerts", "list", "--kind", "flaky", "--config", str(config)])
    assert sum(name in listed.stdout for name in truth["flaky_tests"]) == len(truth["flaky_tests"])
