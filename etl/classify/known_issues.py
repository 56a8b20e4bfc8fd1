"""Known issues: rules that recognise a documented problem in a build attempt's failure texts.

Rules live in `config/known-issues.yaml`. Each has an id, a title, a URL, a `match` (one of
`substring`, `regex` or `sequence` — lines that must appear in that order), an optional `scope`
(definition and branch globs) and a `mode`: `tracking` (count occurrences) or `explains` (the issue
explains the failure). They are matched against a build attempt's issue messages, failed test error
messages and uploaded failure reasons.

The `KnownIssueMatches` table is a ledger: one row per rule × build attempt, present or not, with the
rule's `RuleVersion` (a hash of its matching definition). Evaluation only visits attempts that have
no ledger row for the current version, so running it again changes nothing, and a new or edited
rule is back-applied to history on the next `ci-telemetry classify --rebuild`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from etl.classify.rules import RuleFileError, read_yaml
from etl.privacy import compile_re2
from etl.timeutil import utc_now

#: Ledger rows are written in batches of this many rows.
BATCH_ROWS = 5000
SAMPLE_CHARS = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KnownIssueMatch(_Strict):
    """Exactly one of substring, regex (RE2), sequence (substrings that must appear on lines in order)."""

    substring: str | None = None
    regex: str | None = None
    sequence: list[str] | None = Field(default=None, min_length=1)
    case_sensitive: bool = False

    @model_validator(mode="after")
    def _one(self) -> KnownIssueMatch:
        kinds = [k for k in ("substring", "regex", "sequence") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("match needs exactly one of substring, regex, sequence")
        return self


class KnownIssueScope(_Strict):
    """Where a rule applies: definition names and source/target branches as globs (empty: everywhere)."""

    definitions: list[str] = Field(default_factory=list)
    branches: list[str] = Field(default_factory=list)


class KnownIssue(_Strict):
    """One known issue."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    title: str
    url: str | None = None
    mode: Literal["tracking", "explains"] = "tracking"
    match: KnownIssueMatch
    scope: KnownIssueScope = Field(default_factory=KnownIssueScope)

    @property
    def version(self) -> str:
        """A hash of what decides matching (match, scope, mode); editing the title or URL keeps the ledger."""
        payload = json.dumps(
            {"match": self.match.model_dump(), "scope": self.scope.model_dump(), "mode": self.mode}, sort_keys=True
        )
        return hashlib.sha1(payload.encode()).hexdigest()[:16]


class KnownIssueFile(_Strict):
    version: int = 1
    issues: list[KnownIssue] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> KnownIssueFile:
        ids = [i.id for i in self.issues]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"known-issue id(s) used twice: {', '.join(sorted(dup))}")
        return self


@dataclass
class CompiledIssue:
    """A known issue ready to match texts."""

    issue: KnownIssue
    version: str
    _regex: Any = None
    _needles: tuple[str, ...] = ()

    def in_scope(self, definition: str | None, branches: Iterable[str | None]) -> bool:
        """Whether a build of *definition* on *branches* (source and target) is covered by the rule."""
        scope = self.issue.scope
        if scope.definitions and not any(fnmatch.fnmatchcase(definition or "", g) for g in scope.definitions):
            return False
        return not scope.branches or any(
            fnmatch.fnmatchcase(b or "", g) for b in branches if b for g in scope.branches
        )

    def _norm(self, text: str) -> str:
        return text if self.issue.match.case_sensitive else text.lower()

    def matches(self, text: str) -> bool:
        """Whether one text (a message) matches a substring or regex rule."""
        m = self.issue.match
        if self._regex is not None:
            return self._regex.search(text) is not None
        return self._norm(m.substring or "") in self._norm(text)

    def evaluate(self, texts: list[str]) -> tuple[bool, int, str | None]:
        """(present, match count, first matching text) over an attempt's texts, in order."""
        if self.issue.match.sequence is not None:
            return self._evaluate_sequence(texts)
        hits = [t for t in texts if t and self.matches(t)]
        return bool(hits), len(hits), hits[0] if hits else None

    def _evaluate_sequence(self, texts: list[str]) -> tuple[bool, int, str | None]:
        step, first = 0, None
        for text in texts:
            for line in (text or "").splitlines():
                if self._needles[step] in self._norm(line):
                    first = first or text
                    step += 1
                    if step == len(self._needles):
                        return True, 1, first
        return False, 0, None


