"""Azure Data Explorer backend: KQL over azure-kusto-data, loads over azure-kusto-ingest.

The same `kql/` files the local store reads are applied here as written (only the retention
period is taken from settings). Queries carry user values only as request parameters. Every
ingestion is checked: queued ingestion asks the cluster to report failures *and* successes and
waits for the report of its own source id, so a batch the cluster rejected raises instead of
being silently lost.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from etl.schema import (
    TableSchema,
    function_files,
    is_local_view,
    load_tables,
    materialized_view_command,
    ordered_functions,
    split_commands,
    view_name,
)
from etl.warehouse.base import Rows, WarehouseError
from etl.warehouse.params import typed_parameters as typed_parameters  # moved; serve and tests import it here
from etl.warehouse.rows import to_arrow

if TYPE_CHECKING:
    from azure.kusto.data import KustoConnectionStringBuilder

    from etl.config import KustoWarehouse as KustoSettings
    from etl.config import Retention
    from etl.warehouse.result import QueryResult

_RETENTION = re.compile(r"^(\.alter-merge\s+table\s+(\w+)\s+policy\s+retention\s+softdelete\s*=\s*)(\d+)d", re.I | re.M)

#: An ingestion the cluster skipped because `ingestIfNotExists` found the batch's tag already
#: present: the batch is in the table, which is what the caller wanted.
_ALREADY_INGESTED = "Skipped_IngestByTagAlreadyExists"


# ---------------------------------------------------------------------------
# Schema commands and the change report (pure functions; tested without a cluster)
# ---------------------------------------------------------------------------


def retention_days(table: str, retention: Retention | None) -> int | None:
    """The soft-delete period *table* gets from settings (None: keep the file's value)."""
    if retention is None:
        return None
    return load_tables()[table].retention_days(retention)


def with_retention(command: str, retention: Retention | None) -> str:
    """*command* with its `softdelete = Nd` replaced by the configured period for its table."""

    def replace(match: re.Match[str]) -> str:
        days = retention_days(match.group(2), retention)
        return f"{match.group(1)}{days if days is not None else match.group(3)}d"

    return _RETENTION.sub(replace, command)


def _strip_comments(text: str) -> str:
    """A command without its `//` comment lines and blank lines: inside `.execute database
    script` a blank line ends a command, and KQL needs neither."""
    return "\n".join(
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("//")
    ).strip()


def schema_commands(retention: Retention | None = None) -> list[str]:
    """Every management command `apply_schema` runs, in order, as an empty database needs them:
    tables (with mappings and policies); then each `Latest<Table>` materialized view; then the
    stored functions, each after the functions its body calls. The local store's
    `Latest<Table>()` function files are not sent: Kusto forbids a function and a view of one name."""
    commands = []
    tables = load_tables()
    for table in tables.values():
        commands.extend(with_retention(c, retention) for c in split_commands(table.script))
    commands.extend(materialized_view_command(table) for table in tables.values())
    # A function body may hold blank lines, so a function file is one command, not split.
    functions = [p for p in function_files() if not is_local_view(p)]
    commands.extend(_strip_comments(p.read_text(encoding="utf-8")) for p in ordered_functions(functions))
    return commands


#: The first line of the script `apply_schema` sends: stop at the first failing command, so a
#: failure is reported once and nothing after it runs against a half-made schema.
SCRIPT_HEADER = ".execute database script with (ContinueOnErrors=false) <|"


def schema_script(retention: Retention | None = None) -> str:
    """The exact `.execute database script` a cluster gets from `apply_schema`: commands
    separated by blank lines (how Kusto splits a script)."""
    return SCRIPT_HEADER + "\n" + "\n\n".join(schema_commands(retention)) + "\n"


@dataclass(frozen=True)
class SchemaSnapshot:
    """What the database holds that `apply_schema` can change."""

    tables: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    mappings: dict[str, str] = field(default_factory=dict)
    policies: dict[str, str] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)


def parse_schema_json(text: str, database: str) -> tuple[dict[str, tuple[tuple[str, str], ...]], dict[str, str]]:
    """Tables (column, type) and function bodies from `.show database schema as json`."""
    doc = json.loads(text)
    databases = doc.get("Databases") or {}
    db = databases.get(database) or next(iter(databases.values()), {})
    tables = {
        name: tuple((c["Name"], c.get("CslType") or c.get("Type", "")) for c in (t.get("OrderedColumns") or []))
        for name, t in (db.get("Tables") or {}).items()
    }
    functions = {
        name: json.dumps(
            {k: f.get(k) for k in ("InputParameters", "Body", "Folder", "DocString")}, sort_keys=True
        )
        for name, f in (db.get("Functions") or {}).items()
    }
    return tables, functions


