"""TimelineRecords rows built column by column: the fast path of `normalize_timelines`, for staging.

A build has about 2,000 timeline records. Validating them with pydantic, building a dict per row and
converting the dicts to Arrow cost about 20 µs a record (docs/benchmarks.md). Here msgspec checks a
timeline's records against `Struct`s in one call (strict: exact JSON types, nothing coerced), the
times are parsed by Arrow a column at a time, and the rows go to staging as `Columns`.

It takes only the shapes it reads exactly as the reference does, and answers None for anything else:
a value of another type (a number as text, a float attempt, a PowerShell-serialized task), a time
that is not `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (or the "never" placeholder), or records that are not
a list. The caller then normalizes the build with `normalize_timelines`, which reads those variants
and quarantines a bad record with the model's reason. Whatever this accepts, `TIMELINE_RECORDS`
accepts too, with the same values; tests/normalize/test_timeline_columns.py checks the two give the
same staged tables on the real samples and on variants of them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from etl.columns import Columns
from etl.normalize.builds import FAILED_RESULTS, BuildFacts, RecordAt, name_masker, record_issues, record_paths
from etl.normalize.context import NormalizeContext
from etl.schema import INTEGER_RANGES

_Long = Annotated[int, msgspec.Meta(ge=INTEGER_RANGES["long"][0], le=INTEGER_RANGES["long"][1])]
_Int32 = Annotated[int, msgspec.Meta(ge=INTEGER_RANGES["int"][0], le=INTEGER_RANGES["int"][1])]
#: At least 1, as `TIMELINE_RECORDS` takes an attempt without the model's help.
_Attempt = Annotated[int, msgspec.Meta(ge=1, le=INTEGER_RANGES["int"][1])]


class _Previous(msgspec.Struct):
    attempt: int
    timelineId: str | None = None
    recordId: str | None = None


class _Issue(msgspec.Struct):
    type: str | None = None
    category: str | None = None
    message: str | None = None
    data: dict[str, Any] | None = None


class _Task(msgspec.Struct):
    id: str | None = None
    name: str | None = None
    version: str | None = None


class _Log(msgspec.Struct):
    id: _Long | None = None
    url: str | None = None


class _Record(msgspec.Struct):
    """The fields `TimelineRecordData` declares, each of its exact JSON type; every other field ignored."""

    id: str
    parentId: str | None = None
    type: str | None = None
    name: str | None = None
    identifier: str | None = None
    order: _Long | None = None
    state: str | None = None
    result: str | None = None
    resultCode: str | None = None
    startTime: str | None = None
    finishTime: str | None = None
    lastModified: str | None = None
    workerName: str | None = None
    queueId: _Long | None = None
    changeId: _Long | None = None
    errorCount: _Int32 | None = None
    warningCount: _Int32 | None = None
    attempt: _Attempt | None = 1
    # Read only to refuse what the model would (junk inside the list quarantines the record there).
    previousAttempts: list[_Previous] | Literal[""] | None = None
    task: _Task | None = None
    log: _Log | None = None
    issues: list[_Issue] | Literal[""] | None = None


_NO_TASK, _NO_LOG = _Task(), _Log()

#: A time both pydantic and Arrow read, to the same microsecond, once its fraction is cut to 6 digits
#: (pydantic truncates, it does not round): UTC, with every field in range. Year 0000 is no datetime.
_CANONICAL_TIME = (r"^(?:000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d{3})-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
                   r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?Z$")


def _times(pa: Any, pc: Any, values: list[str | None]) -> Any:
    """Texts as naive UTC timestamps (Arrow), "never" (`0001-01-01…`, "") as null; None when one is not canonical."""
    text = pa.array(values, pa.string())
    never = pc.or_(pc.starts_with(text, "0001-01-01"), pc.equal(text, ""))
    text = pc.if_else(never, pa.scalar(None, pa.string()), text)
    text = pc.replace_substring_regex(text, r"^(.{19}\.\d{6})\d+Z$", r"\1Z")
    if pc.all(pc.match_substring_regex(text, _CANONICAL_TIME)).as_py() is False:
        return None
    try:
        return pc.cast(text, pa.timestamp("us", "UTC")).cast(pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # a day past its month's end
        return None


Parsed = list[tuple[str | None, list[_Record]]]


class _Body(msgspec.Struct):
    records: list[_Record] | None = None


class _HeldBody(msgspec.Struct):
    records: list[msgspec.Raw] | None = None


_BODY, _HELD_BODY = msgspec.json.Decoder(_Body), msgspec.json.Decoder(_HeldBody)


def parsed_body(content: bytes) -> tuple[list[_Record], list[msgspec.Raw]] | None:
    """A timeline body's records checked (`_Record`) and each record's bytes; None when one needs the reference
    path, or the body is not UTF-8 throughout (msgspec does not check the values it skips)."""
    try:
        records = _BODY.decode(content).records or []
        held = _HELD_BODY.decode(content).records or []
        if not content.isascii():
            content.decode()
    except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError):
        return None
    return records, held


def parsed_timelines(timelines: list[tuple[str | None, Any]]) -> Parsed | None:
    """Decoded timelines' records checked against `_Record`; None when some record needs the reference path."""
    try:
        parsed = [(timeline_id, msgspec.convert(records, list[_Record]) if records else [])
                  for timeline_id, records in timelines
                  if not records or type(records) is list]
    except msgspec.ValidationError:
        return None
    if len(parsed) != len(timelines):
        return None  # records that are not a list (an object, a text): the reference quarantines them
    return parsed


