"""JUnit / xUnit XML reports → TestRuns and TestResults rows.

One report file is one test run. Nested `<testsuite>` elements are flattened; every `<testcase>`
becomes a result (passed, failed, error, skipped), so rates have denominators. Maven Surefire's
`<flakyFailure>`/`<flakyError>` (and `<rerunFailure>`/`<rerunError>` on a test whose final outcome
passed) mark a result PassedOnRerun. `<system-out>`/`<system-err>` are ignored: they hold logs,
not outcomes, and are where secrets leak.

The parser is bounded because report files come from builds, i.e. from anyone who can open a pull
request: a byte limit before parsing, DTDs and entities refused by defusedxml (no billion laughs, no
external entities), a depth and an element-count limit checked while parsing, and every number
checked (finite, not negative, bounded). A problem is a `JUnitError` whose text is one line naming
the source, the object and the field.
"""

from __future__ import annotations

import hashlib
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from etl.normalize.builds import BuildFacts
from etl.normalize.context import NormalizeContext
from etl.normalize.testruns import result_row, run_row

MAX_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64
MAX_ELEMENTS = 2_000_000
#: A single test or suite longer than 30 days is a corrupt number, not a measurement.
MAX_SECONDS = 30 * 24 * 3600.0
#: How much of a rejected document or attribute the quarantine keeps.
MAX_QUARANTINED_CHARS = 64 * 1024

_RERUN_TAGS = {"flakyFailure", "flakyError", "rerunFailure", "rerunError"}


class JUnitError(ValueError):
    """A report (or one of its test cases) that cannot be read; str() is the one-line error."""

    def __init__(self, source: str, obj: str, field_name: str, reason: str, payload: Any = None) -> None:
        self.source, self.obj, self.field, self.reason = source, obj, field_name, reason
        #: what the quarantine keeps: the offending element's attributes (the document for a file error)
        self.payload = payload
        # The quarantine's own line format, so the error reads the same in the log and in the run summary.
        super().__init__(f"{source} {obj}: field {field_name}: {reason}")


@dataclass
class JUnitCase:
    """One `<testcase>` as read: its outcome in Azure DevOps' vocabulary and its rerun history."""

    suite: str
    classname: str | None
    name: str
    file: str | None
    outcome: str
    duration_ms: float | None
    message: str | None
    reruns: int
    passed_on_rerun: bool

    @property
    def test_name(self) -> str:
        """`classname.name`, the fully qualified name Azure DevOps calls automatedTestName."""
        return f"{self.classname}.{self.name}" if self.classname else self.name


@dataclass
class JUnitReport:
    """A parsed report: its cases, when it started (if a suite says), and the cases that could not be read."""

    name: str
    cases: list[JUnitCase] = field(default_factory=list)
    started: datetime | None = None
    seconds: float | None = None
    errors: list[JUnitError] = field(default_factory=list)


def parse_seconds(text: str | None, source: str, obj: str) -> float | None:
    """A `time` attribute in seconds; None when absent; JUnitError when not a finite, plausible duration."""
    if text is None or not text.strip():
        return None
    shown = text if len(text) <= 40 else text[:37] + "..."
    try:
        # Some reporters (e.g. older Ant) write thousands separators: "1,234.5".
        value = float(text.strip().replace(",", ""))
    except ValueError:
        raise JUnitError(source, obj, "time", f"invalid number {shown!r}") from None
    if not math.isfinite(value) or value < 0 or value > MAX_SECONDS:
        raise JUnitError(source, obj, "time", f"out of range {shown!r} (0 to {MAX_SECONDS:.0f} s)")
    return value


