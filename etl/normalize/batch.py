"""Normalizing a batch: each item's payload → (scrubbed raw payload, rows per table).

`normalize_payload` dispatches on the payload's type; a new source with a new payload type adds
one `@normalize_payload.register` function beside its reader. An item the source could not read,
or whose normalization raises, is quarantined with a one-line reason naming the source, the object
and the field; the batch goes on with the next item.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any

from etl.columns import Columns
from etl.errors import one_line
from etl.normalize import normalize_bundle, raw_for_staging, scrub_raw
from etl.normalize.context import NormalizeContext
from etl.normalize.held_timelines import held_timelines
from etl.normalize.metrics import MetricsDocumentError, normalize_metrics_document
from etl.normalize.usage import usage_rows
from etl.sources.azure_devops.extract import BuildBundle
from etl.sources.base import Item
from etl.sources.inbox import InboxDocument

Rows = dict[str, list[dict[str, Any]] | Columns]


@dataclass
class Normalized:
    """What one item stages: its scrubbed raw payload or that payload's line (None: nothing to keep) and its rows per table."""

    raw: dict[str, Any] | bytes | None
    tables: Rows = field(default_factory=dict)


#: Payload types a staging worker may prepare (etl/stage/workers.py): their normalizers are registered here,
#: where the worker imports them, and they are the ones large enough to be worth pickling.
WORKER_PAYLOADS: tuple[type, ...] = (BuildBundle,)


@singledispatch
def normalize_payload(payload: Any, ctx: NormalizeContext, obj: str) -> Normalized:
    """Rows of one payload; register a function per payload type."""
    raise TypeError(f"no normalizer registered for payload type {type(payload).__name__}")


@normalize_payload.register
def _bundle(payload: BuildBundle, ctx: NormalizeContext, obj: str) -> Normalized:
    # Timelines kept as their bodies are read here, where they are normalized: from the bytes when both the
    # column path and raw staging can take them, else decoded.
    held = held_timelines(payload) if ctx.columns else None
    if held is None:
        payload = payload.unpacked()
    tables = normalize_bundle(ctx, payload, held)
    try:
        raw = raw_for_staging(ctx.scrubber, payload, held)  # scrubs the bundle in place: last
    except (TypeError, ValueError, RecursionError) as exc:
        # JSON no writer takes (nested past orjson's 255 levels, an integer past 64 bits): the build's rows
        # are read already, so they stage; only its raw line is missing, and the quarantine says why.
        ctx.quarantine(ctx.source, obj, "(raw payload)", f"not staged raw: {one_line(exc)}", _raw_of(payload))
        raw = None
    return Normalized(raw, tables)


@normalize_payload.register
def _document(payload: InboxDocument, ctx: NormalizeContext, obj: str) -> Normalized:
    body = payload.body
    raw = scrub_raw(ctx.scrubber, {"file": payload.path.name, "body": body})
    try:
        row, stages, samples = normalize_metrics_document(
            ctx, str(body["key"]), payload.file_name, body, None,
            project=body.get("project"), organization=body.get("organization"), obj=obj,
            observed_at=payload.modified)
    except MetricsDocumentError as exc:
        ctx.quarantine(ctx.source, obj, exc.field, exc.reason, body)
        return Normalized(raw)
    return Normalized(raw, {"BuildMetrics": [row], "BuildStages": stages, "MetricSamples": samples})


def normalize_item(ctx: NormalizeContext, item: Item) -> Normalized | None:
    """One item normalized; None when it was quarantined whole (the source could not read it, or normalizing failed)."""
    if item.reason is not None:
        ctx.quarantine(ctx.source, item.obj, item.field_name, item.reason, item.payload)
        return None
    try:
        normalized = normalize_payload(item.payload, ctx, item.obj)
        if normalized.tables.get("TimelineRecords"):  # pipeline usage, the same for every source
            records = normalized.tables["TimelineRecords"]
            normalized.tables["PipelineSteps"] = usage_rows(normalized.tables.get("TimelineBuilds", []), records,
                                                            ctx.ingested_at)
    except Exception as exc:  # one bad payload (deep nesting, a huge number, a bug) is quarantined alone
        ctx.quarantine(ctx.source, item.obj, "(payload)", f"normalizing failed: {one_line(exc)}", _raw(item))
        return None
    return normalized


def _raw(item: Item) -> Any:
    payload = item.payload
    return _raw_of(payload) if isinstance(payload, BuildBundle) else getattr(payload, "body", payload)


def _raw_of(bundle: BuildBundle) -> dict[str, Any]:
    # Timelines kept as bodies are quarantined decoded; one that does not decode (why normalizing failed,
    # maybe) is left out, and the reason says so.
    with contextlib.suppress(Exception):
        bundle = bundle.unpacked()
    return bundle.to_raw()
