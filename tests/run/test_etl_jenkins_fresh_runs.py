"""Jenkins source runs that cannot share test_etl_jenkins.py's uninterrupted run: one with another source
option (JUnit artifacts), one on a controller whose builds change between runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jenkins_fixtures import SIM, contents, counts, make, set_secrets

from etl.run import run_etl
from etl.simulator.jenkins import JenkinsServer, start_jenkins

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[JenkinsServer]:
    """A controller of this test's own: a test may complete its builds."""
    with start_jenkins(**SIM) as srv:
        yield srv


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    set_secrets(monkeypatch)


def test_junit_artifacts_add_one_test_run_per_archived_report(write_config, server) -> None:
    settings = make(write_config, server, "junit", junit_artifacts=["test-results/*.xml"])
    run_etl(settings)
    assert counts(contents(settings)) == server.ground_truth(junit_artifacts=True)["expected_counts"]


def test_builds_in_progress_are_skipped_then_loaded_once_they_finish(write_config, server) -> None:
    settings = make(write_config, server, "progress")
    waiting = server.sim.in_progress()
    assert waiting
    run_etl(settings)
    before = counts(contents(settings))
    assert before == server.ground_truth()["expected_counts"]
    for job, number in waiting:
        server.sim.complete(job, number, at_ms=server.sim.jobs[job][-1].timestamp + 10 * 86_400_000)
    run_etl(settings)
    after = counts(contents(settings))
    assert after == server.ground_truth()["expected_counts"]
    assert after["TimelineBuilds"] == before["TimelineBuilds"] + len(waiting)
