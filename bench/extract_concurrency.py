"""Extraction concurrency: time to pull N builds' details from the simulator with injected latency, vs the ideal.

The simulated organization answers every request after a fixed delay (its `slow` fault on every
request). The ideal (a lower bound) is the listing pages in sequence plus the detail requests
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
from datetime import timedelta

from etl.simulator import start_server
from etl.sources.azure_devops.client import AdoClient, RetryPolicy
from etl.sources.azure_devops.extract import AzureDevOpsExtractor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=48, help="completed builds in the simulated day")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    args = parser.parse_args()
    # Every request is slowed; no URL is ever spared by the consecutive-fault bound.
    faults = {"rate": 1.0, "kinds": ["slow"], "delay": args.latency, "max_consecutive": 10**9}
    print(f"{args.builds} builds (both projects), {args.latency * 1000:.0f} ms per request")
    print(f"{'parallel':>8} {'requests':>9} {'measured s':>11} {'ideal s':>8} {'ratio':>6} {'max in flight':>14}")
    for c in args.concurrency:
        with start_server(seed=7, days=1, builds_per_day=args.builds, faults=faults) as srv:
            client = AdoClient("bench", srv.url, policy=RetryPolicy(max_retries=0), max_parallel_requests=c)
            ex = AzureDevOpsExtractor(client, page_size=100, max_parallel_requests=c, metrics_artifacts=["telemetry"])
            since = srv.org.start - timedelta(days=1)
            t0 = time.perf_counter()
            for project in srv.projects:
                builds = [b for page in ex.list_builds(project, since) for b in page]
                ex.bundles(project, builds)
            elapsed = time.perf_counter() - t0
            requests = sum(srv.counters.values())
            pages = srv.counters["builds"]
            # Lower bound: the listing pages in sequence, then the detail requests perfectly packed on c workers.
            ideal = (pages + math.ceil((requests - pages) / c)) * args.latency
            print(f"{c:>8} {requests:>9} {elapsed:>11.2f} {ideal:>8.2f} {elapsed / ideal:>5.2f}x "
                  f"{srv.max_in_flight:>14}")
            client.close()


if __name__ == "__main__":
    main()
