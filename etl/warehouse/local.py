"""The embedded store: one DuckDB file, queried in KQL through duckdb-kql.

Tables are created from `kql/tables/*.kql` (their column lists and key lines). One row per key is
kept on write: a batch, deduplicated by key, is registered with DuckDB as an Arrow relation (the
staging table, scanned in place) and one set-based `MERGE` upserts it into the table by its key:
rows with a staged key are updated, the others inserted, in one transaction. A staged Parquet file
(the ETL's load) is read by DuckDB itself, a row group at a time, and replaces the table's rows with
its keys: a delete, then an insert (`ingest_staged`).

The tables have no PRIMARY KEY index: DuckDB keeps such an index (an ART) in memory and probes it
per row, so `INSERT OR REPLACE` cost per row doubled from 100k to 1M rows and memory grew with the
table. The merge (and the delete) is pruned to the staged key range instead (DuckDB's min/max zone maps skip the
rest of the table; batches arrive in time order, so build ids are nearly sorted), which keeps the
cost of a batch flat in the table's size (bench/load_speed.py). A store created with the index by
an earlier version is rebuilt without it by `apply_schema`.

Stored functions are the `.create-or-alter function` definitions in `kql/functions/`, handed to
duckdb-kql on every query.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import duckdb_kql

from etl.schema import DUCKDB_TYPES, TableSchema, function_files, load_tables
from etl.warehouse import function_cache
from etl.warehouse.base import Rows, WarehouseError
from etl.warehouse.result import PLAIN_TYPES, QueryResult, is_command

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

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


def parsed_functions(cache_file: Path | None = None) -> Any:
    """The stored functions parsed once per process, and with *cache_file* once per change of them.

    duckdb-kql parses definition texts with its ANTLR grammar on every call (about 50 ms each, so
    ~0.9 s per query for our views); handing it the parsed registry skips that. The registry is
    kept in *cache_file* for the next process (etl/warehouse/function_cache.py).
    """
    return function_cache.parsed(function_definitions(), cache_file)


def _create_sql(table: TableSchema, name: str | None = None) -> str:
    cols = ", ".join(
        f'"{c.name}" {c.duckdb_type}' + (" NOT NULL" if c.name in table.key else "") for c in table.columns
    )
    return f'CREATE TABLE IF NOT EXISTS "{name or table.name}" ({cols})'


def last_row_per_key(table: TableSchema, data: pa.Table) -> pa.Table:
    """*data* with one row per key, the last one (a batch may hold a key twice: a record seen in two
    timelines; the last one wins, as it would in the cluster's deduplicating view)."""
    if data.num_rows < 2:
        return data
    import pyarrow as pa  # imported by the write path only: a read-only query needs no pyarrow
    import pyarrow.compute as pc

    indexed = data.select(list(table.key)).append_column("_row", pa.array(range(data.num_rows), pa.int64()))
    last = indexed.group_by(list(table.key), use_threads=False).aggregate([("_row", "max")])
    if last.num_rows == data.num_rows:
        return data
    rows = last.column("_row_max")
    return data.take(pc.take(rows, pc.sort_indices(rows)))


def _staged_columns(schema: TableSchema) -> str:
    """The table's columns as read from staged rows: dynamic ones, staged as JSON text, cast to JSON."""
    return ", ".join(f'CAST("{c.name}" AS JSON) AS "{c.name}"' if c.kusto_type == "dynamic" else f'"{c.name}"'
                     for c in schema.columns)


def merge_statement(schema: TableSchema, source: str) -> str:
    """The upsert of the staged rows read `FROM` *source* into the table by its key, pruned to the staged key
    range: its parameters are each key's lowest and highest staged value, in key order."""
    staged = _staged_columns(schema)
    # Only rows inside the staged key range can match: constant bounds let the scan skip every
    # row group whose zone map lies outside it.
    bounds = [f't."{key}" BETWEEN ? AND ?' for key in schema.key]
    same_key = " AND ".join([*(f't."{k}" = s."{k}"' for k in schema.key), *bounds])
    columns = [f'"{c}"' for c in schema.column_names]
    update = ", ".join(f"{c} = s.{c}" for c in columns if c.strip('"') not in schema.key)
    return (f'MERGE INTO "{schema.name}" t USING (SELECT {staged} FROM {source}) s ON ({same_key}) '
            f"WHEN MATCHED THEN UPDATE SET {update} "
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) VALUES ({', '.join('s.' + c for c in columns)})")


def replace_statements(schema: TableSchema, source: str) -> tuple[str, str]:
    """The upsert of staged rows read `FROM` *source* that holds each key once, as two statements: delete the
    table's rows with a staged key (its parameters: each key's lowest and highest staged value, in key order,
    then *source*'s), then insert the staged rows (*source*'s)."""
    keys = ", ".join(f'"{k}"' for k in schema.key)
    staged = _staged_columns(schema)
    bounds = " AND ".join(f'"{key}" BETWEEN ? AND ?' for key in schema.key)
    return (f'DELETE FROM "{schema.name}" WHERE {bounds} AND ({keys}) IN (SELECT ({keys}) FROM {source})',
            f'INSERT INTO "{schema.name}" SELECT {staged} FROM {source}')


def _query_failed(kql: str, exc: Exception) -> WarehouseError:
    first = kql.strip().splitlines()[-1][:120] if kql.strip() else ""
    return WarehouseError(f"local query failed ({type(exc).__name__}): {exc} — in: {first}")


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
        # DuckDB connections are not safe to share across threads; the ETL loads from one thread
        # but the report notebooks and serve may query from several.
        self._lock = threading.RLock()
        #: Inside `bulk`: rows upserted in the open transaction (None: outside, each ingest commits itself).
        self._bulk_rows: int | None = None
        if memory_limit:
            self.set_memory_limit(memory_limit)
        self._functions = parsed_functions(None if str(path) == ":memory:" else function_cache.cache_path(self.path))

    def set_memory_limit(self, limit: str) -> None:
        """Cap DuckDB's memory at *limit* (`256MB`; validated by the config model): cached pages past it
        are evicted, and a query needing more spills to disk."""
        # DuckDB caches table pages up to 80% of RAM by default: on a shared build agent the
        # hourly ETL should not grow with the store.
        with self._lock:
            self.con.execute(f"SET memory_limit = '{limit}'")

    def query(self, kql: str, parameters: Mapping[str, Any] | None = None) -> pd.DataFrame:
        with self._lock:
            try:
                return duckdb_kql.df(self.con, kql, parameters=dict(parameters or {}), functions=self._functions)
            except (duckdb_kql.KqlError, duckdb.Error) as exc:
                raise _query_failed(kql, exc) from exc

    def query_rows(self, kql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """`query` as one dict per row, fetched as Python values: the ETL's small reads (watermarks, ledgers)
        build no DataFrame (`ci-telemetry etl` on the local store loads no pandas: etl/stage/memory.py)."""
        with self._lock:
            try:
                relation = duckdb_kql.kql(self.con, kql, parameters=dict(parameters or {}), functions=self._functions)
                names = list(relation.columns)
                return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]
            except (duckdb_kql.KqlError, duckdb.Error) as exc:
                raise _query_failed(kql, exc) from exc

    def query_result(self, kql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        """`query`, answering a one-row, one-column result of a plain type as its text, without pandas.

        The result's shape is known once DuckDB has bound the translated SQL, before it runs: a one-column
        answer is read two rows at most first, and only when it holds more (or a null) is it read again,
        whole, into the DataFrame. A command (which may write) runs once, through `query`.
        """
        if is_command(kql):
            return QueryResult(frame=self.query(kql, parameters))
        with self._lock:
            try:
                relation = duckdb_kql.kql(self.con, kql, parameters=dict(parameters or {}), functions=self._functions)
                if len(relation.columns) == 1 and str(relation.types[0]) in PLAIN_TYPES:
                    head = relation.limit(2).fetchall()
                    if len(head) == 1 and head[0][0] is not None:
                        return QueryResult(text=str(head[0][0]))
                return QueryResult(frame=relation.df())
            except (duckdb_kql.KqlError, duckdb.Error) as exc:
                raise _query_failed(kql, exc) from exc

    def ingest(self, table: str, rows: Rows, batch_id: str) -> int:
        """Upsert *rows* (dicts, a DataFrame or an Arrow table) into *table* by its key; returns rows written."""
        import pyarrow.compute as pc  # pandas and pyarrow: not needed to open the store or query it

        from etl.warehouse.rows import to_arrow

        schema = load_tables()[table]
        data = last_row_per_key(schema, to_arrow(schema, rows))
        if data.num_rows == 0:
            return 0
        params = []
        for key in schema.key:
            low, high = pc.min_max(data.column(key)).values()
            params += [low.as_py(), high.as_py()]
        merge = merge_statement(schema, "ci_telemetry_batch")
        # The Arrow table is the staging relation, scanned in place (materializing it as a temporary table
        # first cost a third more), and found by its variable's name (DuckDB's replacement scan): a view
        # `register`ed for it is a catalog entry, which an open transaction keeps, with the table's buffers,
        # until it commits (12 MB per row group inside `bulk`).
        self._upsert(table, batch_id, [(merge, params)], data.num_rows, ci_telemetry_batch=data)
        return data.num_rows

    def ingest_staged(self, table: str, path: Path, batch_id: str, progress: Callable[[int], None] | None = None) -> int:
        """Upsert a staged Parquet file of *table* (the outbox's) by its key, one row group at a time; rows written.

        DuckDB reads the file itself (`read_parquet`), so no Python object is scanned: the Arrow scan of
        `ingest` takes the GIL again and again, and beside a thread staging the next batch it ran twice as
        slow (bench/staged_merge_gil.py). A group's rows replace the table's rows with their keys (a delete,
        then an insert): a `MERGE` from `read_parquet` builds its join on the table's side, and at the 64MB
        load limit it ran out of memory once the batch's earlier groups were in the table. A row group
        that holds a key twice (a record seen in two timelines) and a file not staged with the table's
        current columns (by an earlier version) load through `ingest`, which keeps each key's last row.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = load_tables()[table]
        try:
            parquet = pq.ParquetFile(path)
            same_columns = parquet.schema_arrow.names == schema.column_names
        except (OSError, pa.ArrowException) as exc:
            raise WarehouseError(f"local ingestion into {table} (batch {batch_id}): staged file {path.name} is not "
                                 f"a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None
        group_rows = "read_parquet(?, file_row_number = true) WHERE file_row_number BETWEEN ? AND ?"
        delete, insert = replace_statements(schema, group_rows)
        keys = [f'"{k}"' for k in schema.key]
        # One narrow read of the group's keys: the bounds that prune the delete, and whether a key repeats.
        check = (f"SELECT {', '.join(f'min({k}), max({k})' for k in keys)}, "
                 f"count(*) - count(DISTINCT ({', '.join(keys)})) FROM {group_rows}")
        written, first = 0, 0
        for group in range(parquet.metadata.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            where = [str(path), first, first + rows - 1]
            first += rows
            found = self._read_keys(table, batch_id, check, where) if same_columns and rows else None
            if found is not None and found[-1] == 0:
                written += self._upsert(table, batch_id, [(delete, [*found[:-1], *where]), (insert, where)], rows)
            elif rows:
                written += self.ingest(table, parquet.read_row_group(group), batch_id)
            if progress:
                progress(rows)
        return written

    def _read_keys(self, table: str, batch_id: str, check: str, where: list[Any]) -> tuple[Any, ...] | None:
        with self._lock:
            try:
                return self.con.execute(check, where).fetchone()
            except duckdb.Error as exc:  # a staged file garbled past its footer; the open transaction goes too
                raise self._failed_ingest(table, batch_id, exc) from exc

    def _upsert(self, table: str, batch_id: str, statements: list[tuple[str, list[Any]]], rows: int,
               ci_telemetry_batch: Any = None) -> int:
        """Run one upsert's *statements* in the open `bulk` transaction (committing it past `BULK_COMMIT_ROWS`)
        or in its own; the rows the last one wrote. *ci_telemetry_batch*, an Arrow table, is found by a
        statement by that name: DuckDB's replacement scan reads the locals of the frame that executes it."""
        with self._lock:
            try:
                if not self._bulk_rows:
                    self.con.execute("BEGIN TRANSACTION")
                for statement, params in statements:
                    found = self.con.execute(statement, params).fetchone()
                if self._bulk_rows is None:
                    self.con.execute("COMMIT")
                else:
                    self._bulk_rows += rows
                    if self._bulk_rows >= self.BULK_COMMIT_ROWS:
                        self.con.execute("COMMIT")
                        self._bulk_rows = 0
            except duckdb.Error as exc:
                raise self._failed_ingest(table, batch_id, exc) from exc
            except BaseException:
                self._rollback_ingest()
                raise
        return int(found[0]) if found else 0

    def _failed_ingest(self, table: str, batch_id: str, exc: duckdb.Error) -> WarehouseError:
        """The one-line error of an ingest DuckDB refused, once the open transaction is rolled back."""
        self._rollback_ingest()
        return WarehouseError(f"local ingestion into {table} (batch {batch_id}) failed: {exc}")

    def _rollback_ingest(self) -> None:
        self._rollback()
        if self._bulk_rows is not None:
            self._bulk_rows = 0  # the open transaction is gone: the next ingest in `bulk` begins another

    #: Rows upserted per transaction inside `bulk`: a few of DuckDB's row groups (122,880 rows each). A
    #: transaction's full row groups are written to the file as they are inserted, and only the rest goes
    #: through the WAL; a commit whose WAL passes DuckDB's checkpoint threshold (16 MB, about one staged row
    #: group of TimelineRecords) checkpoints, at a cost that grows with the table. Under one row group
    #: (100,000) every row went through the WAL and most commits checkpointed (docs/benchmarks.md, "A
    #: transaction of a few row groups"). Bounded all the same, so one open transaction never holds a
    #: whole backfill.
    BULK_COMMIT_ROWS = 300_000

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Load many `ingest` calls (a batch's row groups) in transactions of about `BULK_COMMIT_ROWS` rows.

        An ingest that fails rolls back the rows of the open transaction with it (the ones committed stay:
        upserts are idempotent, and the batch loads again whole).
        """
        with self._lock:
            if self._bulk_rows is not None:
                yield  # already inside one
                return
            self._bulk_rows = 0
            try:
                yield
                if self._bulk_rows:
                    self.con.execute("COMMIT")
            except BaseException:
                if self._bulk_rows:
                    self._rollback()
                raise
            finally:
                self._bulk_rows = None

    def _rollback(self) -> None:
        with contextlib.suppress(duckdb.Error):  # the transaction never began
            self.con.execute("ROLLBACK")

    def ingest_treated(self, table: str, rows: Rows, batch_id: str) -> int:
        """`ingest`: a backend applies no policy itself (etl/warehouse/policy.py does)."""
        return self.ingest(table, rows, batch_id)

    def apply_schema(self) -> list[str]:
        changes = []
        existing = self.list_tables()
        with self._lock:
            indexed = {name for (name,) in self.con.execute(
                "SELECT table_name FROM duckdb_constraints() WHERE schema_name = 'main' "
                "AND constraint_type = 'PRIMARY KEY'").fetchall()}
            for table in load_tables().values():
                if table.name not in existing:
                    self.con.execute(_create_sql(table))
                    changes.append(f"created table {table.name}")
                    continue
                if table.name in indexed:
                    self._drop_key_index(table.name)
                    changes.append(f"rebuilt table {table.name} without its primary-key index")
                have = dict(existing[table.name])
                for column in table.columns:
                    # `.create-merge` semantics: add what is missing, never drop or retype.
                    if column.name not in have:
                        self.con.execute(
                            f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {column.duckdb_type}'
                        )
                        changes.append(f"added column {table.name}.{column.name}")
        return changes

    def _drop_key_index(self, name: str) -> None:
        """Rebuild a table created with a PRIMARY KEY (by an earlier version) without it, keeping its rows
        and column order. DuckDB cannot drop a constraint, so the rows are copied in one transaction."""
        old = f"{name}__with_key_index"
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute(f'ALTER TABLE "{name}" RENAME TO "{old}"')
            columns = self.con.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [old]).fetchall()
            defs = ", ".join(f'"{c}" {t}' + ("" if nullable == "YES" else " NOT NULL") for c, t, nullable in columns)
            self.con.execute(f'CREATE TABLE "{name}" ({defs})')
            self.con.execute(f'INSERT INTO "{name}" SELECT * FROM "{old}"')
            self.con.execute(f'DROP TABLE "{old}"')
            self.con.execute("COMMIT")
        except duckdb.Error:
            self.con.execute("ROLLBACK")
            raise

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
