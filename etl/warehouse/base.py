"""The one small interface both warehouse backends implement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from etl.schema import query_path

if TYPE_CHECKING:
    # Types only: opening the store for a one-line `query` should not import pandas (~0.4 s).
    import pandas as pd
    import pyarrow as pa

    from etl.warehouse.result import QueryResult

Rows: TypeAlias = "pd.DataFrame | pa.Table | Sequence[Mapping[str, Any]]"


class WarehouseError(RuntimeError):
    """A query, command or ingestion failed; the message names the table or query."""


@runtime_checkable
class Warehouse(Protocol):
    """Query with parameters, ingest rows, apply the schema, list tables."""

    #: True when the store drops expired rows itself (Kusto's retention policy); False when the retention
    #: step must delete them (the local DuckDB store).
    expires_rows: bool
    #: True when a run may apply the schema itself (idempotent and cheap: the local store, so `etl` works on
    #: a fresh file); False on a cluster, where `schema apply` is an administrator's step.
    applies_schema_on_run: bool

    def query(self, kql: str, parameters: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run a KQL query; user values go in *parameters* (declared with `declare query_parameters`)."""
        ...

    def query_result(self, kql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        """`query` for a reader that prints: a one-value answer may come back as text, without a DataFrame."""
        ...

    def query_rows(self, kql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """`query` answering one dict per row (column name to value): for small answers the ETL reads
        (watermarks, ledgers), without a DataFrame."""
        ...

    def ingest(self, table: str, rows: Rows, batch_id: str) -> int:
        """Load *rows* into *table* so that each key holds one row; returns rows sent.

        *rows* are dicts, a DataFrame or an Arrow table (column-wise writers: staged Parquet row
        groups, bulk generators); each is typed to the table's schema by `etl.warehouse.rows.to_arrow`.

        *batch_id* is the idempotency key: ingesting the same batch twice changes nothing.
        """
        ...

    def ingest_treated(self, table: str, rows: Rows, batch_id: str) -> int:
        """`ingest` for rows the privacy policy already treated (staged batches): no second pass."""
        ...

    def apply_schema(self) -> list[str]:
        """Create or merge every table and function of `kql/`; returns what changed (empty when none)."""
        ...

    def list_tables(self) -> dict[str, list[tuple[str, str]]]:
        """Every table with its (column, Kusto type) pairs, as the store has them now."""
        ...

    def close(self) -> None: ...


def read_query(name_or_path: str | Path) -> str:
    """The text of `kql/queries/<name>.kql` (or of a path to a .kql file)."""
    path = Path(name_or_path)
    if path.suffix != ".kql":
        path = query_path(str(name_or_path))
    return path.read_text(encoding="utf-8")


def run_query_file(warehouse: Warehouse, name: str, parameters: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Run a stored query from `kql/queries/` with parameters."""
    return warehouse.query(read_query(name), parameters)
