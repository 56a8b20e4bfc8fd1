"""`doctor` for GitHub sources: one line per finding, one request per repository, no retries."""

from __future__ import annotations

from etl.simulator.github import start_github_server
from etl.sources.github_actions.client import GitHubClient
from etl.sources.github_actions.doctor import PROBE_POLICY, probe


def test_a_readable_owner_is_one_ok_line_with_the_budget_left() -> None:
    with start_github_server(days=1, builds_per_day=2, token="t") as srv:
        client = GitHubClient("gh", srv.url, token=lambda: "t", policy=PROBE_POLICY)
        checks = probe("gh", client, "octo-sim", [])
        kinds = [e.kind for e in srv.log]
    assert checks == [("ok", f"gh: {srv.url} reachable; runs readable in 2 repositories of octo-sim; "
                             "5000 of 5000 requests left until the reset")]
    assert kinds == ["rate_limit", "org_repos", "runs", "runs"]


def test_a_refused_token_is_one_fail_line() -> None:
    with start_github_server(days=1, builds_per_day=2, token="t") as srv:
        checks = probe("gh", GitHubClient("gh", srv.url, token=lambda: "bad", policy=PROBE_POLICY), "octo-sim", [])
    assert [status for status, _ in checks] == ["FAIL"]
    assert checks[0][1].startswith(f"gh: HTTP 401 Bad credentials for {srv.url}/rate_limit")


def test_a_repository_the_token_cannot_see_fails_by_name() -> None:
    with start_github_server(days=1, builds_per_day=2, token="t") as srv:
        checks = probe("gh", GitHubClient("gh", srv.url, token=lambda: "t", policy=PROBE_POLICY), "octo-sim",
                       ["engineering", "secret-repo"])
    assert checks == [("FAIL", "gh: octo-sim/secret-repo not found (or the token cannot see it)")]
