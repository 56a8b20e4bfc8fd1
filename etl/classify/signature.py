"""Failure fingerprints: a message with its volatile parts removed, hashed.

Two failures with the same cause in different builds differ in paths, GUIDs, hashes, numbers,
timestamps, temp directories, line/column positions and URL query strings; `normalize_message`
replaces those with placeholders so `signature` groups them.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from etl.privacy import compile_re2

#: Only the head of a message identifies it; stack traces below add volatility, not identity.
MAX_CHARS = 2000

# Order matters: URLs before paths (a URL contains slashes), timestamps before numbers.
_STEPS: tuple[tuple[str, str], ...] = (
    (r"(?i)\b((?:https?|ftp)://[^\s?#\"'<>]+)[?#][^\s\"'<>]*", r"\1"),
    (r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<guid>"),
    (r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?", "<ts>"),
    (r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "<ts>"),
    # Temp directories: their names are random by design.
    (r"(?i)(?:[a-z]:)?[\\/](?:[^\\/\s\"']+[\\/])*?(?:temp|tmp)[\\/][^\\/\s\"':]+", "<tmp>"),
    (r"/var/folders/[^\s\"':]+", "<tmp>"),
    # Directories (Windows and POSIX): keep the file name, which carries meaning.
    (r"(?i)\b[a-z]:(?:\\\\?|/)(?:[^\\/\s\"'<>|:*?]+(?:\\\\?|/))*", "<path>/"),
    (r"(?:^|[\s\"'(=\[])(?:~|\.{1,2})?(?:/[^/\s\"'<>:()]+)+/", " <path>/"),
    # Line/column positions: `file.cs(12,5)`, `file.py:42:7`, `line 42`.
    (r"\((\d+)(?:,\d+)*\)", "(<n>)"),
    (r"(?i)\b(line|col|column|position)\s*\d+", r"\1 <n>"),
    (r"(?i)\b[0-9a-f]{7,64}\b", "<hex>"),
    (r"(?i)\b0x[0-9a-f]+\b", "<hex>"),
    (r"\b\d+(?:\.\d+)*\b", "<n>"),
    (r"\s+", " "),
)


@lru_cache(maxsize=1)
def _compiled() -> tuple:
    """The steps compiled on first use, so importing this module (and the CLI) needs no re2."""
    return tuple((compile_re2(p), r) for p, r in _STEPS)


@lru_cache(maxsize=65536)
def normalize_message(message: str | None) -> str:
    """A message with paths, GUIDs, hashes, numbers, timestamps, temp dirs, positions and query strings removed."""
    if not message:
        return ""
    text = message[:MAX_CHARS]
    for pattern, repl in _compiled():
        text = pattern.sub(repl, text)
    return text.strip().lower()


def signature(message: str | None) -> str:
    """Fingerprint of a message with volatile parts removed: 16 hex digits of blake2b."""
    return hashlib.blake2b(normalize_message(message).encode(), digest_size=8).hexdigest()
