"""Read the metrics documents a build uploaded: an artifact zip holding `metrics.json` / `build-summary.json`.

The zip and each document are read within `etl.config.Limits` (see `etl.sources.bounded`); a
document that cannot be read carries its one-line `error` and the start of its text as `body`,
for the quarantine. The entries may sit at the archive's root (`actions/upload-artifact` of a
`.telemetry/` directory) or under a folder (`telemetry/metrics.json`, as Azure DevOps serves a
pipeline artifact); a second entry of the same name is refused rather than overwriting the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from etl.config import Limits
from etl.sources.bounded import parse_json_document, read_archive_entries

DOCUMENT_NAMES = ("metrics.json", "build-summary.json")


@dataclass
class MetricsDocument:
    """One document as read: its file name, its parsed body, or why it could not be read."""

    artifact: str
    file_name: str
    body: Any = None
    error: str | None = None


def read_metrics_zip(artifact: str, data: bytes, limits: Limits | None = None) -> list[MetricsDocument]:
    """The metrics documents inside an artifact zip, in path order; unreadable ones carry `error`."""
    docs: list[MetricsDocument] = []
    seen: dict[str, str] = {}
    for entry in read_archive_entries(data, DOCUMENT_NAMES, limits):
        name = "(artifact)" if entry.path == "(archive)" else PurePosixPath(entry.path).name
        if entry.error is not None:
            docs.append(MetricsDocument(artifact, name, error=entry.error))
            continue
        if name in seen:
            docs.append(MetricsDocument(artifact, name, error=f"second {name} in the artifact ({entry.path}); "
                                                              f"{seen[name]} was read"))
            continue
        seen[name] = entry.path
        parsed = parse_json_document(entry.data or b"", limits)
        docs.append(MetricsDocument(artifact, name, parsed.body if parsed.ok else parsed.excerpt, parsed.error))
    return docs