def _parse_timestamp(text: str | None, source: str, obj: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise JUnitError(source, obj, "timestamp", f"invalid datetime {shown!r}") from None
    # Reporters write local time without an offset; UTC is the only assumption that is the same everywhere.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _read_tree(data: bytes, source: str, name: str, max_depth: int, max_elements: int) -> ET.Element:
    depth = count = 0
    root: ET.Element | None = None
    try:
        for event, elem in iterparse(BytesIO(data), events=("start", "end"), forbid_dtd=True):
            if event == "start":
                depth += 1
                count += 1
                if root is None:
                    root = elem
                if depth > max_depth:
                    raise JUnitError(source, name, "(nesting)", f"deeper than {max_depth} elements")
                if count > max_elements:
                    raise JUnitError(source, name, "(elements)", f"more than {max_elements} elements")
            else:
                depth -= 1
    except DefusedXmlException as exc:
        raise JUnitError(source, name, "(DTD)", f"refused: {type(exc).__name__}") from None
    except ET.ParseError as exc:
        raise JUnitError(source, name, "(xml)", f"malformed XML: {exc}") from None
    if root is None:
        raise JUnitError(source, name, "(xml)", "empty document")
    return root


def _first_line(text: str | None) -> str | None:
    text = (text or "").strip()
    return text.splitlines()[0] if text else None


def _attributes(elem: ET.Element) -> dict[str, str]:
    return {k[:80]: v[:MAX_QUARANTINED_CHARS] for k, v in list(elem.attrib.items())[:50]}


def _case(elem: ET.Element, suite: str, source: str, report: str, index: int) -> JUnitCase:
    name = elem.get("name") or ""
    obj = f"{report} testcase {index} {name[:80]!r}" if name else f"{report} testcase {index}"
    if not name:
        raise JUnitError(source, obj, "name", "missing", _attributes(elem))
    try:
        seconds = parse_seconds(elem.get("time"), source, obj)
    except JUnitError as exc:
        exc.payload = _attributes(elem)
        raise
    children = {_local(c.tag): c for c in reversed(list(elem))}  # first of each kind wins
    reruns = sum(1 for c in elem if _local(c.tag) in _RERUN_TAGS)
    outcome, detail = "Passed", None
    if "failure" in children:
        outcome, detail = "Failed", children["failure"]
    elif "error" in children:
        outcome, detail = "Error", children["error"]
    elif "skipped" in children or (elem.get("status") or "").lower() in ("skipped", "notrun", "disabled"):
        outcome = "NotExecuted"
    message = None
    if detail is not None:
        message = detail.get("message") or _first_line(detail.text) or detail.get("type")
    return JUnitCase(
        suite=suite,
        classname=elem.get("classname") or None,
        name=name,
        file=elem.get("file") or None,
        outcome=outcome,
        duration_ms=round(seconds * 1000.0, 3) if seconds is not None else None,
        message=message,
        reruns=reruns,
        passed_on_rerun=outcome == "Passed" and reruns > 0,
    )


def parse_junit(
    data: bytes, source: str, name: str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
    max_elements: int = MAX_ELEMENTS,
) -> JUnitReport:
    """The report in *data* (named *name*, read from *source*); JUnitError when the file cannot be read.

    A test case with an unreadable field is left out and listed in `errors`; the others are kept.
    """
    if len(data) > max_bytes:
        raise JUnitError(source, name, "(size)", f"{len(data)} bytes, more than the limit of {max_bytes}")
    root = _read_tree(data, source, name, max_depth, max_elements)
    if _local(root.tag) not in ("testsuites", "testsuite"):
        raise JUnitError(source, name, "(root)", f"not a JUnit report: root element <{_local(root.tag)[:40]}>")
    report = JUnitReport(name=root.get("name") or name)
    report.seconds = _safe(report, lambda: parse_seconds(root.get("time"), source, f"{name} {_local(root.tag)}"), root)
    # A stack, not recursion: document order with the suite path carried down.
    stack: list[tuple[ET.Element, str]] = [(root, "")]
    index = 0
    suites_seconds = 0.0
    top = {id(c) for c in root} if _local(root.tag) == "testsuites" else set()
    while stack:
        elem, prefix = stack.pop()
        tag = _local(elem.tag)
        if tag == "testsuite":
            suite = "/".join(p for p in (prefix, elem.get("name") or "") if p)
            stamp = _safe(report, lambda e=elem, s=suite: _parse_timestamp(e.get("timestamp"), source,
                                                                           f"{name} testsuite {s[:80]!r}"), elem)
            if stamp is not None and (report.started is None or stamp < report.started):
                report.started = stamp
            if report.seconds is None and id(elem) in top:
                # jest and pytest write no time on <testsuites>: the run lasts as long as its suites together.
                child = _safe(report, lambda e=elem, s=suite: parse_seconds(e.get("time"), source,
                                                                           f"{name} testsuite {s[:80]!r}"), elem)
                suites_seconds += child or 0.0
            prefix = suite
        if tag == "testcase":
            index += 1
            try:
                report.cases.append(_case(elem, prefix, source, name, index))
            except JUnitError as exc:
                report.errors.append(exc)
            continue
        stack.extend((child, prefix) for child in reversed(list(elem)) if _local(child.tag) in ("testsuite", "testcase"))
    if report.seconds is None and suites_seconds:
        report.seconds = round(suites_seconds, 6)
    return report


def _safe(report: JUnitReport, read: Callable[[], Any], elem: ET.Element) -> Any:
    """read(), or None with the error (and *elem*'s attributes) listed in the report."""
    try:
        return read()
    except JUnitError as exc:
        exc.payload = _attributes(elem)
        report.errors.append(exc)
        return None


def run_id_for(key: str) -> int:
    """A stable positive 63-bit RunId for a report identified by *key* (e.g. `owner/repo/run/attempt/path`)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") >> 1


def normalize_junit(
    ctx: NormalizeContext, facts: BuildFacts, report: JUnitReport, *, key: str, attempt: int = 1,
    job: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(TestRuns row, TestResults rows) of one report; its unreadable cases are quarantined.

    *key* identifies the report within its source and makes RunId stable across re-ingestion.
    """
    for err in report.errors:
        ctx.quarantine(err.source, err.obj, err.field, err.reason, {"report": key, "element": err.payload})
    run_id = run_id_for(key)
    cases = report.cases
    passed = sum(1 for c in cases if c.outcome == "Passed")
    not_run = sum(1 for c in cases if c.outcome == "NotExecuted")
    completed = None
    if report.started is not None and report.seconds is not None:
        try:
            completed = report.started + timedelta(seconds=report.seconds)
        except OverflowError:  # a suite stamped at the end of year 9999
            completed = None
    run = run_row(
        ctx, facts, run_id=run_id, name=report.name, attempt=attempt, state="Completed",
        started=report.started, completed=completed, total=len(cases), passed=passed,
        failed=len(cases) - passed - not_run, not_executed=not_run, job=job,
    )
    results = [
        result_row(
            ctx, facts, run_id=run_id, result_id=i, attempt=attempt, test_name=c.test_name,
            storage=c.file or c.suite or None, outcome=c.outcome, duration_ms=c.duration_ms,
            group_type="Rerun" if c.reruns else None, passed_on_rerun=c.passed_on_rerun,
            error_message=c.message, job=job,
        )
        for i, c in enumerate(cases, start=1)
    ]
    return run, results


def read_junit(
    ctx: NormalizeContext, facts: BuildFacts, data: bytes, *, name: str, key: str, attempt: int = 1,
    job: str | None = None, **limits: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """([TestRuns row], TestResults rows) of one report file; an unreadable file is quarantined, giving ([], []).

    This is the entry point for sources (artifacts, the inbox): it never raises for bad content.
    """
    try:
        report = parse_junit(data, ctx.source, name, **limits)
    except JUnitError as exc:
        head = data[:MAX_QUARANTINED_CHARS].decode("utf-8", errors="replace")
        ctx.quarantine(exc.source, exc.obj, exc.field, exc.reason, {"report": key, "bytes": len(data), "head": head})
        return [], []
    run, results = normalize_junit(ctx, facts, report, key=key, attempt=attempt, job=job)
    return [run], results
