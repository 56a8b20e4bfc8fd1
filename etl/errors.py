"""How an exception reads in a one-line error: its type and the first line of its message, bounded."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """`Type: first line of the message` (at most 300 characters of it), or the type alone."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
