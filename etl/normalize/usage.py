"""Pipeline usage: which steps each build ran → PipelineSteps rows (one per build and step identity).

Computed from rows already normalized, never from a source's payload, so every CI system gets the
same answer from the same contract. On `Task` records of TimelineRecords every source fills:

| system | `TaskName` | `TaskVersion` |
|---|---|---|
| azure_devops | task name (`CmdLine`) | full version (`2.246.1`) |
| github_actions | action `owner/name` (or `./path`, `docker://image`), `run` for an inline `run:` step | the ref after `@` (`v4`, `main`, a SHA); null for `run` |
| jenkins | step function (`sh`, `junit`) | null |

A step identity is (Step, StepVersion): the Azure DevOps major version (`2`), the GitHub ref, or ""
(Jenkins, `run`). `Uses` counts the step's records over every attempt of the build. Pinning says
how firmly the build chose the step's code: `sha`, `tag`, `branch` (GitHub refs), `major` (Azure
DevOps tasks resolve the newest minor of the major they name), `local` (an action in the same
repository: pinned by the commit being built), `none` (no version at all).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from etl.columns import Columns

AZURE_DEVOPS, GITHUB_ACTIONS, JENKINS = "azure_devops", "github_actions", "jenkins"

#: Steps that run a script written into the pipeline itself (the `script:`/`bash:`/`pwsh:` YAML
#: shortcuts of Azure DevOps appear as the CmdLine, Bash and PowerShell tasks).
INLINE_SCRIPTS: dict[str, frozenset[str]] = {
    AZURE_DEVOPS: frozenset({"CmdLine", "Bash", "PowerShell", "BatchScript"}),
    GITHUB_ACTIONS: frozenset({"run"}),
    JENKINS: frozenset({"sh", "bat", "powershell", "pwsh", "script"}),
}
#: StepKind of a step that is not an inline script, per system.
_KIND = {AZURE_DEVOPS: "task", GITHUB_ACTIONS: "action", JENKINS: "step"}

_SHA = re.compile(r"[0-9a-fA-F]{40}")
_TAG = re.compile(r"v?\d+(\.\d+)*")
_MAJOR = re.compile(r"\s*(\d+)")


def github_pinning(step: str, ref: str | None) -> str:
    """`local`, `none`, `sha` (40 hex digits), `tag` (`v4`, `1.2.3`) or `branch` (any other ref)."""
    if step.startswith("./"):
        return "local"
    if not ref:
        return "none"
    if _SHA.fullmatch(ref):
        return "sha"
    if _TAG.fullmatch(ref):
        return "tag"
    return "branch"


def classify_step(system: str, task_name: str, task_version: str | None) -> tuple[str, str, str]:
    """(StepVersion, StepKind, Pinning) of one step record of *system*."""
    inline = task_name in INLINE_SCRIPTS.get(system, frozenset())
    kind = "inline_script" if inline else _KIND.get(system, "step")
    if system == AZURE_DEVOPS:
        major = _MAJOR.match(task_version or "")
        return (major.group(1), kind, "major") if major else ("", kind, "none")
    if system == GITHUB_ACTIONS:
        if inline:
            return "", kind, "none"
        return task_version or "", kind, github_pinning(task_name, task_version)
    return "", kind, "none"


def utc_day(value: Any) -> datetime | None:
    """The UTC day (naive datetime at midnight) of a datetime or ISO text; None when there is none."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return datetime(moment.year, moment.month, moment.day)


#: The TimelineRecords columns `usage_rows` reads.
USAGE_READS = ("Organization", "Project", "BuildId", "Type", "TaskName", "TaskVersion")


def usage_reads(records: list[dict[str, Any]] | Columns) -> Counter[tuple[Any, ...]]:
    """How often each combination of the `USAGE_READS` values occurs among TimelineRecords rows, in order of
    first appearance; a build's 2,000 records hold a few dozen, counted in C from columns."""
    if isinstance(records, Columns):
        return Counter(zip(*(records.values(c) for c in USAGE_READS), strict=True))
    return Counter(tuple(rec.get(c) for c in USAGE_READS) for rec in records)


def usage_rows(builds: Iterable[dict[str, Any]], records: list[dict[str, Any]] | Columns,
               ingested_at: datetime) -> list[dict[str, Any]]:
    """PipelineSteps rows of normalized TimelineBuilds rows and their TimelineRecords rows.

    Only `Task` records with a TaskName count; records of a build not among *builds* are ignored
    (a step is attributed to the definition and day of its build). Rows come in build order, then
    step order of first appearance.
    """
    by_build = {(b["Organization"], b["Project"], b["BuildId"]): b for b in builds}
    counts: dict[tuple[Any, ...], int] = {}
    # A build's records repeat few step identities: classify each (system, name, version) once.
    classified: dict[tuple[str, str, str | None], tuple[str, str, str]] = {}
    for (org, project, build_id, kind_of_record, name, version), uses in usage_reads(records).items():
        if not name or kind_of_record != "Task":
            continue
        build_key = (org, project, build_id)
        build = by_build.get(build_key)
        if build is None:
            continue
        step = (build.get("System") or AZURE_DEVOPS, name, version)
        identity = classified.get(step)
        if identity is None:
            identity = classified[step] = classify_step(*step)
        key = (*build_key, name, *identity)
        counts[key] = counts.get(key, 0) + uses
    rows = []
    for (org, project, build_id, step, version, kind, pinning), uses in counts.items():
        build = by_build[(org, project, build_id)]
        rows.append({
            "System": build.get("System") or AZURE_DEVOPS,
            "Organization": org,
            "Project": project,
            "BuildId": build_id,
            "DefinitionId": build.get("DefinitionId"),
            "Definition": build.get("Definition"),
            "Day": utc_day(build.get("QueueTime")),
            "Step": step,
            "StepVersion": version,
            "StepKind": kind,
            "Pinning": pinning,
            "Uses": uses,
            "IngestedAt": ingested_at,
        })
    return rows
