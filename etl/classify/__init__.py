"""Failure classification and fingerprints.

PLACEHOLDER interface (to be completed by the failure-intelligence work): the signatures below are
the contract the normalizers call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Classification:
    """What a failure is: in-band bucket, kind, infrastructure or code, the rule that said so, fingerprint."""

    bucket: str | None
    category: str  # network, dependency, compilation, test, timeout, cancelled, configuration,
    # infrastructure, resource, permission, security, packaging, unknown
    origin: str  # "infrastructure", "code" or "unknown"
    rule_id: str | None
    signature: str


def signature(message: str | None) -> str:
    """Fingerprint of a message with volatile parts (paths, GUIDs, numbers, ...) removed."""
    return hashlib.sha1((message or "").encode()).hexdigest()[:16]


class Classifier:
    def classify(
        self,
        *,
        message: str | None = None,
        task_name: str | None = None,
        record_name: str | None = None,
        result: str | None = None,
        exit_code: str | None = None,
        test_name: str | None = None,
    ) -> Classification:
        """Classify one failure (an issue, a failed record without issues, a test result, an upload)."""
        return Classification(None, "unknown", "unknown", None, signature(message))


def classifier_for(settings: Any) -> Classifier:
    """The classifier with the configured rules and bucket pattern."""
    return Classifier()
