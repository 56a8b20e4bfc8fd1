"""The outbox: every batch is written to disk — scrubbed raw pages and normalized rows — before it loads.

Layout under `settings.staging.dir`:

    outbox/<batch_id>/manifest.json     what the batch is, its counts, watermark range and status
    outbox/<batch_id>/raw.jsonl         the scrubbed raw payloads, one build bundle per line
    outbox/<batch_id>/<Table>.jsonl     the rows that load into <Table>

The manifest is written last (atomically): a directory without one was interrupted while staging
and is ignored. Status: `pending` (staged, loads next), `held` (staging.hold_loads; waits for
`outbox release`), `loaded`, `dry-run` (never loads). The batch id is a hash of source,
organization, project and watermark range, so re-running the same window reuses the same id —
the same idempotency key for the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

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
)
STATUSES = ("pending", "held", "loaded", "dry-run")


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
    status: str = "pending"
    builds: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    errors: list[str] = field(default_factory=list)
    #: Audit findings (what was read disagrees with a count the service stated): the batch is incomplete.
    audit: list[str] = field(default_factory=list)
    #: The watermark commits no further than this (the first build an audit found incomplete).
    watermark_hold: str | None = None
    run_id: str | None = None
    started_at: str | None = None
    loaded_at: str | None = None

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


class StagedBatch:
    """A batch being written: append raw bundles and rows per table, then `commit()` the manifest."""

    def __init__(self, directory: Path, manifest: Manifest, rows_policy: RowsPolicy | None = None) -> None:
        self.dir = directory
        self._policy = rows_policy
        self.manifest = manifest
        if self.dir.exists():
            shutil.rmtree(self.dir)  # a re-staged window replaces its earlier staging entirely
        self.dir.mkdir(parents=True)
        self._files: dict[str, IO[str]] = {}
        self.counts: dict[str, int] = {t: 0 for t in TABLE_ORDER}

    def _file(self, name: str) -> IO[str]:
        fh = self._files.get(name)
        if fh is None:
            fh = self._files[name] = (self.dir / f"{name}.jsonl").open("w", encoding="utf-8")
        return fh

    def add_raw(self, payload: dict[str, Any]) -> None:
        self._file("raw").write(json.dumps(payload, sort_keys=True, default=str) + "\n")

    def add_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._policy is not None:
            rows = self._policy(table, rows)
        fh = self._file(table)
        fh.writelines(json.dumps(row, default=str) + "\n" for row in rows)
        self.counts[table] = self.counts.get(table, 0) + len(rows)

    def commit(self, status: str) -> Manifest:
        """Flush everything and write the manifest (the batch exists from this moment)."""
        for fh in self._files.values():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        self._files.clear()
        self.manifest.counts = {t: n for t, n in self.counts.items() if n}
        self.manifest.status = status
        _write_atomic(self.dir / "manifest.json", json.dumps(asdict(self.manifest), indent=2, sort_keys=True))
        return self.manifest

    def abort(self) -> None:
        for fh in self._files.values():
            fh.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Outbox:
    """The staging directory's batches."""

    def __init__(self, staging_dir: Path, rows_policy: RowsPolicy | None = None) -> None:
        self.root = Path(staging_dir) / "outbox"
        self.rows_policy = rows_policy

    def path(self, batch_id: str) -> Path:
        return self.root / batch_id

    def existing_staged_at(self, batch_id: str) -> str | None:
        """The staging time of an already-staged batch with this id (kept so re-staging is byte-identical)."""
        path = self.path(batch_id) / "manifest.json"
        if path.exists():
            try:
                return Manifest.read(path).staged_at
            except (ValueError, TypeError, OSError):
                return None
        return None

    def start(self, manifest: Manifest) -> StagedBatch:
        return StagedBatch(self.path(manifest.batch_id), manifest, self.rows_policy)

    def batches(self, status: str | None = None) -> list[Manifest]:
        """Every committed batch (optionally of one status), oldest watermark first."""
        if not self.root.exists():
            return []
        out = []
        for manifest_path in self.root.glob("*/manifest.json"):
            try:
                m = Manifest.read(manifest_path)
            except (ValueError, TypeError, OSError):
                continue
            if status is None or m.status == status:
                out.append(m)
        return sorted(out, key=lambda m: (m.watermark_to or "", m.staged_at, m.batch_id))

    def get(self, batch_id: str) -> Manifest:
        """One batch's manifest; KeyError naming the id when there is none."""
        path = self.path(batch_id) / "manifest.json"
        if not path.exists():
            raise KeyError(f"no staged batch {batch_id!r} under {self.root}")
        return Manifest.read(path)

    def set_status(self, manifest: Manifest, status: str, **changes: Any) -> Manifest:
        manifest.status = status
        for name, value in changes.items():
            setattr(manifest, name, value)
        _write_atomic(self.path(manifest.batch_id) / "manifest.json",
                      json.dumps(asdict(manifest), indent=2, sort_keys=True))
        return manifest

    def rows(self, batch_id: str, table: str, chunk: int = 20_000) -> Iterator[list[dict[str, Any]]]:
        """A staged table's rows in chunks (bounded memory for large batches)."""
        path = self.path(batch_id) / f"{table}.jsonl"
        if not path.exists():
            return
        buf: list[dict[str, Any]] = []
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                buf.append(json.loads(line))
                if len(buf) >= chunk:
                    yield buf
                    buf = []
        if buf:
            yield buf

    def prune(self, keep_loaded: int) -> list[str]:
        """Delete the oldest loaded batches beyond *keep_loaded*; returns the ids removed."""
        loaded = self.batches("loaded")
        drop = loaded[: max(0, len(loaded) - keep_loaded)]
        for m in drop:
            shutil.rmtree(self.path(m.batch_id), ignore_errors=True)
        return [m.batch_id for m in drop]


def utc_now_iso() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat()
