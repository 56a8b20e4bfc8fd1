"""The Jenkins source through the whole run loop, on the simulated controller: exactly the ground truth,
nothing more on a second run, in-progress builds loaded once they finish, identical after a kill and rerun."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import etl.load_step
from etl.config import PROJECT_ROOT, Settings, load_config
from etl.run import run_etl
from etl.schema import table
from etl.simulator.jenkins import JenkinsServer, start_jenkins
from etl.warehouse.local import LocalWarehouse

pytestmark = pytest.mark.slow

RULES = str(PROJECT_ROOT / "config" / "failure-rules.yaml")
SIM = {"seed": 11, "days": 3, "builds_per_day": 6}
FACTS = ("TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults", "BuildMetrics",
         "BuildStages", "MetricSamples")


class Killed(BaseException):
    """Stands for the process dying: no handler in the run loop catches it."""


@pytest.fixture
def server() -> Iterator[JenkinsServer]:
    with start_jenkins(**SIM) as srv:
        yield srv


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JENKINS_TEST_TOKEN", "11aa22bb33cc44dd55ee66ff77aa88bb99")
    monkeypatch.setenv("JENKINS_TEST_PSEUDONYM_KEY", "test-pseudonym-key-0123456789")


def make(write_config: Callable[..., Path], server: JenkinsServer, name: str, **source: Any) -> Settings:
    cfg = {"kind": "jenkins", "name": "ci", "url": server.url, "user": server.user,
           "token": "env://JENKINS_TEST_TOKEN", "organization": "jenkins-test", "batch_size": 7,
           "backoff_seconds": 0, "max_backoff_seconds": 0, "initial_lookback_days": 10, **source}
    return load_config(write_config({
        "sources": [cfg], "warehouse": {"kind": "local", "path": f"data/{name}.duckdb"},
        "staging": {"dir": f"data/{name}-staging"}, "classification": {"rules": RULES},
        "privacy": {"pseudonymization_key": "env://JENKINS_TEST_PSEUDONYM_KEY"}}, f"{name}.yaml"))


def contents(settings: Settings) -> dict[str, pd.DataFrame]:
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        out = {}
        for name in (*FACTS, "EtlWatermarks"):
            frame = wh.con.execute(f'SELECT * FROM "{name}"').df()
            frame = frame.drop(columns=["IngestedAt", *(("UpdatedAt", "RunId") if name == "EtlWatermarks" else ())])
            out[name] = frame.sort_values(list(table(name).key)).reset_index(drop=True)
        return out
    finally:
        wh.close()


def counts(settings: Settings) -> dict[str, int]:
    return {name: len(frame) for name, frame in contents(settings).items() if name in FACTS}


def test_the_jenkins_source_loads_exactly_the_simulated_ground_truth(write_config, server) -> None:
    settings = make(write_config, server, "once")
    summary = run_etl(settings)
    assert not summary.failed
    assert counts(settings) == server.ground_truth()["expected_counts"]


def test_junit_artifacts_add_one_test_run_per_archived_report(write_config, server) -> None:
    settings = make(write_config, server, "junit", junit_artifacts=["test-results/*.xml"])
    run_etl(settings)
    assert counts(settings) == server.ground_truth(junit_artifacts=True)["expected_counts"]


def test_a_second_run_adds_nothing(write_config, server) -> None:
    settings = make(write_config, server, "twice")
    run_etl(settings)
    first = contents(settings)
    run_etl(settings)
    second = contents(settings)
    for name in FACTS:
        pd.testing.assert_frame_equal(first[name], second[name], obj=name)


def test_builds_in_progress_are_skipped_then_loaded_once_they_finish(write_config, server) -> None:
    settings = make(write_config, server, "progress")
    waiting = server.sim.in_progress()
    assert waiting
    run_etl(settings)
    before = counts(settings)
    assert before == server.ground_truth()["expected_counts"]
    for job, number in waiting:
        server.sim.complete(job, number, at_ms=server.sim.jobs[job][-1].timestamp + 10 * 86_400_000)
    run_etl(settings)
    after = counts(settings)
    assert after == server.ground_truth()["expected_counts"]
    assert after["TimelineBuilds"] == before["TimelineBuilds"] + len(waiting)


def test_restarts_and_replays_are_later_attempts_of_their_root_build(write_config, server) -> None:
    settings = make(write_config, server, "retries")
    run_etl(settings)
    builds = contents(settings)["TimelineBuilds"]
    records = contents(settings)["TimelineRecords"]
    retries = server.ground_truth()["retries"]
    assert {r["cause"] for r in retries} == {"RestartDeclarativePipelineCause", "ReplayCause"}
    deepest = max(retries, key=lambda r: r["attempt"])
    from etl.sources.jenkins.mapping import build_id

    row = builds[builds["BuildId"] == build_id(deepest["job"], deepest["root"])].iloc[0]
    assert (row["BuildNumber"], int(row["Attempts"])) == (str(deepest["root"]), deepest["attempt"])
    jobs = records[(records["BuildId"] == row["BuildId"]) & (records["Type"] == "Job")]
    assert sorted(set(jobs["Attempt"])) == list(range(1, deepest["attempt"] + 1))


@pytest.mark.parametrize("step", ["load_facts", "commit_batch"])
def test_a_run_killed_in_its_third_batch_then_rerun_ends_identical(write_config, server, monkeypatch, step) -> None:
    whole = make(write_config, server, "whole")
    run_etl(whole)
    expected = contents(whole)
    settings = make(write_config, server, f"killed-{step}")
    calls = {"n": 0}
    real = getattr(etl.load_step, step)

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(etl.load_step, step, dying)
    with pytest.raises(Killed):
        run_etl(settings)
    monkeypatch.setattr(etl.load_step, step, real)
    run_etl(settings)
    found = contents(settings)
    for name in expected:
        pd.testing.assert_frame_equal(expected[name], found[name], obj=name)
