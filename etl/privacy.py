"""Redaction and pseudonymization applied to every text before it is staged.

PLACEHOLDER interface (to be completed by the failure-intelligence/privacy work): the signatures
below are the contract the normalizers call.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any


class Scrubber:
    """Redacts personal data and secrets from text; pseudonymizes names with a keyed hash."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def redact(self, text: str | None) -> str | None:
        """Text with e-mails, home-directory user names, tokens/secrets and IP addresses replaced."""
        return text

    def pseudonymize(self, value: str | None) -> str | None:
        """A stable keyed hash of a host, agent or user name (same input, same output)."""
        if not value:
            return value
        return "anon-" + hmac.new(self._key, value.lower().encode(), hashlib.sha256).hexdigest()[:12]

    def scrub_data(self, data: Any) -> Any:
        """Redact every string inside a JSON-like value (dicts, lists)."""
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, dict):
            return {k: self.scrub_data(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self.scrub_data(v) for v in data]
        return data


def scrubber_for(settings: Any) -> Scrubber:
    """The scrubber the configuration asks for."""
    return Scrubber(b"placeholder-key")
