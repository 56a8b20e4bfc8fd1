"""An inbox JUnit report → TestRuns and TestResults rows of the build its file name gives.

The inbox knows the build only by its name (`<project>--<build id>--<report>.xml`): no definition, branch
or commit, so those filter columns stay empty. `QueueTime`, which the period queries select by, is the
report's start (its earliest suite timestamp), else the file's modification time: the inbox never learns
when the build was queued. Parsing is bounded and never raises for bad content (`read_junit`): a file it
cannot read is quarantined with one line and gives no rows; the rest of the inbox loads.

The normalizer registers itself for `InboxJUnit` payloads beside its reader, when `open_inbox` imports
this module (as the Jenkins source does for its payloads).
"""

from __future__ import annotations

from typing import Any

from etl.normalize.batch import Normalized, normalize_payload
from etl.normalize.builds import BuildFacts
from etl.normalize.context import NormalizeContext
from etl.normalize.junit import read_junit
from etl.privacy import scrub_payload
from etl.sources.inbox import InboxJUnit

_FILTERS = ("DefinitionId", "Definition", "SourceBranch", "TargetBranch", "BuildKind", "QueueTime")


def normalize_inbox_junit(ctx: NormalizeContext, payload: InboxJUnit,
                          obj: str) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """(raw payload to stage, rows per table) of one inbox JUnit file; *obj* names it in quarantine lines."""
    facts = BuildFacts(payload.organization, payload.project, payload.build_id, None, dict.fromkeys(_FILTERS), None)
    runs, results = read_junit(ctx, facts, payload.data, name=obj, key=payload.key)
    if runs:
        queued = runs[0]["StartedDate"] or payload.modified.isoformat()
        for row in (*runs, *results):
            row["QueueTime"] = queued
    return scrub_payload(ctx.scrubber, payload.body), {"TestRuns": runs, "TestResults": results}


def _normalize(payload: InboxJUnit, ctx: NormalizeContext, obj: str) -> Normalized:
    return Normalized(*normalize_inbox_junit(ctx, payload, obj))


normalize_payload.register(InboxJUnit, _normalize)
