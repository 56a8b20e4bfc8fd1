"""Reports rendered from a small store: index + three self-contained HTML files, offline, CI text escaped."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import nbformat
import pytest
import yaml
from report_rows import END, START, XSS, seed
from typer.testing import CliRunner

from etl.analysis.alerts import detect_and_record
from etl.analysis.data import Period
from etl.cli import app
from etl.config import PROJECT_ROOT
from etl.reports.notebooks import NOTEBOOKS, read_notebook
from etl.reports.render import render_reports
from etl.warehouse.local import LocalWarehouse

NAMES = ["ci_health", "flakiness", "regressions"]


def make_config(root: Path) -> Path:
    (root / "config").mkdir(parents=True)
    wh = LocalWarehouse(root / "data" / "warehouse.duckdb")
    wh.apply_schema()
    seed(wh)
    # The Alerts-writing step of the pipeline, before any report reads Alerts.
    detect_and_record(wh, PROJECT_ROOT / "config" / "monitors.yaml", Period(START - timedelta(days=14), END))
    wh.close()
    path = root / "config" / "test.yaml"
    path.write_text(yaml.safe_dump({
        "sources": [{"kind": "simulator"}],
        "warehouse": {"kind": "local", "path": "data/warehouse.duckdb"},
        "reports": {"monitors": str(PROJECT_ROOT / "config" / "monitors.yaml")},
    }))
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reports")
    run = render_reports(make_config(root), days=14, out_dir=root / "out", end=END)
    assert run.ok, [r.error for r in run.results]
    return root / "out"


def html_of(out: Path, name: str) -> str:
    return (out / f"{name}.html").read_text(encoding="utf-8")


def test_render_writes_index_three_reports_and_their_executed_notebooks(rendered: Path) -> None:
    assert sorted(p.name for p in rendered.iterdir()) == sorted(
        ["index.html", "run.json", *(f"{n}.html" for n in NAMES), *(f"{n}.ipynb" for n in NAMES)])


def test_reports_load_nothing_from_the_network(rendered: Path) -> None:
    for name in [*NAMES, "index"]:
        text = html_of(rendered, name)
        assert '<script src="http' not in text, name
        assert not re.search(r"<link[^>]+href=[\"']https?:", text), name


def test_each_report_embeds_plotly_js_once(rendered: Path) -> None:
    for name in NAMES:
        assert html_of(rendered, name).count("* plotly.js v") == 1, name


def test_failure_message_with_markup_appears_only_escaped(rendered: Path) -> None:
    for name in [*NAMES, "index"]:
        assert XSS not in html_of(rendered, name), name
        assert "<script>alert(1)" not in html_of(rendered, name), name
    assert "&lt;script&gt;alert(1)&lt;/script&gt; error CS1002" in html_of(rendered, "ci_health")


def test_code_cells_are_hidden(rendered: Path) -> None:
    assert "R.context(config_path" not in html_of(rendered, "ci_health")


def test_health_summary_shows_pass_rate_with_its_sample_size(rendered: Path) -> None:
    text = html_of(rendered, "ci_health")
    # 46 builds − 1 canceled = 45; 41 succeeded → 91.1 %
    assert 'Build pass rate (n=45)</div><div class="ct-value">91.1%' in text
    assert 'Median time to green (main)</div><div class="ct-value">24.0 h' in text


def test_flakiness_report_names_the_flaky_and_the_broken_test(rendered: Path) -> None:
    text = html_of(rendered, "flakiness")
    assert "<td>Tests.Flaky</td>" in text and "<td>Tests.Broken</td>" in text


def test_regressions_report_lists_the_duration_step(rendered: Path) -> None:
    text = html_of(rendered, "regressions")
    assert "<td>duration_seconds</td>" in text and "<td>1025</td>" in text


def test_index_links_reports_and_shows_period_and_freshness(rendered: Path) -> None:
    text = html_of(rendered, "index")
    for name in NAMES:
        assert f'<a href="{name}.html">' in text
    assert "2026-03-01 00:00 – 2026-03-15 00:00 UTC" in text
    assert "Newest build finished: <b>2026-03-14 01:00 UTC</b>" in text
    assert "<td>run-1</td>" in text
    assert [r["error"] for r in json.loads((rendered / "run.json").read_text())["reports"]] == ["", "", ""]


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebooks_have_a_parameters_cell_with_the_report_parameters(name: str) -> None:
    nb = read_notebook(name)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    for param in ("period_days", "start", "end", "organization", "project", "definitions", "branch", "config_path",
                  "period_reason"):
        assert re.search(rf"^{param} = ", cells[0].source, re.M), param


def test_report_command_renders_an_empty_period_and_prints_the_index_path(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    result = CliRunner().invoke(app, ["report", "--days", "3", "--out", str(tmp_path / "r"), "-c", str(config)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "r" / "index.html")
    assert "no rows in this period" in (tmp_path / "r" / "flakiness.html").read_text()
