"""A scheduled pipeline run end to end (schema, ETL, alerts detect, report): its pages agree with each other.

Its own module, apart from the tests of the shared rendering, so that xdist (which hands out a module at a
time) can run this long test on one worker while the other runs the rest of the report tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import report_html as H
import yaml
from typer.testing import CliRunner

from etl.cli import app
from etl.config import PROJECT_ROOT

NAMES = ["ci_health", "flakiness", "regressions"]


def _alerts_step(config: Path) -> None:
    """The pipeline's Alerts-writing step over all the history the simulator holds, as `demo` runs it."""
    result = CliRunner().invoke(app, ["alerts", "detect", "--days", "29", "-c", str(config)])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_scheduled_pipeline_run_gives_reports_whose_cards_tables_and_charts_agree(tmp_path: Path) -> None:
    config = tmp_path / "config" / "pipeline.yaml"
    config.parent.mkdir()
    config.write_text(yaml.safe_dump({
        "sources": [{"kind": "simulator", "name": "simulated", "seed": 7, "days": 28, "builds_per_day": 6}],
        "warehouse": {"kind": "local", "path": "data/warehouse.duckdb"}, "staging": {"dir": "data/staging"},
        "classification": {"rules": str(PROJECT_ROOT / "config" / "failure-rules.yaml"),
                           "known_issues": str(PROJECT_ROOT / "config" / "known-issues.yaml")},
        "reports": {"monitors": str(PROJECT_ROOT / "config" / "monitors.yaml"), "days": 14},
    }))
    cli = CliRunner()
    for args in (["schema", "apply"], ["etl"]):
        result = cli.invoke(app, [*args, "-c", str(config)])
        assert result.exit_code == 0, result.output
    _alerts_step(config)
    result = cli.invoke(app, ["report", "-c", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    regressions, index = H.page(out, "regressions"), H.page(out, "index")
    card = H.cards(regressions)
    open_ids = H.row_ids(regressions, "open-alerts")
    open_rows = H.table_rows(regressions, "open-alerts")
    assert int(card["open_alerts"]) == len(open_ids) == len(H.charted_alerts(regressions)) > 0
    assert H.charted_alerts(regressions) == open_ids
    assert int(card["changes"]) == len(H.row_ids(regressions, "changes"))
    assert set(open_ids) <= set(H.row_ids(regressions, "changes"))
    assert int(card["open_regressions"]) == sum(r[0] == "regression" for r in open_rows)
    assert H.cards(index)["open_regressions"] == card["open_regressions"]
    flakiness = H.page(out, "flakiness")
    assert int(H.cards(flakiness)["new_flaky_tests"]) == len(H.table_rows(flakiness, "new-flaky-tests"))
    assert H.cards(index)["new_flaky_tests"] == H.cards(flakiness)["new_flaky_tests"]
    for name in [*NAMES, "index"]:
        assert "(14 days; reports.days = 14 in pipeline.yaml)" in H.page(out, name), name
