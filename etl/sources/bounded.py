"""Bounded reading of untrusted uploads: JSON documents and the zip archives that carry them.

Anyone who can run a pipeline or write to the inbox chooses these bytes, so every read has a limit
(`etl.config.Limits`) and every failure is one line for the quarantine, never an exception:

- a document larger than `max_document_bytes` is refused unread;
- nesting deeper than `max_depth` is refused *before* parsing, by a scan that does not recurse, so
  a 1,000-deep document cannot raise RecursionError here or in anything that later walks the body;
- a string holding an unpaired UTF-16 surrogate (`"\\ud800"`) makes the document unreadable (it is
  no text, and would crash hashing or staging later);
- `NaN`, `Infinity` and integers too long for any Kusto column are parsed to `nan`/`inf`/a float,
  so the normalizer can drop that one value with a reason instead of losing the whole document;
- an archive larger than `max_archive_bytes` or listing more than `max_archive_entries` entries is
  refused; an entry is read at most `max_document_bytes + 1` bytes, whatever its header claims
  (zip bombs lie there), and a bad CRC, corrupt deflate data, an encrypted or unsupported entry is
  that entry's error.
"""

from __future__ import annotations

import io
import json
import lzma
import re
import zipfile
import zlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from etl.config import Limits

#: How much of a refused document's text the quarantine keeps (enough to recognise it).
EXCERPT_CHARS = 2_000
#: Longer digit runs cannot fit int64 (19 digits) or uint64 (20); parsed as float they become
#: out-of-range values the normalizer drops, instead of Python's int-parsing limit failing the document.
_MAX_INT_DIGITS = 20

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.S)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_OPEN = np.frombuffer(b"[{", dtype=np.uint8)


@dataclass(frozen=True)
class ParsedDocument:
    """A document as read: its body, or a one-line `error` and the start of its text for the quarantine."""

    body: Any = None
    error: str | None = None
    excerpt: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ArchiveEntry:
    """One wanted entry of an archive: its path inside the archive and its bytes, or why it was not read."""

    path: str
    data: bytes | None = None
    error: str | None = None


def nesting_depth(data: bytes) -> int:
    """The deepest nesting of `[`/`{` in JSON text, outside strings; linear time, no recursion."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", data))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where(np.isin(codes, _OPEN), 1, -1)
    return int(np.cumsum(steps).max(initial=0))


def _parse_int(text: str) -> int | float:
    digits = len(text) - text.startswith("-")
    return int(text) if digits <= _MAX_INT_DIGITS else float(text)


def _excerpt(data: bytes) -> str:
    return data[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:EXCERPT_CHARS]


def parse_json_document(data: bytes, limits: Limits | None = None) -> ParsedDocument:
    """Parse one untrusted JSON document within *limits*; never raises for bad input."""
    limits = limits or Limits()
    if len(data) > limits.max_document_bytes:
        return ParsedDocument(error=f"{len(data)} bytes exceeds max_document_bytes {limits.max_document_bytes}",
                              excerpt=_excerpt(data))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return ParsedDocument(error=f"not UTF-8 text: byte {exc.start}", excerpt=_excerpt(data))
    depth = nesting_depth(data)
    if depth > limits.max_depth:
        return ParsedDocument(error=f"nesting depth {depth} exceeds max_depth {limits.max_depth}",
                              excerpt=_excerpt(data))
    try:
        body = json.loads(text, parse_constant=float, parse_int=_parse_int)
    except ValueError as exc:
        return ParsedDocument(error=f"not valid JSON: {exc}", excerpt=_excerpt(data))
    try:
        # `"\ud800"` is valid JSON syntax but no text: it would fail later, in hashing or staging, as a crash.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        return ParsedDocument(error=f"not valid Unicode: an unpaired surrogate {exc.object[exc.start]!a} in a string "
                                    "(I-JSON, RFC 7493)", excerpt=_excerpt(data))
    return ParsedDocument(body)


def read_json_file(path: Path, limits: Limits | None = None) -> ParsedDocument:
    """Read and parse the file at *path*, never more than `max_document_bytes + 1` bytes of it."""
    limits = limits or Limits()
    try:
        with path.open("rb") as handle:
            data = handle.read(limits.max_document_bytes + 1)
    except OSError as exc:
        return ParsedDocument(error=f"unreadable: {exc.strerror or type(exc).__name__}")
    if len(data) > limits.max_document_bytes:
        size = path.stat().st_size
        return ParsedDocument(error=f"{size} bytes exceeds max_document_bytes {limits.max_document_bytes}",
                              excerpt=_excerpt(data))
    return parse_json_document(data, limits)


#: What zipfile, zlib and lzma raise for a damaged or unsupported entry.
_ENTRY_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError, RuntimeError,
                 OSError, ValueError)


def read_archive_entries(data: bytes, names: Collection[str], limits: Limits | None = None) -> Iterator[ArchiveEntry]:
    """The entries of zip *data* whose base name is in *names*, in path order, each read within *limits*.

    An archive that cannot be opened or breaks a limit as a whole yields one entry with path
    `(archive)` and the error.
    """
    limits = limits or Limits()
    if len(data) > limits.max_archive_bytes:
        yield ArchiveEntry("(archive)", error=f"{len(data)} bytes exceeds max_archive_bytes {limits.max_archive_bytes}")
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, *_ENTRY_ERRORS) as exc:
        yield ArchiveEntry("(archive)", error=f"not a readable zip file: {exc}")
        return
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_archive_entries:
            yield ArchiveEntry("(archive)", error=f"{len(infos)} entries exceeds max_archive_entries "
                                                  f"{limits.max_archive_entries}")
            return
        for info in sorted(infos, key=lambda i: i.filename):
            if info.is_dir() or PurePosixPath(info.filename).name not in names:
                continue
            yield _read_entry(archive, info, limits.max_document_bytes)


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int) -> ArchiveEntry:
    if info.flag_bits & 0x1:
        return ArchiveEntry(info.filename, error="encrypted entry")
    if info.file_size > max_bytes:
        return ArchiveEntry(info.filename, error=f"{info.file_size} bytes exceeds max_document_bytes {max_bytes}")
    try:
        with archive.open(info) as handle:
            # Reading to the end is what makes zipfile check the CRC; the +1 catches a header that lied.
            content = handle.read(max_bytes + 1)
    except _ENTRY_ERRORS as exc:
        return ArchiveEntry(info.filename, error=f"corrupt entry: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    if len(content) > max_bytes:
        return ArchiveEntry(info.filename, error=f"inflates past max_document_bytes {max_bytes} "
                                                 f"(header says {info.file_size})")
    return ArchiveEntry(info.filename, content)
