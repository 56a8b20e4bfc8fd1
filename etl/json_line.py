"""A payload as one line of JSON, the way raw payloads are staged (and re-staged byte for byte)."""

from __future__ import annotations

from typing import Any


def json_line(payload: Any) -> bytes:
    """One payload as a JSON line, keys sorted (re-staging a window writes the same bytes)."""
    import orjson  # not with the module: `collect` on a build agent imports the outbox without it

    return orjson.dumps(payload, default=str,
                        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE)
