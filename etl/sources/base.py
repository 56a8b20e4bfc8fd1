"""The Source protocol: what every source gives the run loop, whatever it reads.

A source names its scopes (source / organization / project) and, per scope, yields bounded
batches: a watermark window (or none, for sources that remember files instead of times), an
idempotency key, and the payloads read in that window. Payloads are produced lazily while the
batch is staged, so memory stays bounded; each one is an `Item` naming its object, so a failure
while normalizing or staging it quarantines that object alone.

Failures end as little as possible:
- an object the source cannot read becomes an `Item` with `reason` set (quarantined, the rest goes on);
- `ScopeFailed` ends one scope (e.g. one project answered 500 after every retry);
- `SourceFailed` ends the whole source (an unresolvable secret, 401/403, an unreachable host).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Scope:
    """Where a batch's rows belong, and what its watermark is kept by."""

    source: str
    organization: str = ""
    project: str = ""

    @property
    def label(self) -> str:
        return "/".join(p for p in (self.source, self.organization, self.project) if p)


@dataclass(frozen=True)
class Window:
    """A watermark range: the batch holds what changed from `start` up to `end` (inclusive)."""

    start: datetime
    end: datetime


@dataclass
class Item:
    """One payload of a batch (a build bundle, a document), or why the source could not read it."""

    #: Names the object in one-line errors: "build 123", "inbox file a.json".
    obj: str
    payload: Any = None
    #: Set when the source could not read the object: it is quarantined with this reason.
    reason: str | None = None
    field_name: str = "(payload)"
    #: Ledger rows to commit with the batch (e.g. the inbox's files seen), written after the facts load.
    ledger: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Batch:
    """A bounded unit of work: staged, loaded and committed as one."""

    scope: Scope
    #: None when the source keeps no time watermark (the inbox remembers file hashes instead).
    window: Window | None
    items: Iterable[Item]
    #: Identifies the batch when there is no window (e.g. a hash of the files it holds).
    key: str = ""
    builds: int = 0
    #: Count-audit findings filled in while the items are read (e.g. "run 123: 200 of 250 results").
    #: A batch with any is loaded but marked incomplete, and the watermark does not move past it.
    incomplete: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Start:
    """Where a scope's next batch starts: the committed watermark (or the --since override)."""

    watermark: datetime | None
    #: Content hashes of the files this source already read (for ledger-keeped sources).
    files_seen: frozenset[str] = frozenset()


class ScopeFailed(Exception):
    """One scope cannot be read further; str() is one line naming source, object and cause."""


class SourceFailed(Exception):
    """The whole source cannot be read (credentials, permissions, host); str() is one line."""


class Source(Protocol):
    """What the run loop needs of a source. Sources are context managers (they may start servers)."""

    name: str

    def scopes(self) -> list[Scope]:
        """The scopes this source reads, in order."""
        ...

    def batches(self, scope: Scope, start: Start) -> Iterator[Batch]:
        """The scope's batches from *start* on, oldest first; raises ScopeFailed or SourceFailed."""
        ...


SourceContext = AbstractContextManager[Source]
