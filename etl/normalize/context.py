"""What every normalizer needs: who the rows belong to, the batch's time, the scrubber, the classifier,
and where to put a payload that cannot be read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

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
    #: Staging's setting: a build's TimelineRecords may come as `etl.columns.Columns`
    #: (`etl.normalize.timeline_columns`); off, every table is a list of row dicts (the reference path).
    columns: bool = False

    @property
    def ingested_iso(self) -> str:
        return self.ingested_at.isoformat()


def describe_validation_error(exc: ValidationError) -> tuple[str, str]:
    """(field, reason) of a pydantic error, in the words the one-line error uses."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err.get("loc", ())) or "(payload)"
    value = err.get("input")
    kind = err.get("type", "")
    shown = _shown(value)
    if "datetime" in kind:
        return field, f"invalid datetime {shown}"
    if kind == "missing":
        return field, "missing"
    if kind.startswith(("int_", "float_")):
        return field, f"invalid number {shown}"
    return field, f"{err.get('msg', 'invalid')} {shown}"


#: Longest value the one-line error quotes whole; a longer one is quoted by its start and its length.
SHOWN_MAX = 80


def _shown(value: Any) -> str:
    """*value* as the one-line error quotes it: a scalar by its repr, cut past SHOWN_MAX; anything else by its type."""
    if not (isinstance(value, str | int | float | bool) or value is None):
        return type(value).__name__
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** SHOWN_MAX:
        return f"an integer of {value.bit_length()} bits"  # its decimal text may be past Python's 4,300-digit limit
    text = repr(value)
    return text if len(text) <= SHOWN_MAX else f"{text[:SHOWN_MAX - 20]}… ({len(value)} characters)"


def validated_list(adapter: TypeAdapter[Any], items: Any,
                   by_model: Callable[[Any], dict[str, Any] | None]) -> list[dict[str, Any]]:
    """*items* as validated dicts, in order: the whole list in one core call of *adapter* (no model per item).

    Only the items it rejects (every item, when *items* is no list) go through *by_model*, which reads
    the variants the list validator leaves to the model and answers None for an item it quarantined,
    so a bad item is quarantined alone with the model's own reason.
    """
    if not isinstance(items, list):
        return [r for r in map(by_model, items) if r is not None]
    try:
        return adapter.validate_python(items)
    except ValidationError as exc:
        rejected = {e["loc"][0] for e in exc.errors(include_url=False, include_context=False, include_input=False)
                    if e["loc"] and isinstance(e["loc"][0], int)}
    # The accepted ones validate again as a list (each item's validation is independent of the others).
    accepted = iter(adapter.validate_python([r for i, r in enumerate(items) if i not in rejected]))
    out = []
    for index, raw in enumerate(items):
        item = by_model(raw) if index in rejected else next(accepted)
        if item is not None:
            out.append(item)
    return out


def validated_time(value: Any) -> datetime | None:
    """A validated item's time: its datetime, or None for None, absent or the "never" text list validators keep."""
    return value if type(value) is datetime else None
