"""The one HTTP session the trackers and the webhook share, and the one-line errors they raise.

GETs are retried (429 and 5xx, honouring Retry-After); POSTs are not, because a POST whose answer was lost
may have created the item, and filing twice is the failure this workflow exists to avoid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from etl.secret_refs import mask


class TrackerError(RuntimeError):
    """A tracker or webhook call failed; the message is one line and names no secret."""


class TrackerAuthError(TrackerError):
    """The credential was refused (401/403, or Azure DevOps' 203 sign-in page)."""


@dataclass(frozen=True)
class TrackerItem:
    """A work item or issue as the workflow needs it."""

    id: str
    url: str
    state: str = ""
    reason: str = ""
    labels: tuple[str, ...] = ()
    updated_at: datetime | None = None


def session(retries: int = 3) -> requests.Session:
    """A session that retries idempotent requests on 429/5xx with Retry-After honoured."""
    retry = Retry(
        total=retries, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET"}), respect_retry_after_header=True, raise_on_status=False,
    )
    s = requests.Session()
    s.mount("http://", HTTPAdapter(max_retries=retry))
    s.mount("https://", HTTPAdapter(max_retries=retry))
    return s


def check(response: requests.Response, what: str, credential: str, hint: str) -> dict:
    """The JSON body of a successful *response*, else a one-line TrackerError naming *what* failed.

    *credential* is the secret reference (never its value) and *hint* what the credential needs.
    """
    status = response.status_code
    if status == 203 or status == 401:
        raise TrackerAuthError(mask(f"{what}: HTTP {status}, the credential {credential} was refused; {hint}"))
    if status == 403:
        if response.headers.get("x-ratelimit-remaining") == "0":
            reset = response.headers.get("x-ratelimit-reset", "?")
            raise TrackerError(mask(f"{what}: HTTP 403, rate limit exhausted until epoch {reset}; re-run later"))
        raise TrackerAuthError(mask(f"{what}: HTTP 403, the credential {credential} lacks permission; {hint}"))
    if status == 429:
        raise TrackerError(mask(f"{what}: HTTP 429, rate limited (Retry-After {response.headers.get('Retry-After', '?')}); re-run later"))
    if status >= 400:
        raise TrackerError(mask(f"{what}: HTTP {status} {_message(response)}"))
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        raise TrackerError(mask(f"{what}: HTTP {status} but the body is not JSON")) from None
    return body if isinstance(body, dict) else {"value": body}


def _message(response: requests.Response) -> str:
    """The service's own short error message, if it sent one (GitHub `message`, Azure DevOps `message`)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    text = str(body.get("message", "")) if isinstance(body, dict) else ""
    return text.splitlines()[0][:200] if text else ""


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 timestamp from a tracker as naive UTC."""
    if not isinstance(value, str) or not value:
        return None
    from etl.timeutil import to_utc_naive

    return to_utc_naive(value)
