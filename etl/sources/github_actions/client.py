"""HTTP client for the GitHub REST API: token, one retry policy, rate limits, conditional requests, paging.

Every request runs under one tenacity policy (`RetryPolicy`), bounded in attempts and total wait:
- primary rate limit: after any response whose `x-ratelimit-remaining` is 0, the next request waits
  until `x-ratelimit-reset` (epoch seconds); a 403/429 carrying `x-ratelimit-remaining: 0` waits the
  same and is retried;
- secondary rate limits: a 403/429 with `retry-after` waits that long; one without any header waits
  a minute (GitHub's advice), capped by `max_backoff_seconds`;
- 5xx and connection errors back off exponentially with full jitter;
- 401, and a 403 saying "Bad credentials", raise `AuthError` at once (the source stops);
- 404 raises `NotFound`, 410 `Gone` (an expired artifact: absent, not an error).

Conditional requests: `get_json(..., conditional=True)` sends `If-None-Match` with the ETag of the
last answer to the same URL and reuses its body on 304, which GitHub does not count against the
rate limit. The cache lives in memory for the run: bodies hold personal data (actors, branches), so
nothing of them is written to disk (the extractor keeps only run ids and times between runs).

Artifact downloads answer 302 to a blob host; the redirect is followed by hand, without the
`Authorization` header, so the token never leaves the API host.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from etl.sources.http_errors import AuthError, Gone, NotFound, RequestStats, SourceError, Unreachable
from etl.sources.http_session import source_session

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
ACCEPT = "application/vnd.github+json"
AUTH_HINT = ("check the token (expired or revoked? a fine-grained PAT or App installation token needs "
             "Actions: read, Checks: read and Contents: read on the repositories)")
#: Entries, and bytes of cached bodies, the in-memory ETag cache keeps (least recently used ones go first).
ETAG_ENTRIES = 2_000
ETAG_BYTES = 32_000_000


@dataclass
class RetryPolicy:
    """How hard to try one request."""

    max_retries: int = 6
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    timeout_seconds: float = 60.0
    max_total_wait_seconds: float = 600.0
    #: Longest pause for an exhausted primary rate limit; past it the request fails.
    max_rate_limit_wait_seconds: float = 3900.0
    #: What GitHub advises for a secondary limit that names no wait.
    secondary_default_seconds: float = 60.0


class _Retryable(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _discard(response: requests.Response) -> None:
    """Read what is left of a (small) body, then release the connection: closing a kept-alive
    connection with unread bytes resets it under the server."""
    try:
        if not response.raw.closed:
            response.raw.read(65_536, decode_content=False)
    except Exception:  # the body is not wanted; any error reading it only costs the connection
        pass
    response.close()


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("message") or "") if isinstance(body, dict) else ""


class GitHubClient:
    """GET JSON from one GitHub API root under one retry policy; thread-safe."""

    def __init__(self, source: str, api_url: str, *, token: Callable[[], str] | None = None,
                 policy: RetryPolicy | None = None, max_parallel_requests: int = 4,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.base = api_url.rstrip("/")
        self._netloc = urlsplit(self.base).netloc.lower()
        self._token = token
        self.policy = policy or RetryPolicy()
        self.stats = RequestStats()
        self._sleep, self._clock = sleep, clock
        self._lock = threading.Lock()
        self._resume_at = 0.0
        self._etags: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._etag_sizes: dict[str, int] = {}
        self._etag_total = 0
        self.session = source_session(pool_connections=2, pool_maxsize=max(max_parallel_requests, 2))
        self.session.headers.update({"Accept": ACCEPT, "X-GitHub-Api-Version": API_VERSION,
                                     "User-Agent": "ci-telemetry-etl"})

    # -- URLs and credentials -------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The absolute URL of an API path."""
        return path if path.startswith(("http://", "https://")) else f"{self.base}/{path.lstrip('/')}"

    def _auth(self, url: str) -> dict[str, str]:
        """The Authorization header, for the API host only: a link or redirect elsewhere never gets the token."""
        if self._token is None or urlsplit(url).netloc.lower() != self._netloc:
            return {}
        return {"Authorization": f"Bearer {self._token()}"}

    # -- ETag cache ----------------------------------------------------------------------------

    def _remember(self, key: str, etag: str, body: Any, size: int) -> None:
        """Cache *body* under *key* (caller holds the lock), evicting the least recently used."""
        if size > ETAG_BYTES // 8:
            return  # one huge page would push out everything else
        self._etags[key] = (etag, body)
        self._etags.move_to_end(key)
        self._etag_total += size - self._etag_sizes.get(key, 0)
        self._etag_sizes[key] = size
        while len(self._etags) > ETAG_ENTRIES or self._etag_total > ETAG_BYTES:
            old, _ = self._etags.popitem(last=False)
            self._etag_total -= self._etag_sizes.pop(old, 0)

    def close(self) -> None:
        """Close connections."""
        self.session.close()

    # -- the retry policy -----------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.wait is not None:
            return max(exc.wait, 0.0)
        cap = min(self.policy.max_backoff_seconds, self.policy.backoff_seconds * (2 ** (state.attempt_number - 1)))
        return random.uniform(cap / 2, cap) if cap > 0 else 0.0

    def _stop(self, state: RetryCallState) -> bool:
        return state.attempt_number > self.policy.max_retries

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.add(retries=1)

    def _pace(self) -> None:
        """Hold the request while the primary rate limit is exhausted (until its reset)."""
        with self._lock:
            wait = self._resume_at - self._clock()
        if wait > 0:
            if wait > self.policy.max_rate_limit_wait_seconds:
                raise SourceError(f"{self.source}: rate limit exhausted; it resets in {wait:.0f} s, more than "
                                  f"max_rate_limit_wait_seconds {self.policy.max_rate_limit_wait_seconds:.0f}")
            self.stats.add(paced=1)
            self._sleep(wait)

    def _note_rate_limit(self, response: requests.Response) -> float | None:
        """Remember an exhausted limit; the seconds until its reset, or None when some budget remains."""
        remaining = _number(response.headers.get("x-ratelimit-remaining"))
        reset = _number(response.headers.get("x-ratelimit-reset"))
        if remaining is None or remaining > 0 or reset is None:
            return None
        with self._lock:
            self._resume_at = max(self._resume_at, reset)
        return max(reset - self._clock(), 0.0)

    def _once(self, url: str, params: dict[str, Any] | None, headers: dict[str, str], stream: bool,
              redirects: bool, auth: bool) -> requests.Response:
        self._pace()
        self.stats.add(requests=1)
        try:
            response = self.session.get(url, params=params, headers={**headers, **(self._auth(url) if auth else {})},
                                        timeout=self.policy.timeout_seconds, stream=stream,
                                        allow_redirects=redirects)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            # ChunkedEncodingError: the connection closed before the whole body came (a reset, a proxy).
            raise _Retryable(type(exc).__name__) from None
        status = response.status_code
        exhausted = self._note_rate_limit(response)
        where = url.split("?")[0]
        if status == 401:
            raise AuthError(f"{self.source}: HTTP 401 {_message(response) or 'unauthorized'} for {where} — {AUTH_HINT}")
        if status in (403, 429):
            message = _message(response)
            retry_after = _number(response.headers.get("retry-after"))
            if retry_after is not None:
                self.stats.add(throttled=1)
                raise _Retryable(f"HTTP {status} secondary rate limit", retry_after)
            if exhausted is not None:
                self.stats.add(throttled=1)
                if exhausted > self.policy.max_rate_limit_wait_seconds:
                    raise SourceError(f"{self.source}: rate limit exhausted for {where}; it resets in "
                                      f"{exhausted:.0f} s, more than max_rate_limit_wait_seconds")
                raise _Retryable(f"HTTP {status} rate limit exhausted", exhausted)
            if status == 429 or "rate limit" in message.lower():
                self.stats.add(throttled=1)
                raise _Retryable(f"HTTP {status} secondary rate limit",
                                 min(self.policy.secondary_default_seconds, self.policy.max_backoff_seconds))
            if "bad credentials" in message.lower():
                raise AuthError(f"{self.source}: HTTP 403 Bad credentials for {where} — {AUTH_HINT}")
            raise SourceError(f"{self.source}: HTTP 403 {message[:120] or 'forbidden'} for {where}")
        if status == 404:
            _discard(response)
            raise NotFound(f"{self.source}: HTTP 404 for {where}")
        if status == 410:
            _discard(response)
            raise Gone(f"{self.source}: HTTP 410 for {where}")
        if status >= 500:
            _discard(response)
            raise _Retryable(f"HTTP {status}")
        if status >= 400:
            raise SourceError(f"{self.source}: HTTP {status} {_message(response)[:120]} for {where}")
        return response

    def request(self, url: str, params: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None,
                stream: bool = False, redirects: bool = True, auth: bool = True) -> requests.Response:
        """GET with retries; raises AuthError, NotFound, Gone, Unreachable or SourceError.

        *auth* False sends no Authorization header whatever the host (a redirect target).
        """
        url = self.url(url)
        retrying = Retrying(retry=retry_if_exception_type(_Retryable), wait=self._wait, stop=self._stop,
                            sleep=self._sleep, before_sleep=self._before_sleep, reraise=True)
        try:
            return retrying(self._once, url, params, dict(headers or {}), stream, redirects, auth)
        except _Retryable as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            error = SourceError if exc.reason.startswith("HTTP ") else Unreachable
            raise error(f"{self.source}: {exc.reason} for {url.split('?')[0]} after {attempts} attempts") from None

    def get_json(self, path: str, params: dict[str, Any] | None = None, *, conditional: bool = False,
                 etag: str | None = None) -> tuple[Any, requests.Response]:
        """GET and decode JSON; with *conditional*, a 304 reuses the body cached for the same URL.

        *etag* asks `If-None-Match` with that ETag; a 304 then returns (None, response) unless the
        in-memory cache holds the body.
        """
        url = self.url(path)
        key = f"{url}?{urlencode(sorted((params or {}).items()))}" if params else url
        headers = {}
        with self._lock:
            cached = self._etags.get(key) if conditional else None
        if cached is not None or etag:
            headers["If-None-Match"] = cached[0] if cached is not None else str(etag)
        response = self.request(url, params, headers=headers)
        if response.status_code == 304:
            self.stats.add(not_modified=1)
            if cached is None:
                return None, response
            with self._lock:
                if key in self._etags:
                    self._etags.move_to_end(key)
            return cached[1], response
        try:
            body = response.json()
        except ValueError:
            raise SourceError(f"{self.source}: response is not valid JSON for {url.split('?')[0]}") from None
        etag = response.headers.get("ETag")
        if conditional and etag:
            with self._lock:
                self._remember(key, etag, body, len(response.content))
        return body, response

    def pages(self, path: str, params: dict[str, Any] | None = None, *,
              conditional: bool = False) -> Iterator[tuple[Any, requests.Response]]:
        """Every page of a listing, following the `Link: <…>; rel="next"` header."""
        body, response = self.get_json(path, params, conditional=conditional)
        yield body, response
        seen = {response.url}
        while True:
            following = (response.links.get("next") or {}).get("url")
            if not following or following in seen:
                return
            seen.add(following)
            body, response = self.get_json(following, conditional=conditional)
            yield body, response

    def download(self, path: str, max_bytes: int) -> bytes:
        """The bytes behind an artifact's download URL: its 302 followed without the Authorization header.

        Raises Gone for 410 (an expired artifact), SourceError past *max_bytes*.
        """
        first = self.request(path, redirects=False, stream=True)
        target = first.headers.get("Location") if first.status_code in (301, 302, 303, 307, 308) else None
        response = first
        if target:
            _discard(first)
            response = self.request(urljoin(first.url, target), stream=True, auth=False)  # the blob host: no token
        try:
            data = response.raw.read(max_bytes + 1, decode_content=True)
        finally:
            response.close()
        if len(data) > max_bytes:
            raise SourceError(f"{self.source}: artifact {path.split('?')[0]} is larger than {max_bytes} bytes")
        return data
