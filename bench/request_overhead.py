"""One small API request's CPU in the client: the sources' session (environment read once per host) beside requests' own.

Serves a small JSON body on 127.0.0.1 from a thread of this process, each response written in one send (so that
no request waits on delayed acknowledgements), and GETs it through `AdoClient.get_json` `--requests` times, best
of 3. The same client runs twice: with its session as it is (`etl.sources.http_session`), and with requests'
own `merge_environment_settings`, which reads the proxies from the environment for every request. The figure
is the client thread's CPU time a request (`time.thread_time`), with `--env-vars` more variables in the
environment: a pipeline job's environment holds hundreds (every pipeline variable is one). No wall-clock
assertions anywhere: this is a bench.

Run: .venv/bin/python bench/request_overhead.py [--env-vars 0 200] [--requests 1000]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import socketserver
import threading
import time
from typing import Any

BODY = b'{"count": 0, "value": []}'


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # the name http.server calls
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(BODY), BODY))

    def log_message(self, *args: Any) -> None:
        pass


def _cpu_a_request(client: Any, url: str, requests: int) -> float:
    for _ in range(requests // 5):  # connections opened, caches warm
        client.get_json(url)
    times = []
    for _ in range(3):
        start = time.thread_time()
        for _ in range(requests):
            client.get_json(url)
        times.append(time.thread_time() - start)
    return min(times) / requests


def main() -> None:
    """Serve, time both ways for each environment size, print µs a request and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-vars", type=int, nargs="+", default=[0, 200])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()

    import requests

    from etl.sources.azure_devops.client import AdoClient

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/org"
    added: list[str] = []
    try:
        for extra in sorted(args.env_vars):
            while len(added) < extra:
                added.append(f"CI_TELEMETRY_BENCH_VAR_{len(added)}")
                os.environ[added[-1]] = "x" * 40
            once, each = AdoClient("bench", base), AdoClient("bench", base)
            each.session.merge_environment_settings = functools.partial(  # type: ignore[method-assign]
                requests.Session.merge_environment_settings, each.session)
            url = once.url("project", "_apis/build/builds/1/timeline")
            spent_once = _cpu_a_request(once, url, args.requests)
            spent_each = _cpu_a_request(each, url, args.requests)
            print(f"{len(os.environ):4d} environment variables: {spent_once * 1e6:6.0f} µs a request, against "
                  f"{spent_each * 1e6:6.0f} µs reading the environment each time ({spent_each / spent_once:.2f}x)")
            once.close()
            each.close()
    finally:
        for name in added:
            os.environ.pop(name, None)
        server.shutdown()


if __name__ == "__main__":
    main()
