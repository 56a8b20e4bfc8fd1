"""The GitHub extractor: listing windows under the result cap, every attempt, annotations, artifacts, step actions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from etl.simulator.github import GitHubSimulator, start_github_server
from etl.sources.github_actions.client import GitHubClient, RetryPolicy
from etl.sources.github_actions.extract import GitHubExtractor
from etl.sources.github_actions.listing_index import ListingIndex

END = datetime(2026, 11, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def sim() -> Iterator[GitHubSimulator]:
    with start_github_server(seed=8, days=4, builds_per_day=12, end=END, max_results=10) as srv:
        yield srv


def extractor(sim: GitHubSimulator, max_results: int = 10) -> GitHubExtractor:
    client = GitHubClient("gh", sim.url, token=lambda: sim.token, policy=RetryPolicy(backoff_seconds=0))
    return GitHubExtractor(client, telemetry_artifacts=["telemetry-data"], junit_artifacts=["test-results*"],
                           max_parallel_requests=2, max_results=max_results)


def created_windows(sim: GitHubSimulator, since: int) -> list[str]:
    return [e.query["created"] for e in list(sim.log)[since:] if e.kind == "runs" and "page" not in e.query]


def test_a_day_holding_more_than_the_cap_is_split_in_halves_until_each_window_holds_no_more(sim) -> None:
    day = datetime(2026, 11, 2, tzinfo=UTC)
    before = len(sim.log)
    runs = extractor(sim).list_runs("octo-sim", "engineering", day, day.replace(hour=23))
    expected = {sim.bodies.run_id(b) for b in sim.bodies.completed_runs("engineering")
                if sim.bodies.created(b).date() == day.date()}
    assert {r["id"] for r in runs} == expected
    windows = created_windows(sim, before)
    assert windows[0] == "2026-11-02T00:00:00Z..2026-11-02T23:59:59Z"
    # Each window asked for either held at most 10 runs or was split into its two halves right after.
    counts = {w: sum(1 for b in sim.bodies.completed_runs("engineering")
                     if w.split("..")[0] <= sim.bodies.created(b).strftime("%Y-%m-%dT%H:%M:%SZ") <= w.split("..")[1])
              for w in windows}
    leaves = [w for w in windows if counts[w] <= 10]
    assert sum(counts[w] for w in leaves) == len(expected)
    assert all(counts[w] > 10 for w in windows if w not in leaves)


def test_the_exact_windows_asked_for_a_day_of_15_runs_with_a_cap_of_10() -> None:
    with start_github_server(seed=8, days=1, builds_per_day=30, end=END, max_results=10) as srv:
        ex = extractor(srv)
        runs = ex.list_runs("octo-sim", "platform", datetime(2026, 11, 4, tzinfo=UTC),
                            datetime(2026, 11, 4, 12, tzinfo=UTC))
        n = len(srv.bodies.completed_runs("platform"))
        windows = created_windows(srv, 0)
        by_half = sum(1 for b in srv.bodies.completed_runs("platform") if sim_hour(srv, b) < 12)
    assert len(runs) == n
    assert 10 < n <= 20 and 0 < by_half <= 10 and n - by_half <= 10  # the fixture this test pins down
    assert windows == ["2026-11-04T00:00:00Z..2026-11-04T23:59:59Z",
                       "2026-11-04T00:00:00Z..2026-11-04T11:59:59Z",
                       "2026-11-04T12:00:00Z..2026-11-04T23:59:59Z"]


def sim_hour(srv: GitHubSimulator, b) -> int:
    return srv.bodies.created(b).hour


def test_a_second_that_still_holds_more_than_the_cap_is_read_to_the_cap_and_reported() -> None:
    with start_github_server(seed=8, days=1, builds_per_day=30, end=END, max_results=1) as srv:
        audit: list[str] = []
        b = srv.bodies.completed_runs("platform")[0]
        second = srv.bodies.created(b)
        # Two runs created in the same second cannot be told apart by any window.
        srv.bodies.created = lambda _b: second  # type: ignore[method-assign]
        runs = extractor(srv, max_results=1).list_runs("octo-sim", "platform", second, second, audit)
    assert len(runs) == 1
    assert len(audit) == 1 and audit[0].startswith("octo-sim/platform: ")
    assert "more than the 1 one query returns" in audit[0]


def test_a_retried_run_brings_every_attempts_jobs_and_the_annotations_of_its_failed_jobs(sim) -> None:
    b = next(b for b in sim.bodies.completed_runs("engineering") if b.rounds > 1)
    run = sim.bodies.run_body(b)
    bundle = extractor(sim).bundle("octo-sim", "engineering", run)
    assert [n for n, _ in bundle.attempts] == list(range(1, b.rounds + 1))
    assert [len(jobs) for _, jobs in bundle.attempts] == [
        sum(1 for job in b.jobs() for r in job.runs if r.round == n) for n in range(1, b.rounds + 1)]
    failed = {str(j["id"]) for _, jobs in bundle.attempts for j in jobs if j["conclusion"] == "failure"}
    assert set(bundle.annotations) == failed
    assert all(bundle.annotations[k] for k in failed)


def test_every_step_gets_its_action_from_the_workflow_file(sim) -> None:
    b = next(b for b in sim.bodies.completed_runs("engineering") if b.jobs() and b.jobs()[0].runs)
    bundle = extractor(sim).bundle("octo-sim", "engineering", sim.bodies.run_body(b))
    job = bundle.attempts[0][1][0]
    usages = [tuple(bundle.usages[f"{job['id']}.{s['number']}"]) for s in job["steps"]]
    expected = [s.usage for s in sim.bodies.steps[(b.definition.id, b.jobs()[0].template.kind)][: len(job["steps"])]]
    assert usages == expected


def test_expired_and_gone_artifacts_are_absent_not_errors() -> None:
    with start_github_server(seed=8, days=8, builds_per_day=12, end=END) as srv:
        ex = extractor(srv, max_results=1000)
        absent = [(b, a) for repo in srv.repositories for b in srv.bodies.completed_runs(repo)
                  for a in srv.bodies.run_artifacts(b) if not srv.bodies.available(a["id"])]
        gone = next((b, a) for b, a in absent if not a["expired"] and a["name"].startswith(("test-results", "telemetry")))
        expired = next((b, a) for b, a in absent if a["expired"] and a["name"].startswith(("test-results", "telemetry")))
        for b, artifact in (gone, expired):
            bundle = ex.bundle("octo-sim", srv.bodies.repo_of(b), srv.bodies.run_body(b))
            names = {j.artifact for j in bundle.junit} | {d.artifact for d in bundle.metrics}
            assert artifact["name"] not in names
            assert all(j.error is None for j in bundle.junit) and all(d.error is None for d in bundle.metrics)


def test_the_listing_index_spares_the_next_run_its_listings_and_keeps_nothing_personal(sim, tmp_path) -> None:
    path = tmp_path / "listings.json"
    day = datetime(2026, 11, 2, tzinfo=UTC)
    first = extractor(sim, max_results=1000)
    first.index = ListingIndex(path)
    runs = first.list_runs("octo-sim", "platform", day, day + timedelta(days=1, hours=12))
    first.index.save()
    before = len(sim.log)
    second = extractor(sim, max_results=1000)
    second.index = ListingIndex(path)
    stubs = second.list_runs("octo-sim", "platform", day, day + timedelta(days=1, hours=12))
    answers = [(e.kind, e.status) for e in list(sim.log)[before:]]
    assert answers == [("runs", 304), ("runs", 304)]
    assert sorted((r["id"], r["updated_at"]) for r in stubs) == sorted((r["id"], r["updated_at"]) for r in runs)
    # A run known from the index is read in full when its bundle is.
    bundle = second.bundle("octo-sim", "platform", stubs[0])
    assert bundle.run == next(r for r in runs if r["id"] == stubs[0]["id"])
    text = path.read_text()
    assert all(r["actor"]["login"] not in text and r["head_sha"] not in text for r in runs)
