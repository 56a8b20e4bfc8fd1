"""A timeline response read only for what extraction needs; staging reads the rest from the bytes.

Extraction reads a timeline's id, and its records' `id`, `parentId`, `type` and `previousAttempts`: the
audit (`audit_timeline`) and the previous attempts to fetch need no more. The body travels to staging as
bytes (`BuildBundle.encoded`), which reads its records from them (`etl.normalize.held_timelines`), in a
staging worker when there are workers; decoding it whole here too is thrown away. msgspec reads these four
fields into structs and skips the rest without building it, at a fraction of a full decode's cost
(`bench/timeline_outline.py`; docs/benchmarks.md, "Timelines outlined").

A body the outline refuses (not an object, `records` not a list of objects, NaN, a byte-order mark, text
that is not UTF-8, nesting past msgspec's limit) is decoded in full: extraction sees the same values either
way, and a body neither reads is retried as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import requests

from etl.sources.azure_devops.client import decode_response


class OutlineRecord(msgspec.Struct):
    """A timeline record's fields extraction reads; read with `get`, as the audit reads a decoded record."""

    id: Any = None
    parentId: Any = None
    type: Any = None
    previousAttempts: Any = None

    def get(self, key: str, default: Any = None) -> Any:
        """The field *key* (None when the body had no such field), or *default* for a field not outlined."""
        return getattr(self, key) if key in self.__struct_fields__ else default


class _Timeline(msgspec.Struct):
    id: Any = None
    records: list[OutlineRecord] | None = None


_DECODER = msgspec.json.Decoder(_Timeline)


@dataclass(frozen=True)
class TimelineOutline:
    """A timeline body's id and its records reduced to the fields extraction reads, in order."""

    id: Any
    records: list[OutlineRecord]


def outline(content: bytes) -> TimelineOutline | None:
    """The outline of a timeline body, or None when the outline reader refuses it (decode it in full)."""
    try:
        body = _DECODER.decode(content)
        # msgspec does not check the strings it skips: a body that is not UTF-8 throughout is read in full,
        # where requests guesses its encoding, as without workers. ASCII is UTF-8: no copy made to check it.
        if not content.isascii():
            content.decode()
    except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError):
        return None
    # The structs as decoded: making a dict of each cost twice the decode (docs/benchmarks.md).
    return TimelineOutline(body.id, body.records or [])


def outline_or_decoded(response: requests.Response) -> Any:
    """A decoder for `AdoClient.get_json`: the body's `TimelineOutline`, else the body decoded in full."""
    found = outline(response.content)
    return found if found is not None else decode_response(response)
