"""The simulated Azure DevOps organization, exercised over real HTTP on loopback with `requests`.

The ground truth is checked against an independent walk of the API that applies the brief's
counting semantics, so the numbers the ETL's tests compare against are the numbers served.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from etl.classify import CATEGORIES
from etl.simulator import Faults, SimulatedOrganization, start_server

END = datetime(2026, 11, 23, tzinfo=UTC)
SMALL = {"seed": 11, "days": 6, "builds_per_day": 14, "end": END}


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with start_server(**SMALL) as srv:
        yield srv


def get(url: str, **params: Any) -> requests.Response:
    response = requests.get(url, params=params, timeout=30)
    return response


def all_builds(base: str, project: str, page: int = 7, **extra: Any) -> list[dict[str, Any]]:
    """Every build, following continuation tokens."""
    builds, token = [], None
    while True:
        params = {"queryOrder": "finishTimeAscending", "statusFilter": "completed", "$top": page,
                  "api-version": "7.1", **extra}
        if token:
            params["continuationToken"] = token
        response = get(f"{base}/{project}/_apis/build/builds", **params)
        assert response.status_code == 200
        builds += response.json()["value"]
        token = response.headers.get("x-ms-continuationtoken")
        if not token:
            return builds


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def walk(srv: Any) -> tuple[dict[str, int], list[str]]:
    """Count rows per table the way the brief defines them, from HTTP responses only."""
    counts = dict.fromkeys(("TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults",
                            "BuildMetrics", "BuildStages", "MetricSamples", "PipelineSteps"), 0)
    texts: list[str] = []
    for project in srv.projects:
        # Running builds are served too (without a status filter); their people are personal data as well.
        texts += strings(get(f"{srv.url}/{project}/_apis/build/builds").json())
        for build in all_builds(srv.url, project, page=50):
            counts["TimelineBuilds"] += 1
            texts += strings(build)
            counts["TimelineIssues"] += len(build["validationResults"])
            base = f"{srv.url}/{project}/_apis/build/builds/{build['id']}"
            latest = get(f"{base}/timeline").json()
            records: dict[tuple[str, int], dict[str, Any]] = {}
            pending = [latest]
            seen = {latest["id"]}
            while pending:
                timeline = pending.pop()
                texts += strings(timeline)
                for record in timeline["records"] or []:
                    records.setdefault((record["id"], record["attempt"]), record)
                    for prev in record["previousAttempts"]:
                        if prev["timelineId"] not in seen:
                            seen.add(prev["timelineId"])
                            pending.append(get(f"{base}/timeline/{prev['timelineId']}").json())
            counts["TimelineRecords"] += len(records)
            # PipelineSteps: distinct (task, major version) among the build's task records, every attempt.
            counts["PipelineSteps"] += len({(r["task"]["name"], r["task"]["version"].split(".")[0])
                                            for r in records.values() if r.get("task")})
            counts["TimelineIssues"] += sum(len(r.get("issues") or []) for r in records.values())
            runs = get(f"{srv.url}/{project}/_apis/test/runs", buildUri=f"vstfs:///Build/Build/{build['id']}",
                       includeRunDetails="true").json()["value"]
            counts["TestRuns"] += len(runs)
            for run in runs:
                skip = 0
                while True:
                    page = get(f"{srv.url}/{project}/_apis/test/Runs/{run['id']}/results", **{
                        "$top": 25, "$skip": skip, "detailsToInclude": "SubResults"}).json()["value"]
                    texts += strings(page)
                    counts["TestResults"] += len(page)
                    skip += len(page)
                    if len(page) < 25:
                        break
            artifact = get(f"{base}/artifacts", artifactName="telemetry")
            if artifact.status_code == 404:
                continue
            archive = zipfile.ZipFile(io.BytesIO(get(artifact.json()["resource"]["downloadUrl"]).content))
            for name in archive.namelist():
                doc = json.loads(archive.read(name))
                texts += strings(doc)
                counts["BuildMetrics"] += 1
                if name.endswith("metrics.json"):
                    stages = doc["build_metrics"]["build_stages"]
                    counts["BuildStages"] += len(stages)
                    counts["MetricSamples"] += len(doc["memory_metrics"]["samples"]) + 6 + len(stages)
                else:
                    counts["MetricSamples"] += sum(
                        1 for v in doc["telemetry"].values() if isinstance(v, int | float) and not isinstance(v, bool))
    return counts, texts


@pytest.fixture(scope="module")
def walked(server: Any) -> tuple[dict[str, int], list[str]]:
    return walk(server)


def test_expected_counts_equal_an_independent_walk_of_the_api(server: Any, walked: Any) -> None:
    counts, _ = walked
    truth = server.ground_truth
    assert counts == {**truth["expected_counts"], "PipelineSteps": truth["pipeline_steps"]["rows"]}
    assert counts["TimelineBuilds"] == SMALL["days"] * SMALL["builds_per_day"]


def test_every_planted_secret_appears_in_a_served_body(server: Any, walked: Any) -> None:
    _, texts = walked
    blob = "\n".join(texts)
    secrets = server.ground_truth["planted_secrets"]
    missing = [s for s in secrets if s not in blob]
    assert missing == []
    kinds = {
        "email": any("@" in s for s in secrets),
        "pat": any(len(s) == 52 and s.islower() for s in secrets),
        "aws": any(s.startswith("AKIA") for s in secrets),
        "jwt": any(s.startswith("eyJ") for s in secrets),
        "home": any(s.startswith("/home/") for s in secrets),
        "users": any(s.startswith("C:\\Users\\") for s in secrets),
        "account key": any(s.endswith("==") for s in secrets),
        "ip": any(s.startswith("10.") for s in secrets),
    }
    assert kinds == dict.fromkeys(kinds, True)


def test_same_seed_serves_identical_bodies() -> None:
    with start_server(**SMALL) as a, start_server(**SMALL) as b:
        def snapshot(srv: Any) -> str:
            builds = all_builds(srv.url, "Platform", page=200)
            timelines = [get(f"{srv.url}/Platform/_apis/build/builds/{x['id']}/timeline").json() for x in builds[:10]]
            return json.dumps([builds, timelines]).replace(srv.url, "ORG")

        assert snapshot(a) == snapshot(b)
        assert a.ground_truth == b.ground_truth


def test_different_seed_serves_different_builds() -> None:
    one = SimulatedOrganization(seed=1, days=2, builds_per_day=10, end=END)
    two = SimulatedOrganization(seed=2, days=2, builds_per_day=10, end=END)
    assert [b.commit for b in one.builds] != [b.commit for b in two.builds]
    assert one.ground_truth()["planted_secrets"] != two.ground_truth()["planted_secrets"]


def test_builds_paging_returns_every_build_once_in_finish_time_order(server: Any) -> None:
    builds = all_builds(server.url, "Engineering", page=7)
    ids = [b["id"] for b in builds]
    expected = sorted((b.finish, b.id) for b in server.org.builds if b.project == "Engineering" and b.finish)
    assert ids == [i for _, i in expected]
    assert len(set(ids)) == len(ids)
    finishes = [b["finishTime"] for b in builds]
    assert finishes == sorted(finishes)


def test_min_time_filter_returns_only_builds_finished_since(server: Any) -> None:
    builds = all_builds(server.url, "Engineering", page=500)
    cut = builds[len(builds) // 2]["finishTime"]
    since = all_builds(server.url, "Engineering", page=500, minTime=cut)
    assert [b["id"] for b in since] == [b["id"] for b in builds[len(builds) // 2:]]


def test_status_filter_completed_leaves_out_the_running_build(server: Any) -> None:
    every = get(f"{server.url}/Engineering/_apis/build/builds").json()["value"]
    completed = get(f"{server.url}/Engineering/_apis/build/builds", statusFilter="completed").json()["value"]
    assert [b["status"] for b in every if b["status"] != "completed"] == ["inProgress"]
    assert len(completed) == len(every) - 1


def test_definition_and_branch_filters(server: Any) -> None:
    only = all_builds(server.url, "Platform", page=500, definitions="21,22")
    assert {b["definition"]["id"] for b in only} == {21, 22}
    main = all_builds(server.url, "Platform", page=500, branchName="refs/heads/main")
    assert main and {b["sourceBranch"] for b in main} == {"refs/heads/main"}


def test_retried_job_previous_attempt_timeline_matches_previous_attempts(server: Any) -> None:
    retried = next(b for b in server.org.builds if b.rounds > 1 and b.project == "Engineering")
    base = f"{server.url}/Engineering/_apis/build/builds/{retried.id}"
    latest = get(f"{base}/timeline").json()
    job = next(r for r in latest["records"] if r["type"] == "Job" and r["attempt"] > 1)
    previous = job["previousAttempts"]
    assert [p["attempt"] for p in previous] == list(range(1, job["attempt"]))
    for prev in previous:
        older = get(f"{base}/timeline/{prev['timelineId']}").json()
        assert older["id"] == prev["timelineId"]
        match = [r for r in older["records"] if r["id"] == prev["recordId"]]
        assert [(r["type"], r["attempt"], r["identifier"]) for r in match] == [
            ("Job", prev["attempt"], job["identifier"])]
        assert match[0]["result"] == "failed"
    assert job["id"] not in {p["recordId"] for p in previous}


def test_a_retried_build_finishes_after_its_previous_attempt(server: Any) -> None:
    retried = next(b for b in server.org.builds if b.rounds > 1)
    base = f"{server.url}/{retried.project}/_apis/build/builds/{retried.id}"
    build = get(base).json()
    older = get(f"{base}/timeline/{retried.round_timelines[0][0]}").json()
    older_finish = max(r["finishTime"] for r in older["records"] if r["finishTime"])
    latest = get(f"{base}/timeline").json()
    rerun_start = min(r["startTime"] for r in latest["records"] if r["type"] == "Job" and r["attempt"] > 1)
    assert older_finish < rerun_start < build["finishTime"]


def test_plans_do_not_depend_on_the_interpreter_hash_seed() -> None:
    code = ("import json,hashlib,datetime as d;from etl.simulator import SimulatedOrganization as S;"
            "o=S(seed=4,days=2,builds_per_day=9,end=d.datetime(2026,11,23,tzinfo=d.UTC));"
            "print(hashlib.sha256(json.dumps(o.ground_truth(),sort_keys=True).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                              capture_output=True, text=True, check=True).stdout for seed in ("1", "2")}
    assert len(digests) == 1


def test_some_previous_attempt_timelines_are_partial_patches(server: Any) -> None:
    patch = next((b, tid) for b in server.org.builds for tid, kind in b.round_timelines if kind == "patch")
    b, tid = patch
    body = get(f"{server.url}/{b.project}/_apis/build/builds/{b.id}/timeline/{tid}").json()
    types = {r["type"] for r in body["records"]}
    assert "Job" in types
    assert types <= {"Job", "Task"}  # no Stage or Phase: the root records are not repeated


def test_a_build_that_never_started_has_a_timeline_with_null_records(server: Any) -> None:
    never = next(b for b in server.org.builds if b.kind in ("config", "cancel_early"))
    body = get(f"{server.url}/{never.project}/_apis/build/builds/{never.id}/timeline").json()
    assert body["records"] is None


def test_unknown_timeline_and_build_are_404(server: Any) -> None:
    b = server.org.builds[0]
    base = f"{server.url}/{b.project}/_apis/build/builds"
    assert get(f"{base}/{b.id}/timeline/00000000-0000-4000-8000-000000000000").status_code == 404
    assert get(f"{base}/1").status_code == 404
    assert get(f"{server.url}/NoSuchProject/_apis/build/builds").status_code == 404


def test_test_results_page_with_top_and_skip(server: Any) -> None:
    b = next(b for b in server.org.builds if server.org.test_runs_of(b))
    run_id = server.org.test_runs_of(b)[0][1].test_run.id
    url = f"{server.url}/{b.project}/_apis/test/Runs/{run_id}/results"
    whole = get(url, **{"$top": 1000}).json()["value"]
    pages = [get(url, **{"$top": 7, "$skip": skip}).json()["value"] for skip in range(0, len(whole) + 7, 7)]
    assert [r["id"] for page in pages for r in page] == [r["id"] for r in whole]
    assert len(whole) == 40
    assert pages[-1] == []


def test_test_runs_carry_the_job_attempt_in_pipeline_reference(server: Any) -> None:
    found = next((b, job, run) for b in server.org.builds for job, run in server.org.test_runs_of(b) if run.attempt > 1)
    b, _, run = found
    runs = get(f"{server.url}/{b.project}/_apis/test/runs", buildUri=f"vstfs:///Build/Build/{b.id}",
               includeRunDetails="true").json()["value"]
    ref = next(r["pipelineReference"] for r in runs if r["id"] == run.test_run.id)
    assert ref["pipelineId"] == b.id
    assert ref["jobReference"]["attempt"] == run.attempt
    assert ref["stageReference"]["stageName"] == "Test"


def test_passed_on_rerun_results_have_a_failed_then_passed_sub_result(server: Any) -> None:
    found = next((b, run) for b in server.org.builds for _, run in server.org.test_runs_of(b)
                 if any(code == "R" for code, _ in run.test_run.outcomes.values()))
    b, run = found
    results = get(f"{server.url}/{b.project}/_apis/test/Runs/{run.test_run.id}/results",
                  detailsToInclude="SubResults").json()["value"]
    rerun = [r for r in results if r["resultGroupType"] == "rerun" and r["outcome"] == "Passed"]
    assert rerun
    assert [s["outcome"] for s in rerun[0]["subResults"]] == ["Failed", "Passed"]


def test_artifact_zip_holds_a_valid_metrics_json(server: Any) -> None:
    b = next(b for b in server.org.builds if b.metrics is not None and b.metrics.metrics_json)
    artifact = get(f"{server.url}/{b.project}/_apis/build/builds/{b.id}/artifacts", artifactName="telemetry").json()
    assert artifact["name"] == "telemetry"
    archive = zipfile.ZipFile(io.BytesIO(get(artifact["resource"]["downloadUrl"]).content))
    doc = json.loads(archive.read("telemetry/metrics.json"))
    assert set(doc) == {"build_session", "memory_metrics", "network_metrics", "build_metrics", "performance_metrics"}
    assert doc["memory_metrics"]["peak_usage_mb"] == max(s["memory_mb"] for s in doc["memory_metrics"]["samples"])
    assert doc["build_session"]["os_info"].split("-")[0] in ("Linux", "Windows", "macOS")
    assert doc["build_metrics"]["failure_category"] in (None, *CATEGORIES)
    assert server.counters["artifact_zip"] >= 1


def test_a_build_without_uploaded_metrics_gives_404_for_the_artifact(server: Any) -> None:
    b = next(b for b in server.org.builds if b.metrics is None and b.status == "completed")
    response = get(f"{server.url}/{b.project}/_apis/build/builds/{b.id}/artifacts", artifactName="telemetry")
    assert response.status_code == 404
    assert response.json()["typeKey"] == "ArtifactNotFoundException"


def test_a_scheduled_429_carries_retry_after() -> None:
    faults = Faults(schedule={"builds": ("429", None)}, retry_after=3)
    with start_server(seed=3, days=1, builds_per_day=4, end=END, faults=faults) as srv:
        first = get(f"{srv.url}/Engineering/_apis/build/builds")
        second = get(f"{srv.url}/Engineering/_apis/build/builds")
        assert (first.status_code, first.headers["Retry-After"]) == (429, "3")
        assert second.status_code == 200
        assert srv.counters["builds"] == 2
        assert srv.faults_served["429"] == 1


def test_random_faults_are_deterministic_and_bounded_per_url() -> None:
    faults = {"rate": 0.9, "kinds": ["500", "503"], "max_consecutive": 2}

    def statuses() -> list[int]:
        with start_server(seed=5, days=1, builds_per_day=4, end=END, faults=faults) as srv:
            return [get(f"{srv.url}/Engineering/_apis/build/builds").status_code for _ in range(6)]

    first = statuses()
    assert first == statuses()
    assert 200 in first[:3]
    assert set(first) <= {200, 500, 503}


def test_malformed_fault_truncates_the_json_body() -> None:
    with start_server(seed=3, days=1, builds_per_day=4, end=END, faults={"schedule": {"builds": ["malformed"]}}) as srv:
        response = get(f"{srv.url}/Engineering/_apis/build/builds")
        assert response.status_code == 200
        with pytest.raises(ValueError):
            response.json()


def test_token_is_required_when_configured() -> None:
    with start_server(seed=3, days=1, builds_per_day=4, end=END, token="s3cret") as srv:
        url = f"{srv.url}/Engineering/_apis/build/builds"
        basic = base64.b64encode(b":s3cret").decode()
        suppress = {"X-TFS-FedAuthRedirect": "Suppress"}
        assert requests.get(url, headers=suppress, timeout=10).status_code == 401
        assert requests.get(url, headers={"Authorization": f"Basic {basic}"}, timeout=10).status_code == 200
        assert requests.get(url, headers={"Authorization": "Bearer s3cret"}, timeout=10).status_code == 200
        assert requests.get(url, headers={"Authorization": "Bearer wrong", **suppress}, timeout=10).status_code == 401


def test_refused_credentials_get_a_203_sign_in_page_unless_the_redirect_is_suppressed() -> None:
    with start_server(seed=3, days=1, builds_per_day=4, end=END, token="s3cret") as srv:
        url = f"{srv.url}/Engineering/_apis/build/builds"
        response = requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert (response.status_code, response.headers["Content-Type"]) == (203, "text/html; charset=utf-8")
    assert response.text.startswith("<!DOCTYPE html>") and "Sign In" in response.text


def test_failures_ground_truth_names_served_issues_with_known_categories(server: Any) -> None:
    failures = server.ground_truth["failures"]
    assert {f["category"] for f in failures} <= set(CATEGORIES)
    f = next(f for f in failures if f["record_id"])
    body = get(f"{server.url}/{f['project']}/_apis/build/builds/{f['build_id']}/timeline").json()
    timelines = [body] + [get(f"{server.url}/{f['project']}/_apis/build/builds/{f['build_id']}/timeline/{tid}").json()
                          for tid, _ in server.org.build_plan(f["project"], f["build_id"]).round_timelines]
    record = next(r for t in timelines for r in t["records"] or []
                  if r["id"] == f["record_id"] and r["attempt"] == f["attempt"])
    assert record["issues"][f["issue_index"]]["type"] == "error"


# --- the default organization (28 days × 12 builds/day), checked on the model ------------------


@pytest.fixture(scope="module")
def default_org() -> SimulatedOrganization:
    return SimulatedOrganization(seed=7, end=END)


def test_default_org_plants_failures_of_every_category(default_org: Any) -> None:
    truth = default_org.ground_truth()
    assert truth["expected_counts"]["TimelineBuilds"] == 28 * 12
    assert {f["category"] for f in truth["failures"]} == set(CATEGORIES)


def test_default_org_flaky_tests_clear_the_detection_thresholds(default_org: Any) -> None:
    truth = default_org.ground_truth()
    designed = [t.name for tests in default_org.tests.values() for t in tests if t.kind == "flaky"]
    assert sorted(designed) == truth["flaky_tests"]
    for name in truth["flaky_tests"]:
        ev = truth["flaky_evidence"][name]
        assert ev["results"] >= 30 and ev["flaky_commits"] >= 2 and ev["flake_rate"] >= 0.01
    assert len(truth["broken_tests"]) == 6
    assert truth["stable_tests_count"] == 6 * 40 - len(designed) - 6


def test_default_org_plants_a_few_regressions_among_many_quiet_series(default_org: Any) -> None:
    regressions = default_org.ground_truth()["regressions"]
    series = {(b.definition.id, b.metrics.platform) for b in default_org.builds if b.metrics and b.metrics.metrics_json}
    assert len(series) * 2 >= 10
    assert 1 <= len(regressions) < len(series)
    for reg in regressions:
        builds = sorted((b for b in default_org.builds if b.metrics and b.metrics.metrics_json
                         and b.definition.id == reg["definition_id"] and b.metrics.platform == reg["platform"]),
                        key=lambda b: (b.at(b.metrics.end_offset), b.id))
        field = "duration_factor" if reg["metric"] == "duration_seconds" else "memory_factor"
        factors = [getattr(b.metrics, field) for b in builds]
        assert builds[reg["index"]].id == reg["build_id"]
        assert factors[: reg["index"]] == [1.0] * reg["index"]
        assert set(factors[reg["index"]:]) == {1 + reg["change_percent"] / 100}
        assert 25 <= reg["change_percent"] <= 60


def test_big_option_makes_thousands_of_records_per_build() -> None:
    org = SimulatedOrganization(seed=7, days=1, builds_per_day=4, end=END, records_per_job=1000)
    b = next(b for b in org.builds if b.kind == "normal")
    body = org.timeline_body("http://x/simulated", b)
    assert len(body["records"]) > 2000
