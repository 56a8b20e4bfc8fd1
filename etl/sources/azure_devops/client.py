"""HTTP client for the Azure DevOps REST API: auth, one retry policy, rate-limit pacing, paging.

The one place that knows the API version, the Entra scope and the headers Azure DevOps expects;
the extractor and `doctor` both go through it.

Every request runs under one tenacity policy (`RetryPolicy`), bounded in attempts and in total
wait: 429/503 wait what `Retry-After` says (seconds or an HTTP date, capped), other 5xx,
connection errors and cut-off JSON back off exponentially with full jitter. 401/403, a 203 and an
HTML page where JSON was expected (Azure DevOps' sign-in page for a rejected PAT) raise
`AuthError` at once. Before a 429 comes, the `X-RateLimit-*` headers slow every worker down.
"""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from etl.json_line import read_json
from etl.sources.http_errors import AuthError, NotFound, RequestStats, SourceError, Unreachable
from etl.sources.http_session import source_session

if TYPE_CHECKING:
    from etl.config import AzureDevOpsSource

log = logging.getLogger(__name__)

#: Azure DevOps' resource id; Entra tokens for the REST API are issued for this scope.
ADO_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"
API_VERSION = "7.1"
#: Hosts Azure DevOps serves an organization's data from (artifact downloads live on *.visualstudio.com).
_TRUSTED_SUFFIXES = (".dev.azure.com", ".visualstudio.com", ".azure.com")
#: Asks Azure DevOps for a 401 instead of a redirect to its sign-in page when credentials are refused.
SUPPRESS_REDIRECT = {"X-TFS-FedAuthRedirect": "Suppress"}
#: What a refused PAT or Entra identity should be checked for.
AUTH_HINT = ("check the PAT (expired or revoked? scopes Build: Read and Test Management: Read) "
             "or the Entra identity's access to the organization")


@dataclass
class RetryPolicy:
    """How hard to try before giving up on one request, and how long to pace on rate-limit headers."""

    max_retries: int = 6
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    timeout_seconds: float = 60.0
    #: All waits of one request's retries together; past it the request fails.
    max_total_wait_seconds: float = 300.0
    #: Pace when fewer than this share of `X-RateLimit-Limit` remains.
    low_water: float = 0.1
    #: Longest single pause on rate-limit headers (Azure DevOps delays a request by up to 30 s).
    max_pace_seconds: float = 30.0


@dataclass
class Page:
    """One page of a listing: its items, the `count` the body claimed, the continuation token it carried."""

    items: list[dict[str, Any]]
    count: int | None = None
    token: str | None = None
    #: The token was one this listing had already followed (the listing stops there).
    repeated: bool = False


