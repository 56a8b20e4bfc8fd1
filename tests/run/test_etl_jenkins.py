"""The Jenkins source through the whole run loop, on the simulated controller: exactly the ground truth,
nothing more on a second run, restarts as attempts, identical after a kill and rerun.

One uninterrupted run (the `whole` fixture) serves every test here: they read its store, compare with
it, or rerun on a copy of it. Runs that cannot share it are in test_etl_jenkins_fresh_runs.py, so
`--dist loadscope` can give the two modules to different workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from jenkins_fixtures import FACTS, SIM, contents, counts, make, set_secrets

import etl.load_step
from etl.config import Settings
from etl.run import run_etl
from etl.run_summary import RunSummary
from etl.simulator.jenkins import JenkinsServer, start_jenkins
from tests.conftest import config_writer, copied_settings

pytestmark = pytest.mark.slow


class Killed(BaseException):
    """Stands for the process dying: no handler in the run loop catches it."""


@dataclass(frozen=True)
class Whole:
    """An uninterrupted run: its settings, its summary and the store's contents right after it."""

    settings: Settings
    summary: RunSummary
    contents: dict[str, pd.DataFrame]


@pytest.fixture(scope="module")
def server() -> Iterator[JenkinsServer]:
    """The controller every test of this module reads; none changes its builds."""
    with start_jenkins(**SIM) as srv:
        yield srv


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory, server: JenkinsServer) -> Whole:
    with pytest.MonkeyPatch.context() as mp:
        set_secrets(mp)
        settings = make(config_writer(tmp_path_factory.mktemp("jenkins-whole")), server, "whole")
        summary = run_etl(settings)
    return Whole(settings, summary, contents(settings))


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    set_secrets(monkeypatch)


def test_the_jenkins_source_loads_exactly_the_simulated_ground_truth(whole, server) -> None:
    assert not whole.summary.failed
    assert counts(whole.contents) == server.ground_truth()["expected_counts"]


def test_a_second_run_adds_nothing(whole, tmp_path: Path) -> None:
    settings = copied_settings(whole.settings, "whole.yaml", tmp_path / "twice")
    run_etl(settings)
    second = contents(settings)
    for name in FACTS:
        pd.testing.assert_frame_equal(whole.contents[name], second[name], obj=name)


def test_restarts_and_replays_are_later_attempts_of_their_root_build(whole, server) -> None:
    builds = whole.contents["TimelineBuilds"]
    records = whole.contents["TimelineRecords"]
    retries = server.ground_truth()["retries"]
    assert {r["cause"] for r in retries} == {"RestartDeclarativePipelineCause", "ReplayCause"}
    deepest = max(retries, key=lambda r: r["attempt"])
    from etl.sources.jenkins.mapping import build_id

    row = builds[builds["BuildId"] == build_id(deepest["job"], deepest["root"])].iloc[0]
    assert (row["BuildNumber"], int(row["Attempts"])) == (str(deepest["root"]), deepest["attempt"])
    jobs = records[(records["BuildId"] == row["BuildId"]) & (records["Type"] == "Job")]
    assert sorted(set(jobs["Attempt"])) == list(range(1, deepest["attempt"] + 1))


@pytest.mark.parametrize("step", ["load_facts", "commit_batch"])
def test_a_run_killed_in_its_third_batch_then_rerun_ends_identical(write_config, server, whole, monkeypatch,
                                                                    step) -> None:
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
    for name in whole.contents:
        pd.testing.assert_frame_equal(whole.contents[name], found[name], obj=name)
