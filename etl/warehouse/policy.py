"""Every write to the store gets its FIELD_POLICY treatment, whoever the writer is.

Staged batches are treated as they are staged (the outbox calls `etl.privacy.apply_policy`, so the
files on disk are clean too) and load through `ingest_treated`. Every other writer goes through
`ingest`: the EtlRuns rows, the watermarks, the known-issue ledger, Alerts, alert summaries and
digests, the daily summaries, triage and re-classification, and bulk writers handing Arrow tables
(bench/scale.py). So no table is written without its policy, and the privacy report (generated
from FIELD_POLICY) is what is stored.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from etl.warehouse.base import Rows, Warehouse

if TYPE_CHECKING:  # pyarrow loads with the first Arrow write: opening the store to query needs none
    import pyarrow as pa


def treat_arrow(scrubber: Any, table: str, data: pa.Table) -> pa.Table:
    """*data* with every treated text column passed through `apply_policy`, once per distinct value.

    Treatment is a function of the value once the batch's names are learned (`apply_policy` learns
    them from the whole set of pseudonymized values first), so treating each column's distinct
    values and mapping them back gives what treating every row would, at the cost of the distinct
    values only; untreated columns never leave Arrow.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from etl.privacy import KEPT, TEXT_TYPES, apply_policy, treatment
    from etl.schema import load_tables
    from etl.warehouse.rows import to_arrow

    schema = load_tables()[table]
    data = to_arrow(schema, data)  # exact column types (a no-op for a table already typed so)
    treated = [c.name for c in schema.columns
               if c.kusto_type in TEXT_TYPES and c.name in data.column_names and treatment(table, c.name) != KEPT]
    if not treated or data.num_rows == 0:
        return data
    distinct = {name: pc.unique(data.column(name)).drop_null() for name in treated}
    longest = max(len(values) for values in distinct.values())
    # One row per position of the longest distinct list, each column's distinct values side by side.
    rows = [{name: (values[i].as_py() if i < len(values) else None) for name, values in distinct.items()}
            for i in range(longest)]
    rows = apply_policy(scrubber, table, rows)
    for name, values in distinct.items():
        after = pa.array([row[name] for row in rows[: len(values)]], type=data.schema.field(name).type)
        index = pc.index_in(data.column(name), value_set=values)
        position = data.schema.get_field_index(name)
        data = data.set_column(position, data.schema.field(name), pc.take(after, index))
    return data


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
        arrow = sys.modules.get("pyarrow")  # rows cannot be an Arrow table unless pyarrow is loaded
        if arrow is not None and isinstance(rows, arrow.Table):  # column-wise writers: treat distinct values, stay in Arrow
            return self._backend.ingest(table, treat_arrow(self._scrubber, table, rows), batch_id)
        if hasattr(rows, "to_dict"):  # a DataFrame
            records: list[dict[str, Any]] = rows.to_dict("records")  # type: ignore[union-attr]
        else:
            records = [dict(r) for r in rows if isinstance(r, Mapping)]
        return self._backend.ingest(table, apply_policy(self._scrubber, table, records), batch_id)

    def ingest_treated(self, table: str, rows: Rows, batch_id: str) -> int:
        """Ingest rows that were treated as they were staged (the outbox's), without a second pass."""
        return self._backend.ingest(table, rows, batch_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)
