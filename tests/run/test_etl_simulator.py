"""End to end against the simulated organization: exact counts, idempotent re-runs, crash and resume,
fault storms, and no planted secret in the store or the outbox.

The tests that compare with an uninterrupted run share one (the `whole` fixture) against one module-wide
server; a test that runs again on its store works on a copy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from etl.config import PROJECT_ROOT, Settings, load_config
from etl.run import run_etl
from etl.schema import table
from etl.simulator import start_server
from etl.warehouse.local import LocalWarehouse
from tests.conftest import RULES, config_writer, copied_settings, store_settings, table_counts, text_cells

TABLES = ("TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults", "BuildMetrics",
          "BuildStages", "MetricSamples")
SIM = {"seed": 11, "days": 2, "builds_per_day": 4}


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """The simulated organization served for the module; tests that count its requests start their own."""
    with start_server(**SIM) as srv:
        yield srv


@pytest.fixture(scope="module")
def truth(server: Any) -> dict[str, Any]:
    return server.ground_truth


def sim_source(url: str, projects: list[str], **extra: Any) -> dict[str, Any]:
    return {"kind": "azure_devops", "name": "sim", "organization_url": url, "projects": projects, "auth": "none",
            "page_size": 3, "backoff_seconds": 0, "max_backoff_seconds": 0, "max_retries": 10,
            "initial_lookback_days": 10, **extra}


def make_settings(write_config: Callable[..., Path], *sources: dict[str, Any], name: str = "test.yaml") -> Settings:
    return store_settings(write_config, list(sources), name, "ETL_SIM_TEST_PSEUDONYM_KEY", config_name=name)


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_SIM_TEST_PSEUDONYM_KEY", "test-pseudonym-key-0123456789")


def module_run(tmp_path_factory: pytest.TempPathFactory, name: str, source: dict[str, Any]) -> Settings:
    """The settings of one run of *source* into a store of the module's own (config/<name>)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ETL_SIM_TEST_PSEUDONYM_KEY", "test-pseudonym-key-0123456789")
        settings = make_settings(config_writer(tmp_path_factory.mktemp(name)), source, name=name)
        summary = run_etl(settings)
    assert not summary.failed, summary.errors
    return settings


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory, server: Any) -> Settings:
    """An uninterrupted run from the module's server; tests read it and compare with it, never write it."""
    return module_run(tmp_path_factory, "whole.yaml", sim_source(server.url, server.projects))


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Any]:
    """One run of the in-process simulator source (no HTTP): its settings and summary."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ETL_SIM_TEST_PSEUDONYM_KEY", "test-pseudonym-key-0123456789")
        settings = make_settings(config_writer(tmp_path_factory.mktemp("simulated")),
                                 {"kind": "simulator", "name": "simulated", **SIM})
        return settings, run_etl(settings)


def counts(settings: Settings) -> dict[str, int]:
    return table_counts(settings, TABLES)


def contents(settings: Settings, drop: tuple[str, ...] = ()) -> dict[str, pd.DataFrame]:
    """Every table's rows without IngestedAt (which is the staging time, different per run), sorted by key."""
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        out = {}
        for t in TABLES:
            frame = wh.con.execute(f'SELECT * EXCLUDE ("IngestedAt") FROM "{t}"').df()
            frame = frame.drop(columns=[c for c in drop if c in frame.columns])
            out[t] = frame.sort_values(list(table(t).key)).reset_index(drop=True)
        return out
    finally:
        wh.close()


def test_simulator_source_loads_exactly_the_ground_truth_counts(simulated, truth) -> None:
    settings, summary = simulated
    assert not summary.failed
    assert counts(settings) == truth["expected_counts"]


def test_simulator_source_loads_one_pipeline_steps_row_per_build_and_step_with_the_deprecated_major(
        simulated, truth) -> None:
    settings, _ = simulated
    wh = LocalWarehouse(settings.path(settings.warehouse.path), read_only=True)
    try:
        rows = wh.execute_sql('SELECT "Step" || \'@\' || "StepVersion", count(*) FROM "PipelineSteps" '
                              'WHERE "System" = \'azure_devops\' AND "Pinning" = \'major\' GROUP BY 1 ORDER BY 1')
    finally:
        wh.close()
    assert {step: n for step, n in rows} == truth["pipeline_steps"]["steps"]
    assert sum(n for _, n in rows) == truth["pipeline_steps"]["rows"] == 38
    assert truth["pipeline_steps"]["steps"]["CmdLine@1"] == 1


def test_second_run_loads_nothing_new_and_counts_stay(whole, server, truth, tmp_path) -> None:
    settings = copied_settings(whole, "whole.yaml", tmp_path / "twice")
    second = run_etl(settings)
    assert counts(settings) == truth["expected_counts"]
    # Only the boundary build (minTime is inclusive) is read again.
    assert second.loaded["TimelineBuilds"] <= len(server.projects)


