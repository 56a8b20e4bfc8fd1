"""The inbox: a directory of metrics documents and JUnit reports uploaded outside Azure DevOps.

Each `*.json` file is a metrics document (the `metrics.json` / `build-summary.json` schema) plus
`key` (required: the upload's unique key) and optionally `source`, `organization`, `project`,
`build_id`.

Each `*.xml` file is a JUnit/xUnit report of one build, named `<project>--<build id>--<report>.xml`
(the project percent-encoded when it holds a `/` or `--`, e.g. `folder%2Fapp--57--unit.xml`); the
organization is the source's `junit_organization` setting (default: the source's name). A name not
of that form is quarantined unread; the report itself is parsed, bounded, by its normalizer
(`etl.normalize.inbox_junit`). Rewriting a report under the same name replaces its rows (its RunId
is a hash of organization, project, build id and report name).

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
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

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


@dataclass
class InboxJUnit:
    """One inbox JUnit report file: its bytes and the build its name says it belongs to."""

    path: Path
    modified: datetime
    data: bytes
    organization: str
    project: str
    build_id: int
    report: str

    @property
    def key(self) -> str:
        """What identifies the report across runs (its RunId is a hash of this)."""
        return f"{self.organization}/{self.project}/{self.build_id}/{self.report}"

    @property
    def body(self) -> dict[str, Any]:
        """What the quarantine and the staged raw payload keep: the file's identity, not its text."""
        return {"file": self.path.name, "key": self.key, "bytes": len(self.data)}


_JUNIT_NAME = re.compile(r"^(?P<project>.+?)--(?P<build>[0-9]{1,18})--(?P<report>.+)\.xml$", re.S)
JUNIT_NAME_RULE = "must be <project>--<build id>--<report>.xml (see docs/sources.md)"


def junit_identity(file_name: str) -> tuple[str, int, str] | None:
    """(project, build id, report name) a JUnit file's name gives, or None when it is not of that form."""
    match = _JUNIT_NAME.match(file_name)
    if not match or int(match.group("build")) == 0:
        return None
    project = unquote(match.group("project"))
    return (project, int(match.group("build")), match.group("report")) if project.strip() else None


def _scan(directory: Path) -> Iterator[_Seen]:
    """Every `*.json` and `*.xml` entry with its content hash (a symlink: a hash of its name and target), by name."""
    for path in sorted([*directory.glob("*.json"), *directory.glob("*.xml")]):
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


def _read_junit(seen: _Seen, max_bytes: int) -> tuple[Any, str | None, str]:
    """(bytes, reason they cannot be used, field) of a JUnit file: its name and size, checked before reading."""
    if seen.link is not None:
        return None, "is a symbolic link; inbox files must be regular files (refused, not followed)", "(file)"
    if junit_identity(seen.path.name) is None:
        return None, JUNIT_NAME_RULE, "(file name)"
    if seen.size > max_bytes:
        return None, f"{seen.size} bytes, more than the limit of {max_bytes} (refused unread)", "(size)"
    return seen.path.read_bytes(), None, "(document)"


class InboxReader:
    """One inbox directory as one scope; each run's new files are one batch."""

    def __init__(self, cfg: InboxSource, env: SourceEnv) -> None:
        self.name = cfg.name
        self.directory = env.settings.path(cfg.path)
        self.limits = env.settings.limits.model_copy(update={"max_document_bytes": cfg.max_document_bytes})
        self._redact = scrubber_for(env.settings).redact
        self.junit_organization = cfg.junit_organization or cfg.name
        self.max_junit_bytes = cfg.max_junit_bytes

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
            junit = seen.path.suffix == ".xml"
            try:
                body, reason, field = _read_junit(seen, self.max_junit_bytes) if junit else _read(seen, self.limits)
            except (OSError, RecursionError) as exc:
                body, reason, field = None, f"cannot be read: {type(exc).__name__}", "(document)"
            if reason is not None:
                yield Item(obj, body, reason=reason, field_name=field, ledger=ledger)
            elif junit:
                project, build_id, report = junit_identity(seen.path.name)  # type: ignore[misc]
                yield Item(obj, InboxJUnit(seen.path, seen.modified, body, self.junit_organization, project, build_id,
                                           report), ledger=ledger)
            else:
                yield Item(obj, InboxDocument(seen.path, seen.modified, body), ledger=ledger)


@contextlib.contextmanager
def open_inbox(cfg: InboxSource, env: SourceEnv) -> Iterator[InboxReader]:
    """Registry factory for `kind: inbox`."""
    # Registers the JUnit payload's normalizer (imported here: etl.normalize.batch imports this module).
    import etl.normalize.inbox_junit  # noqa: F401
    yield InboxReader(cfg, env)