def compile_issue(issue: KnownIssue, source: str) -> CompiledIssue:
    """Compile a rule; RuleFileError names the file and the rule when re2 rejects its regex."""
    compiled = CompiledIssue(issue, issue.version)
    m = issue.match
    if m.regex is not None:
        try:
            compiled._regex = compile_re2(m.regex if m.case_sensitive else f"(?i){m.regex}")
        except re2.error as exc:
            detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise RuleFileError(
                f"{source}: known issue {issue.id!r} match.regex {m.regex!r} is not valid RE2 syntax ({detail})"
            ) from None
    if m.sequence is not None:
        compiled._needles = tuple(s if m.case_sensitive else s.lower() for s in m.sequence)
    return compiled


def load_known_issues(path: Path) -> list[CompiledIssue]:
    """Read, validate and compile `known-issues.yaml`; RuleFileError names the file, the rule and the field."""
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise RuleFileError(f"{path}: expected a mapping with an `issues:` list at the top level")
    try:
        parsed = KnownIssueFile.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err["loc"]
            where = ".".join(str(p) for p in loc)
            if len(loc) >= 2 and loc[0] == "issues" and isinstance(loc[1], int):
                items = raw.get("issues") or []
                item = items[loc[1]] if loc[1] < len(items) else None
                name = item.get("id") if isinstance(item, dict) else None
                where = (f"known issue {name!r}" if name else f"issues[{loc[1]}]") + (
                    " " + ".".join(str(p) for p in loc[2:]) if loc[2:] else ""
                )
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            lines.append(f"{path}: {where}: {msg}")
        raise RuleFileError("\n".join(lines)) from None
    return [compile_issue(i, str(path)) for i in parsed.issues]


# --- evaluation over the warehouse -------------------------------------------------------------

_BUILDS = """declare query_parameters(since:datetime);
LatestTimelineBuilds | where QueueTime >= since
| project Organization, Project, BuildId, Attempts, DefinitionId, Definition, SourceBranch, TargetBranch, BuildKind,
    QueueTime, FinishTime"""
_ISSUE_TEXTS = """declare query_parameters(since:datetime);
LatestTimelineIssues | where QueueTime >= since and isnotempty(Message)
| project Organization, Project, BuildId, Attempt, RecordId, IssueIndex, Text = Message"""
_TEST_TEXTS = """declare query_parameters(since:datetime);
LatestTestResults | where QueueTime >= since and isnotempty(ErrorMessage)
| project Organization, Project, BuildId, Attempt, RunId, ResultId, Text = ErrorMessage"""
_UPLOAD_TEXTS = """declare query_parameters(since:datetime);
LatestBuildMetrics | where QueueTime >= since and isnotempty(FailureReason)
| project Organization, Project, BuildId, Key, Text = FailureReason"""
_LEDGER = """declare query_parameters(since:datetime);
LatestKnownIssueMatches | where QueueTime >= since
| project RuleId, RuleVersion, Organization, Project, BuildId, Attempt"""


@dataclass
class KnownIssueOutcome:
    """What one evaluation did, per rule: attempts evaluated and attempts where the issue was present."""

    evaluated: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.evaluated.values())


def _value(v: Any) -> Any:
    """A missing value (None, or NaN/NaT from a DataFrame-backed store) as None."""
    try:
        return None if v is None or v != v else v
    except (TypeError, ValueError):  # a value that does not compare to itself as a bool
        return v


def attempt_texts(warehouse: Any, since: datetime) -> tuple[list[dict[str, Any]], dict[tuple, list[str]]]:
    """Build attempts in range and each attempt's failure texts in a stable order."""
    params = {"since": since}
    # Rows as dicts, not DataFrames: the ETL evaluates every batch it loads, and need not load pandas.
    builds = warehouse.query_rows(_BUILDS, params)
    texts: dict[tuple, list[tuple]] = defaultdict(list)
    latest: dict[tuple, int] = {}
    for b in builds:
        latest[(b["Organization"], b["Project"], int(b["BuildId"]))] = int(_value(b["Attempts"]) or 1)
    for r in warehouse.query_rows(_ISSUE_TEXTS, params):
        key = (r["Organization"], r["Project"], int(r["BuildId"]), int(_value(r["Attempt"]) or 1))
        texts[key].append((0, str(r["RecordId"]), int(_value(r["IssueIndex"]) or 0), r["Text"]))
    for r in warehouse.query_rows(_TEST_TEXTS, params):
        key = (r["Organization"], r["Project"], int(r["BuildId"]), int(_value(r["Attempt"]) or 1))
        texts[key].append((1, str(r["RunId"]), int(r["ResultId"]), r["Text"]))
    for r in warehouse.query_rows(_UPLOAD_TEXTS, params):
        build = (r["Organization"], r["Project"], int(_value(r["BuildId"]) or 0))
        # Uploaded documents carry no attempt: they describe the build's final attempt.
        key = (*build, latest.get(build, 1))
        texts[key].append((2, str(r["Key"]), 0, r["Text"]))
    ordered = {k: [t[3] for t in sorted(v, key=lambda t: t[:3])] for k, v in texts.items()}
    return builds, ordered