def parse_schema_views(text: str, database: str) -> dict[str, str]:
    """Materialized views (name -> source table and query) from `.show database schema as json`."""
    databases = json.loads(text).get("Databases") or {}
    db = databases.get(database) or next(iter(databases.values()), {})
    return {
        name: json.dumps({k: v.get(k) for k in ("SourceTable", "Query")}, sort_keys=True)
        for name, v in (db.get("MaterializedViews") or {}).items()
    }


def schema_changes(before: SchemaSnapshot, after: SchemaSnapshot) -> list[str]:
    """What changed between two snapshots, one line per change, in a stable order."""
    changes = []
    for name, columns in sorted(after.tables.items()):
        if name not in before.tables:
            changes.append(f"created table {name}")
            continue
        had = dict(before.tables[name])
        for column, kusto_type in columns:
            if column not in had:
                changes.append(f"added column {name}.{column}")
            elif had[column] != kusto_type:
                changes.append(f"changed column {name}.{column} from {had[column]} to {kusto_type}")
    for kind, old, new in (("materialized view", before.views, after.views),
                           ("function", before.functions, after.functions),
                           ("ingestion mapping", before.mappings, after.mappings),
                           ("policy", before.policies, after.policies)):
        for name, value in sorted(new.items()):
            if name not in old:
                changes.append(f"created {kind} {name}")
            elif old[name] != value:
                changes.append(f"altered {kind} {name}")
    return changes


# ---------------------------------------------------------------------------
# Connection
# ---------------------------------------------------------------------------


def connection_string(settings: KustoSettings, url: str) -> KustoConnectionStringBuilder:
    """The connection string for *url* with the configured authentication."""
    from azure.kusto.data import KustoConnectionStringBuilder

    if settings.auth == "none":
        # Only for a loopback endpoint (`ci-telemetry serve`, tests): never send a token there.
        return KustoConnectionStringBuilder.with_no_authentication(url)
    if settings.auth == "managed_identity":
        return KustoConnectionStringBuilder.with_aad_managed_service_identity_authentication(
            url, client_id=settings.client_id
        )
    if settings.auth == "app_key":
        missing = [n for n in ("client_id", "tenant_id", "client_secret") if not getattr(settings, n)]
        if missing:
            raise WarehouseError(
                "warehouse.auth is app_key but these settings are missing: "
                + ", ".join(f"warehouse.{name}" for name in missing)
            )
        assert settings.client_secret is not None and settings.client_id and settings.tenant_id
        return KustoConnectionStringBuilder.with_aad_application_key_authentication(
            url, settings.client_id, settings.client_secret.reveal(), settings.tenant_id
        )
    from azure.identity import DefaultAzureCredential

    return KustoConnectionStringBuilder.with_azure_token_credential(
        url, DefaultAzureCredential(exclude_interactive_browser_credential=True)
    )


def _entity(name: str) -> str:
    """A database or table name as a management command accepts it."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else "['" + name.replace("'", "\\'") + "']"


def _first_line(exc: BaseException) -> str:
    """A Kusto error's one useful line: the `@message` of its API error when there is one."""
    get_error = getattr(exc, "get_api_error", None)
    if callable(get_error):
        try:
            api = get_error()
            text = getattr(api, "description", None) or getattr(api, "message", None)
            if text:
                return str(text).splitlines()[0][:400]
        except Exception:  # any shape of API error: fall back to the exception text
            pass
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:400]


