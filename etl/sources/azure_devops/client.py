"""HTTP client for the Azure DevOps REST API: auth, retries, rate limits, paging.

One explicit retry loop rather than urllib3's `Retry`, because three behaviours differ by status:
429/503 wait exactly what `Retry-After` says (seconds or an HTTP date), other 5xx and connection
errors back off exponentially with jitter, and 401/403 stop the source at once with one line.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

#: Azure DevOps' resource id; Entra tokens for the REST API are issued for this scope.
ADO_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"
API_VERSION = "7.1"
#: Hosts Azure DevOps serves an organization's data from (artifact downloads live on *.visualstudio.com).
_TRUSTED_SUFFIXES = (".dev.azure.com", ".visualstudio.com", ".azure.com")


class SourceError(RuntimeError):
    """A source cannot be read further (after retries); the message is one line naming source and URL."""


class AuthError(SourceError):
    """401/403: the credentials are missing, expired or lack permission. Stops that source only."""


class NotFound(SourceError):
    """404: the object does not exist (e.g. a build that uploaded no artifact)."""


@dataclass
class RetryPolicy:
    """How hard to try before giving up on one request."""

    max_retries: int = 6
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    timeout_seconds: float = 60.0


@dataclass
class RequestStats:
    """Counters a run reports (requests, retries, throttles), safe to update from worker threads."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date); None if absent/unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _auth_header(auth: str, token: Callable[[], str] | None) -> dict[str, str]:
    if auth == "none" or token is None:
        return {}
    value = token()
    if auth == "pat":
        import base64

        return {"Authorization": "Basic " + base64.b64encode(f":{value}".encode()).decode()}
    return {"Authorization": f"Bearer {value}"}


def entra_token_provider(credential: Any = None) -> Callable[[], str]:
    """A callable returning a current Entra ID access token for Azure DevOps.

    *credential* is any azure-identity credential; None means DefaultAzureCredential (a pipeline's
    workload identity, a managed identity, or `az login`).
    """
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    lock = threading.Lock()
    cached: dict[str, Any] = {}

    def token() -> str:
        with lock:
            current = cached.get("token")
            # Renew five minutes before expiry: a long extraction outlives one token.
            if current is None or current.expires_on - 300 < time.time():
                cached["token"] = credential.get_token(ADO_SCOPE)
            return cached["token"].token

    return token


class AdoClient:
    """GET JSON from one organization with bounded retries; thread-safe for the extractor's worker pool."""

    def __init__(
        self,
        source: str,
        organization_url: str,
        *,
        auth: str = "none",
        token: Callable[[], str] | None = None,
        policy: RetryPolicy | None = None,
        max_parallel_requests: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.base = organization_url.rstrip("/")
        self.organization = self.base.rsplit("/", 1)[-1]
        self._netloc = urlsplit(self.base).netloc.lower()
        self.auth = auth
        self._token = token
        self.policy = policy or RetryPolicy()
        self.stats = RequestStats()
        self._sleep = sleep
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(max_parallel_requests, 2), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "ci-telemetry-etl"

    def url(self, project: str | None, path: str) -> str:
        """The absolute URL of an API path under the organization (and project)."""
        if path.startswith(("http://", "https://")):
            return path
        prefix = f"{self.base}/{requests.utils.quote(project, safe='')}" if project else self.base
        return f"{prefix}/{path.lstrip('/')}"

    def _trusted(self, url: str) -> bool:
        """Whether credentials may be sent to *url*: the organization's host or Azure DevOps' artifact hosts.

        An artifact's downloadUrl can point elsewhere; the token must never follow it to a foreign host.
        """
        parts = urlsplit(url)
        return parts.netloc.lower() == self._netloc or (parts.scheme == "https" and (parts.hostname or "").lower()
                                                         .endswith(_TRUSTED_SUFFIXES))

    def _backoff(self, attempt: int) -> float:
        # Full jitter: spreads retries of many workers hit by the same outage.
        cap = min(self.policy.max_backoff_seconds, self.policy.backoff_seconds * (2**attempt))
        return random.uniform(cap / 2, cap) if cap > 0 else 0.0

    def get(self, url: str, params: dict[str, Any] | None = None, *, stream: bool = False) -> requests.Response:
        """GET with retries; raises AuthError (401/403), NotFound (404) or SourceError (gave up)."""
        params = dict(params or {})
        params.setdefault("api-version", API_VERSION)
        attempt = 0
        while True:
            self.stats.add(requests=1)
            try:
                response = self.session.get(
                    url, params=params, headers=_auth_header(self.auth, self._token) if self._trusted(url) else {},
                    timeout=self.policy.timeout_seconds, stream=stream,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.policy.max_retries:
                    raise SourceError(f"{self.source}: {url}: gave up after {attempt + 1} attempts: "
                                      f"{type(exc).__name__}") from None
                wait = self._backoff(attempt)
            else:
                status = response.status_code
                if status < 400:
                    return response
                if status in (401, 403):
                    raise AuthError(f"{self.source}: HTTP {status} {'unauthorized' if status == 401 else 'forbidden'}"
                                    f" for {response.url.split('?')[0]} — check the source's token/permissions")
                if status == 404:
                    raise NotFound(f"{self.source}: HTTP 404 for {url}")
                retryable = status in (429, 503) or status >= 500
                if not retryable or attempt >= self.policy.max_retries:
                    raise SourceError(f"{self.source}: HTTP {status} for {url}"
                                      + (f" after {attempt + 1} attempts" if retryable else ""))
                wait = None
                if status in (429, 503):
                    self.stats.add(throttled=1)
                    wait = retry_after_seconds(response.headers.get("Retry-After"))
                    if wait is not None:
                        wait = min(wait, max(self.policy.max_backoff_seconds, 0.0))
                if wait is None:
                    wait = self._backoff(attempt)
                response.close()
            attempt += 1
            self.stats.add(retries=1)
            log.debug("%s: retry %d of %s in %.2fs", self.source, attempt, url, wait)
            self._sleep(wait)

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> tuple[Any, requests.Response]:
        """GET and decode JSON; returns (body, response) so callers can read paging headers.

        A body that does not decode (a proxy cut the response short) is retried like a 5xx.
        """
        attempt = 0
        while True:
            response = self.get(url, params)
            try:
                return response.json(), response
            except ValueError:
                if attempt >= self.policy.max_retries:
                    raise SourceError(f"{self.source}: {url}: response is not valid JSON "
                                      f"after {attempt + 1} attempts") from None
                self.stats.add(retries=1)
                self._sleep(self._backoff(attempt))
                attempt += 1

    def pages_by_continuation(self, url: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """The `value` lists of a listing paged with the `x-ms-continuationtoken` header."""
        params = dict(params)
        seen: set[str] = set()
        while True:
            body, response = self.get_json(url, params)
            yield list((body or {}).get("value") or [])
            token = response.headers.get("x-ms-continuationtoken")
            if not token or token in seen:  # a repeated token would loop forever
                return
            seen.add(token)
            params["continuationToken"] = token

    def pages_by_skip(self, url: str, params: dict[str, Any], top: int) -> Iterator[list[dict[str, Any]]]:
        """The `value` lists of a listing paged with `$skip`/`$top` (ends on a short page)."""
        skip = 0
        while True:
            body, _ = self.get_json(url, {**params, "$top": top, "$skip": skip})
            page = list((body or {}).get("value") or [])
            yield page
            if len(page) < top:
                return
            skip += len(page)

    def close(self) -> None:
        self.session.close()
