"""Builds and their timelines → TimelineBuilds, TimelineRecords and TimelineIssues rows.

A record is one execution: keyed by (RecordId, Attempt), it appears once however many timelines
(latest and previous attempts) list it. Its `Path` is the dotted, zero-padded `order` of every
ancestor from the root (`0001.0002.0003`), built across all timelines of the build because a
previous-attempt timeline may be a partial patch without its root records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from etl.classify import signature
from etl.normalize.context import NormalizeContext, describe_validation_error, validated_list, validated_time
from etl.sources.azure_devops.models import TIMELINE_RECORDS, Build, TimelineRecord
from etl.timeutil import to_utc_naive

_KINDS = {
    "pullrequest": "PullRequest",
    "individualci": "Rolling",
    "batchedci": "Rolling",
    "schedule": "Scheduled",
    "manual": "Manual",
}
#: Results of a record that failed (its failure columns are filled even without an error issue).
FAILED_RESULTS = frozenset({"failed", "canceled", "abandoned"})


def build_kind(reason: str | None) -> str:
    """PullRequest, Rolling (CI), Scheduled, Manual or Other, from a build's `reason`."""
    return _KINDS.get((reason or "").lower(), "Other")


def _branch(value: Any) -> str | None:
    if not value:
        return None
    text = str(value)
    return text if text.startswith("refs/") else f"refs/heads/{text}"


def pull_request(build: Build) -> tuple[str | None, int | None]:
    """(TargetBranch, PullRequestNumber) from the build's parameters JSON or its triggerInfo."""
    params: dict[str, Any] = {}
    if build.parameters:
        try:
            loaded = json.loads(build.parameters)
            params = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            params = {}
    trig = build.triggerInfo or {}
    target = params.get("system.pullRequest.targetBranch") or trig.get("pr.targetBranch")
    number: Any = params.get("system.pullRequest.pullRequestNumber") or trig.get("pr.number")
    branch = build.sourceBranch or ""
    if number is None and branch.startswith("refs/pull/"):
        number = branch.split("/")[2]
    try:
        pr = int(number) if number not in (None, "") else None
    except (TypeError, ValueError):
        pr = None
    if build_kind(build.reason) != "PullRequest" and not target:
        # A rolling/manual/scheduled build "targets" the branch it built: one filter column for all kinds.
        return _branch(build.sourceBranch), pr
    return _branch(target), pr


def definition_name(build: Build) -> str | None:
    """`path\\name` with the root folder omitted (`ci\\main`, or `main` at the root)."""
    if build.definition is None:
        return None
    folder = (build.definition.path or "").strip("\\")
    return f"{folder}\\{build.definition.name}" if folder else build.definition.name


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def utc(value: datetime | None) -> datetime | None:
    """A parsed time as the stores keep it (naive UTC): rows carry datetimes from parse to load, not text."""
    return to_utc_naive(value) if value is not None else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


@dataclass
class BuildFacts:
    """The build's values every fact row of it carries (denormalized filter columns)."""

    organization: str
    project: str
    build_id: int
    source_version: str | None
    filters: dict[str, Any]
    finish_time: datetime | None


