"""`kind: github_simulator`: the simulated organization served as GitHub for the run, read like GitHub.

The simulated API (`etl.simulator.github`) runs on loopback with a random token for the length of
the run; the reader is the same `GitHubActionsReader` a real GitHub gets, through the same client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta

from etl.sources import SourceEnv
from etl.sources.github_actions.client import GitHubClient, RetryPolicy
from etl.sources.github_actions.config import GitHubSimulatorSource
from etl.sources.github_actions.source import GitHubActionsReader, extractor_for, listing_index
from etl.timeutil import utc_now


@contextlib.contextmanager
def open_github_simulator(cfg: GitHubSimulatorSource, env: SourceEnv) -> Iterator[GitHubActionsReader]:
    """Registry factory for `kind: github_simulator`: starts the simulated API for the run, stops it after."""
    from etl.simulator.github import start_github_server

    server = start_github_server(seed=cfg.seed, days=cfg.days, builds_per_day=cfg.builds_per_day, owner=cfg.owner,
                                 rate_limit=cfg.rate_limit)
    token = server.token
    client = GitHubClient(cfg.name, server.url, token=lambda: token, max_parallel_requests=cfg.max_parallel_requests,
                          policy=RetryPolicy(max_retries=8, backoff_seconds=0.05, max_backoff_seconds=2.0,
                                             max_rate_limit_wait_seconds=60.0))
    index = listing_index(env, cfg.name)
    try:
        extractor = extractor_for(cfg, client, env, index=index)
        default = utc_now() - timedelta(days=cfg.days + 2)
        yield GitHubActionsReader(cfg.name, cfg.owner, extractor.repositories(cfg.owner), extractor, default,
                                  batch_size=cfg.batch_size, rerun_lookback_days=cfg.rerun_lookback_days,
                                  opt_out_repositories=env.settings.privacy.opt_out.projects,
                                  opt_out_workflows=env.settings.privacy.opt_out.definitions)
    finally:
        index.save()
        client.close()
        server.stop()
