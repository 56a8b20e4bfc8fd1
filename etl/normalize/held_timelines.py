"""A build's timelines held as the bytes the service sent (`BuildBundle.encoded`), read without building dicts.

Decoding a 2,000-record timeline into dicts, checking the dicts, and walking them again to stage them raw
cost more than everything else staging does for a build (docs/benchmarks.md, "Timeline records staged raw
from their bytes"). Read here, a held body becomes the checked records the column path needs
(`record_columns`) and each record's bytes, which raw staging scrubs as bytes (`etl.privacy_bytes`).
A body either read refuses goes the way it went before: `BuildBundle.unpacked`, then the reference path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from etl.normalize.timeline_columns import Parsed, parsed_body, parsed_timelines
from etl.sources.azure_devops.extract import BuildBundle


@dataclass(frozen=True)
class HeldTimelines:
    """What a bundle's timelines are read as when some are held as bytes."""

    #: Every timeline's records, checked, in the bundle's order.
    parsed: Parsed
    #: Position in the bundle's timelines -> each record's bytes, for the timelines held as bytes.
    elements: dict[int, list[Any]]


def held_timelines(bundle: BuildBundle) -> HeldTimelines | None:
    """The bundle's timelines read from their bytes; None when none is held as bytes or one needs the reference path."""
    held = {i for i, (_, records) in enumerate(bundle.timelines) if not records and i in bundle.encoded}
    if not held:
        return None
    parsed: Parsed = []
    elements: dict[int, list[Any]] = {}
    for i, (timeline_id, records) in enumerate(bundle.timelines):
        if i in held:
            body = parsed_body(bundle.encoded[i])
            if body is None:
                return None
            parsed.append((timeline_id, body[0]))
            elements[i] = body[1]
        else:
            decoded = parsed_timelines([(timeline_id, records)])
            if decoded is None:
                return None
            parsed.extend(decoded)
    return HeldTimelines(parsed, elements)