def test_fault_storm_of_429_500_and_truncated_bodies_completes_with_the_same_rows(write_config, whole,
                                                                                   truth) -> None:
    faults = {"rate": 0.3, "kinds": ["429", "500", "503", "malformed"], "retry_after": 0, "max_consecutive": 2}
    with start_server(**SIM, faults=faults) as stormy:
        storm = make_settings(write_config, sim_source(stormy.url, stormy.projects), name="storm.yaml")
        summary = run_etl(storm)
    assert not summary.failed
    assert counts(storm) == truth["expected_counts"]
    # Two servers, two ports: the URL columns differ by port only.
    left, right = contents(whole, drop=("Url", "LogUrl")), contents(storm, drop=("Url", "LogUrl"))
    for t in TABLES:
        pd.testing.assert_frame_equal(left[t], right[t], obj=t)


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["in-process", "two-staging-workers"])
def test_no_planted_secret_reaches_the_store_the_outbox_or_the_logs(write_config, server, truth, workers) -> None:
    settings = make_settings(write_config, sim_source(server.url, server.projects))
    summary = settings.base_dir / "summary.md"
    cli = [sys.executable, "-c", "from etl.cli import main; main()"]
    run = subprocess.run([*cli, "etl", "--config", str(settings.base_dir / "config" / "test.yaml"),
                          "--summary-file", str(summary), *workers], cwd=PROJECT_ROOT, capture_output=True,
                         timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    staged = b"".join(p.read_bytes() for p in settings.path(settings.staging.dir).rglob("*") if p.is_file())
    logs = run.stdout + run.stderr + summary.read_bytes()
    cells = text_cells(settings.path(settings.warehouse.path)).encode()
    assert truth["planted_secrets"] and len(cells) > 100_000
    # The planted values were there and were replaced, not merely absent.
    assert all(marker in cells for marker in (b"<secret>", b"<email>", b"<user>"))
    leaked = [s for s in truth["planted_secrets"] if any(s.encode() in blob for blob in (staged, logs, cells))]
    assert leaked == []


def test_run_killed_mid_load_then_rerun_ends_with_the_rows_of_an_uninterrupted_run(write_config, server, whole,
                                                                                   truth) -> None:
    crashed = make_settings(write_config, sim_source(server.url, server.projects), name="crash.yaml")
    outbox = crashed.path(crashed.staging.dir) / "outbox"
    cli = [sys.executable, "-c", "from etl.cli import main; main()"]
    proc = subprocess.Popen([*cli, "etl", "--config", str(crashed.base_dir / "config" / "crash.yaml")],
                            cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(outbox.glob("*/manifest.json")):
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert list(outbox.glob("*/manifest.json")), "the run was killed before it staged a batch"
    run_etl(crashed)
    assert counts(crashed) == truth["expected_counts"]
    left, right = contents(whole), contents(crashed)
    for t in TABLES:
        pd.testing.assert_frame_equal(left[t], right[t], obj=t)
    # The derived known-issue ledger and the watermarks are complete too, not only the facts.
    for t, when in (("KnownIssueMatches", "EvaluatedAt"), ("EtlWatermarks", "UpdatedAt")):
        pd.testing.assert_frame_equal(derived(whole, t, when), derived(crashed, t, when), obj=t)


def derived(settings: Settings, name: str, when: str) -> pd.DataFrame:
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        frame = wh.con.execute(f'SELECT * EXCLUDE ("IngestedAt", "{when}") FROM "{name}"').df()
        frame = frame.drop(columns=[c for c in ("RunId",) if name == "EtlWatermarks"])
        return frame.sort_values(list(table(name).key)).reset_index(drop=True)
    finally:
        wh.close()


def builds_per_definition(settings: Settings) -> dict[int, int]:
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        return dict(wh.execute_sql('SELECT "DefinitionId", count(*) FROM "TimelineBuilds" GROUP BY ALL ORDER BY 1'))
    finally:
        wh.close()


def test_an_opted_out_definition_loads_nothing_and_the_others_load_in_full(write_config, whole) -> None:
    per_definition = builds_per_definition(whole)
    opted_out = min(per_definition)
    # A server of its own: its request counters are this run's alone.
    with start_server(**SIM) as srv:
        settings = load_config(write_config({
            "sources": [sim_source(srv.url, list(srv.projects))], "classification": {"rules": RULES},
            "warehouse": {"kind": "local", "path": "data/optout.duckdb"}, "staging": {"dir": "data/optout"},
            "privacy": {"opt_out": {"definitions": [opted_out]}}}, "optout.yaml"))
        run_etl(settings)
        # The builds request named the definitions in scope, which the project's definitions listing gave.
        assert srv.counters["definitions"] == len(srv.projects)
    assert builds_per_definition(settings) == {d: n for d, n in per_definition.items() if d != opted_out}


def test_two_staging_workers_stage_and_load_exactly_what_one_process_does(write_config, server, whole) -> None:
    source = sim_source(server.url, server.projects)
    settings = load_config(write_config({
        "sources": [source], "warehouse": {"kind": "local", "path": "data/workers.duckdb"},
        "staging": {"dir": "data/workers-staging", "workers": 2}, "classification": {"rules": RULES},
        "privacy": {"pseudonymization_key": "env://ETL_SIM_TEST_PSEUDONYM_KEY"}}, "workers.yaml"))
    summary = run_etl(settings)
    assert not summary.failed, summary.errors
    got, expected = contents(settings), contents(whole)
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name], expected[name], check_dtype=False)

    def raw_lines(s: Settings) -> list[bytes]:
        # Batch ids differ (the first window starts at the run's time); the bundles staged do not.
        outbox = s.path(s.staging.dir) / "outbox"
        return sorted(line for p in outbox.glob("*/raw.jsonl") for line in p.read_bytes().splitlines())

    assert raw_lines(settings) == raw_lines(whole)
    assert len(raw_lines(whole)) == len(expected["TimelineBuilds"]) > 1
