"""Reading a response body: requests' `.content` (10 KB at a time) beside `read_whole` (one read), over loopback.

Serves the simulator's timelines (about 1,900 records per build, as `bench/etl_throughput.py`) on 127.0.0.1,
each rendered once and then served from memory (`etl_throughput._prerendered`), then GETs each timeline `--rounds` times both ways on one
`requests` session and prints the CPU time per MB of body in this process (client and the in-process server
together, the same for both) and the ratio of the same run. No wall-clock assertions anywhere: this is a bench.

Run: .venv/bin/python bench/http_body.py [--builds 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from etl_throughput import _prerendered


def main() -> None:
    """Serve, read every timeline both ways, print CPU ms per MB and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import requests

    from etl.simulator import start_server
    from etl.sources.azure_devops.client import read_whole

    with start_server(seed=5, days=1, builds_per_day=args.builds, records_per_job=400) as srv:
        _prerendered(srv)
        session = requests.Session()
        project = srv.projects[0]
        listing = session.get(f"{srv.url}/{project}/_apis/build/builds", params={"api-version": "7.1"}).json()
        urls = [f"{srv.url}/{project}/_apis/build/builds/{b['id']}/timeline" for b in listing["value"]]
        megabytes = sum(len(session.get(u).content) for u in urls) / 1e6

        def content(url: str) -> bytes:
            return session.get(url).content

        def whole(url: str) -> bytes:
            response = session.get(url, stream=True)
            read_whole(response)
            return response.content

        spent = {}
        for name, read in (("requests .content", content), ("read_whole", whole)) * 2:
            start = time.process_time()
            for _ in range(args.rounds):
                for url in urls:
                    read(url)
            seconds = time.process_time() - start
            spent[name] = min(spent.get(name, seconds), seconds)
    print(f"{len(urls)} timelines, {megabytes:.1f} MB, {args.rounds} rounds (best of 2 passes)")
    for name, seconds in spent.items():
        print(f"  {name:<18} {seconds * 1e3 / (megabytes * args.rounds):5.2f} ms of CPU a MB   "
              f"{spent['requests .content'] / seconds:4.2f}× the speed of .content")


if __name__ == "__main__":
    main()
