"""HTTP client of a Jenkins controller: basic auth with an API token, one tenacity retry policy, JSON and bytes.

401/403 raise `AuthError` at once (the source stops); 404 raises `NotFound` (the caller decides:
no tests, a deleted job); 5xx, connection errors and cut-off JSON are retried with exponential
back-off and jitter, then raise `Unavailable`. GETs need no CSRF crumb. Messages are one line
naming the source and the URL path, never the token.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from etl.sources.http_auth import no_netrc
from etl.sources.http_session import source_session


class JenkinsError(RuntimeError):
    """The controller cannot be read further; one line naming the source and the path."""


class AuthError(JenkinsError):
    """401/403: the user or token is refused, or lacks Overall/Read or Job/Read."""


class Unavailable(JenkinsError):
    """5xx, cut-off bodies or no connection, after every retry."""


class NotFound(JenkinsError):
    """404: no such job, build, test report or artifact."""


class TooLarge(JenkinsError):
    """A body past the configured byte bound; not read further."""


class _Retryable(Exception):
    pass


def job_path(full_name: str) -> str:
    """`/job/a/job/b` for the full name `a/b` (each segment URL-quoted)."""
    return "".join(f"/job/{quote(part, safe='')}" for part in full_name.strip("/").split("/") if part)


@dataclass
class RequestLog:
    """The latest paths requested (with their query), in order: tests assert exact paging from it."""

    paths: deque[str] = field(default_factory=lambda: deque(maxlen=10_000))
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, path: str) -> None:
        with self._lock:
            self.paths.append(path)


class JenkinsClient:
    """GET JSON and bytes from one controller."""

    def __init__(self, source: str, base_url: str, user: str | None, token: str | None, *,
                 timeout: float = 60, max_retries: int = 6, backoff: float = 1.0, max_backoff: float = 60.0,
                 pool: int = 8) -> None:
        self.source = source
        self.base_url = base_url.rstrip("/")
        self.session = source_session(pool_connections=pool, pool_maxsize=pool,
                                      auth=(user, token) if user is not None and token is not None else no_netrc)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.log = RequestLog()

    def close(self) -> None:
        self.session.close()

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(_Retryable), stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_random_exponential(multiplier=self.backoff, max=self.max_backoff), reraise=True,
            before_sleep=lambda _state: self._count_retry())

    def _count_retry(self) -> None:
        self.log.retries += 1

    def _get(self, path: str, params: dict[str, str] | None, limit: int | None) -> bytes:
        shown = path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
        try:
            for attempt in self._retrying():
                with attempt:
                    return self._once(path, params, shown, limit)
        except _Retryable as exc:
            raise Unavailable(f"{self.source}: GET {shown}: {exc} (after {self.max_retries} retries)") from None
        raise AssertionError("unreachable")  # pragma: no cover - Retrying either returns or raises

    def _once(self, path: str, params: dict[str, str] | None, shown: str, limit: int | None) -> bytes:
        self.log.add(shown)
        try:
            resp = self.session.get(self.base_url + path, params=params, timeout=self.timeout, stream=True,
                                    allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retryable(type(exc).__name__) from None
        with resp:
            if resp.status_code in (401, 403):
                hint = "user or API token refused" if resp.status_code == 401 else "no Overall/Read or Job/Read permission"
                raise AuthError(f"{self.source}: GET {path}: HTTP {resp.status_code} ({hint})")
            if resp.status_code == 404:
                raise NotFound(f"{self.source}: GET {path}: HTTP 404")
            if resp.status_code >= 500 or resp.status_code == 429:
                raise _Retryable(f"HTTP {resp.status_code}")
            if resp.status_code != 200:
                raise JenkinsError(f"{self.source}: GET {path}: HTTP {resp.status_code}")
            declared = resp.headers.get("Content-Length")
            if limit is not None and declared and declared.isdigit() and int(declared) > limit:
                raise TooLarge(f"{declared} bytes, over the {limit}-byte bound")
            chunks, size = [], 0
            try:
                for chunk in resp.iter_content(65536):
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise TooLarge(f"over the {limit}-byte bound")
                    chunks.append(chunk)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                raise _Retryable(f"body cut off ({type(exc).__name__})") from None
            body = b"".join(chunks)
            if declared and declared.isdigit() and len(body) < int(declared):
                raise _Retryable("body cut off")
            return body

    def json(self, path: str, params: dict[str, str] | None = None) -> Any:
        """The JSON body of GET *path*; an unparsable (cut-off) body is retried like a 5xx."""
        try:
            for attempt in self._retrying():
                with attempt:
                    body = self._get(path, params, None)
                    try:
                        return orjson.loads(body)
                    except orjson.JSONDecodeError:
                        raise _Retryable("invalid JSON") from None
        except _Retryable as exc:
            raise Unavailable(f"{self.source}: GET {path}: {exc} (after {self.max_retries} retries)") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def bytes(self, path: str, limit: int) -> bytes:
        """The raw body of GET *path*, at most *limit* bytes (`TooLarge` past it)."""
        return self._get(path, None, limit)
