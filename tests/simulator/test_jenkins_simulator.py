"""The simulated Jenkins controller enforces Jenkins' behaviour: auth, tree filtering, ranges, 404s."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import orjson
import pytest
import requests

from etl.simulator.jenkins import NO_READ_USER, TOKEN, JenkinsServer, apply_tree, parse_tree, start_jenkins

JOB = "/job/engineering/job/ci/job/runtime"


@pytest.fixture(scope="module")
def server() -> Iterator[JenkinsServer]:
    with start_jenkins(seed=11, days=3, builds_per_day=6) as srv:
        yield srv


def get(server: JenkinsServer, path: str, user: str = "sim", token: str = TOKEN) -> requests.Response:
    auth = base64.b64encode(f"{user}:{token}".encode()).decode()
    return requests.get(server.url + path, headers={"Authorization": f"Basic {auth}"}, timeout=10)


def test_requests_without_credentials_get_401_with_a_basic_challenge(server) -> None:
    resp = requests.get(server.url + "/api/json", timeout=10)
    assert (resp.status_code, resp.headers["WWW-Authenticate"]) == (401, 'Basic realm="Jenkins"')


def test_a_user_without_overall_read_gets_403(server) -> None:
    assert get(server, "/api/json", user=NO_READ_USER).status_code == 403


def test_tree_keeps_only_the_named_fields_and_class() -> None:
    body = {"_class": "X", "a": 1, "b": [{"_class": "Y", "c": 2, "d": 3}], "e": 4}
    assert apply_tree(body, parse_tree("a,b[c]")) == {"_class": "X", "a": 1, "b": [{"_class": "Y", "c": 2}]}


def test_a_range_selects_from_a_to_b_exclusive() -> None:
    body = {"items": list(range(10))}
    assert apply_tree(body, parse_tree("items{2,5}")) == {"items": [2, 3, 4]}
    assert apply_tree(body, parse_tree("items{7,}")) == {"items": [7, 8, 9]}
    assert apply_tree(body, parse_tree("items{3}")) == {"items": [3]}


def test_allbuilds_ranges_list_builds_newest_first(server) -> None:
    body = get(server, JOB + "/api/json?tree=allBuilds[number]{0,3}").json()
    total = len(server.sim.jobs["engineering/ci/runtime"])
    assert [b["number"] for b in body["allBuilds"]] == [total, total - 1, total - 2]


def test_a_build_without_tests_has_no_test_report(server) -> None:
    sim = server.sim.jobs["engineering/ci/runtime"]
    without = next(s for s in sim if not s.suites)
    assert get(server, f"{JOB}/{without.number}/testReport/api/json").status_code == 404


def test_stage_steps_use_the_jenkins_step_display_names(server) -> None:
    names = {step["name"] for builds in server.sim.jobs.values() for b in builds for s in b.stages
             for step in s["stageFlowNodes"]}
    assert {"Shell Script", "Windows Batch Script", "Run arbitrary Pipeline script", "Print Message",
            "Archive JUnit-formatted test results", "Archive the artifacts"} <= names


def test_archived_metrics_are_served_by_relative_path(server) -> None:
    sim = next(b for builds in server.sim.jobs.values() for b in builds if "telemetry/metrics.json" in b.artifacts)
    path = "".join(f"/job/{p}" for p in sim.job.split("/"))
    listed = get(server, f"{path}/{sim.number}/api/json?tree=artifacts[fileName,relativePath]").json()
    assert {"fileName": "metrics.json", "relativePath": "telemetry/metrics.json"} in [
        {k: a[k] for k in ("fileName", "relativePath")} for a in listed["artifacts"]]
    body = get(server, f"{path}/{sim.number}/artifact/telemetry/metrics.json").content
    assert orjson.loads(body) == orjson.loads(sim.artifacts["telemetry/metrics.json"])


def test_restarts_and_replays_name_the_build_they_retry(server) -> None:
    retried = [b for builds in server.sim.jobs.values() for b in builds if b.attempt > 1]
    assert retried
    for b in retried:
        cause = b.causes[0]
        assert cause["_class"].endswith(("RestartDeclarativePipelineCause", "ReplayCause"))
        assert f"#{b.number - 1}" in cause["shortDescription"] or "#" in cause["shortDescription"]