def timeline_record_columns(ctx: NormalizeContext, facts: BuildFacts,
                     timelines: list[tuple[str | None, Any]]) -> tuple[Columns | list[Any], list[dict[str, Any]], int] | None:
    """`normalize_timelines`' (TimelineRecords rows, TimelineIssues rows, max attempt), its records as `Columns`;
    None when some record needs the reference path."""
    parsed = parsed_timelines(timelines)
    return None if parsed is None else record_columns(ctx, facts, parsed)


def record_columns(ctx: NormalizeContext, facts: BuildFacts,
                   parsed: Parsed) -> tuple[Columns | list[Any], list[dict[str, Any]], int] | None:
    """`timeline_record_columns` of timelines whose records are checked already (`parsed_timelines`, `parsed_body`)."""
    import pyarrow as pa  # imported here, once a build: not by every command that imports the normalizers
    import pyarrow.compute as pc

    flat = [(timeline_id, r) for timeline_id, records in parsed for r in records]
    kept: list[_Record] = []
    timeline_ids: list[str | None] = []
    attempts: list[int] = []
    seen: set[tuple[str, int]] = set()
    for timeline_id, r in flat:
        attempt = 1 if r.attempt is None else r.attempt
        key = (r.id, attempt)
        if key not in seen:
            seen.add(key)
            kept.append(r)
            timeline_ids.append(timeline_id)
            attempts.append(attempt)
    if not kept:
        return [], [], 1
    n = len(kept)
    # The three time columns parsed as one array: Arrow's per-call cost is most of a build's parsing.
    times = _times(pa, pc, [r.startTime for r in kept] + [r.finishTime for r in kept] + [r.lastModified for r in kept])
    if times is None:
        return None
    start, finish, modified = times.slice(0, n), times.slice(n, n), times.slice(2 * n, n)
    # Everything that can refuse the build is behind: from here on the scrubber and classifier are used.
    paths = record_paths((r.id, r.parentId, r.order) for _, r in flat)
    mask_names = name_masker(ctx.scrubber.pseudonymize, {r.workerName for _, r in flat})
    ids = [r.id for r in kept]
    path = [paths.get(rid, "") for rid in ids]
    tasks = [r.task or _NO_TASK for r in kept]
    logs = [r.log or _NO_LOG for r in kept]
    failure: dict[str, list[Any]] = {c: [None] * n for c in ("FailureCategory", "FailureOrigin", "Signature")}
    issue_rows: list[dict[str, Any]] = []
    for i, r in enumerate(kept):
        if r.issues or (r.result or "").lower() in FAILED_RESULTS:
            at = RecordAt(r.id, attempts[i], timeline_ids[i], path[i], r.name, r.type, tasks[i].name, r.result,
                          r.resultCode)
            found, columns = record_issues(ctx, facts, at, [(x.type, x.category, x.message, x.data)
                                                            for x in r.issues or ()], mask_names)
            issue_rows.extend(found)
            for column, value in columns.items():
                failure[column][i] = value
    durations = pc.subtract(finish, start).cast("int64").to_pylist()
    data: dict[str, Any] = {
        "Organization": [facts.organization] * n,
        "Project": [facts.project] * n,
        "BuildId": [facts.build_id] * n,
        "RecordId": ids,
        "Attempt": attempts,
        "TimelineId": timeline_ids,
        "ParentId": [r.parentId for r in kept],
        "Type": [r.type for r in kept],
        "Name": [r.name for r in kept],
        "Identifier": [r.identifier for r in kept],
        "Path": path,
        "RecordOrder": [r.order for r in kept],
        "State": [r.state for r in kept],
        "Result": [r.result for r in kept],
        "ResultCode": [r.resultCode for r in kept],
        "StartTime": start,
        "FinishTime": finish,
        # As `timedelta.total_seconds()` then `round(…, 3)`: the same float, value for value.
        "DurationSeconds": [None if d is None else round(d / 10**6, 3) for d in durations],
        "WorkerName": [r.workerName for r in kept],
        "QueueId": [r.queueId for r in kept],
        "TaskId": [t.id for t in tasks],
        "TaskName": [t.name for t in tasks],
        "TaskVersion": [t.version for t in tasks],
        "ErrorCount": [r.errorCount for r in kept],
        "WarningCount": [r.warningCount for r in kept],
        "LogId": [log.id for log in logs],
        "LogUrl": [log.url for log in logs],
        "ChangeId": [r.changeId for r in kept],
        "LastModified": modified,
        **failure,
        **{column: [value] * n for column, value in facts.filters.items()},
        "IngestedAt": [ctx.ingested_at] * n,
    }
    return Columns(data, n), issue_rows, max(attempts)