def evaluate_known_issues(
    warehouse: Any, issues: list[CompiledIssue], since: datetime, *, now: datetime | None = None, dry_run: bool = False,
    builds: Collection[tuple[str, str, int]] | None = None, tag: str = "known-issues",
) -> KnownIssueOutcome:
    """Write a ledger row for every (rule, build attempt) in range whose rule version has none yet.

    *builds* limits the evaluation to those (organization, project, build id): the ETL evaluates the
    builds of each batch it loads, and only once all of that batch's texts are in the store.
    """
    now = now or utc_now()
    outcome = KnownIssueOutcome({i.issue.id: 0 for i in issues}, {i.issue.id: 0 for i in issues})
    if not issues:
        return outcome
    found, texts = attempt_texts(warehouse, since)
    wanted = None if builds is None else set(builds)
    builds_in_range = [b for b in found
                       if wanted is None or (b["Organization"], b["Project"], int(b["BuildId"])) in wanted]
    done = {
        (r["RuleId"], r["RuleVersion"], r["Organization"], r["Project"], int(r["BuildId"]), int(r["Attempt"]))
        for r in warehouse.query_rows(_LEDGER, {"since": since})
    }
    attempts_seen: dict[tuple, set[int]] = defaultdict(set)
    for key in texts:
        attempts_seen[key[:3]].add(key[3])
    pending: list[dict[str, Any]] = []
    written = 0
    for b in builds_in_range:
        build = (b["Organization"], b["Project"], int(b["BuildId"]))
        attempts = set(range(1, int(_value(b["Attempts"]) or 1) + 1)) | attempts_seen.get(build, set())
        branches = (_value(b["SourceBranch"]), _value(b["TargetBranch"]))
        for rule in issues:
            if not rule.in_scope(_value(b["Definition"]), branches):
                continue
            for attempt in sorted(attempts):
                if (rule.issue.id, rule.version, *build, attempt) in done:
                    continue
                present, count, sample = rule.evaluate(texts.get((*build, attempt), []))
                outcome.evaluated[rule.issue.id] += 1
                outcome.present[rule.issue.id] += int(present)
                pending.append(_ledger_row(rule, b, attempt, present, count, sample, now))
                if len(pending) >= BATCH_ROWS and not dry_run:
                    written += _flush(warehouse, pending, now, written, tag)
    if pending and not dry_run:
        _flush(warehouse, pending, now, written, tag)
    return outcome


def _flush(warehouse: Any, rows: list[dict[str, Any]], now: datetime, offset: int, tag: str) -> int:
    count = len(rows)
    warehouse.ingest("KnownIssueMatches", list(rows), f"{tag}-{now:%Y%m%dT%H%M%S}-{offset}")
    rows.clear()
    return count


def _ledger_row(
    rule: CompiledIssue, build: Mapping[str, Any], attempt: int, present: bool, count: int, sample: str | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "RuleId": rule.issue.id,
        "RuleVersion": rule.version,
        "Organization": build["Organization"],
        "Project": build["Project"],
        "BuildId": int(build["BuildId"]),
        "Attempt": attempt,
        "Present": present,
        "Mode": rule.issue.mode,
        "MatchCount": count,
        "SampleMessage": sample[:SAMPLE_CHARS] if sample else None,
        "FinishTime": _value(build.get("FinishTime")),
        "EvaluatedAt": now,
        "DefinitionId": _value(build.get("DefinitionId")),
        "Definition": _value(build.get("Definition")),
        "SourceBranch": _value(build.get("SourceBranch")),
        "TargetBranch": _value(build.get("TargetBranch")),
        "BuildKind": _value(build.get("BuildKind")),
        "QueueTime": _value(build.get("QueueTime")),
        "IngestedAt": now,
    }


def known_issues_for(settings: Any) -> list[CompiledIssue]:
    """The configured known issues (an absent file means none)."""
    from etl.classify import DEFAULT_RULES, configured_path

    shipped = DEFAULT_RULES.parent / "known-issues.yaml"
    path = configured_path(settings, settings.classification.known_issues, shipped)
    return load_known_issues(path)
