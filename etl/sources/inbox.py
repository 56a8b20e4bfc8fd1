"""The inbox: a directory of metrics documents uploaded outside Azure DevOps.

Each `*.json` file is a metrics document (the `metrics.json` / `build-summary.json` schema) plus
`key` (required: the upload's unique key) and optionally `source`, `organization`, `project`,
`build_id`. Files modified at or after the watermark are read (inclusive, like Azure DevOps'
minTime; re-reading a file is a harmless upsert by key). Files over the size or depth limit
(`etl.sources.bounded`), not JSON or without a key are quarantined.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.config import Limits
from etl.sources.bounded import read_json_file


@dataclass
class InboxDocument:
    """One inbox file: its body, or why it cannot be read."""

    path: Path
    modified: datetime
    body: Any = None
    error: str | None = None
    field: str = "(document)"

    @property
    def file_name(self) -> str:
        body = self.body if isinstance(self.body, dict) else {}
        return "build-summary.json" if "telemetry" in body and "build_session" not in body else "metrics.json"


def read_inbox(directory: Path, since: datetime | None, max_bytes: int,
               limits: Limits | None = None) -> Iterator[InboxDocument]:
    """Documents modified at or after *since* (naive UTC), oldest first, each read within *limits*."""
    if not directory.exists():
        return
    files = []
    for path in directory.glob("*.json"):
        if not path.is_file():
            continue
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
        if since is None or modified >= since:
            files.append((modified, path))
    bounds = (limits or Limits()).model_copy(update={"max_document_bytes": max_bytes})
    for modified, path in sorted(files):
        parsed = read_json_file(path, bounds)
        if not parsed.ok:
            yield InboxDocument(path, modified, parsed.excerpt, parsed.error)
            continue
        body = parsed.body
        if not isinstance(body, dict):
            yield InboxDocument(path, modified, body, "expected a JSON object")
            continue
        key = body.get("key")
        if not isinstance(key, str) or not key.strip():
            yield InboxDocument(path, modified, body, "missing (every inbox document needs a string key)", "key")
            continue
        yield InboxDocument(path, modified, body)