def normalize_build(ctx: NormalizeContext, project: str, raw: dict[str, Any]) -> tuple[dict[str, Any], BuildFacts]:
    """One TimelineBuilds row and the facts its other rows denormalize; raises ValidationError."""
    build = Build.model_validate(raw)
    target, pr = pull_request(build)
    kind = build_kind(build.reason)
    definition = definition_name(build)
    filters = {
        "DefinitionId": build.definition.id if build.definition else None,
        "Definition": definition,
        "SourceBranch": build.sourceBranch,
        "TargetBranch": target,
        "BuildKind": kind,
        "QueueTime": utc(build.queueTime),
    }
    requested = build.requestedFor.uniqueName or build.requestedFor.displayName if build.requestedFor else None
    row = {
        "System": "azure_devops",
        "Organization": ctx.organization,
        "Project": project,
        "BuildId": build.id,
        "BuildNumber": build.buildNumber,
        "DefinitionId": filters["DefinitionId"],
        "Definition": definition,
        "Repository": build.repository.name if build.repository else None,
        "Reason": build.reason,
        "BuildKind": kind,
        "Status": build.status,
        "Result": build.result,
        "QueueTime": filters["QueueTime"],
        "StartTime": utc(build.startTime),
        "FinishTime": utc(build.finishTime),
        "QueueSeconds": _seconds(build.queueTime, build.startTime),
        "DurationSeconds": _seconds(build.startTime, build.finishTime),
        "SourceBranch": build.sourceBranch,
        "TargetBranch": target,
        "PullRequestNumber": pr,
        "SourceVersion": build.sourceVersion,
        "RequestedFor": requested,
        "QueueName": build.queue.name if build.queue else None,
        "Tags": json.dumps(sorted(build.tags)),
        "Attempts": 1,
        "LastChangedDate": utc(build.lastChangedDate),
        "Url": build.web_url,
        "IngestedAt": ctx.ingested_at,
    }
    facts = BuildFacts(ctx.organization, project, build.id, build.sourceVersion, filters, build.finishTime)
    return row, facts


