"""Every write to the store gets its FIELD_POLICY treatment, whoever the writer is.

Staged batches are treated as they are staged (the outbox calls `etl.privacy.apply_policy`, so the
files on disk are clean too) and load through `ingest_treated`. Every other writer goes through
`ingest`: the EtlRuns rows, the watermarks, the known-issue ledger, Alerts, alert summaries and
digests, the daily summaries, triage and re-classification. So no table is written without its
policy, and the privacy report (generated from FIELD_POLICY) is what is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from etl.warehouse.base import Rows, Warehouse


class PolicyWarehouse:
    """A warehouse whose `ingest` applies the privacy policy to the rows before the backend sees them."""

    def __init__(self, backend: Warehouse, scrubber: Callable[[], Any]) -> None:
        self._backend = backend
        self._make_scrubber = scrubber
        self._scrubber: Any = None

    def ingest(self, table: str, rows: Rows, batch_id: str) -> int:
        """Apply FIELD_POLICY to *rows* of *table*, then ingest them (treatment is idempotent)."""
        from etl.privacy import apply_policy

        if self._scrubber is None:
            self._scrubber = self._make_scrubber()
        if hasattr(rows, "to_dict"):  # a DataFrame
            records: list[dict[str, Any]] = rows.to_dict("records")  # type: ignore[union-attr]
        elif hasattr(rows, "to_pylist"):  # an Arrow table
            records = rows.to_pylist()  # type: ignore[union-attr]
        else:
            records = [dict(r) for r in rows if isinstance(r, Mapping)]
        return self._backend.ingest(table, apply_policy(self._scrubber, table, records), batch_id)

    def ingest_treated(self, table: str, rows: Rows, batch_id: str) -> int:
        """Ingest rows that were treated as they were staged (the outbox's), without a second pass."""
        return self._backend.ingest(table, rows, batch_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)
