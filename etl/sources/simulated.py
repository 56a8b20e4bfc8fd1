"""The built-in simulated organization as a `Source`: the simulator served on loopback, read like Azure DevOps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta

from etl.config import SimulatorSource
from etl.sources import SourceEnv
from etl.sources.azure_devops.client import AdoClient, RetryPolicy
from etl.sources.azure_devops.source import AzureDevOpsReader, extractor_for
from etl.timeutil import utc_now


@contextlib.contextmanager
def open_simulator(cfg: SimulatorSource, env: SourceEnv) -> Iterator[AzureDevOpsReader]:
    """Registry factory for `kind: simulator`: starts the server for the run, stops it after."""
    from etl.simulator import start_server

    server = start_server(seed=cfg.seed, days=cfg.days, builds_per_day=cfg.builds_per_day)
    client = AdoClient(cfg.name, server.url, auth="none", max_parallel_requests=cfg.max_parallel_requests,
                       policy=RetryPolicy(max_retries=8, backoff_seconds=0.05, max_backoff_seconds=1.0,
                                          max_total_wait_seconds=30.0))
    try:
        default = utc_now() - timedelta(days=cfg.days + 2)
        yield AzureDevOpsReader(cfg.name, client, list(server.projects), extractor_for(cfg, client, env), default,
                                env.settings.privacy.opt_out.projects)
    finally:
        client.close()
        server.stop()
