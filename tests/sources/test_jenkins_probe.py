"""`ci-telemetry doctor` probes Jenkins sources: the controller, each configured job, refused tokens."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl.doctor import run_doctor
from etl.simulator.jenkins import TOKEN, JenkinsServer, start_jenkins

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[JenkinsServer]:
    with start_jenkins(seed=3, days=1, builds_per_day=2) as srv:
        yield srv


def source_lines(write_config: Callable[..., Path], source: dict) -> list[tuple[str, str]]:
    path = write_config({"sources": [source], "warehouse": {"kind": "local", "path": "warehouse.duckdb"}})
    return [(c.status, re.sub(r":\d+", ":PORT", c.detail)) for c in run_doctor(path, now=NOW) if c.name == "source"]


def test_the_simulated_controller_is_started_and_probed(write_config) -> None:
    assert source_lines(write_config, {"kind": "jenkins_simulator", "days": 1, "builds_per_day": 2}) == [
        ("ok", "jenkins-simulated: http://127.0.0.1:PORT readable, 2 top-level item(s)")]


def test_each_configured_job_is_probed_and_an_unknown_one_fails(write_config, server, monkeypatch) -> None:
    monkeypatch.setenv("JENKINS_PROBE_TOKEN", TOKEN)
    cfg = {"kind": "jenkins", "name": "ci", "url": server.url, "user": "sim", "token": "env://JENKINS_PROBE_TOKEN",
           "jobs": ["engineering", "nope"]}
    assert source_lines(write_config, cfg) == [
        ("ok", "ci: http://127.0.0.1:PORT readable, 2 top-level item(s)"),
        ("ok", "ci: job or folder 'engineering' readable"),
        ("FAIL", "ci: job or folder 'nope': not found (HTTP 404)")]


def test_a_refused_token_fails_in_one_line(write_config, server, monkeypatch) -> None:
    monkeypatch.setenv("JENKINS_PROBE_TOKEN", "not-the-token")
    cfg = {"kind": "jenkins", "name": "ci", "url": server.url, "user": "sim", "token": "env://JENKINS_PROBE_TOKEN"}
    assert source_lines(write_config, cfg) == [("FAIL", "ci: GET /api/json: HTTP 401 (user or API token refused)")]
