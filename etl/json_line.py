"""A payload as one line of JSON, the way raw payloads are staged (and re-staged byte for byte); JSON bytes read back."""

from __future__ import annotations

import json
from typing import Any


def json_line(payload: Any) -> bytes:
    """One payload as a JSON line, keys sorted (re-staging a window writes the same bytes)."""
    import orjson  # not with the module: `collect` on a build agent imports the outbox without it

    return orjson.dumps(payload, default=str,
                        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE)


def read_json(data: bytes) -> Any:
    """JSON bytes decoded: orjson, else the standard library, which also reads what orjson refuses (a byte-order
    mark, UTF-16/32, NaN, a lone surrogate, an integer past 64 bits)."""
    import orjson  # see json_line

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
