"""The outbox: every batch is written to disk — scrubbed raw pages and normalized rows — before it loads.

Layout under `settings.staging.dir`:

    outbox/<batch_id>/manifest.json     what the batch is, its counts, watermark range and status
    outbox/<batch_id>/raw.jsonl         the scrubbed raw payloads, one build bundle per line
    outbox/<batch_id>/<Table>.parquet   the rows that load into <Table>, typed as kql/tables says
    outbox/dead/<batch_id>/...          a batch that failed to load `staging.max_load_attempts` times
    outbox/dropped/<batch_id>.json      the manifest of a dead batch an operator dropped, with the reason

The manifest is written last (atomically): a directory without one was interrupted while staging
and is ignored. Status (`BatchStatus`): `pending` (staged, loads next), `held` (staging.hold_loads;
waits for `outbox release`), `loaded`, `incomplete` (loaded, but the source reported missing
data: its window is read again), `dry-run` (never loads), `dead` (see above; `outbox retry` or
`outbox drop`). The batch id is a hash of source, organization, project and watermark range (or
the source's own key), so re-running the same window reuses the same id — the same idempotency
key for the warehouse, and the same count of load attempts.

Rows are staged as Parquet typed by the table's schema (etl/warehouse/rows.py): datetimes stay
datetimes from normalize to load, a value that does not fit its column fails the item as it is
staged (so it is quarantined alone, instead of failing the batch's load every time), and the load
reads Arrow column by column instead of re-parsing text. Rows are buffered per table and written in
row groups of at most `ROW_GROUP_ROWS`, so staging memory is bounded by that, not by the batch.
Raw payloads are JSON lines written by orjson (about 8x faster than `json.dumps` with sorted keys,
which took a quarter of staging). The files are written uncompressed: it is the fastest to write and read back, and their text stays
greppable, so a byte scan of the staging directory (the planted-secret tests, an operator's audit)
sees every staged string.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from etl.json_line import json_line
from etl.timeutil import utc_now

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

# pyarrow, pandas and orjson are imported where rows are staged or read, not with this module: the
# CLI (and `collect` on a build agent, which installs neither) imports it for its constants.

#: (table, rows) -> rows as stored: `etl.privacy.apply_policy` bound to the run's scrubber.
RowsPolicy = Callable[[str, list[dict[str, Any]]], list[dict[str, Any]]]

#: Load order: facts first, the run log last; the watermark is committed after all of them.
TABLE_ORDER = (
    "TimelineBuilds",
    "TimelineRecords",
    "TimelineIssues",
    "TestRuns",
    "TestResults",
    "BuildMetrics",
    "BuildStages",
    "MetricSamples",
    "PipelineSteps",
)
#: Ledgers committed with the watermark, after every fact table has loaded.
COMMIT_TABLES = ("EtlInboxFiles",)
#: Rows per Parquet row group (and the most rows a table buffers before writing): bounds staging memory.
ROW_GROUP_ROWS = 20_000


class BatchStatus(StrEnum):
    """Where a staged batch stands (the stored strings are the values)."""

    PENDING = "pending"
    HELD = "held"
    LOADED = "loaded"
    INCOMPLETE = "incomplete"
    DRY_RUN = "dry-run"
    DEAD = "dead"


STATUSES = tuple(BatchStatus)


class StagedFileError(ValueError):
    """A staged file cannot be read back (garbled): the batch fails to load, it does not crash the run."""


def batch_id_for(source: str, organization: str, project: str, watermark_from: str, watermark_to: str) -> str:
    """Deterministic id of a batch: the same window of the same project always gets the same id."""
    digest = hashlib.sha256(f"{source}\n{organization}\n{project}\n{watermark_from}\n{watermark_to}".encode())
    stamp = watermark_to[:19].replace("-", "").replace(":", "")
    return f"{stamp}-{digest.hexdigest()[:12]}"


@dataclass
class Manifest:
    """What a staged batch holds and where it stands."""

    batch_id: str
    source: str
    organization: str
    project: str
    watermark_from: str | None
    watermark_to: str | None
    staged_at: str
    status: str = BatchStatus.PENDING
    builds: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    errors: list[str] = field(default_factory=list)
    run_id: str | None = None
    started_at: str | None = None
    loaded_at: str | None = None
    #: Count-audit findings of the source: the batch loads, but its window will be read again.
    incomplete: list[str] = field(default_factory=list)
    #: Failed load attempts so far, and the last one's reason (one line).
    attempts: int = 0
    last_error: str | None = None
    #: Why an operator dropped the batch (`outbox drop`).
    dropped_reason: str | None = None

    @property
    def where(self) -> str:
        return "/".join(p for p in (self.source, self.organization, self.project) if p)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def staged_table_writer(path: Path, table: str) -> pq.ParquetWriter:
    """A Parquet writer of *table*'s staged file at *path*, as every staged table is written."""
    import pyarrow.parquet as pq

    from etl.schema import load_tables
    from etl.warehouse.rows import arrow_schema

    # No compression and no dictionary encoding: fastest both ways, and every string stays in the file as
    # its bytes (see the module docstring).
    return pq.ParquetWriter(path, arrow_schema(load_tables()[table]), compression="none", use_dictionary=False,
                            write_statistics=False, store_schema=True)


