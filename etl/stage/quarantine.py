"""The quarantine: payloads that could not be parsed or validated, kept on disk with the reason.

`quarantine/<source>/<object>-<hash>.json` holds `{reason, source, object, field, payload}`; the
payload is scrubbed like everything staged. The file name is derived from the object and payload,
so re-reading the same bad payload finds its file instead of piling up copies; a file's mtime is
the first time its payload was quarantined (`doctor` and `freshness` report entries newer than
their age limit as a growing quarantine).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "payload"


class Quarantine:
    """Writes quarantined payloads and reports each one as one error line."""

    def __init__(self, staging_dir: Path, scrub: Callable[[Any], Any] = lambda x: x,
                 report: Callable[[str], None] | None = None) -> None:
        self.root = Path(staging_dir) / "quarantine"
        #: scrubs the payload and the reason (which may quote a value from the payload)
        self._scrub = scrub
        self._report = report
        self._lock = threading.Lock()
        self.count = 0
        self.lines: list[str] = []

    def add(self, source: str, obj: str, field: str, reason: str, payload: Any) -> Path:
        """Keep *payload* with its reason; returns the file written."""
        reason, obj, field = self._scrub(reason), self._scrub(obj), self._scrub(field)
        line = f"{source} {obj}: field {field}: {reason}"
        try:
            kept = self._scrub(payload)
            body = {"reason": reason, "source": source, "object": obj, "field": field, "payload": kept}
            text = json.dumps(body, indent=2, sort_keys=True, default=str)
        except (RecursionError, ValueError, TypeError, OverflowError) as exc:
            # A payload too hostile to keep (nested past the recursion limit...) is recorded without it.
            body = {"reason": reason, "source": source, "object": obj, "field": field,
                    "payload": f"(not kept: {type(exc).__name__})"}
            text = json.dumps(body, indent=2, sort_keys=True, default=str)
        digest = hashlib.sha256(f"{obj}\n{field}\n{text}".encode()).hexdigest()[:10]
        path = self.root / _slug(source) / f"{_slug(obj)}-{digest}.json"
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():  # same name, same content: the file's mtime stays the first time it was seen
                path.write_text(text, encoding="utf-8")
            self.count += 1
            self.lines.append(line)
        if self._report:
            self._report(line)
        return path

    def recent(self, since: datetime) -> list[str]:
        """Entries first quarantined at or after *since* (naive UTC), newest first, as `source/file` names."""
        if not self.root.exists():
            return []
        found = []
        for path in self.root.glob("*/*.json"):
            with contextlib.suppress(OSError):
                first = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
                if first >= since:
                    found.append((first, f"{path.parent.name}/{path.name}"))
        return [name for _, name in sorted(found, reverse=True)]

    def __call__(self, source: str, obj: str, field: str, reason: str, payload: Any) -> None:
        self.add(source, obj, field, reason, payload)
