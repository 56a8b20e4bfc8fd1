"""The GitHub client: paging, rate limits (primary and secondary), conditional requests, redirects, errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from etl.simulator.github import GitHubFaults, GitHubSimulator, start_github_server
from etl.sources.github_actions.client import AuthError, GitHubClient, Gone, RetryPolicy, SourceError

RUNS = "repos/octo-sim/engineering/actions/runs"


class FakeClock:
    """Time for both ends: the client's sleeps advance it, so waits are exact and instant."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def client_for(sim: GitHubSimulator, clock: FakeClock | None = None, **kwargs) -> GitHubClient:
    clock = clock or FakeClock()
    return GitHubClient("gh", sim.url, token=lambda: sim.token, sleep=clock.sleep, clock=clock,
                        policy=RetryPolicy(backoff_seconds=0, max_backoff_seconds=30), **kwargs)


@pytest.fixture(scope="module")
def sim() -> Iterator[GitHubSimulator]:
    with start_github_server(days=4, builds_per_day=40) as srv:
        yield srv


def test_pages_follow_the_link_header_to_the_last_page(sim) -> None:
    client = client_for(sim)
    pages = list(client.pages(RUNS, {"per_page": 100, "status": "completed"}))
    total = pages[0][0]["total_count"]
    assert [len(body["workflow_runs"]) for body, _ in pages] == [100] * (total // 100) + [total % 100]
    assert client.stats.requests == len(pages)


def test_an_exhausted_rate_limit_waits_until_its_reset_then_goes_on() -> None:
    clock = FakeClock()
    with start_github_server(days=2, builds_per_day=2, rate_limit=3, rate_window=60, clock=clock) as srv:
        client = client_for(srv, clock)
        for _ in range(5):
            client.get_json(RUNS)
        log = [entry.status for entry in srv.log]
    # The third answer says remaining 0: the fourth request waits the 60 s to the reset, none is refused.
    assert log == [200] * 5
    assert clock.slept == [60.0]
    assert (client.stats.requests, client.stats.paced) == (5, 1)


def test_a_403_for_a_budget_spent_elsewhere_waits_until_the_reset_and_retries_once() -> None:
    clock = FakeClock()
    with start_github_server(days=2, builds_per_day=2, rate_limit=1, rate_window=30, clock=clock) as srv:
        other = client_for(srv, clock)
        other.get_json(RUNS)  # another consumer of the same token spends the budget
        client = client_for(srv, clock)
        body, _ = client.get_json(RUNS)
        log = [entry.status for entry in srv.log]
    assert body["total_count"] >= 0
    assert log == [200, 403, 200]
    assert clock.slept == [30.0]
    assert client.stats.requests == 2


@pytest.mark.parametrize("status", [429, 403])
def test_a_secondary_rate_limit_waits_its_retry_after(status: int) -> None:
    clock = FakeClock()
    faults = GitHubFaults(secondary_at={2}, secondary_retry_after=4.5)
    with start_github_server(days=2, builds_per_day=2, faults=faults, clock=clock, secondary_status=status) as srv:
        client = client_for(srv, clock)
        client.get_json(RUNS)
        client.get_json(RUNS, {"per_page": 1})
        log = [entry.status for entry in srv.log]
    assert log == [200, status, 200]
    assert clock.slept == [4.5]
    assert (client.stats.requests, client.stats.throttled, client.stats.retries) == (3, 1, 1)


def test_a_conditional_request_reuses_the_cached_body_on_304_without_spending_budget(sim) -> None:
    client = client_for(sim)
    first, r1 = client.get_json(RUNS, {"per_page": 7}, conditional=True)
    second, r2 = client.get_json(RUNS, {"per_page": 7}, conditional=True)
    assert r2.status_code == 304
    assert second == first
    assert r2.headers["x-ratelimit-remaining"] == r1.headers["x-ratelimit-remaining"]
    assert client.stats.not_modified == 1


def test_an_artifact_download_follows_the_redirect_without_the_authorization_header(sim) -> None:
    artifact = next(a for repo in sim.repositories for b in sim.bodies.completed_runs(repo)
                    for a in sim.bodies.run_artifacts(b) if sim.bodies.available(a["id"]))
    before = len(sim.blob_log)
    data = client_for(sim).download(artifact["archive_download_url"], 10_000_000)
    assert data[:2] == b"PK"
    assert list(sim.blob_log)[before:] == [(f"/artifacts/{artifact['id']}.zip", False, 200)]


def test_a_redirect_to_any_host_never_carries_the_token(httpserver: HTTPServer) -> None:
    seen: list[str | None] = []

    def blob(request: Request) -> Response:
        seen.append(request.headers.get("Authorization"))
        return Response(b"PK-bytes", 200)

    httpserver.expect_request("/blob").respond_with_handler(blob)
    httpserver.expect_request("/repos/o/r/actions/artifacts/1/zip").respond_with_response(
        Response(b"", 302, headers={"Location": httpserver.url_for("/blob")}))
    # Same host and port as the API: the client still sends no token to a redirect target.
    client = GitHubClient("gh", httpserver.url_for("/"), token=lambda: "secret-token",
                          policy=RetryPolicy(backoff_seconds=0))
    assert client.download("repos/o/r/actions/artifacts/1/zip", 100) == b"PK-bytes"
    assert seen == [None]


def test_an_expired_artifact_download_raises_gone(sim) -> None:
    expired = next(a for repo in sim.repositories for b in sim.bodies.completed_runs(repo)
                   for a in sim.bodies.run_artifacts(b) if a["expired"])
    with pytest.raises(Gone):
        client_for(sim).download(expired["archive_download_url"], 10_000_000)


def test_a_refused_token_is_one_auth_error_line_naming_source_url_and_what_to_check(sim) -> None:
    client = GitHubClient("gh", sim.url, token=lambda: "wrong", policy=RetryPolicy(backoff_seconds=0))
    with pytest.raises(AuthError) as caught:
        client.get_json(RUNS)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(f"gh: HTTP 401 Bad credentials for {sim.url}/{RUNS} — check the token")
    assert client.stats.requests == 1


def test_a_403_bad_credentials_is_an_auth_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_json({"message": "Bad credentials"}, status=403)
    with pytest.raises(AuthError):
        GitHubClient("gh", httpserver.url_for("/"), token=lambda: "t").get_json("x")


def test_a_download_larger_than_the_bound_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b"x" * 1000)
    with pytest.raises(SourceError, match="larger than 999 bytes"):
        GitHubClient("gh", httpserver.url_for("/")).download("big", 999)


def test_a_body_cut_off_halfway_is_retried() -> None:
    clock = FakeClock()
    with start_github_server(days=2, builds_per_day=2, faults=GitHubFaults(cut_at={1}), clock=clock) as srv:
        client = client_for(srv, clock)
        body, _ = client.get_json(RUNS)
        log = [entry.status for entry in srv.log]
    assert body["total_count"] >= 1
    assert log == [200, 200]
    assert (client.stats.requests, client.stats.retries) == (2, 1)
