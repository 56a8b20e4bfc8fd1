"""The inbox: a directory of metrics documents uploaded outside Azure DevOps.

Each `*.json` file is a metrics document (the `metrics.json` / `build-summary.json` schema) plus
`key` (required: the upload's unique key) and optionally `source`, `organization`, `project`,
`build_id`.

The inbox remembers files, not times: every file read is recorded in the `EtlInboxFiles` ledger
under the SHA-256 of its content, committed with the batch that loaded it. A file is new when its
hash is new, whatever its modification time (a future mtime, `cp -p`, an unzip). Rewriting a file
under the same name with new content is a new document version; the table's key (`Key`) decides
that it replaces the old row. Symbolic links are refused (quarantined with the reason), so a link
cannot make the ETL read a file outside the inbox. Files over the size or depth limit
(`etl.sources.bounded`), not JSON or without a key are quarantined; only files whose rows were
staged enter the ledger, so a rejected file is reported again by every run until it is removed
or fixed (its quarantine entry keeps the time it was first seen).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.config import InboxSource, Limits
from etl.privacy import scrubber_for
from etl.sources import SourceEnv
from etl.sources.base import Batch, Item, Scope, Start
from etl.sources.bounded import read_json_file

LEDGER_TABLE = "EtlInboxFiles"
_CHUNK = 1 << 20


@dataclass
class InboxDocument:
    """One inbox file's parsed body (a JSON object with a string `key`)."""

    path: Path
    modified: datetime
    body: dict[str, Any]

    @property
    def file_name(self) -> str:
        return "build-summary.json" if "telemetry" in self.body and "build_session" not in self.body else "metrics.json"


@dataclass(frozen=True)
class _Seen:
    path: Path
    digest: str
    size: int
    modified: datetime
    link: str | None = None


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _scan(directory: Path) -> Iterator[_Seen]:
    """Every `*.json` entry with its content hash (a symlink: a hash of its name and target), by name."""
    for path in sorted(directory.glob("*.json")):
        if path.is_symlink():
            target = os.readlink(path)
            digest = hashlib.sha256(f"symlink\n{path.name}\n{target}".encode()).hexdigest()
            yield _Seen(path, digest, 0, datetime.fromtimestamp(0, UTC).replace(tzinfo=None), link=target)
            continue
        if not path.is_file():
            continue
        stat = path.stat()
        modified = datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None)
        yield _Seen(path, _digest(path), stat.st_size, modified)


def _read(seen: _Seen, limits: Limits) -> tuple[Any, str | None, str]:
    """(body, reason it cannot be used, field) of one file, parsed within *limits* (size, depth)."""
    if seen.link is not None:
        return None, "is a symbolic link; inbox files must be regular files (refused, not followed)", "(file)"
    parsed = read_json_file(seen.path, limits)
    if not parsed.ok:
        return parsed.excerpt, parsed.error, "(document)"
    body = parsed.body
    if not isinstance(body, dict):
        return body, "expected a JSON object", "(document)"
    key = body.get("key")
    if not isinstance(key, str) or not key.strip():
        return body, "missing (every inbox document needs a string key)", "key"
    return body, None, "(document)"


class InboxReader:
    """One inbox directory as one scope; each run's new files are one batch."""

    def __init__(self, cfg: InboxSource, env: SourceEnv) -> None:
        self.name = cfg.name
        self.directory = env.settings.path(cfg.path)
        self.limits = env.settings.limits.model_copy(update={"max_document_bytes": cfg.max_document_bytes})
        self._redact = scrubber_for(env.settings).redact

    def scopes(self) -> list[Scope]:
        return [Scope(self.name)]

    def batches(self, scope: Scope, start: Start) -> Iterator[Batch]:
        if not self.directory.is_dir():
            return
        new = [s for s in _scan(self.directory) if s.digest not in start.files_seen]
        if not new:
            return
        key = hashlib.sha256("\n".join(sorted(s.digest for s in new)).encode()).hexdigest()
        yield Batch(scope, None, self._items(new), key=key)

    def _items(self, files: list[_Seen]) -> Iterator[Item]:
        for seen in files:
            obj = f"inbox file {seen.path.name}"
            ledger = [{"Source": self.name, "ContentHash": seen.digest, "FileName": self._redact(seen.path.name),
                       "Bytes": seen.size, "ModifiedAt": seen.modified.isoformat()}]
            try:
                body, reason, field = _read(seen, self.limits)
            except (OSError, RecursionError) as exc:
                body, reason, field = None, f"cannot be read: {type(exc).__name__}", "(document)"
            if reason is not None:
                yield Item(obj, body, reason=reason, field_name=field, ledger=ledger)
            else:
                yield Item(obj, InboxDocument(seen.path, seen.modified, body), ledger=ledger)


@contextlib.contextmanager
def open_inbox(cfg: InboxSource, env: SourceEnv) -> Iterator[InboxReader]:
    """Registry factory for `kind: inbox`."""
    yield InboxReader(cfg, env)
