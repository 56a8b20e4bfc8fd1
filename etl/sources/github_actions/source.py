"""GitHub Actions as a `Source`: one scope per repository, batches of runs by `updated_at` ascending.

The watermark is a run's `updated_at` once completed (the REST run has no finish time). A scope
lists the runs created from `rerun_lookback_days` before its watermark (so a re-run attempt of an
older run is seen), keeps those updated at or after it, and cuts them into batches of
`batch_size` runs; a batch's window runs from the previous batch's end to its newest `updated_at`,
and runs sharing that instant stay in one batch, so a watermark never splits them. Details are
fetched lazily while a batch is staged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import etl.sources.github_actions.normalize  # noqa: F401  (registers the RunBundle normalizer)
from etl.secret_refs import SecretError
from etl.sources import SourceEnv
from etl.sources.base import Batch, Item, Scope, ScopeFailed, SourceFailed, Start, Window
from etl.sources.github_actions.client import AuthError, GitHubClient, RetryPolicy, SourceError, Unreachable
from etl.sources.github_actions.config import GitHubActionsSource
from etl.sources.github_actions.extract import GitHubExtractor, RunBundle
from etl.sources.github_actions.listing_index import ListingIndex
from etl.timeutil import to_utc_naive, utc_now


def _translated(exc: SourceError) -> Exception:
    """Refused credentials and an unreachable host end the source; other errors end the repository."""
    return SourceFailed(str(exc)) if isinstance(exc, AuthError | Unreachable) else ScopeFailed(str(exc))


def _updated(run: dict[str, Any]) -> datetime | None:
    try:
        return to_utc_naive(run.get("updated_at"))
    except (TypeError, ValueError):
        return None


class GitHubActionsReader:
    """Every repository of one owner, batch by batch."""

    def __init__(self, name: str, owner: str, repositories: list[str], extractor: GitHubExtractor,
                 default_since: datetime, *, batch_size: int = 50, rerun_lookback_days: int = 3,
                 opt_out_repositories: list[str] | None = None, opt_out_workflows: list[int] | None = None) -> None:
        self.name = name
        self.owner = owner
        opted_out = set(opt_out_repositories or [])
        self.repositories = [r for r in repositories if r not in opted_out]
        self.extractor = extractor
        self.default_since = to_utc_naive(default_since)
        self.batch_size = batch_size
        self.lookback = timedelta(days=rerun_lookback_days)
        #: Workflow ids (`privacy.opt_out.definitions`) whose runs are never read past the listing.
        self.opt_out_workflows = set(opt_out_workflows or [])

    def scopes(self) -> list[Scope]:
        return [Scope(self.name, self.owner, repo) for repo in self.repositories]

    def batches(self, scope: Scope, start: Start) -> Iterator[Batch]:
        wm_from = to_utc_naive(start.watermark) or self.default_since
        assert wm_from is not None
        audit: list[str] = []
        try:
            listed = self.extractor.list_runs(self.owner, scope.project, wm_from - self.lookback, utc_now(), audit)
        except SourceError as exc:
            raise _translated(exc) from None
        bad: list[Item] = []
        runs: list[tuple[datetime, int, dict[str, Any]]] = []
        for run in listed:
            updated = _updated(run)
            if updated is None:
                bad.append(Item(f"{self.owner}/{scope.project} run {run.get('id')}", run,
                                f"invalid datetime {run.get('updated_at')!r}", "updated_at"))
            elif run.get("workflow_id") in self.opt_out_workflows:
                continue
            elif updated >= wm_from and run.get("status") == "completed":
                runs.append((updated, int(run["id"]), run))
        runs.sort(key=lambda r: (r[0], r[1]))
        first = True
        i = 0
        while i < len(runs) or (first and (bad or audit)):
            j = min(i + self.batch_size, len(runs))
            while 0 < j < len(runs) and runs[j][0] == runs[j - 1][0]:
                j += 1  # runs of one instant stay together: the watermark cannot split them
            chunk = [r for _, _, r in runs[i:j]]
            wm_to = max([wm_from, *(u for u, _, _ in runs[i:j])])
            batch = Batch(scope, Window(wm_from, wm_to), (), builds=len(chunk))
            if first:
                batch.incomplete.extend(audit)
            batch.items = self._items(scope, chunk, bad if first else [], batch)
            first = False
            yield batch
            wm_from, i = wm_to, j

    def _items(self, scope: Scope, runs: list[dict[str, Any]], bad: list[Item], batch: Batch) -> Iterator[Item]:
        yield from bad
        try:
            for bundle in self.extractor.iter_bundles(self.owner, scope.project, runs):
                batch.incomplete.extend(bundle.audit)
                obj = f"{self.owner}/{scope.project} run {bundle.run.get('id')}"
                if bundle.reason is not None:
                    yield Item(obj, bundle.run, reason=bundle.reason)
                else:
                    yield Item(obj, bundle)
        except SourceError as exc:
            raise _translated(exc) from None


def policy_for(cfg: GitHubActionsSource) -> RetryPolicy:
    return RetryPolicy(max_retries=cfg.max_retries, backoff_seconds=cfg.backoff_seconds,
                       max_backoff_seconds=cfg.max_backoff_seconds, timeout_seconds=cfg.request_timeout_seconds,
                       max_rate_limit_wait_seconds=cfg.max_rate_limit_wait_seconds)


def extractor_for(cfg: Any, client: GitHubClient, env: SourceEnv, **extra: Any) -> GitHubExtractor:
    """The extractor of a GitHub Actions or GitHub simulator configuration."""
    return GitHubExtractor(client, telemetry_artifacts=cfg.telemetry_artifacts, junit_artifacts=cfg.junit_artifacts,
                           annotations=cfg.annotations, workflow_files=cfg.workflow_files,
                           max_parallel_requests=cfg.max_parallel_requests, limits=env.settings.limits,
                           progress=env.progress, **extra)


def listing_index(env: SourceEnv, name: str) -> ListingIndex:
    """The source's listing index, kept between runs beside the outbox (run ids and times only)."""
    settings = env.settings
    return ListingIndex(settings.path(settings.staging.dir) / "github" / f"{name}-listings.json")


@contextlib.contextmanager
def open_github_actions(cfg: GitHubActionsSource, env: SourceEnv) -> Iterator[GitHubActionsReader]:
    """Registry factory for `kind: github_actions`."""
    try:
        cfg.token.reveal()  # resolved now: an unresolvable secret ends this source before any request
    except SecretError as exc:
        raise SourceFailed(f"{cfg.name}: {_line(exc)}") from None
    client = GitHubClient(cfg.name, cfg.api_url, token=cfg.token.reveal, policy=policy_for(cfg),
                          max_parallel_requests=cfg.max_parallel_requests)
    index = listing_index(env, cfg.name)
    try:
        extractor = extractor_for(cfg, client, env, index=index)
        try:
            repositories = list(cfg.repositories) or extractor.repositories(cfg.owner)
        except SourceError as exc:
            raise SourceFailed(str(exc)) from None
        yield GitHubActionsReader(cfg.name, cfg.owner, repositories, extractor,
                                  utc_now() - timedelta(days=cfg.initial_lookback_days), batch_size=cfg.batch_size,
                                  rerun_lookback_days=cfg.rerun_lookback_days,
                                  opt_out_repositories=env.settings.privacy.opt_out.projects,
                                  opt_out_workflows=env.settings.privacy.opt_out.definitions)
    finally:
        index.save()
        client.close()


def _line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


__all__ = ["GitHubActionsReader", "RunBundle", "open_github_actions"]
