"""Read the metrics documents a build uploaded: an artifact zip holding `metrics.json` / `build-summary.json`."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

DOCUMENT_NAMES = ("metrics.json", "build-summary.json")
#: A metrics document is a few KB; anything this large is not one (or is a zip bomb).
MAX_DOCUMENT_BYTES = 5_000_000


@dataclass
class MetricsDocument:
    """One document as read: its file name, its parsed body, or why it could not be read."""

    artifact: str
    file_name: str
    body: Any = None
    error: str | None = None


def read_metrics_zip(artifact: str, data: bytes, max_bytes: int = MAX_DOCUMENT_BYTES) -> list[MetricsDocument]:
    """The metrics documents inside an artifact zip, in name order; unreadable ones carry `error`."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return [MetricsDocument(artifact, "(artifact)", error="artifact download is not a zip file")]
    docs = []
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            name = PurePosixPath(info.filename).name
            if name not in DOCUMENT_NAMES or info.is_dir():
                continue
            if info.file_size > max_bytes:
                docs.append(MetricsDocument(artifact, name, error=f"{info.file_size} bytes exceeds {max_bytes}"))
                continue
            try:
                docs.append(MetricsDocument(artifact, name, json.loads(archive.read(info).decode("utf-8"))))
            except (ValueError, UnicodeDecodeError) as exc:
                docs.append(MetricsDocument(artifact, name, error=f"not valid JSON: {exc}"))
    return docs
