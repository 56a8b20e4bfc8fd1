"""Reports rendered from a small store: index + three self-contained HTML files, offline, CI text escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import report_html as H
from report_rows import START, XSS, make_config
from typer.testing import CliRunner

from etl.cli import app
from etl.config import PROJECT_ROOT
from etl.reports.notebooks import NOTEBOOKS, read_notebook

NAMES = ["ci_health", "flakiness", "regressions"]


@pytest.fixture
def rendered(rendered_reports: Path) -> Path:
    return rendered_reports


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


def test_health_report_has_the_pipeline_usage_section_and_the_summary_per_ci_system(rendered: Path) -> None:
    html = html_of(rendered, "ci_health")
    assert "Pipeline usage" in html and 'class="ct-usage"' in html
    # The seeded builds carry no System: they are Azure DevOps builds, the only system there was.
    assert re.search(r'id="summary-by-system">.*?<td>Azure DevOps</td><td>45</td>', html, re.S)


def test_flakiness_report_names_the_flaky_and_the_broken_test(rendered: Path) -> None:
    text = html_of(rendered, "flakiness")
    assert "<td>Tests.Flaky</td>" in text and "<td>Tests.Broken</td>" in text


def test_regressions_report_lists_the_duration_step_from_the_alerts_table(rendered: Path) -> None:
    rows = H.table_rows(html_of(rendered, "regressions"), "changes")
    assert [(r[0], r[1], r[2], r[3], r[6], r[11]) for r in rows] == [
        ("regression", "open", "duration_seconds", "proj/ci\\main/linux", "1025", "+29.7%")]


def test_regressions_cards_tables_and_charts_count_the_same_alerts(rendered: Path) -> None:
    text = html_of(rendered, "regressions")
    card = H.cards(text)
    open_ids = H.row_ids(text, "open-alerts")
    assert card["open_alerts"] == "1" and card["changes"] == "1" and card["open_regressions"] == "1"
    assert open_ids == H.row_ids(text, "changes") == H.charted_alerts(text) == ["f8d50cfe996de64503c3"]


def test_regressions_notebook_reads_alerts_and_never_detects() -> None:
    import ast

    assert 'ctx.load("alerts_in_period")' in (PROJECT_ROOT / "notebooks" / "regressions.py").read_text()
    # from the detection modules they take only the series and the technique names, never a detector
    allowed = {"Series", "builds_as_samples", "series", "DISTRIBUTION_TECHNIQUES", "list_alerts", "load_monitors",
               "Monitors"}
    for path in (PROJECT_ROOT / "notebooks" / "regressions.py", PROJECT_ROOT / "etl" / "reports" / "changes.py"):
        tree = ast.parse(path.read_text())
        imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and (node.module or "").startswith("etl.analysis") for a in node.names}
        assert imported <= allowed, (path.name, imported - allowed)


def test_every_page_states_the_period_and_why(rendered: Path) -> None:
    for name in [*NAMES, "index"]:
        assert "2026-03-01 00:00 – 2026-03-15 00:00 UTC</b> (14 days; --days 14 on the command line" in html_of(
            rendered, name), name


def test_index_summary_shows_the_health_figures_new_flaky_tests_and_open_regressions(rendered: Path) -> None:
    index = html_of(rendered, "index")
    assert H.cards(index) == {
        "pass_rate": "91.1%", "pr_first_attempt_pass_rate": "66.7%", "p90_duration_minutes": "54.6 min",
        "median_time_to_green_hours": "24.0 h", "retry_minutes_wasted": "10", "new_flaky_tests": "1",
        "open_regressions": "1"}
    # the same figures as the reports' own cards
    for name in NAMES:
        page = H.cards(html_of(rendered, name))
        assert {k: v for k, v in H.cards(index).items() if k in page} == {k: page[k] for k in H.cards(index) if k in page}


def test_index_summary_cards_link_to_sections_that_exist(rendered: Path) -> None:
    links = H.index_links(html_of(rendered, "index"))
    assert len(links) == 7
    for link in links:
        name, anchor = link.split("#")
        assert anchor in H.anchors((rendered / name).read_text()), link


def test_week_over_week_columns_are_named_for_a_reader(rendered: Path) -> None:
    text = html_of(rendered, "ci_health")
    assert "change_points" not in text and "pass_rate_this_week" not in text
    assert "<th>Change (percentage points)</th>" in text and "<th>Pass rate this week</th>" in text


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
    for name in NAMES:
        text = (tmp_path / "r" / f"{name}.html").read_text()
        assert "No data for this period." in text, name
        assert "plotly-graph-div" not in text, name  # no empty axes


def test_table_cells_and_captions_are_escaped() -> None:
    import pandas as pd

    from etl.reports import nbkit

    out = nbkit.table(pd.DataFrame({"TestName": [XSS]}), caption="<b>x</b>")
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "&lt;b&gt;x&lt;/b&gt;" in out


def test_chart_of_a_test_named_with_markup_keeps_it_escaped() -> None:
    import plotly.graph_objects as go

    from etl.reports import nbkit

    out = nbkit.figure(go.Figure(go.Bar(x=[1.0], y=[XSS], orientation="h")), title=XSS, alert_id='"><script>')
    assert "<script>alert(1)" not in out and '"><script>' not in out


def test_a_chart_without_points_says_no_data_instead_of_drawing_axes() -> None:
    import plotly.graph_objects as go

    from etl.reports import nbkit

    out = nbkit.figure(go.Figure(go.Scatter(x=[], y=[])), title="Daily pass rate")
    assert "No data for this period." in out and "plotly" not in out


def test_a_test_failing_now_and_then_is_not_broken_but_one_failing_on_its_last_commits_is() -> None:
    import pandas as pd

    from etl.analysis import flaky

    rows = []
    for i in range(40):  # one result per commit: "Sometimes" fails on 6 of 40 (15 %), "Now" on the last 4
        for name, failed in (("T.Sometimes", i % 7 == 3), ("T.Now", i >= 36)):
            rows.append({"Organization": "o", "Project": "p", "RunId": i, "BuildId": i, "TestName": name,
                         "Outcome": "Failed" if failed else "Passed", "PassedOnRerun": False,
                         "SourceVersion": f"c{i:02d}", "QueueTime": pd.Timestamp(START) + pd.Timedelta(hours=i)})
    stats = flaky.test_stats(pd.DataFrame(rows), flaky.FlakyThresholds(min_results=4, outage_min_results=4))
    assert dict(zip(stats["TestName"], stats["Kind"], strict=True)) == {"T.Now": "broken", "T.Sometimes": "ok"}


def test_a_previous_period_without_data_reads_no_previous_period_not_a_change() -> None:
    import pandas as pd

    from etl.analysis import health
    from etl.reports import summary

    empty = pd.DataFrame(columns=["Result", "DurationSeconds", "BuildKind", "Attempts", "SourceBranch", "BuildId"])
    now = {"builds": 45, "pass_rate": 0.9, "pr_first_attempt_pass_rate": 0.5, "p90_duration_minutes": 54.0,
           "median_time_to_green_hours": 24.0, "retry_minutes_wasted": 10.0}
    cards = summary.health_cards(now, health.summary(empty, pd.DataFrame(), ["refs/heads/main"]))
    assert [c.change for c in cards] == ["no previous period"] * 5
    stats = pd.DataFrame({"TestName": ["T"], "Kind": ["flaky"]})
    flaky_cards = summary.flaky_cards(stats, pd.DataFrame(columns=["TestName", "Kind"]), stats, pd.DataFrame())
    assert (flaky_cards[0].value, flaky_cards[0].change) == ("1", "no previous period")


def test_count_cards_change_in_whole_numbers() -> None:
    import pandas as pd

    from etl.reports import summary

    stats = pd.DataFrame({"TestName": ["A", "B"], "Kind": ["flaky", "flaky"]})
    before = pd.DataFrame({"TestName": ["A"], "Kind": ["flaky"]})
    card = summary.flaky_cards(stats, before, stats.head(0), pd.DataFrame())[0]
    assert (card.value, card.change, card.tone) == ("2", "+1 since last period", "bad")