def validation_issue_rows(ctx: NormalizeContext, facts: BuildFacts, raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Build validation results as TimelineIssues rows (RecordId "", Category ValidationResult)."""
    rows = []
    for index, item in enumerate(raw.get("validationResults") or []):
        if not isinstance(item, dict):
            continue
        message = item.get("message")
        kind = (item.get("result") or "").lower() or None
        row = _issue_base(ctx, facts, "", 1, index, None, "", None, None, None)
        row.update({"Type": kind, "Category": "ValidationResult", "Message": message})
        _classify_issue(ctx, row, message, kind, None, None, "failed")
        rows.append(row)
    return rows


def _issue_base(ctx: NormalizeContext, facts: BuildFacts, record_id: str, attempt: int, index: int,
                timeline_id: str | None, path: str, name: str | None, rtype: str | None,
                task: str | None) -> dict[str, Any]:
    return {
        "Organization": facts.organization,
        "Project": facts.project,
        "BuildId": facts.build_id,
        "RecordId": record_id,
        "Attempt": attempt,
        "IssueIndex": index,
        "TimelineId": timeline_id,
        "Path": path,
        "RecordName": name,
        "RecordType": rtype,
        "TaskName": task,
        **facts.filters,
        "IngestedAt": ctx.ingested_at,
    }


def _classify_issue(ctx: NormalizeContext, row: dict[str, Any], message: str | None, kind: str | None,
                    task: str | None, record: str | None, result: str | None, exit_code: str | None = None) -> None:
    # Classification reads redacted text (the stored columns get theirs from FIELD_POLICY as they are
    # staged), so signatures and rule matches do not vary with the secrets inside a message.
    message, record = ctx.scrubber.redact(message), ctx.scrubber.redact(record)
    if kind == "error":
        c = ctx.classifier.classify(message=message, task_name=task, record_name=record, result=result,
                                    exit_code=exit_code)
        row.update({"Bucket": c.bucket, "FailureCategory": c.category, "FailureOrigin": c.origin,
                    "RuleId": c.rule_id, "Signature": c.signature})
    else:
        row["Signature"] = signature(message)


def name_masker(pseudonymize: Callable[[str], str | None], names: set[str | None]) -> Callable[[Any], Any]:
    """Replaces the build's agent names inside texts with their pseudonyms (tool output often prints them)."""
    known = sorted({n for n in names if n and len(n) >= 3}, key=len, reverse=True)
    if not known:
        return lambda value: value
    pattern = re.compile("|".join(re.escape(n) for n in known), re.IGNORECASE)

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(lambda m: pseudonymize(m.group(0)) or "", value)
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    return mask


def record_paths(records: Iterable[tuple[str, str | None, int | None]]) -> dict[str, str]:
    """Dotted zero-padded order path of every record id, from its (id, parentId, order) and the highest known ancestor."""
    parent = {}
    order = {}
    for rid, parent_id, rank in records:
        if rid not in parent:  # the latest timeline (listed first) wins
            parent[rid] = parent_id
            order[rid] = rank or 0
    paths: dict[str, str] = {}

    def path(rid: str) -> str:
        chain = []
        cur: str | None = rid
        seen = set()
        while cur is not None and cur in order and cur not in seen:
            if cur in paths:
                chain.append(paths[cur])
                break
            seen.add(cur)
            chain.append(f"{order[cur]:04d}")
            cur = parent[cur]
        text = ".".join(reversed(chain))
        paths[rid] = text
        return text

    for rid in order:
        if rid not in paths:
            # Most records come after their parent: its path is known, so the walk up is one step.
            up = parent[rid]
            if up in paths:
                paths[rid] = f"{paths[up]}.{order[rid]:04d}"
            else:
                path(rid)
    return paths


#: An absent task or log reference, read as the model's None for each of its fields.
_NO_REF: dict[str, Any] = {"id": None, "name": None, "version": None, "url": None}


def _model_record(ctx: NormalizeContext, facts: BuildFacts, raw: Any) -> dict[str, Any] | None:
    """One record read by the `TimelineRecord` model (the reference), or None once it is quarantined.

    Its dict has every field, as the rows read a record `TIMELINE_RECORDS` accepted.
    """
    try:
        return TimelineRecord.model_validate(raw).model_dump(exclude={"previousAttempts"})
    except ValidationError as exc:
        field, reason = describe_validation_error(exc)
        rid = raw.get("id") if isinstance(raw, dict) else None
        ctx.quarantine(ctx.source, f"build {facts.build_id} timeline record {rid}", field, reason, raw)
        return None


def validated_records(ctx: NormalizeContext, facts: BuildFacts, records: Any) -> list[dict[str, Any]]:
    """A timeline's records as validated dicts of `TimelineRecord`'s fields, in order; the unreadable ones quarantined.

    Read them as `normalize_timelines` does: `attempt` "" or None is 1, a time that is not a datetime
    is None, `issues` that is not a list is empty.

    The whole list is validated in one core call (no model per record); only the records it rejects go
    through the model (`validated_list`).
    """
    if not records:
        return []
    return validated_list(TIMELINE_RECORDS, records, lambda raw: _model_record(ctx, facts, raw))


def normalize_timelines(
    ctx: NormalizeContext, facts: BuildFacts, timelines: list[tuple[str | None, list[dict[str, Any]]]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(TimelineRecords rows, TimelineIssues rows, max attempt) from the latest timeline first, then previous ones.

    A record that fails validation is quarantined and skipped; the others load.
    """
    parsed: list[tuple[str | None, dict[str, Any]]] = [
        (timeline_id, record) for timeline_id, records in timelines
        for record in validated_records(ctx, facts, records)
    ]
    paths = record_paths((r["id"], r["parentId"], r["order"]) for _, r in parsed)
    record_rows: list[dict[str, Any]] = []
    issue_rows: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    max_attempt = 1
    scrub = ctx.scrubber
    mask_names = name_masker(scrub.pseudonymize, {r["workerName"] for _, r in parsed})
    # The build's values every row repeats, looked up once (thousands of records a build).
    organization, project, build_id, filters = facts.organization, facts.project, facts.build_id, facts.filters
    ingested_at = ctx.ingested_at
    # Names, identifiers and result codes repeat across the jobs of a build; the scrubber is deterministic.
    for timeline_id, rec in parsed:
        rid, attempt = rec["id"], rec["attempt"]
        if attempt is None or attempt == "":
            attempt = 1
        key = (rid, attempt)
        if key in seen:
            continue
        seen.add(key)
        max_attempt = max(max_attempt, attempt)
        path = paths.get(rid, "")
        task = rec["task"] or _NO_REF
        log = rec["log"] or _NO_REF
        task_name = task["name"]
        name = rec["name"]
        rtype = rec["type"]
        result = rec["result"]
        # Naive UTC first, then the duration: a naive and an aware time in one record cannot be subtracted.
        start, finish = utc(validated_time(rec["startTime"])), utc(validated_time(rec["finishTime"]))
        row = {
            "Organization": organization,
            "Project": project,
            "BuildId": build_id,
            "RecordId": rid,
            "Attempt": attempt,
            "TimelineId": timeline_id,
            "ParentId": rec["parentId"],
            "Type": rtype,
            "Name": name,
            "Identifier": rec["identifier"],
            "Path": path,
            "RecordOrder": rec["order"],
            "State": rec["state"],
            "Result": result,
            "ResultCode": rec["resultCode"],
            "StartTime": start,
            "FinishTime": finish,
            "DurationSeconds": _seconds(start, finish),
            "WorkerName": rec["workerName"],
            "QueueId": rec["queueId"],
            "TaskId": task["id"],
            "TaskName": task_name,
            "TaskVersion": task["version"],
            "ErrorCount": rec["errorCount"],
            "WarningCount": rec["warningCount"],
            "LogId": log["id"],
            "LogUrl": log["url"],
            "ChangeId": rec["changeId"],
            "LastModified": utc(validated_time(rec["lastModified"])),
            **filters,
            "IngestedAt": ingested_at,
        }
        issues = rec["issues"]
        if issues or (result or "").lower() in FAILED_RESULTS:
            found, failure = record_issues(
                ctx, facts, RecordAt(rid, attempt, timeline_id, path, name, rtype, task_name, result, rec["resultCode"]),
                [(i["type"], i["category"], i["message"], i["data"]) for i in issues or ()], mask_names)
            issue_rows.extend(found)
            row.update(failure)
        record_rows.append(row)
    return record_rows, issue_rows, max_attempt


@dataclass
class RecordAt:
    """What a record's issue rows and failure columns read of it."""

    record_id: str
    attempt: int
    timeline_id: str | None
    path: str
    name: str | None
    type: str | None
    task_name: str | None
    result: str | None
    result_code: str | None


#: An issue as `record_issues` reads it: (type, category, message, data).
IssueFields = tuple[str | None, str | None, str | None, dict[str, Any] | None]


def record_issues(ctx: NormalizeContext, facts: BuildFacts, rec: RecordAt, issues: list[IssueFields],
                  mask_names: Callable[[Any], Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(TimelineIssues rows, the record's FailureCategory/FailureOrigin/Signature) of one record.

    The failure columns come from its first error, else, for a failed record, from its task, name and
    result code; they are empty for a record that neither failed nor logged an error.
    """
    rows = []
    first_error = None
    for index, (itype, category, text, raw_data) in enumerate(issues):
        message = mask_names(text)
        kind = (itype or "").lower() or None
        data = mask_names(raw_data or {})
        line = data.get("logFileLineNumber")
        try:
            log_line = int(line) if line not in (None, "") else None
        except (TypeError, ValueError):
            log_line = None
        irow = _issue_base(ctx, facts, rec.record_id, rec.attempt, index, rec.timeline_id, rec.path, rec.name,
                           rec.type, rec.task_name)
        irow.update({
            "Type": kind,
            "Category": category,
            "Message": message,
            "LogLine": log_line,
            "Data": json.dumps(data, sort_keys=True, default=str) if raw_data is not None else None,
        })
        _classify_issue(ctx, irow, message, kind, rec.task_name, rec.name, rec.result, data.get("code"))
        if kind == "error" and first_error is None:
            first_error = irow
        rows.append(irow)
    if first_error is not None:
        return rows, {k: first_error.get(k) for k in ("FailureCategory", "FailureOrigin", "Signature")}
    if (rec.result or "").lower() in FAILED_RESULTS:
        scrub = ctx.scrubber
        c = ctx.classifier.classify(task_name=rec.task_name, record_name=scrub.redact(rec.name), result=rec.result,
                                    message=scrub.redact(mask_names(rec.result_code)))
        return rows, {"FailureCategory": c.category, "FailureOrigin": c.origin, "Signature": c.signature}
    return rows, {}
