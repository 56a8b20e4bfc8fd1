"""Pipeline usage rows (PipelineSteps) from normalized builds and records, the same for every CI system."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from etl.columns import Columns
from etl.normalize.usage import classify_step, github_pinning, usage_rows

NOW = datetime(2026, 11, 23, 6)
SHA = "8e5e7e5ab8b370d6c329ec480221332ada57f0ab"


def build(system: str, org: str, project: str, build_id: int, definition: str, queued: str) -> dict[str, Any]:
    return {"System": system, "Organization": org, "Project": project, "BuildId": build_id, "DefinitionId": 7,
            "Definition": definition, "QueueTime": queued, "IngestedAt": NOW}


def task(b: dict[str, Any], record: str, name: str | None, version: str | None, attempt: int = 1,
         rtype: str = "Task") -> dict[str, Any]:
    return {"Organization": b["Organization"], "Project": b["Project"], "BuildId": b["BuildId"], "RecordId": record,
            "Attempt": attempt, "Type": rtype, "TaskName": name, "TaskVersion": version}


def row(b: dict[str, Any], step: str, version: str, kind: str, pinning: str, uses: int) -> dict[str, Any]:
    return {"System": b["System"], "Organization": b["Organization"], "Project": b["Project"],
            "BuildId": b["BuildId"], "DefinitionId": 7, "Definition": b["Definition"], "Day": datetime(2026, 11, 22),
            "Step": step, "StepVersion": version, "StepKind": kind, "Pinning": pinning, "Uses": uses,
            "IngestedAt": NOW}


def test_azure_devops_build_counts_each_task_and_major_version_over_every_attempt() -> None:
    b = build("azure_devops", "contoso", "Engineering", 101, "ci\\runtime", "2026-11-22T23:59:59+00:00")
    records = [
        task(b, "j", None, None, rtype="Job"),
        task(b, "init", None, None),  # "Initialize job" has no task
        task(b, "t1", "CmdLine", "2.246.1"),
        task(b, "t1", "CmdLine", "2.246.1", attempt=2),
        task(b, "t2", "CmdLine", "1.1.3"),
        task(b, "t3", "DotNetCoreCLI", "2.247.1"),
        task(b, "t4", "NuGetCommand", "2.246.0"),
    ]
    assert usage_rows([b], records, NOW) == [
        row(b, "CmdLine", "2", "inline_script", "major", 2),
        row(b, "CmdLine", "1", "inline_script", "major", 1),
        row(b, "DotNetCoreCLI", "2", "task", "major", 1),
        row(b, "NuGetCommand", "2", "task", "major", 1),
    ]


def test_records_held_as_columns_give_the_rows_their_dicts_give() -> None:
    b = build("azure_devops", "contoso", "Engineering", 101, "ci\\runtime", "2026-11-22T23:59:59+00:00")
    records = [task(b, "j", None, None, rtype="Job"), task(b, "t1", "CmdLine", "2.246.1"),
               task(b, "t2", "Bash", "3.1.0"), task(b, "t1", "CmdLine", "2.246.1", attempt=2)]
    columns = Columns({name: [r[name] for r in records] for name in records[0]}, len(records))
    assert usage_rows([b], columns, NOW) == [
        row(b, "CmdLine", "2", "inline_script", "major", 2),
        row(b, "Bash", "3", "inline_script", "major", 1),
    ]


def test_github_build_keys_actions_by_ref_and_counts_inline_run_steps() -> None:
    b = build("github_actions", "octo", "hello", 9001, "CI", "2026-11-23T00:30:00+01:00")
    records = [
        task(b, "s1", "actions/checkout", "v4"),
        task(b, "s2", "actions/setup-node", SHA),
        task(b, "s3", "run", None),
        task(b, "s4", "run", None),
        task(b, "s5", "octo/lint", "main"),
        task(b, "s6", "./.github/actions/build", None),
        task(b, "s1", "actions/checkout", "v4", attempt=2),
    ]
    assert usage_rows([b], records, NOW) == [
        row(b, "actions/checkout", "v4", "action", "tag", 2),
        row(b, "actions/setup-node", SHA, "action", "sha", 1),
        row(b, "run", "", "inline_script", "none", 2),
        row(b, "octo/lint", "main", "action", "branch", 1),
        row(b, "./.github/actions/build", "", "action", "local", 1),
    ]


def test_jenkins_build_names_step_functions_without_versions() -> None:
    b = build("jenkins", "jenkins.example", "folder/app", 42, "folder/app", "2026-11-22T08:00:00")
    records = [task(b, "1", "sh", None), task(b, "2", "sh", None), task(b, "3", "junit", None),
               task(b, "4", "script", None), task(b, "5", "Stage", None, rtype="Stage")]
    assert usage_rows([b], records, NOW) == [
        row(b, "sh", "", "inline_script", "none", 2),
        row(b, "junit", "", "step", "none", 1),
        row(b, "script", "", "inline_script", "none", 1),
    ]


def test_records_of_a_build_not_given_are_left_out() -> None:
    b = build("azure_devops", "contoso", "Engineering", 101, "ci\\runtime", "2026-11-22T10:00:00")
    other = {**b, "BuildId": 102}
    assert usage_rows([b], [task(other, "t", "Bash", "3.246.1")], NOW) == []


@pytest.mark.parametrize(("step", "ref", "pinning"), [
    ("actions/checkout", SHA, "sha"),
    ("actions/checkout", SHA.upper(), "sha"),
    ("actions/checkout", SHA[:12], "branch"),  # a short SHA is resolved like any other ref
    ("actions/checkout", "v4", "tag"),
    ("actions/checkout", "v4.1.7", "tag"),
    ("actions/checkout", "1.2", "tag"),
    ("actions/checkout", "main", "branch"),
    ("actions/checkout", "releases/v2", "branch"),
    ("actions/checkout", "v4-beta", "branch"),
    ("actions/checkout", None, "none"),
    ("./.github/actions/x", None, "local"),
])
def test_github_ref_pinning(step: str, ref: str | None, pinning: str) -> None:
    assert github_pinning(step, ref) == pinning


@pytest.mark.parametrize(("system", "name", "version", "expected"), [
    ("azure_devops", "PowerShell", "2.245.1", ("2", "inline_script", "major")),
    ("azure_devops", "BatchScript", "1.0.0", ("1", "inline_script", "major")),
    ("azure_devops", "UseDotNet", "2.246.1", ("2", "task", "major")),
    ("azure_devops", "Custom", None, ("", "task", "none")),
    ("github_actions", "run", None, ("", "inline_script", "none")),
    ("github_actions", "actions/cache", "v3", ("v3", "action", "tag")),
    ("jenkins", "bat", None, ("", "inline_script", "none")),
    ("jenkins", "pwsh", None, ("", "inline_script", "none")),
    ("jenkins", "powershell", None, ("", "inline_script", "none")),
    ("jenkins", "checkout", None, ("", "step", "none")),
])
def test_step_version_kind_and_pinning_per_system(system: str, name: str, version: str | None,
                                                  expected: tuple[str, str, str]) -> None:
    assert classify_step(system, name, version) == expected
