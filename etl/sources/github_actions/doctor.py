"""`ci-telemetry doctor` for GitHub sources: the token is accepted and every repository's runs are readable.

One request per repository plus `GET /rate_limit` (which GitHub does not charge), no retries.
"""

from __future__ import annotations

from typing import Any

from etl.sources.github_actions.client import AuthError, GitHubClient, NotFound, RetryPolicy, SourceError
from etl.sources.github_actions.config import GitHubActionsSource, GitHubSimulatorSource

PROBE_POLICY = RetryPolicy(max_retries=0, timeout_seconds=20, max_rate_limit_wait_seconds=0)


def probe(name: str, client: GitHubClient, owner: str, repositories: list[str]) -> list[Any]:
    """(status, detail) pairs: the rate limit left, then a FAIL per repository whose runs cannot be listed."""
    try:
        body, _ = client.get_json("rate_limit")
        core = (body or {}).get("resources", {}).get("core", {}) if isinstance(body, dict) else {}
        if not repositories:
            repositories = sorted(r["name"] for page, _ in client.pages(f"orgs/{owner}/repos", {"per_page": 100})
                                  for r in page if isinstance(r, dict) and r.get("name"))
        problems = []
        for repo in repositories:
            try:
                client.get_json(f"repos/{owner}/{repo}/actions/runs", {"per_page": 1, "status": "completed"})
            except NotFound:
                problems.append(("FAIL", f"{name}: {owner}/{repo} not found (or the token cannot see it)"))
    except AuthError as exc:
        return [("FAIL", str(exc))]
    except SourceError as exc:
        return [("FAIL", f"{name}: {str(exc).split(': ', 1)[-1]}")]
    if problems:
        return problems
    return [("ok", f"{name}: {client.base} reachable; runs readable in {len(repositories)} repositories of {owner}; "
                   f"{core.get('remaining', '?')} of {core.get('limit', '?')} requests left until the reset")]


def check_github(source: GitHubActionsSource | GitHubSimulatorSource, failed_secrets: set[str]) -> list[Any]:
    """Doctor checks of one GitHub source, as (status, detail) pairs."""
    if isinstance(source, GitHubSimulatorSource):
        from etl.simulator.github import start_github_server

        server = start_github_server(seed=source.seed, days=1, builds_per_day=source.builds_per_day, owner=source.owner)
        token = server.token
        client = GitHubClient(source.name, server.url, token=lambda: token, policy=PROBE_POLICY)
        try:
            return probe(source.name, client, source.owner, [])
        finally:
            client.close()
            server.stop()
    if source.token.reference in failed_secrets:
        return [("FAIL", f"{source.name}: skipped, its token {source.token} did not resolve")]
    client = GitHubClient(source.name, source.api_url, token=source.token.reveal, policy=PROBE_POLICY)
    try:
        return probe(source.name, client, source.owner, list(source.repositories))
    finally:
        client.close()
