"""Counts the service states, checked against what was read: one finding line per mismatch.

Three audits (docs/azure-devops.md says what each checks and what a finding does):
- a test run's results against its `totalTests` and the sum of its `runStatistics`;
- a timeline's records against their own parent tree (every `parentId` resolves, ids are unique);
- a builds listing's pages against the `count` each states and the continuation tokens it hands out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from etl.sources.azure_devops.client import Page
from etl.sources.azure_devops.outline import OutlineRecord

#: How many unresolved ids a timeline finding names before it says "…".
_SHOWN = 3


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def audit_test_run(where: str, run: dict[str, Any], read: int) -> list[str]:
    """Findings for one test run of which *read* results were read; *where* names org/project/build/run."""
    findings = []
    total = _int(run.get("totalTests"))
    if total is not None and read != total:
        findings.append(f"{where}: {read} of {total} results (totalTests {total})")
    stats = run.get("runStatistics")
    counted = [_int(s.get("count")) if isinstance(s, dict) else None for s in stats] if isinstance(stats, list) else []
    if counted and None not in counted:
        summed = sum(c for c in counted if c is not None)
        if total is None and summed != read:
            findings.append(f"{where}: {read} of {summed} results (runStatistics)")
        elif total is not None and summed != total:
            findings.append(f"{where}: runStatistics count {summed} but totalTests {total}")
    return findings


def audit_timeline(where: str, timeline_id: str | None, records: list[Any]) -> list[str]:
    """Findings for the latest (full) timeline of a build: duplicate ids, parentIds that resolve to nothing.

    A Phase may name a Stage the timeline does not hold; any other record must find its parent.

    Previous-attempt timelines are not audited: a "patch" timeline holds only the rerun jobs'
    subtrees, whose parents live in the latest timeline.
    """
    if set(map(type, records)) <= {OutlineRecord}:  # as extraction reads them: fields, not lookups by name
        fields = [(r.id, r.parentId, r.type) for r in records]
    else:
        fields = [(r.get("id"), r.get("parentId"), r.get("type")) for r in records if isinstance(r, dict | OutlineRecord)]
    ids = [rid for rid, _, _ in fields]
    known = set(ids) - {None}
    findings = []
    label = f"{where} timeline {timeline_id}" if timeline_id else f"{where} timeline"
    doubled = sorted(str(i) for i, n in Counter(ids).items() if i is not None and n > 1)
    if doubled:
        findings.append(f"{label}: {len(doubled)} record id(s) appear more than once: "
                        f"{', '.join(doubled[:_SHOWN])}{', …' if len(doubled) > _SHOWN else ''}")
    # A Phase whose Stage is absent is a shape real timelines have (a single-stage pipeline's
    # implicit stage, in a real capture); a Job or Task without its parent is a record lost.
    orphans = [parent for _, parent, kind in fields if parent and parent not in known and kind != "Phase"]
    if orphans:
        missing = sorted({str(parent) for parent in orphans})
        findings.append(f"{label}: {len(orphans)} of {len(records)} records have a parentId not in the timeline "
                        f"({', '.join(missing[:_SHOWN])}{', …' if len(missing) > _SHOWN else ''})")
    return findings


class BuildsListingAudit:
    """Checks the pages of one project's builds listing as they arrive."""

    def __init__(self, organization: str, project: str, top: int) -> None:
        self.where = f"{organization}/{project} builds listing"
        self.top = top
        self.pages = 0
        self.builds = 0

    def check(self, page: Page) -> list[str]:
        """Findings about *page* (the next page of the listing)."""
        self.pages += 1
        n = len(page.items)
        self.builds += n
        findings = []
        if page.count is not None and page.count != n:
            findings.append(f"{self.where}: page {self.pages} says count {page.count} but holds {n} builds")
        if n > self.top:
            findings.append(f"{self.where}: page {self.pages} holds {n} builds, more than $top {self.top}")
        if page.repeated:
            findings.append(f"{self.where}: continuation token repeated after {self.builds} builds "
                            f"(page {self.pages}); later builds were not listed")
        return findings
