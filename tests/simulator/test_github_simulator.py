"""The simulated GitHub API enforces GitHub's documented limits and renders the simulated organization."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from etl.simulator.github import GitHubFaults, GitHubSimulator, parse_created, start_github_server
from etl.sources.github_actions.workflow import parse_workflow


@pytest.fixture(scope="module")
def sim() -> Iterator[GitHubSimulator]:
    with start_github_server(seed=8, days=10, builds_per_day=25, token="t0ken-for-tests") as srv:
        yield srv


def get(sim: GitHubSimulator, path: str, token: str | None = "t0ken-for-tests", **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kwargs.pop("headers", {}))
    return requests.get(sim.url + path, headers=headers, timeout=10, **kwargs)


RUNS = "/repos/octo-sim/engineering/actions/runs"


def test_per_page_is_capped_at_100(sim) -> None:
    body = get(sim, RUNS, params={"per_page": 500}).json()
    assert body["total_count"] > 100
    assert len(body["workflow_runs"]) == 100


def test_per_page_defaults_to_30(sim) -> None:
    assert len(get(sim, RUNS).json()["workflow_runs"]) == 30


def test_following_link_next_visits_every_run_once_newest_first(sim) -> None:
    response = get(sim, RUNS, params={"per_page": 100})
    total = response.json()["total_count"]
    ids, created = [], []
    while True:
        runs = response.json()["workflow_runs"]
        ids += [r["id"] for r in runs]
        created += [r["created_at"] for r in runs]
        following = response.links.get("next", {}).get("url")
        if not following:
            break
        response = get(sim, following.removeprefix(sim.url))
    assert len(ids) == len(set(ids)) == total
    assert created == sorted(created, reverse=True)


def test_link_header_names_next_and_last_on_the_first_page_and_first_and_prev_later(sim) -> None:
    first = get(sim, RUNS, params={"per_page": 100, "status": "completed"})
    assert set(first.links) == {"next", "last"}
    last = get(sim, first.links["last"]["url"].removeprefix(sim.url))
    assert set(last.links) == {"first", "prev"}


@pytest.mark.slow
def test_a_filtered_listing_reaches_at_most_1000_results_though_total_count_says_more() -> None:
    with start_github_server(seed=3, days=1, builds_per_day=2100, tests_per_definition=4, token="t") as srv:
        response = requests.get(srv.url + "/repos/octo-sim/engineering/actions/runs",
                                params={"status": "completed", "per_page": 100},
                                headers={"Authorization": "Bearer t"}, timeout=10)
        total = response.json()["total_count"]
        seen = 0
        pages = 0
        while True:
            seen += len(response.json()["workflow_runs"])
            pages += 1
            following = response.links.get("next", {}).get("url")
            if not following:
                break
            response = requests.get(following, headers={"Authorization": "Bearer t"}, timeout=10)
        beyond = requests.get(srv.url + "/repos/octo-sim/engineering/actions/runs",
                              params={"status": "completed", "per_page": 100, "page": 11},
                              headers={"Authorization": "Bearer t"}, timeout=10).json()
    assert total > 1000
    assert (seen, pages) == (1000, 10)
    assert beyond["workflow_runs"] == [] and beyond["total_count"] == total


def test_created_qualifiers_are_inclusive_ranges() -> None:
    a, b = parse_created("2026-11-01T00:00:00Z..2026-11-01T11:59:59Z")
    assert (a.isoformat(), b.isoformat()) == ("2026-11-01T00:00:00+00:00", "2026-11-01T11:59:59+00:00")
    assert [t.isoformat() if t else None for t in parse_created(">=2026-11-01")] == ["2026-11-01T00:00:00+00:00", None]
    assert [t.isoformat() if t else None for t in parse_created("2026-11-01")] == [
        "2026-11-01T00:00:00+00:00", "2026-11-01T23:59:59+00:00"]


def test_every_response_carries_the_rate_limit_headers(sim) -> None:
    for response in (get(sim, RUNS), get(sim, "/repos/octo-sim/nope/actions/runs"), get(sim, RUNS, token="wrong")):
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset",
                "x-ratelimit-resource"} <= {k.lower() for k in response.headers}


def test_a_spent_budget_answers_403_with_remaining_0_until_the_reset() -> None:
    now = [1000.0]
    with start_github_server(days=2, builds_per_day=2, token="t", rate_limit=2, rate_window=60,
                             clock=lambda: now[0]) as srv:
        statuses = [requests.get(srv.url + "/rate_limit", headers={"Authorization": "Bearer t"}).status_code]
        answers = [requests.get(srv.url + RUNS, headers={"Authorization": "Bearer t"}) for _ in range(3)]
        now[0] += 60
        after = requests.get(srv.url + RUNS, headers={"Authorization": "Bearer t"})
    assert statuses == [200]  # /rate_limit itself costs nothing
    assert [a.status_code for a in answers] == [200, 200, 403]
    assert answers[2].headers["x-ratelimit-remaining"] == "0"
    assert answers[2].headers["x-ratelimit-reset"] == "1060"
    assert "API rate limit exceeded" in answers[2].json()["message"]
    assert (after.status_code, after.headers["x-ratelimit-remaining"]) == (200, "1")


def test_a_matching_if_none_match_gets_304_and_costs_no_budget(sim) -> None:
    first = get(sim, RUNS, params={"per_page": 5})
    again = get(sim, RUNS, params={"per_page": 5}, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]


def test_secondary_rate_limit_fault_answers_429_with_retry_after() -> None:
    with start_github_server(days=2, builds_per_day=2, token="t", faults=GitHubFaults(secondary_at={2},
                                                                                      secondary_retry_after=7)) as srv:
        codes = [requests.get(srv.url + RUNS, headers={"Authorization": "Bearer t"}) for _ in range(3)]
    assert [c.status_code for c in codes] == [200, 429, 200]
    assert codes[1].headers["retry-after"] == "7"


def test_a_missing_or_wrong_token_gets_401_bad_credentials(sim) -> None:
    for token in (None, "wrong"):
        response = get(sim, RUNS, token=token)
        assert (response.status_code, response.json()["message"]) == (401, "Bad credentials")


def _artifacts(sim: GitHubSimulator) -> list[dict[str, Any]]:
    out = []
    for repo in sim.repositories:
        for b in sim.bodies.completed_runs(repo):
            out += sim.bodies.run_artifacts(b)
    return out


def test_an_artifact_download_redirects_to_a_blob_host_that_refuses_authorization(sim) -> None:
    artifact = next(a for a in _artifacts(sim) if not a["expired"] and not sim.bodies.gone(a["id"])
                    and a["name"] == "telemetry-data")
    first = get(sim, artifact["archive_download_url"], allow_redirects=False)
    assert first.status_code == 302
    location = first.headers["Location"]
    assert f":{sim.port}/" not in location
    with_token = requests.get(location, headers={"Authorization": "Bearer t0ken-for-tests"}, timeout=10)
    without = requests.get(location, timeout=10)
    assert with_token.status_code == 400
    assert without.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(without.content)).namelist()
    assert "metrics.json" in names or "build-summary.json" in names


def test_an_expired_artifact_is_listed_expired_and_answers_410(sim) -> None:
    expired = next(a for a in _artifacts(sim) if a["expired"])
    assert get(sim, expired["archive_download_url"], allow_redirects=False).status_code == 410


def test_a_junit_artifact_holds_one_report_with_a_case_per_test(sim) -> None:
    artifact = next(a for a in _artifacts(sim) if a["name"].startswith("test-results-") and sim.bodies.available(a["id"]))
    data = get(sim, artifact["archive_download_url"]).content
    xml = zipfile.ZipFile(io.BytesIO(data)).read("junit.xml").decode()
    assert xml.count("<testcase ") == 40


def test_the_workflow_file_at_a_runs_commit_uses_deprecated_unpinned_local_and_docker_actions(sim) -> None:
    run = get(sim, RUNS, params={"per_page": 100}).json()["workflow_runs"]
    texts = set()
    for r in run:
        body = get(sim, f"/repos/octo-sim/engineering/contents/{r['path']}", params={"ref": r["head_sha"]}).json()
        texts.add(base64.b64decode(body["content"]).decode())
    for repo in ("platform",):
        r = get(sim, f"/repos/octo-sim/{repo}/actions/runs", params={"per_page": 100}).json()["workflow_runs"]
        for x in r:
            body = get(sim, f"/repos/octo-sim/{repo}/contents/{x['path']}", params={"ref": x["head_sha"]}).json()
            texts.add(base64.b64decode(body["content"]).decode())
    uses = {s.get("uses") for t in texts for job in yaml.safe_load(t)["jobs"].values() for s in job["steps"]}
    assert {"actions/checkout@v2", "actions/upload-artifact@v3", "contoso/esrp-sign-action@main",
            "./.github/actions/setup-python-cached", "docker://ghcr.io/contoso/vcpkg-restore:2024.06"} <= uses
    assert all(parse_workflow(t) for t in texts)


def test_the_workflow_file_at_an_unknown_commit_is_404(sim) -> None:
    assert get(sim, "/repos/octo-sim/engineering/contents/.github/workflows/sdk.yml",
               params={"ref": "0" * 40}).status_code == 404


def test_ground_truth_names_deprecated_and_unpinned_steps_and_absent_artifacts(sim) -> None:
    truth = sim.ground_truth()
    assert truth["deprecated_steps"] == ["actions/checkout@v2", "actions/setup-node@v3", "actions/upload-artifact@v3"]
    assert truth["unpinned_steps"] == ["contoso/esrp-sign-action@main", "jwlawson/actions-setup-cmake@master"]
    assert truth["expired_artifacts"] > 0 and truth["gone_artifacts"] > 0
    assert truth["repositories"] == ["engineering", "platform"]


def test_a_retried_run_lists_the_rerun_jobs_under_its_later_attempt(sim) -> None:
    b = next(b for repo in sim.repositories for b in sim.bodies.completed_runs(repo) if b.rounds > 1)
    rid = sim.bodies.run_id(b)
    repo = sim.bodies.repo_of(b)
    run = get(sim, f"/repos/octo-sim/{repo}/actions/runs/{rid}").json()
    second = get(sim, f"/repos/octo-sim/{repo}/actions/runs/{rid}/attempts/2/jobs").json()
    assert run["run_attempt"] == b.rounds
    assert second["total_count"] == len(second["jobs"]) > 0
    assert {j["run_attempt"] for j in second["jobs"]} == {2}
    assert get(sim, f"/repos/octo-sim/{repo}/actions/runs/{rid}/attempts/{b.rounds + 1}/jobs").status_code == 404