def typed_rows(policy: RowsPolicy | None, table: str, rows: list[dict[str, Any]]) -> pa.Table:
    """*rows* treated by the privacy *policy* and typed as *table*'s schema (RowError when one does not fit)."""
    from etl.schema import load_tables
    from etl.warehouse.rows import to_arrow

    if policy is not None:
        rows = policy(table, rows)
    return to_arrow(load_tables()[table], rows)


def typed_tables(policy: RowsPolicy | None, tables: dict[str, list[dict[str, Any]]]) -> dict[str, pa.Table]:
    """Every non-empty table of one item typed (`typed_rows`), in the item's table order."""
    return {name: typed_rows(policy, name, rows) for name, rows in tables.items() if rows}


class StagedBatch:
    """A batch being written: append raw bundles and rows per table, then `commit()` the manifest."""

    def __init__(self, directory: Path, manifest: Manifest, rows_policy: RowsPolicy | None = None) -> None:
        self.dir = directory
        self._policy = rows_policy
        self.manifest = manifest
        if self.dir.exists():
            shutil.rmtree(self.dir)  # a re-staged window replaces its earlier staging entirely
        self.dir.mkdir(parents=True)
        self._raw: IO[bytes] | None = None
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._pending: dict[str, list[pa.Table]] = {}
        self._pending_rows: dict[str, int] = {}
        self.counts: dict[str, int] = {t: 0 for t in TABLE_ORDER}

    def _append(self, table: str, data: pa.Table) -> None:
        self._pending.setdefault(table, []).append(data)
        self._pending_rows[table] = self._pending_rows.get(table, 0) + data.num_rows
        self.counts[table] = self.counts.get(table, 0) + data.num_rows
        if self._pending_rows[table] >= ROW_GROUP_ROWS:
            self._flush(table)

    def _flush(self, table: str) -> None:
        import pyarrow as pa

        parts = self._pending.pop(table, [])
        self._pending_rows.pop(table, None)
        if not parts:
            return
        writer = self._writers.get(table)
        if writer is None:
            writer = self._writers[table] = staged_table_writer(self.dir / f"{table}.parquet", table)
        writer.write_table(pa.concat_tables(parts), row_group_size=ROW_GROUP_ROWS)

    def _raw_file(self) -> IO[bytes]:
        if self._raw is None:
            self._raw = (self.dir / "raw.jsonl").open("wb")
        return self._raw

    def add_raw(self, payload: dict[str, Any]) -> None:
        self._raw_file().write(json_line(payload))

    def add_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Stage *rows* of *table* (treated by the policy, typed); RowError, without staging any, when one does not fit."""
        if not rows:
            return
        self._append(table, typed_rows(self._policy, table, rows))

    @property
    def policy(self) -> RowsPolicy | None:
        """The privacy treatment rows get as they are staged (`typed_rows`)."""
        return self._policy

    def add_item(self, raw: dict[str, Any] | bytes | None, tables: dict[str, list[dict[str, Any]]]) -> None:
        """One item's raw payload (or its line, `json_line`, already made) and rows, all or nothing: everything
        is converted before anything is written.

        Raises (RowError for a value that does not fit its column; ValueError, TypeError, RecursionError...
        for a payload that cannot be serialized) without writing anything.
        """
        typed = typed_tables(self._policy, tables)
        self.add_typed(raw if raw is None or type(raw) is bytes else json_line(raw), typed)

    def add_typed(self, raw_line: bytes | None, typed: dict[str, pa.Table]) -> None:
        """One item already converted: its raw line (None: no raw payload kept) and its typed tables."""
        if raw_line is not None:
            self._raw_file().write(raw_line)
        for name, data in typed.items():
            self._append(name, data)

    def commit(self, status: str) -> Manifest:
        """Flush everything and write the manifest (the batch exists from this moment)."""
        for table in list(self._pending):
            self._flush(table)
        paths = [self.dir / f"{table}.parquet" for table in self._writers]
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        if self._raw is not None:
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
            self._raw = None
        for path in paths:
            _fsync(path)
        self.manifest.counts = {t: n for t, n in self.counts.items() if n}
        self.manifest.status = status
        _write_atomic(self.dir / "manifest.json", json.dumps(asdict(self.manifest), indent=2, sort_keys=True))
        return self.manifest

    def abort(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        self._pending.clear()
        if self._raw is not None:
            self._raw.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Outbox:
    """The staging directory's batches."""

    def __init__(self, staging_dir: Path, rows_policy: RowsPolicy | None = None) -> None:
        self.root = Path(staging_dir) / "outbox"
        self.rows_policy = rows_policy
        self.dead_root = self.root / "dead"
        self.dropped_root = self.root / "dropped"

    def path(self, batch_id: str) -> Path:
        return self.root / batch_id

    def _dir_of(self, batch_id: str) -> Path:
        dead = self.dead_root / batch_id
        return dead if (dead / "manifest.json").exists() else self.path(batch_id)

    def existing(self, batch_id: str) -> Manifest | None:
        """The manifest of an already-staged (or dead) batch with this id, if readable."""
        path = self._dir_of(batch_id) / "manifest.json"
        if path.exists():
            try:
                return Manifest.read(path)
            except (ValueError, TypeError, OSError):
                return None
        return None

    def existing_staged_at(self, batch_id: str) -> str | None:
        """The staging time of an already-staged batch with this id (kept so re-staging is byte-identical)."""
        found = self.existing(batch_id)
        return found.staged_at if found else None

    def is_dead(self, batch_id: str) -> bool:
        return (self.dead_root / batch_id / "manifest.json").exists()

    def start(self, manifest: Manifest) -> StagedBatch:
        return StagedBatch(self.path(manifest.batch_id), manifest, self.rows_policy)

    def batches(self, status: str | None = None) -> list[Manifest]:
        """Every committed batch (optionally of one status; dead ones included), oldest watermark first."""
        if not self.root.exists():
            return []
        out = []
        paths = list(self.root.glob("*/manifest.json")) + list(self.dead_root.glob("*/manifest.json"))
        for manifest_path in paths:
            try:
                m = Manifest.read(manifest_path)
            except (ValueError, TypeError, OSError):
                continue
            if status is None or m.status == status:
                out.append(m)
        return sorted(out, key=lambda m: (m.watermark_to or "", m.staged_at, m.batch_id))

    def get(self, batch_id: str) -> Manifest:
        """One batch's manifest (dead ones included); KeyError naming the id when there is none."""
        path = self._dir_of(batch_id) / "manifest.json"
        if not path.exists():
            raise KeyError(f"no staged batch {batch_id!r} under {self.root}")
        return Manifest.read(path)

    def set_status(self, manifest: Manifest, status: str, **changes: Any) -> Manifest:
        manifest.status = status
        for name, value in changes.items():
            setattr(manifest, name, value)
        _write_atomic(self._dir_of(manifest.batch_id) / "manifest.json",
                      json.dumps(asdict(manifest), indent=2, sort_keys=True))
        return manifest

    def kill(self, manifest: Manifest) -> Manifest:
        """Move a batch to `outbox/dead/` (after its last allowed load attempt failed)."""
        self.dead_root.mkdir(parents=True, exist_ok=True)
        target = self.dead_root / manifest.batch_id
        if target.exists():
            shutil.rmtree(target)
        os.replace(self.path(manifest.batch_id), target)
        return self.set_status(manifest, BatchStatus.DEAD)

    def revive(self, batch_id: str) -> Manifest:
        """Move a dead batch back to the outbox as pending, its attempts reset (`outbox retry`)."""
        if not self.is_dead(batch_id):
            raise KeyError(f"no dead batch {batch_id!r} (see `ci-telemetry outbox list --status dead`)")
        manifest = self.get(batch_id)
        target = self.path(batch_id)
        if target.exists():
            shutil.rmtree(target)  # a re-staging of the same window; the dead copy is the one asked for
        os.replace(self.dead_root / batch_id, target)
        return self.set_status(manifest, BatchStatus.PENDING, attempts=0)

    def drop(self, batch_id: str, reason: str) -> Manifest:
        """Delete a dead batch, keeping its manifest and *reason* under `outbox/dropped/`."""
        if not self.is_dead(batch_id):
            raise KeyError(f"no dead batch {batch_id!r} (see `ci-telemetry outbox list --status dead`)")
        manifest = self.get(batch_id)
        manifest.dropped_reason = reason
        self.dropped_root.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.dropped_root / f"{batch_id}.json", json.dumps(asdict(manifest), indent=2, sort_keys=True))
        shutil.rmtree(self.dead_root / batch_id)
        return manifest

    def staged_file(self, batch_id: str, table: str) -> Path | None:
        """The Parquet file a batch staged for *table*, if it staged any rows of it, once its footer reads back
        (for a loader that reads the file itself). StagedFileError naming the file when it cannot."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self._dir_of(batch_id) / f"{table}.parquet"
        if not path.exists():
            return None
        try:
            pq.read_metadata(path)
        except (OSError, pa.ArrowException) as exc:
            raise _unreadable(batch_id, table, exc) from None
        return path

    def tables(self, batch_id: str, table: str, chunk: int | None = None) -> Iterator[pa.Table]:
        """A staged table's rows as Arrow tables, typed as staged: one per row group (at most `ROW_GROUP_ROWS`
        rows, the same groups every time the file is read), or of at most *chunk* rows.

        StagedFileError naming the file when it cannot be read back.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self._dir_of(batch_id) / f"{table}.parquet"
        if not path.exists():
            return
        try:
            parquet = pq.ParquetFile(path)
            if chunk is None:
                for group in range(parquet.num_row_groups):
                    yield parquet.read_row_group(group)
                return
            for batch in parquet.iter_batches(batch_size=chunk):
                yield pa.Table.from_batches([batch], schema=parquet.schema_arrow)
        except (OSError, pa.ArrowException) as exc:
            raise _unreadable(batch_id, table, exc) from None

    def rows(self, batch_id: str, table: str, chunk: int = 20_000) -> Iterator[list[dict[str, Any]]]:
        """A staged table's rows as dicts in chunks (typed values: datetimes, numbers; dynamic columns as JSON text)."""
        for data in self.tables(batch_id, table, chunk):
            yield data.to_pylist()

    def prune(self, keep_loaded: int) -> list[str]:
        """Delete the oldest loaded (or incomplete) batches beyond *keep_loaded*; returns the ids removed."""
        loaded = [m for m in self.batches() if m.status in (BatchStatus.LOADED, BatchStatus.INCOMPLETE)]
        drop = loaded[: max(0, len(loaded) - keep_loaded)]
        for m in drop:
            shutil.rmtree(self.path(m.batch_id), ignore_errors=True)
        return [m.batch_id for m in drop]


def _unreadable(batch_id: str, table: str, exc: Exception) -> StagedFileError:
    return StagedFileError(f"staged file {batch_id}/{table}.parquet: not a readable Parquet file "
                           f"({str(exc).splitlines()[0][:200]})")


def utc_now_iso() -> str:
    return utc_now().isoformat()
