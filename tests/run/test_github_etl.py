"""End to end against the simulated GitHub: exact ground truth, idempotent re-runs, kill and resume, refused token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import etl.load_step
from etl.config import Settings
from etl.run import run_etl
from etl.schema import table
from etl.simulator.github import GitHubFaults, GitHubSimulator, start_github_server
from etl.warehouse.local import LocalWarehouse
from tests.conftest import store_settings, table_counts, text_cells

pytestmark = pytest.mark.slow

TABLES = ("TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults", "BuildMetrics",
          "BuildStages", "MetricSamples")
TOKEN = "ghs_simulatedInstallationToken0123456789"


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so no handler in the run loop catches it."""


@pytest.fixture(scope="module")
def sim() -> Iterator[GitHubSimulator]:
    with start_github_server(seed=8, days=5, builds_per_day=6, token=TOKEN) as srv:
        yield srv


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_TEST_PSEUDONYM_KEY", "test-pseudonym-key-0123456789")
    monkeypatch.setenv("GH_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("GH_TEST_BAD_TOKEN", "ghs_revoked")


def source(sim: GitHubSimulator, token: str = "env://GH_TEST_TOKEN", **extra: Any) -> dict[str, Any]:
    return {"kind": "github_actions", "name": "gh", "api_url": sim.url, "owner": "octo-sim", "token": token,
            "batch_size": 4, "backoff_seconds": 0, "max_backoff_seconds": 0, "initial_lookback_days": 10, **extra}


def make(write_config: Callable[..., Path], src: dict[str, Any], name: str) -> Settings:
    return store_settings(write_config, [src], name, "GH_TEST_PSEUDONYM_KEY")


def contents(settings: Settings) -> dict[str, pd.DataFrame]:
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        return {t: wh.con.execute(f'SELECT * EXCLUDE ("IngestedAt") FROM "{t}"').df()
                .sort_values(list(table(t).key)).reset_index(drop=True) for t in TABLES}
    finally:
        wh.close()


def step_usage(settings: Settings) -> dict[str, int]:
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        rows = wh.con.execute('SELECT "TaskName", "TaskVersion", count(*) FROM "TimelineRecords" '
                              "WHERE \"Type\" = 'Task' GROUP BY ALL").fetchall()
    finally:
        wh.close()
    return {(f"{n}@{v}" if v else str(n)): c for n, v, c in rows}


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory, sim: GitHubSimulator) -> Settings:
    base = tmp_path_factory.mktemp("gh-whole")
    (base / "config").mkdir()

    def write(data: Any, name: str) -> Path:
        import yaml

        path = base / "config" / name
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GH_TEST_PSEUDONYM_KEY", "test-pseudonym-key-0123456789")
        mp.setenv("GH_TEST_TOKEN", TOKEN)
        settings = make(write, source(sim), "whole")
        summary = run_etl(settings)
    assert not summary.failed, summary.errors
    return settings


def test_the_github_source_loads_exactly_the_simulators_ground_truth(whole, sim) -> None:
    assert table_counts(whole, TABLES) == sim.ground_truth()["expected_counts"]


def test_every_step_records_the_action_and_ref_the_workflow_file_names(whole, sim) -> None:
    assert step_usage(whole) == sim.ground_truth()["step_usage"]


def test_rows_name_the_system_owner_and_repositories(whole) -> None:
    wh = LocalWarehouse(whole.path(whole.warehouse.path))
    try:
        rows = wh.con.execute('SELECT DISTINCT "System", "Organization", "Project" FROM "TimelineBuilds" '
                              "ORDER BY 3").fetchall()
    finally:
        wh.close()
    assert rows == [("github_actions", "octo-sim", "engineering"), ("github_actions", "octo-sim", "platform")]


def test_a_second_run_adds_nothing(whole, sim) -> None:
    before = contents(whole)
    requests_before = sim.counters["attempt_jobs"]
    unchanged_before = sim.counters["not_modified"]
    second = run_etl(whole)
    assert not second.failed
    after = contents(whole)
    for t in TABLES:
        pd.testing.assert_frame_equal(before[t], after[t], obj=t)
    # Only the boundary runs (the watermark is inclusive) are read again.
    assert second.loaded["TimelineBuilds"] <= 2
    assert sim.counters["attempt_jobs"] - requests_before <= 2 * 3
    # The listings of the days already read answer 304 (free), from the index the first run kept.
    assert sim.counters["not_modified"] - unchanged_before >= 2 * 3


def test_a_run_killed_in_its_third_batch_then_rerun_ends_identical(write_config, sim, whole,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make(write_config, source(sim), "killed")
    calls = {"n": 0}
    real = etl.load_step.load_facts

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(etl.load_step, "load_facts", dying)
    with pytest.raises(Killed):
        run_etl(settings)
    monkeypatch.setattr(etl.load_step, "load_facts", real)
    resumed = run_etl(settings)
    assert not resumed.failed, resumed.errors
    # The batch killed while it loaded, and the next one, which had staged beside it.
    assert len(resumed.resumed_batches) == 2
    left, right = contents(whole), contents(settings)
    for t in TABLES:
        pd.testing.assert_frame_equal(left[t], right[t], obj=t)


def test_a_refused_token_stops_the_source_with_one_line_and_loads_nothing(write_config, sim) -> None:
    settings = make(write_config, source(sim, token="env://GH_TEST_BAD_TOKEN"), "refused")
    summary = run_etl(settings)
    assert summary.failed
    assert len(summary.errors) == 1
    assert summary.errors[0].startswith(f"gh: HTTP 401 Bad credentials for {sim.url}/orgs/octo-sim/repos — check the token")
    assert "ghs_revoked" not in summary.errors[0]
    assert table_counts(settings, TABLES) == dict.fromkeys(TABLES, 0)


def test_no_planted_secret_reaches_the_store_or_the_outbox(whole, sim) -> None:
    cells = text_cells(whole.path(whole.warehouse.path)).encode()
    staged = b"".join(p.read_bytes() for p in whole.path(whole.staging.dir).rglob("*") if p.is_file())
    planted = sim.org.ground_truth()["planted_secrets"]
    assert b"<secret>" in cells
    assert [s for s in planted if s.encode() in cells or s.encode() in staged] == []
    assert TOKEN.encode() not in staged


def test_a_storm_of_secondary_limits_and_server_errors_ends_with_exactly_the_ground_truth(write_config) -> None:
    faults = GitHubFaults(secondary_at={3, 40, 41, 120}, secondary_retry_after=0.05, server_error_at={7, 90})
    with start_github_server(seed=8, days=5, builds_per_day=6, token=TOKEN, faults=faults) as storm:
        settings = make(write_config, source(storm), "storm")
        summary = run_etl(settings)
        served = (storm.counters["fault:secondary"], storm.counters["fault:502"])
        truth = storm.ground_truth()["expected_counts"]
    assert not summary.failed, summary.errors
    assert served == (4, 2)
    assert table_counts(settings, TABLES) == truth
