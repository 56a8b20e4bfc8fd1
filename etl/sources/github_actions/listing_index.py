"""What the runs listings said last time, kept between ETL runs so unchanged windows cost no budget.

For each single-page listing window (`owner/repo created=A..B`) the index keeps its ETag and the
runs it held — ids, `updated_at` and status only, nothing personal — in
`<staging.dir>/github/<source>-listings.json`. The next ETL run asks the window with
`If-None-Match`; a 304 (which GitHub does not charge) means the same runs, and only those the
watermark still wants are fetched, one by one. A window of several pages is not indexed: a change
on a later page leaves the first page's ETag as it was.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Windows kept (a day per repository: 5,000 is more than a year of 10 repositories).
MAX_ENTRIES = 5_000


@dataclass(frozen=True)
class Listed:
    """A listing window as last seen: its ETag and its runs as (id, updated_at, status)."""

    etag: str
    runs: tuple[tuple[int, str, str], ...]


class ListingIndex:
    """ETags and run ids of listing windows, optionally kept in a file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._entries: OrderedDict[str, Listed] = OrderedDict()
        self._lock = threading.Lock()
        if path is not None and path.exists():
            try:
                for key, (etag, runs) in json.loads(path.read_text(encoding="utf-8")).items():
                    self._entries[key] = Listed(str(etag), tuple((int(i), str(u), str(s)) for i, u, s in runs))
            except (OSError, ValueError, TypeError):  # a damaged index only costs requests
                log.debug("listing index %s unreadable; starting empty", path)
                self._entries.clear()

    def get(self, key: str) -> Listed | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, etag: str, runs: list[dict[str, Any]]) -> None:
        """Remember a window's ETag and its runs (those without an int id or a text updated_at are left out)."""
        kept = tuple((r["id"], r["updated_at"], str(r.get("status") or "")) for r in runs
                     if isinstance(r.get("id"), int) and isinstance(r.get("updated_at"), str))
        with self._lock:
            self._entries[key] = Listed(etag, kept)
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def save(self) -> None:
        """Write the index (when it has a path), atomically."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with self._lock:
            data = {k: [v.etag, [list(r) for r in v.runs]] for k, v in self._entries.items()}
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.path)
