"""The requests Session every source's client uses: the environment's proxy and CA settings read once per host.

requests reads them again for every request. `Session.merge_environment_settings` walks `os.environ` two or
three times to find the proxies and the hosts exempt from them, so a request's cost grows with the environment,
and a pipeline job's holds hundreds of variables: with 235, that was over half of an API request's CPU in the
client (`bench/request_overhead.py`; docs/benchmarks.md, "The environment read once per host"). A run's
environment does not change while it runs, so what requests found for a scheme, host and port is kept for the
session's life, and every request to that host is sent as the first one was.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from etl.sources.http_auth import no_netrc


class EnvironmentOnceSession(requests.Session):
    """A `requests.Session` that asks the environment for a host's proxies and CA bundle once, not per request."""

    __attrs__: ClassVar[list[str]] = [*requests.Session.__attrs__, "_environment"]  # kept by pickle, as requests does

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        """What requests' own method answers for *url*, from memory after the first request to its host."""
        if proxies or not self.trust_env:  # a request's own proxies, or no environment: requests' way
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, cert)
        found = self._environment.get(key)
        if found is None:
            # Two threads asking at once both read the environment: the same answer, kept once.
            found = self._environment.setdefault(
                key, super().merge_environment_settings(url, proxies, stream, verify, cert))
        return {**found, "proxies": dict(found["proxies"])}  # the caller's own copy


def source_session(pool_connections: int, pool_maxsize: int, auth: Any = no_netrc) -> EnvironmentOnceSession:
    """A source client's session: *auth* (by default none, and never ~/.netrc's), one connection pool of
    *pool_connections* hosts and *pool_maxsize* connections each for http and https, and no retries of its
    own (each client retries with tenacity, where it can read the service's answer)."""
    session = EnvironmentOnceSession()
    session.auth = auth
    adapter = HTTPAdapter(pool_connections=pool_connections, pool_maxsize=pool_maxsize, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


__all__ = ["EnvironmentOnceSession", "source_session"]
