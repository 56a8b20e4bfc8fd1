"""The CI health report's Pipeline usage section over a hand-built store of three CI systems, and the
deprecated-steps file it reads."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from etl.analysis.data import Period
from etl.config import PROJECT_ROOT
from etl.normalize.usage import usage_rows
from etl.reports import usage
from etl.reports.systems import summary_by_system
from etl.warehouse import run_query_file

SHIPPED = PROJECT_ROOT / "config" / "deprecated-steps.yaml"
PERIOD = Period(datetime(2026, 3, 1), datetime(2026, 3, 15))
NOW = "2026-03-15T00:00:00"
SHA = "8e5e7e5ab8b370d6c329ec480221332ada57f0ab"
XSS = "<img src=x onerror=alert(1)>"


def _build(system: str, build_id: int, definition: str, day: int) -> dict[str, Any]:
    return {"System": system, "Organization": "org", "Project": "proj", "BuildId": build_id, "DefinitionId": build_id,
            "Definition": definition, "QueueTime": f"2026-03-{day:02d}T10:00:00", "IngestedAt": NOW}


def _tasks(b: dict[str, Any], *steps: tuple[str, str | None]) -> list[dict[str, Any]]:
    return [{"Organization": "org", "Project": "proj", "BuildId": b["BuildId"], "RecordId": f"r{i}", "Attempt": 1,
             "Type": "Task", "TaskName": name, "TaskVersion": version} for i, (name, version) in enumerate(steps)]


def hand_built() -> list[dict[str, Any]]:
    """Two ADO builds (one on CmdLine@1), three GitHub runs (checkout@v2, a branch-pinned action, a SHA and a
    local action), a Jenkins build, and one ADO build outside the period that uses NuGetCommand@1."""
    ado1, ado2 = _build("azure_devops", 1, "ci\\runtime", 2), _build("azure_devops", 2, "ci\\agent", 3)
    old = _build("azure_devops", 3, "ci\\old", 20)
    gh1, gh2 = _build("github_actions", 11, "CI", 4), _build("github_actions", 12, "Release", 5)
    gh3 = _build("github_actions", 13, XSS, 6)
    jk = _build("jenkins", 21, "folder/app", 7)
    records = (_tasks(ado1, ("CmdLine", "2.246.1"), ("CmdLine", "2.246.1"), ("DotNetCoreCLI", "2.247.1"))
               + _tasks(ado2, ("CmdLine", "1.1.3"), ("Bash", "3.246.1"))
               + _tasks(old, ("NuGetCommand", "1.0.0"))
               + _tasks(gh1, ("actions/checkout", "v2"), ("run", None), ("run", None))
               + _tasks(gh2, ("actions/checkout", "v4"), ("octo/lint", "main"), ("actions/cache", SHA))
               + _tasks(gh3, ("octo/lint", "main"), ("./.github/actions/build", None), ("actions/upload-artifact", "v3.1.2"))
               + _tasks(jk, ("sh", None), ("junit", None)))
    return usage_rows([ado1, ado2, old, gh1, gh2, gh3, jk], records, NOW)


@pytest.fixture
def frame(warehouse) -> pd.DataFrame:
    warehouse.ingest("PipelineSteps", hand_built(), "usage")
    return run_query_file(warehouse, "pipeline_usage", PERIOD.params())


def test_findings_are_exactly_the_deprecated_and_branch_pinned_steps(frame: pd.DataFrame) -> None:
    found = [(f["system"], f["kind"], f["step"], f["version"], f["named"])
             for f in usage.findings(frame, usage.load_deprecated(SHIPPED))]
    assert found == [
        ("Azure DevOps", "deprecated", "CmdLine", "1", ["ci\\agent"]),
        ("GitHub Actions", "deprecated", "actions/checkout", "v2", ["CI"]),
        ("GitHub Actions", "deprecated", "actions/upload-artifact", "v3.1.2", [XSS]),
        ("GitHub Actions", "unpinned", "octo/lint", "main", sorted([XSS, "Release"])),
    ]


def test_section_html_lists_the_findings_escaped_with_the_notice_links(frame: pd.DataFrame) -> None:
    html = usage.section(frame, usage.load_deprecated(SHIPPED), "deprecated-steps.yaml")
    rows = re.findall(r'<tr data-row="([^"]+)">', html)
    assert rows == ["deprecated:CmdLine@1", "deprecated:actions/checkout@v2",
                    "deprecated:actions/upload-artifact@v3.1.2", "unpinned:octo/lint@main"]
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert '<a href="https://github.com/actions/checkout/releases">notice</a>' in html


def test_most_used_steps_per_system_count_step_records(frame: pd.DataFrame) -> None:
    top = usage.most_used(frame)
    assert top.values.tolist() == [
        ["Azure DevOps", "CmdLine", "2", "inline_script", 1, 1, 2],
        ["Azure DevOps", "Bash", "3", "inline_script", 1, 1, 1],
        ["Azure DevOps", "CmdLine", "1", "inline_script", 1, 1, 1],
        ["Azure DevOps", "DotNetCoreCLI", "2", "task", 1, 1, 1],
        ["GitHub Actions", "octo/lint", "main", "action", 2, 2, 2],
        ["GitHub Actions", "run", "", "inline_script", 1, 1, 2],
        ["GitHub Actions", "./.github/actions/build", "", "action", 1, 1, 1],
        ["GitHub Actions", "actions/cache", SHA, "action", 1, 1, 1],
        ["GitHub Actions", "actions/checkout", "v2", "action", 1, 1, 1],
        ["GitHub Actions", "actions/checkout", "v4", "action", 1, 1, 1],
        ["GitHub Actions", "actions/upload-artifact", "v3.1.2", "action", 1, 1, 1],
        ["Jenkins", "junit", "", "step", 1, 1, 1],
        ["Jenkins", "sh", "", "inline_script", 1, 1, 1],
    ]


def test_inline_script_shares_per_system(frame: pd.DataFrame) -> None:
    shares = usage.inline_shares(frame)
    assert shares.values.tolist() == [
        ["Azure DevOps", 2, 2, 1.0, 5, 4, 0.8],
        ["GitHub Actions", 3, 1, 1 / 3, 9, 2, 2 / 9],
        ["Jenkins", 1, 1, 1.0, 2, 1, 0.5],
    ]


def test_daily_query_gives_the_steps_each_definition_used_per_day(warehouse) -> None:
    warehouse.ingest("PipelineSteps", hand_built(), "usage")
    daily = run_query_file(warehouse, "pipeline_usage_daily", {**PERIOD.params(), "definition": "ci\\agent"})
    assert daily[["Day", "Definition", "Step", "StepVersion", "Builds"]].values.tolist() == [
        [pd.Timestamp("2026-03-03"), "ci\\agent", "Bash", "3", 1],
        [pd.Timestamp("2026-03-03"), "ci\\agent", "CmdLine", "1", 1],
    ]


def test_a_version_prefix_flags_its_releases_but_not_other_majors() -> None:
    entry = usage.DeprecatedStep(versions=["v2", 1], reason="old")
    assert [entry.matches(v) for v in ("v2", "v2.3.1", "v20", "v3", "1", "1.2")] == [True, True, False, False, True,
                                                                                   True]


def test_a_deprecated_steps_file_with_an_unknown_system_is_one_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "deprecated.yaml"
    path.write_text("gitlab:\n  x: {versions: [v1], reason: r}\n", encoding="utf-8")
    with pytest.raises(usage.DeprecatedStepsError) as exc:
        usage.load_deprecated(path)
    assert str(exc.value) == f"{path}: gitlab: Extra inputs are not permitted"


def test_a_notice_link_must_be_http(tmp_path: Path) -> None:
    path = tmp_path / "deprecated.yaml"
    path.write_text("jenkins:\n  sh: {versions: ['1'], reason: r, link: 'javascript:alert(1)'}\n", encoding="utf-8")
    with pytest.raises(usage.DeprecatedStepsError, match=r"jenkins\.sh\.link: Value error, link must be an http"):
        usage.load_deprecated(path)


def test_summary_by_system_puts_each_systems_numbers_side_by_side() -> None:
    builds = pd.DataFrame([
        {"System": "azure_devops", "Organization": "o", "Project": "p", "BuildId": 1, "Result": "succeeded",
         "DurationSeconds": 600.0, "BuildKind": "Rolling", "Attempts": 1, "SourceBranch": "refs/heads/main",
         "TargetBranch": "refs/heads/main", "Definition": "d", "FinishTime": pd.Timestamp("2026-03-02")},
        {"System": "github_actions", "Organization": "o", "Project": "r", "BuildId": 1, "Result": "failed",
         "DurationSeconds": 60.0, "BuildKind": "Rolling", "Attempts": 1, "SourceBranch": "refs/heads/main",
         "TargetBranch": "refs/heads/main", "Definition": "CI", "FinishTime": pd.Timestamp("2026-03-02")},
        {"System": None, "Organization": "o", "Project": "p", "BuildId": 2, "Result": "failed",
         "DurationSeconds": 60.0, "BuildKind": "Rolling", "Attempts": 1, "SourceBranch": "refs/heads/main",
         "TargetBranch": "refs/heads/main", "Definition": "d", "FinishTime": pd.Timestamp("2026-03-03")},
    ])
    jobs = pd.DataFrame(columns=["Organization", "Project", "BuildId", "Attempt", "Identifier", "Name",
                                 "DurationSeconds"])
    table = summary_by_system(builds, jobs, ["refs/heads/main"])
    assert table[["CI system", "Builds (n)", "Pass rate"]].values.tolist() == [
        ["Azure DevOps", 2, 0.5], ["GitHub Actions", 1, 0.0]]


def test_the_simulated_organization_shows_a_deprecated_step_in_the_section(write_config) -> None:
    from etl.config import load_config
    from etl.run import run_etl
    from etl.simulator import SimulatedOrganization
    from etl.warehouse.local import LocalWarehouse

    sim = {"seed": 11, "days": 2, "builds_per_day": 4}
    settings = load_config(write_config({"sources": [{"kind": "simulator", "name": "simulated", **sim}],
                                         "warehouse": {"kind": "local", "path": "data/demo.duckdb"},
                                         "staging": {"dir": "data/staging"}}))
    assert not run_etl(settings).failed
    end = pd.Timestamp(SimulatedOrganization(**sim).ground_truth()["end"]).tz_localize(None).to_pydatetime()
    wh = LocalWarehouse(settings.path(settings.warehouse.path), read_only=True)
    try:
        frame = run_query_file(wh, "pipeline_usage", Period.last_days(7, end=end).params())
    finally:
        wh.close()
    found = [(f["system"], f["kind"], f["step"], f["version"], f["named"], f["builds"])
             for f in usage.findings(frame, usage.load_deprecated(SHIPPED))]
    assert found == [("Azure DevOps", "deprecated", "CmdLine", "1", ["ci\\agent"], 1)]
