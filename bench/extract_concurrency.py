"""Extraction concurrency: time to pull N builds' details against a server with injected latency, vs the ideal.

A loopback Azure DevOps server (`etl.sources.azure_devops.fakeserver`) answers every request after a
fixed delay. The ideal (a lower bound) is the listing pages in sequence plus the detail requests
perfectly packed on c workers: (pages + ceil(details / c)) * latency. A worker's requests for one
build are sequential, so uneven builds keep the measured time above it at high c. Prints the
measured time, the ideal, their ratio, and the most requests the server saw at once (must equal
the configured limit).

Run: .venv/bin/python bench/extract_concurrency.py [--builds 48] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import datetime

from etl.sources.azure_devops.client import AdoClient, RetryPolicy
from etl.sources.azure_devops.extract import AzureDevOpsExtractor
from etl.sources.azure_devops.fakeserver import FakeAdoServer, synthetic_organization


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=48)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    args = parser.parse_args()
    org, _ = synthetic_organization(builds=args.builds, jobs=2, tasks=3)
    print(f"{args.builds} builds, {args.latency * 1000:.0f} ms per request")
    print(f"{'parallel':>8} {'requests':>9} {'measured s':>11} {'ideal s':>8} {'ratio':>6} {'max in flight':>14}")
    for c in args.concurrency:
        with FakeAdoServer(org, latency=args.latency) as srv:
            client = AdoClient("bench", srv.url, policy=RetryPolicy(max_retries=0), max_parallel_requests=c)
            ex = AzureDevOpsExtractor(client, page_size=100, max_parallel_requests=c, metrics_artifacts=["telemetry"])
            t0 = time.perf_counter()
            builds = [b for page in ex.list_builds("alpha", datetime(2026, 1, 1)) for b in page]
            pages = len(srv.requests)
            ex.bundles("alpha", builds)
            elapsed = time.perf_counter() - t0
            requests = len(srv.requests)
            # Lower bound: the listing pages in sequence, then the detail requests perfectly packed on c workers.
            ideal = (pages + math.ceil((requests - pages) / c)) * args.latency
            print(f"{c:>8} {requests:>9} {elapsed:>11.2f} {ideal:>8.2f} {elapsed / ideal:>5.2f}x "
                  f"{srv.max_concurrent:>14}")
            client.close()


if __name__ == "__main__":
    main()
