"""The embedded store: one DuckDB file, queried in KQL through duckdb-kql.

Tables are created from `kql/tables/*.kql` (their column lists and key lines) with a primary key,
so a re-ingested batch replaces rows instead of adding them: one row per key, enforced on write.
Stored functions are the `.create-or-alter function` definitions in `kql/functions/`, handed to
duckdb-kql on every query.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import duckdb_kql
import pandas as pd
from duckdb_kql.stored_functions import parse_functions

from etl.schema import DUCKDB_TYPES, TableSchema, function_files, load_tables
from etl.warehouse.base import Rows, WarehouseError
from etl.warehouse.rows import to_arrow

_REVERSE_TYPES = {
    "VARCHAR": "string",
    "BIGINT": "long",
    "INTEGER": "int",
    "DOUBLE": "real",
    "BOOLEAN": "bool",
    "TIMESTAMP": "datetime",
    "INTERVAL": "timespan",
    "JSON": "dynamic",
}


def function_definitions() -> list[str]:
    """Every stored function's definition text, as duckdb-kql's `functions=` takes them."""
    return [p.read_text(encoding="utf-8") for p in function_files()]


@cache
def parsed_functions() -> Any:
    """The stored functions parsed once per process.

    duckdb-kql parses definition texts with its ANTLR grammar on every call (about 50 ms each, so
    ~0.9 s per query for our views); handing it the parsed registry skips that.
    """
    return parse_functions(function_definitions())


def _create_sql(table: TableSchema) -> str:
    cols = ", ".join(
        f'"{c.name}" {c.duckdb_type}' + (" NOT NULL" if c.name in table.key else "") for c in table.columns
    )
    key = ", ".join(f'"{k}"' for k in table.key)
    return f'CREATE TABLE IF NOT EXISTS "{table.name}" ({cols}, PRIMARY KEY ({key}))'


class LocalWarehouse:
    """A DuckDB file with KQL on top."""

    expires_rows = False  # DuckDB has no retention policy: `ci-telemetry retention` deletes expired rows
    applies_schema_on_run = True

    def __init__(self, path: Path | str, read_only: bool = False, memory_limit: str | None = None) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb_kql.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            # Typically another process (`serve`, a running ETL) holds the file's write lock.
            raise WarehouseError(f"cannot open local store {path}: {str(exc).splitlines()[0]}") from None
        if memory_limit:
            # DuckDB caches table pages up to 80% of RAM by default: on a shared build agent the
            # hourly ETL should not grow with the store. The value is validated by the config model.
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self._functions = parsed_functions()
        # DuckDB connections are not safe to share across threads; the ETL loads from one thread
        # but the report notebooks and serve may query from several.
        self._lock = threading.RLock()

    def query(self, kql: str, parameters: Mapping[str, Any] | None = None) -> pd.DataFrame:
        with self._lock:
            try:
                return duckdb_kql.df(self.con, kql, parameters=dict(parameters or {}), functions=self._functions)
            except (duckdb_kql.KqlError, duckdb.Error) as exc:
                first = kql.strip().splitlines()[-1][:120] if kql.strip() else ""
                raise WarehouseError(f"local query failed ({type(exc).__name__}): {exc} — in: {first}") from exc

    def ingest(self, table: str, rows: Rows, batch_id: str) -> int:
        schema = load_tables()[table]
        data = to_arrow(schema, rows)
        if data.num_rows == 0:
            return 0
        # A batch may hold a key twice (a record seen in two timelines); the last one wins, as it
        # would in the cluster's deduplicating view.
        frame = data.to_pandas(types_mapper=None)
        frame = frame.drop_duplicates(subset=list(schema.key), keep="last")
        names = ", ".join(f'"{c}"' for c in schema.column_names)
        select = ", ".join(
            f'CAST("{c.name}" AS JSON)' if c.kusto_type == "dynamic" else f'"{c.name}"' for c in schema.columns
        )
        with self._lock:
            try:
                self.con.register("_batch", frame)
                self.con.execute("BEGIN TRANSACTION")
                self.con.execute(f'INSERT OR REPLACE INTO "{table}" ({names}) SELECT {select} FROM _batch')
                self.con.execute("COMMIT")
            except duckdb.Error as exc:
                self.con.execute("ROLLBACK")
                raise WarehouseError(f"local ingestion into {table} (batch {batch_id}) failed: {exc}") from exc
            finally:
                self.con.unregister("_batch")
        return len(frame)

    def ingest_treated(self, table: str, rows: Rows, batch_id: str) -> int:
        """`ingest`: a backend applies no policy itself (etl/warehouse/policy.py does)."""
        return self.ingest(table, rows, batch_id)

    def apply_schema(self) -> list[str]:
        changes = []
        existing = self.list_tables()
        with self._lock:
            for table in load_tables().values():
                if table.name not in existing:
                    self.con.execute(_create_sql(table))
                    changes.append(f"created table {table.name}")
                    continue
                have = dict(existing[table.name])
                for column in table.columns:
                    # `.create-merge` semantics: add what is missing, never drop or retype.
                    if column.name not in have:
                        self.con.execute(
                            f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {column.duckdb_type}'
                        )
                        changes.append(f"added column {table.name}.{column.name}")
        return changes

    def list_tables(self) -> dict[str, list[tuple[str, str]]]:
        with self._lock:
            rows = self.con.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
            ).fetchall()
        out: dict[str, list[tuple[str, str]]] = {}
        for name, column, dtype in rows:
            out.setdefault(name, []).append((column, _REVERSE_TYPES.get(dtype, dtype.lower())))
        return out

    def execute_sql(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Plain SQL on the local store, for maintenance only (retention, deletes)."""
        with self._lock:
            return self.con.execute(sql, params or []).fetchall()

    def close(self) -> None:
        with self._lock:
            self.con.close()


assert set(_REVERSE_TYPES.values()) >= {"string", "long", "int", "real", "bool", "datetime", "dynamic"}
assert set(DUCKDB_TYPES.values()) <= set(_REVERSE_TYPES) | {"DOUBLE"}
