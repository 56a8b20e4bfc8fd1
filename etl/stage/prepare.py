"""One item made ready to stage: its raw line and its rows typed as Arrow tables.

Normalizing, scrubbing, classifying and typing an item depend only on the item, the run's constants and
what the scrubber has learned, so the same function runs in the main process or in a staging worker
(`etl.stage.workers`); `stage_batch` only writes what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from etl.errors import one_line
from etl.json_line import json_line
from etl.normalize.batch import normalize_item
from etl.normalize.context import NormalizeContext
from etl.sources.base import Item
from etl.stage.outbox import RowsPolicy, typed_tables

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass
class Prepared:
    """What one item stages: its raw line (None: none kept) and typed tables, or why staging it failed."""

    raw_line: bytes | None = None
    typed: dict[str, pa.Table] = field(default_factory=dict)
    #: Whether the item produced any row (a source's ledger rows stage only then: a rejected file is read again).
    has_rows: bool = False
    #: Set when the item's rows or raw payload cannot be staged: it is quarantined with this reason.
    failure: str | None = None


def prepare_item(ctx: NormalizeContext, item: Item, policy: RowsPolicy | None) -> Prepared:
    """*item* normalized and converted; an item quarantined whole prepares nothing."""
    normalized = normalize_item(ctx, item)
    if normalized is None:
        return Prepared()
    try:
        typed = typed_tables(policy, normalized.tables)
        raw = normalized.raw
        raw_line = raw if raw is None or type(raw) is bytes else json_line(raw)
    except Exception as exc:  # a value that cannot be serialized (RowError, ValueError, TypeError, RecursionError...)
        return Prepared(failure=f"staging failed: {one_line(exc)}")
    return Prepared(raw_line, typed, any(normalized.tables.values()))
