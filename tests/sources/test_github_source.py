"""The GitHub reader: scopes per repository, batches by updated_at, isolation of one bad run, opt-outs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from etl.simulator.github import GitHubSimulator, start_github_server
from etl.sources.base import Scope, Start
from etl.sources.github_actions.client import GitHubClient, RetryPolicy
from etl.sources.github_actions.extract import GitHubExtractor
from etl.sources.github_actions.source import GitHubActionsReader

END = datetime(2026, 11, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def sim() -> Iterator[GitHubSimulator]:
    with start_github_server(seed=8, days=3, builds_per_day=8, end=END) as srv:
        yield srv


def reader(sim: GitHubSimulator, **kwargs: Any) -> GitHubActionsReader:
    client = GitHubClient("gh", sim.url, token=lambda: sim.token, policy=RetryPolicy(backoff_seconds=0))
    extractor = GitHubExtractor(client, telemetry_artifacts=["telemetry-data"], junit_artifacts=["test-results*"],
                                max_parallel_requests=2)
    return GitHubActionsReader("gh", "octo-sim", sim.repositories, extractor, END - timedelta(days=5), **kwargs)


def test_one_scope_per_repository_named_by_owner_and_repository(sim) -> None:
    assert reader(sim).scopes() == [Scope("gh", "octo-sim", "engineering"), Scope("gh", "octo-sim", "platform")]


def test_an_opted_out_repository_is_no_scope(sim) -> None:
    assert [s.project for s in reader(sim, opt_out_repositories=["platform"]).scopes()] == ["engineering"]


def test_batches_hold_batch_size_runs_in_updated_at_order_with_contiguous_windows(sim) -> None:
    scope = Scope("gh", "octo-sim", "engineering")
    batches = list(reader(sim, batch_size=3).batches(scope, Start(None)))
    runs = sorted(sim.bodies.completed_runs("engineering"), key=lambda b: (b.finish.replace(microsecond=0), b.id))
    assert [b.builds for b in batches] == [3] * (len(runs) // 3) + ([len(runs) % 3] if len(runs) % 3 else [])
    assert all(a.window.end == b.window.start for a, b in pairwise(batches))
    assert batches[-1].window.end == runs[-1].finish.replace(microsecond=0, tzinfo=None)


def test_a_watermark_keeps_only_runs_updated_at_or_after_it(sim) -> None:
    scope = Scope("gh", "octo-sim", "platform")
    runs = sorted(sim.bodies.completed_runs("platform"), key=lambda b: b.finish)
    mark = runs[-2].finish.replace(microsecond=0, tzinfo=None)
    batches = list(reader(sim).batches(scope, Start(mark)))
    assert [b.builds for b in batches] == [2]
    assert batches[0].window.start == mark


def test_an_opted_out_workflow_has_no_run_read(sim) -> None:
    scope = Scope("gh", "octo-sim", "engineering")
    runtime = 70_000_000 + 11
    before = sim.counters["attempt_jobs"]
    items = [i for b in reader(sim, opt_out_workflows=[runtime]).batches(scope, Start(None)) for i in b.items]
    expected = [b for b in sim.bodies.completed_runs("engineering") if b.definition.id != 11]
    assert len(items) == len(expected)
    assert {i.payload.run["workflow_id"] for i in items} == {70_000_000 + d for d in {b.definition.id for b in expected}}
    assert sim.counters["attempt_jobs"] - before == sum(b.rounds for b in expected)


def test_a_run_whose_details_break_the_reader_is_quarantined_alone(sim, monkeypatch: pytest.MonkeyPatch) -> None:
    scope = Scope("gh", "octo-sim", "platform")
    victim = sim.bodies.run_id(sim.bodies.completed_runs("platform")[0])
    real = GitHubExtractor._usages

    def breaking(self: GitHubExtractor, owner: str, repo: str, run: dict[str, Any], bundle: Any) -> None:
        if run["id"] == victim:
            raise RuntimeError("odd workflow")
        real(self, owner, repo, run, bundle)

    monkeypatch.setattr(GitHubExtractor, "_usages", breaking)
    items = [i for b in reader(sim).batches(scope, Start(None)) for i in b.items]
    bad = [i for i in items if i.reason is not None]
    assert [(i.obj, i.reason) for i in bad] == [(f"octo-sim/platform run {victim}", "RuntimeError: odd workflow")]
    assert len(items) == len(sim.bodies.completed_runs("platform"))
