"""The simulator serves a hand-built organization: exact payloads through its own HTTP layer, paging and faults."""

from __future__ import annotations

import base64

import pytest
import requests
from ado_fixtures import latest_timeline_id, previous_timeline_id, synthetic_organization

from etl.simulator.handbuilt import HandBuiltOrganization, serve_organization


@pytest.fixture
def org() -> HandBuiltOrganization:
    return synthetic_organization(builds=3)[0]


def get(url: str, **params: object) -> requests.Response:
    return requests.get(url, params=params, timeout=10)


def test_builds_are_listed_by_finish_time_and_paged_by_a_time_continuation_token(org) -> None:
    with serve_organization(org) as srv:
        first = get(f"{srv.url}/alpha/_apis/build/builds", queryOrder="finishTimeAscending", **{"$top": 2})
        token = first.headers["x-ms-continuationtoken"]
        second = get(f"{srv.url}/alpha/_apis/build/builds", queryOrder="finishTimeAscending", continuationToken=token,
                     **{"$top": 2})
    assert [b["id"] for b in first.json()["value"]] == [101, 102]
    assert token == "2026-11-01T08:30:00.123456Z"
    assert [b["id"] for b in second.json()["value"]] == [103]
    assert "x-ms-continuationtoken" not in second.headers


def test_a_build_whose_finish_time_does_not_parse_is_listed_last(org) -> None:
    org.builds["alpha"][0]["finishTime"] = "yesterday"
    with serve_organization(org) as srv:
        body = get(f"{srv.url}/alpha/_apis/build/builds", queryOrder="finishTimeAscending").json()
    assert [b["id"] for b in body["value"]] == [102, 103, 101]


def test_timelines_are_served_as_written_and_an_unknown_attempt_is_a_404(org) -> None:
    with serve_organization(org) as srv:
        latest = get(f"{srv.url}/alpha/_apis/build/builds/101/Timeline").json()
        previous = get(f"{srv.url}/alpha/_apis/build/builds/101/timeline/{previous_timeline_id(101)}").json()
        missing = get(f"{srv.url}/alpha/_apis/build/builds/102/timeline/{previous_timeline_id(102)}")
    assert latest["id"] == latest_timeline_id(101)
    assert previous == org.previous_timelines[(101, previous_timeline_id(101))]
    assert missing.status_code == 404
    assert missing.json()["typeKey"] == "TimelineNotFoundException"


def test_test_results_are_paged_with_skip_and_top_capped_at_the_service_limit(org) -> None:
    org.results[1010] = [{"id": i, "outcome": "Passed"} for i in range(1500)]
    with serve_organization(org) as srv:
        page = get(f"{srv.url}/alpha/_apis/test/Runs/1010/results", **{"$top": 5000, "$skip": 200}).json()
    assert (page["count"], page["value"][0]["id"], page["value"][-1]["id"]) == (1000, 200, 1199)


def test_the_artifact_download_is_the_zip_as_given(org) -> None:
    with serve_organization(org) as srv:
        ref = get(f"{srv.url}/alpha/_apis/build/builds/101/artifacts", artifactName="telemetry").json()
        data = requests.get(ref["resource"]["downloadUrl"], timeout=10).content
    assert data == org.artifacts[(101, "telemetry")]


def test_scheduled_faults_and_the_token_are_the_simulators(org) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(b":pat").decode()}
    with serve_organization(org, faults={"schedule": {"builds": ["429"]}, "retry_after": 3}, token="pat") as srv:
        url = f"{srv.url}/alpha/_apis/build/builds"
        limited = requests.get(url, headers=auth, timeout=10)
        ok = requests.get(url, headers=auth, timeout=10)
        anonymous = requests.get(url, headers={"X-TFS-FedAuthRedirect": "Suppress"}, timeout=10)
        sign_in = requests.get(url, timeout=10)
    assert (anonymous.status_code, sign_in.status_code) == (401, 203)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
    assert ok.json()["count"] == 3
    assert [r.split("?")[0] for r in srv.requests] == ["/handbuilt/alpha/_apis/build/builds"] * 4


def test_an_unknown_project_or_organization_is_the_services_404(org) -> None:
    with serve_organization(org) as srv:
        project = get(f"{srv.url}/nope/_apis/build/builds")
        other = get(srv.url.replace("/handbuilt", "/other") + "/alpha/_apis/build/builds")
    assert project.json()["typeKey"] == "ProjectDoesNotExistWithNameException"
    assert (other.status_code, other.json()["typeKey"]) == (404, "OrganizationNotFoundException")


def test_sub_results_are_served_only_when_asked_for(org) -> None:
    with serve_organization(org) as srv:
        url = f"{srv.url}/alpha/_apis/test/runs/1010/results"
        plain = get(url).json()["value"][2]
        detailed = get(url, detailsToInclude="SubResults").json()["value"][2]
    assert "subResults" not in plain
    assert detailed["subResults"] == [{"id": 1, "outcome": "Failed"}, {"id": 2, "outcome": "Passed"}]


def test_test_runs_of_a_build_come_with_details_only_when_asked_for(org) -> None:
    with serve_organization(org) as srv:
        url = f"{srv.url}/alpha/_apis/test/runs"
        brief = get(url, buildUri="vstfs:///Build/Build/101").json()["value"]
        full = get(url, buildUri="vstfs:///Build/Build/101", includeRunDetails="true").json()["value"]
        other = get(url, buildUri="vstfs:///Build/Build/999").json()
    assert brief == [{"id": 1010, "name": "unit tests", "url": "https://dev.example/alpha/_apis/test/Runs/1010"}]
    assert full == org.test_runs[101]
    assert other == {"count": 0, "value": []}