def _parameter_value(value: Any) -> str:
    """A parameter value as Kusto's request carries it: the text of a literal of the declared type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return f"datetime({value.isoformat()}Z)"
    if isinstance(value, timedelta):
        return f"time({_timespan(value)})"
    if isinstance(value, (list, dict)):
        return f"dynamic({json.dumps(value)})"
    return str(value)


def _like_local(frame: pd.DataFrame, dynamic: set[str]) -> pd.DataFrame:
    """A result in the shape the local store returns, so callers see one shape from both backends:
    datetimes naive UTC, dynamic values as JSON text, reals as float64 with NaN for null."""
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            frame[name] = column.dt.tz_convert("UTC").dt.tz_localize(None)
        elif name in dynamic:
            frame[name] = [None if v is None else json.dumps(v, sort_keys=True) for v in column]
        elif isinstance(column.dtype, pd.Float64Dtype):
            frame[name] = column.astype("float64")
    return frame


def _last_row_per_key(table: TableSchema, data: pa.Table) -> pa.Table:
    """Keep the last row of each key, as the local store does: two rows of one key in one batch
    share an IngestedAt, and the cluster's `arg_max(IngestedAt, *)` view would pick either."""
    keys = list(zip(*(data.column(k).to_pylist() for k in table.key), strict=True))
    last = {key: index for index, key in enumerate(keys)}
    if len(last) == len(keys):
        return data
    return data.take(sorted(last.values()))


