"""What any HTTP source's client raises and counts, so the run loop and doctor treat every CI system alike.

Each client (Azure DevOps, GitHub, Jenkins) maps its service's answers onto these: credentials refused
end the source, an unreachable host ends it after every retry, a missing or expired object is the
caller's to judge. Messages are one line naming the source and the URL.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


class SourceError(RuntimeError):
    """A source cannot be read further (after retries); the message is one line naming source and URL."""


class AuthError(SourceError):
    """Credentials refused (401/403, or a sign-in page instead of data): the whole source stops at once."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class Unreachable(SourceError):
    """The host did not answer (connection refused, DNS, timeouts) after every retry: stops that source only."""


class NotFound(SourceError):
    """404: the object does not exist (e.g. a build that uploaded no artifact)."""


class Gone(SourceError):
    """410: the object existed and expired (e.g. an artifact past its retention): absent, not an error."""


@dataclass
class RequestStats:
    """Counters a run reports (requests, retries, throttles, paces, free 304s), safe to update from threads."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    paced: int = 0
    not_modified: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        """Add *counts* (name=increment) under the lock."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)
