"""What every normalizer needs: who the rows belong to, the batch's time, the scrubber, the classifier,
and where to put a payload that cannot be read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from etl.classify import Classifier
from etl.privacy import Scrubber

#: (source, object description, field, reason, payload) -> None
QuarantineSink = Callable[[str, str, str, str, Any], None]


@dataclass
class NormalizeContext:
    """Per-batch constants plus the privacy and classification services."""

    source: str
    organization: str
    ingested_at: datetime
    scrubber: Scrubber
    classifier: Classifier
    quarantine: QuarantineSink

    @property
    def ingested_iso(self) -> str:
        return self.ingested_at.isoformat()


def describe_validation_error(exc: ValidationError) -> tuple[str, str]:
    """(field, reason) of a pydantic error, in the words the one-line error uses."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err.get("loc", ())) or "(payload)"
    value = err.get("input")
    kind = err.get("type", "")
    shown = repr(value) if isinstance(value, str | int | float | bool) or value is None else type(value).__name__
    if "datetime" in kind:
        return field, f"invalid datetime {shown}"
    if kind == "missing":
        return field, "missing"
    if kind.startswith(("int_", "float_")):
        return field, f"invalid number {shown}"
    return field, f"{err.get('msg', 'invalid')} {shown}"