def _timespan(value: timedelta) -> str:
    """A timedelta in Kusto's `[-][d.]hh:mm:ss[.fffffff]` text form."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    days = f"{value.days}." if value.days else ""
    fraction = f".{value.microseconds:06d}0" if value.microseconds else ""
    return f"{sign}{days}{hours:02d}:{minutes:02d}:{seconds:02d}{fraction}"


def to_json_lines(table: TableSchema, data: pa.Table) -> bytes:
    """Rows as JSON lines in the shape the table's `<Table>_json` mapping reads.

    Null values are left out (a missing path is null for the mapping); dynamic columns are
    embedded as JSON, not as JSON-in-a-string, so `Tags[0]` works on the cluster.
    """
    dynamic = {c.name for c in table.columns if c.kusto_type == "dynamic"}
    out = io.StringIO()
    for record in data.to_pylist():
        clean: dict[str, Any] = {}
        for name, value in record.items():
            if value is None or (isinstance(value, float) and value != value):
                continue
            if isinstance(value, datetime):
                value = value.isoformat() + ("Z" if value.tzinfo is None else "")
            elif isinstance(value, timedelta):
                value = _timespan(value)
            elif name in dynamic:
                value = json.loads(value)
            clean[name] = value
        out.write(json.dumps(clean, separators=(",", ":"), ensure_ascii=False))
        out.write("\n")
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------


class KustoWarehouse:
    """An Azure Data Explorer database (or any endpoint speaking its REST protocol)."""

    expires_rows = True  # each table's retention policy, set by apply_schema
    applies_schema_on_run = False  # `schema apply` needs Database Admin; the hourly ETL only ingests

    def __init__(
        self,
        settings: KustoSettings,
        retention: Retention | None = None,
        *,
        status_poll_seconds: float = 2.0,
    ) -> None:
        from azure.kusto.data import KustoClient

        self.settings = settings
        self.database = settings.database
        self.retention = retention
        self._status_poll_seconds = status_poll_seconds
        self._client = KustoClient(connection_string(settings, settings.cluster_url))
        self._ingest_client: Any = None
        self._status_queues: Any = None
        self._lock = threading.Lock()
        #: Ingestion reports popped from the status queues, by source id. The queues are shared
        #: by every ingestion of this client, so a report for another batch is kept, not lost.
        self._reports: dict[str, tuple[bool, str]] = {}

    # -- queries ----------------------------------------------------------

    def query(self, kql: str, parameters: Mapping[str, Any] | None = None) -> pd.DataFrame:
        from azure.kusto.data import ClientRequestProperties
        from azure.kusto.data.exceptions import KustoError
        from azure.kusto.data.helpers import dataframe_from_result_table

        properties = ClientRequestProperties()
        for name, value in (parameters or {}).items():
            properties.set_parameter(name, _parameter_value(value))
        try:
            response = self._client.execute_query(self.database, kql, properties)
        except KustoError as exc:
            last = kql.strip().splitlines()[-1][:120] if kql.strip() else ""
            raise WarehouseError(f"Kusto query failed: {_first_line(exc)} — in: {last}") from exc
        table = response.primary_results[0]
        with warnings.catch_warnings():
            # azure-kusto-data 6.0 calls `infer_objects(copy=False)`, deprecated by pandas 3: noise
            # in every report run, with nothing for us to change.
            warnings.filterwarnings("ignore", message="The copy keyword is deprecated")
            frame = dataframe_from_result_table(table)
        return _like_local(frame, {c.column_name for c in table.columns if c.column_type == "dynamic"})

    def query_rows(self, kql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """`query` as one dict per row (azure-kusto-data builds the DataFrame anyway)."""
        frame = self.query(kql, parameters)
        return [] if frame.empty else frame.to_dict("records")

    def query_result(self, kql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        """`query`: the cluster's answer arrives whole, and azure-kusto-data builds the DataFrame anyway."""
        from etl.warehouse.result import QueryResult

        return QueryResult(frame=self.query(kql, parameters))

    def command(self, csl: str) -> pd.DataFrame:
        """Run one management command; WarehouseError names the command when it fails."""
        from azure.kusto.data.exceptions import KustoError
        from azure.kusto.data.helpers import dataframe_from_result_table

        try:
            response = self._client.execute_mgmt(self.database, csl)
        except KustoError as exc:
            head = " ".join(csl.split()[:4])
            raise WarehouseError(f"Kusto command `{head} ...` failed: {_first_line(exc)}") from exc
        return dataframe_from_result_table(response.primary_results[0])

    def list_tables(self) -> dict[str, list[tuple[str, str]]]:
        # `.show tables` and `getschema` are the pair both Azure Data Explorer and duckdb-kql's
        # REST endpoint answer (`.show database schema` is cluster-only).
        names = self.command(".show tables")["TableName"].tolist()
        tables: dict[str, list[tuple[str, str]]] = {}
        for name in sorted(names):
            schema = self.query(f"['{name}'] | getschema | project ColumnName, ColumnType")
            tables[name] = [(str(c), str(t)) for c, t in zip(schema["ColumnName"], schema["ColumnType"], strict=True)]
        return tables

    # -- schema -----------------------------------------------------------

    def snapshot(self) -> SchemaSnapshot:
        """Tables, functions, ingestion mappings and table policies as the database has them."""
        text = self.command(f".show database {_entity(self.database)} schema as json").iloc[0, 0]
        tables, functions = parse_schema_json(str(text), self.database)
        mappings: dict[str, str] = {}
        policies: dict[str, str] = {}
        if tables:
            details = self.command(".show tables details | project TableName, RetentionPolicy, CachingPolicy")
            for row in details.itertuples(index=False):
                policies[f"{row.TableName} retention"] = str(row.RetentionPolicy)
                policies[f"{row.TableName} caching"] = str(row.CachingPolicy)
            for name in tables:
                for row in self.command(f".show table {_entity(name)} ingestion json mappings").itertuples(index=False):
                    mappings[str(row.Name)] = str(row.Mapping)
        return SchemaSnapshot(tables, functions, mappings, policies, parse_schema_views(str(text), self.database))

    def apply_schema(self) -> list[str]:
        before = self.snapshot()
        # A database set up before the views were materialized has `Latest<Table>()` functions, and
        # a view may not take a function's name: those functions go first (the views replace them).
        for name in sorted(before.functions):
            if name in {view_name(t) for t in load_tables()}:
                self.command(f".drop function {_entity(name)}")
        result = self.command(schema_script(self.retention))
        # The script answers one row per command; with ContinueOnErrors=false the first failure
        # ends it, and its row says why.
        if "Result" in result.columns:
            failed = result[result["Result"].astype(str) != "Completed"]
            if len(failed):
                row = failed.iloc[0]
                raise WarehouseError(
                    f"schema apply stopped at `{' '.join(str(row.get('CommandText', '')).split()[:5])} ...`: "
                    f"{str(row.get('Reason', '')).splitlines()[0] if row.get('Reason') else row['Result']}"
                )
        return schema_changes(before, self.snapshot())

    # -- ingestion --------------------------------------------------------

    def _ingestor(self) -> Any:
        from azure.kusto.ingest import ManagedStreamingIngestClient, QueuedIngestClient
        from azure.kusto.ingest.status import KustoIngestStatusQueues

        with self._lock:
            if self._ingest_client is None:
                dm = connection_string(self.settings, self.settings.resolved_ingest_url)
                if self.settings.ingestion == "streaming":
                    engine = connection_string(self.settings, self.settings.cluster_url)
                    client = ManagedStreamingIngestClient(engine, dm, auto_correct_endpoint=False)
                    queued = client.queued_client
                else:
                    client = queued = QueuedIngestClient(dm, auto_correct_endpoint=False)
                self._ingest_client = client
                self._status_queues = KustoIngestStatusQueues(queued)
            return self._ingest_client

    def ingest(self, table: str, rows: Rows, batch_id: str) -> int:
        from azure.kusto.data.data_format import DataFormat, IngestionMappingKind
        from azure.kusto.data.exceptions import KustoBlobError, KustoError
        from azure.kusto.ingest import IngestionProperties, IngestionStatus, KustoQueueError, ReportLevel, ReportMethod

        schema = load_tables()[table]
        data = _last_row_per_key(schema, to_arrow(schema, rows))
        if data.num_rows == 0:
            return 0
        properties = IngestionProperties(
            database=self.database,
            table=table,
            data_format=DataFormat.MULTIJSON,
            ingestion_mapping_kind=IngestionMappingKind.JSON,
            ingestion_mapping_reference=schema.mapping_name,
            # The batch id tags the extents and makes a re-sent batch a no-op on the cluster.
            ingest_by_tags=[batch_id],
            ingest_if_not_exists=[batch_id],
            report_level=ReportLevel.FailuresAndSuccesses,
            report_method=ReportMethod.Queue,
        )
        stream = io.BytesIO(to_json_lines(schema, data))
        try:
            result = self._ingestor().ingest_from_stream(stream, properties)
        except KustoBlobError as exc:
            raise WarehouseError(
                f"Kusto ingestion into {table} (batch {batch_id}) failed uploading to the ingestion storage: "
                f"{_first_line(exc)}"
            ) from exc
        except KustoQueueError as exc:
            cause = exc.__cause__ or exc
            raise WarehouseError(
                f"Kusto ingestion into {table} (batch {batch_id}) failed enqueueing the ingestion: {_first_line(cause)}"
            ) from exc
        except (KustoError, OSError) as exc:
            raise WarehouseError(f"Kusto ingestion into {table} (batch {batch_id}) failed: {_first_line(exc)}") from exc
        except Exception as exc:  # azure-storage errors while uploading or enqueueing
            raise WarehouseError(
                f"Kusto ingestion into {table} (batch {batch_id}) failed: {type(exc).__name__}: {_first_line(exc)}"
            ) from exc
        if result.status == IngestionStatus.SUCCESS:
            return data.num_rows  # streamed: the response itself was the outcome
        skipped = self._wait_for_report(str(result.source_id), table, batch_id)
        return 0 if skipped else data.num_rows

    def ingest_treated(self, table: str, rows: Rows, batch_id: str) -> int:
        """`ingest`: a backend applies no policy itself (etl/warehouse/policy.py does)."""
        return self.ingest(table, rows, batch_id)

    def _wait_for_report(self, source_id: str, table: str, batch_id: str) -> bool:
        """Block until the cluster reports on *source_id*; True when it skipped an already-loaded batch."""
        deadline = time.monotonic() + self.settings.ingestion_timeout_seconds
        delay = self._status_poll_seconds
        while True:
            self._collect_reports()
            with self._lock:
                report = self._reports.pop(source_id, None)
            if report is not None:
                ok, detail = report
                if ok:
                    return False
                if detail.startswith(_ALREADY_INGESTED):
                    return True
                raise WarehouseError(f"Kusto ingestion into {table} (batch {batch_id}) failed: {detail}")
            if time.monotonic() >= deadline:
                raise WarehouseError(
                    f"Kusto ingestion into {table} (batch {batch_id}): no success or failure report within "
                    f"{self.settings.ingestion_timeout_seconds:g}s; the batch stays staged for the next run"
                )
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 1.5, 15.0)

    def _collect_reports(self) -> None:
        try:
            failures = self._status_queues.failure.pop(32)
            successes = self._status_queues.success.pop(32)
        except Exception as exc:
            raise WarehouseError(f"cannot read Kusto ingestion status queues: {type(exc).__name__}: {_first_line(exc)}") from exc
        with self._lock:
            for message in successes:
                self._reports[str(message.IngestionSourceId)] = (True, "")
            for message in failures:
                detail = f"{message.ErrorCode or 'error'} ({message.FailureStatus or 'unknown'}): {message.Details or ''}"
                self._reports[str(message.IngestionSourceId)] = (False, detail.strip())

    def close(self) -> None:
        with self._lock:
            if self._ingest_client is not None:
                self._ingest_client.close()
                self._ingest_client = None
        self._client.close()