class _Retryable(Exception):
    """One attempt failed in a way worth another; `wait` is what the server asked for, if anything."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


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


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def pace_seconds(headers: Any, policy: RetryPolicy, now: float) -> float:
    """How long to hold the next request after a successful response, from its rate-limit headers.

    `X-RateLimit-Delay` means Azure DevOps already delayed this request: wait as long before the
    next. Below `low_water` of `X-RateLimit-Limit`, the remaining TSTUs are spread over the time
    to `X-RateLimit-Reset` (epoch seconds). A `Retry-After` on a success counts too.
    """
    waits = [_number(headers.get("X-RateLimit-Delay")) or 0.0,
             retry_after_seconds(headers.get("Retry-After")) or 0.0]
    remaining, limit = _number(headers.get("X-RateLimit-Remaining")), _number(headers.get("X-RateLimit-Limit"))
    reset = _number(headers.get("X-RateLimit-Reset"))
    if remaining is not None and limit and remaining < policy.low_water * limit and reset is not None:
        waits.append(max(reset - now, 0.0) / (remaining + 1))
    return min(max(waits), policy.max_pace_seconds)


def _auth_header(auth: str, token: Callable[[], str] | None) -> dict[str, str]:
    if auth == "none" or token is None:
        return {}
    value = token()
    if auth == "pat":
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


def read_whole(response: requests.Response) -> None:
    """Reads a streamed response's body in one call, as `response.content`; raises _Retryable when it is cut short.

    requests reads `.content` 10 KB at a time through urllib3; one `read` of the whole body costs less CPU
    (`bench/http_body.py`). The body is put where requests keeps its own (`_content`), so `.content`,
    `.text` and `.json()` read it. A connection closed before `Content-Length` bytes came (a reset, a
    proxy) is worth another try: requests' own reading raised ChunkedEncodingError, which was not retried.
    """
    import urllib3

    try:
        data = response.raw.read(decode_content=True)
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
        response.close()
        raise _Retryable(f"body cut short ({type(exc).__name__})") from None
    response._content = data or b""
    response._content_consumed = True
    response.raw.release_conn()


def _looks_like_html(response: requests.Response) -> bool:
    if "html" in response.headers.get("Content-Type", "").lower():
        return True
    return response.content[:256].lstrip().lower().startswith((b"<!doctype html", b"<html"))


class AdoClient:
    """GET JSON from one organization under one retry policy; thread-safe for the extractor's worker pool."""

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
        clock: Callable[[], float] = time.time,
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
        self._clock = clock
        self._pace_lock = threading.Lock()
        self._resume_at = 0.0
        self.session = source_session(pool_connections=2, pool_maxsize=max(max_parallel_requests, 2))
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "ci-telemetry-etl"
        self.session.headers.update(SUPPRESS_REDIRECT)

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

    # -- the retry policy -----------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.wait is not None:
            return min(exc.wait, max(self.policy.max_backoff_seconds, 0.0))
        # Full jitter: spreads retries of many workers hit by the same outage.
        cap = min(self.policy.max_backoff_seconds, self.policy.backoff_seconds * (2 ** (state.attempt_number - 1)))
        return random.uniform(cap / 2, cap) if cap > 0 else 0.0

    def _stop(self, state: RetryCallState) -> bool:
        return (state.attempt_number > self.policy.max_retries
                or state.idle_for + (state.upcoming_sleep or 0.0) > self.policy.max_total_wait_seconds)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.add(retries=1)
        log.debug("%s: retry %d in %.2fs", self.source, state.attempt_number, state.upcoming_sleep)

    def _pace(self) -> None:
        with self._pace_lock:
            wait = self._resume_at - self._clock()
        if wait > 0:
            self.stats.add(paced=1)
            self._sleep(wait)

    def _note_rate_limit(self, response: requests.Response) -> None:
        now = self._clock()
        wait = pace_seconds(response.headers, self.policy, now)
        if wait > 0:
            with self._pace_lock:
                self._resume_at = max(self._resume_at, now + wait)

    def _auth_error(self, url: str, status: int, what: str) -> AuthError:
        return AuthError(f"{self.source}: organization {self.organization}: {what} for {url.split('?')[0]}"
                         f" — {AUTH_HINT}", status)

    def _once(self, url: str, params: dict[str, Any], stream: bool, decode: bool,
              before_decode: Callable[[], None] | None = None,
              decoder: Callable[[requests.Response], Any] | None = None) -> tuple[Any, requests.Response]:
        """One attempt: raises _Retryable for what is worth another try, SourceError for what is not."""
        self._pace()
        self.stats.add(requests=1)
        try:
            response = self.session.get(
                url, params=params, headers=_auth_header(self.auth, self._token) if self._trusted(url) else {},
                timeout=self.policy.timeout_seconds, stream=True,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retryable(type(exc).__name__) from None
        if decode or not stream:
            read_whole(response)
        status = response.status_code
        if status in (401, 403):
            raise self._auth_error(url, status, f"HTTP {status} {'unauthorized' if status == 401 else 'forbidden'}")
        if status == 203 or (status < 300 and decode and _looks_like_html(response)):
            raise self._auth_error(url, status, f"HTTP {status} sign-in page instead of JSON")
        if status == 404:
            raise NotFound(f"{self.source}: HTTP 404 for {url}")
        if status in (429, 503):
            self.stats.add(throttled=1)
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            response.close()
            raise _Retryable(f"HTTP {status}", wait)
        if status >= 500:
            response.close()
            raise _Retryable(f"HTTP {status}")
        if status >= 400:
            raise SourceError(f"{self.source}: HTTP {status} for {url}")
        self._note_rate_limit(response)
        if not decode:
            return None, response
        if before_decode is not None:
            before_decode()  # the body is held as bytes (a fraction of its decoded size) until then
        try:
            return (decoder or decode_response)(response), response
        except ValueError:  # a proxy cut the body short: worth another try
            raise _Retryable("response is not valid JSON") from None

    def _request(self, url: str, params: dict[str, Any] | None, *, stream: bool, decode: bool,
                 before_decode: Callable[[], None] | None = None,
                 decoder: Callable[[requests.Response], Any] | None = None) -> tuple[Any, requests.Response]:
        params = dict(params or {})
        params.setdefault("api-version", API_VERSION)
        retrying = Retrying(retry=retry_if_exception_type(_Retryable), wait=self._wait, stop=self._stop,
                            sleep=self._sleep, before_sleep=self._before_sleep, reraise=True)
        try:
            return retrying(self._once, url, params, stream, decode, before_decode, decoder)
        except _Retryable as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            if exc.reason.startswith("HTTP "):
                raise SourceError(f"{self.source}: {exc.reason} for {url} after {attempts} attempts") from None
            error = SourceError if exc.reason == "response is not valid JSON" else Unreachable
            raise error(f"{self.source}: {url}: gave up after {attempts} attempts: {exc.reason}") from None

    def get(self, url: str, params: dict[str, Any] | None = None, *, stream: bool = False) -> requests.Response:
        """GET (a download: body not decoded) with retries; raises AuthError, NotFound or SourceError."""
        return self._request(url, params, stream=stream, decode=False)[1]

    def get_json(self, url: str, params: dict[str, Any] | None = None, *,
                 before_decode: Callable[[], None] | None = None,
                 decoder: Callable[[requests.Response], Any] | None = None) -> tuple[Any, requests.Response]:
        """GET and decode JSON; returns (body, response) so callers can read paging headers.

        *before_decode* is called (and may block) once the body has arrived, before it is decoded: the
        extractor holds a big timeline as bytes until its consumer is near (`iter_bundles`). *decoder*
        replaces `decode_response` (a ValueError from it means a body cut short: the request is retried).
        """
        return self._request(url, params, stream=False, decode=True, before_decode=before_decode, decoder=decoder)

    # -- paging ----------------------------------------------------------------------------------

    def pages_by_continuation(self, url: str, params: dict[str, Any]) -> Iterator[Page]:
        """The pages of a listing paged with the `x-ms-continuationtoken` header.

        A token already followed ends the listing (it would loop forever); that page says `repeated`.
        """
        params = dict(params)
        seen: set[str] = set()
        while True:
            body, response = self.get_json(url, params)
            body = body if isinstance(body, dict) else {}
            token = response.headers.get("x-ms-continuationtoken")
            count = body.get("count") if isinstance(body.get("count"), int) else None
            repeated = bool(token) and token in seen
            yield Page(list(body.get("value") or []), count, token, repeated)
            if not token or repeated:
                return
            seen.add(token)
            params["continuationToken"] = token

    def pages_by_skip(self, url: str, params: dict[str, Any], top: int) -> Iterator[Page]:
        """The pages of a listing paged with `$skip`/`$top`, until a page comes back empty.

        A short page is not the end: the service caps `$top` below what was asked. A page made only
        of items already read (a server ignoring `$skip`) also ends it, rather than loop.
        """
        skip = 0
        seen: set[Any] = set()
        while True:
            body, _ = self.get_json(url, {**params, "$top": top, "$skip": skip})
            body = body if isinstance(body, dict) else {}
            items = list(body.get("value") or [])
            ids = {item.get("id") for item in items if isinstance(item, dict)} - {None}
            if not items or (ids and ids <= seen):
                return
            seen |= ids
            yield Page(items, body.get("count") if isinstance(body.get("count"), int) else None)
            skip += len(items)

    def close(self) -> None:
        self.session.close()


def client_for_source(cfg: AzureDevOpsSource, *, policy: RetryPolicy | None = None,
                      token_provider: Callable[[], str] | None = None) -> AdoClient:
    """The client for a configured organization: its auth, retry policy and parallelism.

    Raises AuthError when a PAT is required but none is configured; a secret that does not
    resolve raises its own error from the first request.
    """
    token: Callable[[], str] | None = None
    if cfg.auth == "pat":
        if cfg.token is None:
            raise AuthError(f"{cfg.name}: auth is pat but no token is configured (token: env://NAME or "
                            "keyvault://vault/name)")
        token = cfg.token.reveal
    elif cfg.auth == "entra":
        token = token_provider or entra_token_provider()
    policy = policy or RetryPolicy(cfg.max_retries, cfg.backoff_seconds, cfg.max_backoff_seconds,
                                   cfg.request_timeout_seconds, cfg.max_total_wait_seconds)
    return AdoClient(cfg.name, cfg.organization_url, auth=cfg.auth, token=token, policy=policy,
                     max_parallel_requests=cfg.max_parallel_requests)


def decode_body(content: bytes) -> Any:
    """A body kept as bytes (`BuildBundle.encoded`) decoded as `decode_response` decodes a response: orjson, else the
    standard library (which detects a BOM and UTF-16/32 as a response's reading does)."""
    return read_json(content)


def decode_response(response: requests.Response) -> Any:
    """The JSON body: orjson first (decoding is most of extraction's CPU), else the standard library's reading
    (a BOM, another encoding, NaN, numbers or nesting orjson refuses), so every body that decoded still does.
    One difference: an integer beyond 64 bits arrives as a float; no Kusto column holds either, and the
    models and the store refuse both."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()
