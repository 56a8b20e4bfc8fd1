"""The users' scale on one machine: a dnceng-sized local store, then every report query, detection and the reports.

At `--fraction 1` the store holds what .NET's CI produces in 90 days: 50,000 builds of 100 definitions, 25M
TimelineRecords (500 per build: stages, phases, jobs, tasks; 8 % of builds retry two jobs), 5M TestResults,
TimelineIssues, BuildMetrics, BuildStages, MetricSamples, KnownIssueMatches, DailyBuildSummary, EtlRuns. The
rows are generated column-wise (numpy/pyarrow), a bounded chunk of builds at a time, and written through
`Warehouse.ingest_treated`, the call the ETL's load step makes for staged batches (the values are generated
already in their treated form: pseudonymized agents, messages without personal data).

Then each step runs in its own process, timed, with the peak RSS of its process tree:
- every stored query of kql/queries/ for the report period, beside a plain DuckDB SQL count over the same table
  and period (the reference, measured in the same run);
- `ci-telemetry alerts detect` over the period;
- `ci-telemetry report` (the three papermill notebooks and index.html);
- an hourly run's load (`ingest_staged` of a staged TimelineRecords file of HOURLY_BUILDS new builds) into the
  store, and the same file again, beside the same load into a fresh store (the reference): whether a load's cost
  grows with the history it lands in. The rows it adds are deleted after.

Usage: python bench/scale.py [--fraction 0.01] [--days 28] [--out bench/.out/scale] [--reuse]
Issue 14's targets at fraction 1: reports ≤ 60 s in total, every report query ≤ 2 s, no process > 2 GB RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FULL_BUILDS = 50_000
DAYS = 90
DEFINITIONS = 100
STAGES, PHASES, JOBS, TASKS = 4, 4, 42, 450  # 500 records per build
RECORDS_PER_BUILD = STAGES + PHASES + JOBS + TASKS
RETRIED_JOBS = 2  # in a retried build, the last two job slots are attempt 2 of jobs 0 and 1
TEST_RUNS_PER_BUILD, RESULTS_PER_RUN = 4, 25
WARNINGS_PER_BUILD = 4
FAILED_TASKS_PER_FAILED_BUILD, ERRORS_PER_FAILED_TASK = 3, 2
STAGES_PER_METRICS = 4
SCALAR_METRICS = ("peak_memory_mb", "bytes_downloaded", "bytes_uploaded", "performance_score", "packages_built")
MEMORY_SAMPLES = 3
CHUNK_BUILDS = 400  # 200k timeline records per ingest call: bounded memory whatever the fraction
ORG = "dnceng"
PROJECTS = ("public", "internal")
PLATFORMS = ("windows-x64", "linux-x64", "linux-arm64", "osx-x64")
TASK_NAMES = ("Checkout", "DownloadBuildArtifacts", "PublishBuildArtifacts", "CmdLine", "PowerShell", "Bash",
              "UseDotNet", "NuGetAuthenticate", "PublishTestResults", "CopyFiles", "DeleteFiles", "1ES.PublishPipelineArtifact",
              "MicroBuildSigningPlugin", "ComponentGovernanceComponentDetection", "AzureCLI", "DotNetCoreCLI")
ERRORS = (
    ("error CS{n}: The name 'x{n}' does not exist in the current context", "code", "compilation"),
    ("Process 'dotnet' exited with code 1 after {n} tests failed", "code", "test-failure"),
    ("##[error]The operation was canceled after {n} minutes", "infrastructure", "timeout"),
    ("Unable to load the service index for source https://pkgs.example/feed{n}/index.json", "infrastructure", "feed"),
    ("No space left on device while writing artifact part {n}", "infrastructure", "disk"),
    ("The agent did not respond within {n} minutes; lost communication with the server", "infrastructure", "agent"),
    ("Assert.Equal() Failure: expected {n}, actual 0", "code", "test-failure"),
    ("MSB3073: The command \"build.sh --ci\" exited with code {n}", "code", "build"),
)
RESULT_PATTERN = np.array(["failed"] * 12 + ["partiallySucceeded"] * 5 + ["canceled"] * 2 + ["succeeded"] * 81)


def n_builds(fraction: float) -> int:
    """Builds at *fraction* of dnceng's 50,000 per 90 days (at least 10)."""
    return max(10, round(FULL_BUILDS * fraction))


def build_results(n: int) -> np.ndarray:
    """Each build's result: a fixed interleaving (12 % failed, 5 % partially, 2 % canceled), so counts are exact."""
    i = np.arange(n)
    # Shifted every round of definitions, so a definition's builds do not all share one result.
    return RESULT_PATTERN[(i * 37 + (i // DEFINITIONS) * 7) % len(RESULT_PATTERN)]


def retried(n: int) -> np.ndarray:
    """Which builds retried two jobs (8 %, interleaved like the results)."""
    i = np.arange(n)
    return (i * 53 + (i // DEFINITIONS) * 11) % 100 < 8


def expected_counts(fraction: float) -> dict[str, int]:
    """The rows each table holds after `build(fraction)`: what the test asserts."""
    n = n_builds(fraction)
    failed = int((build_results(n) == "failed").sum())
    return {
        "TimelineBuilds": n,
        "TimelineRecords": n * RECORDS_PER_BUILD,
        "TimelineIssues": n * WARNINGS_PER_BUILD + failed * FAILED_TASKS_PER_FAILED_BUILD * ERRORS_PER_FAILED_TASK,
        "TestRuns": n * TEST_RUNS_PER_BUILD,
        "TestResults": n * TEST_RUNS_PER_BUILD * RESULTS_PER_RUN,
        "BuildMetrics": n,
        "BuildStages": n * STAGES_PER_METRICS,
        "MetricSamples": n * (len(SCALAR_METRICS) + MEMORY_SAMPLES),
        "KnownIssueMatches": n,
        "DailyBuildSummary": int(np.unique(np.stack([_definitions(n), _days(n)]), axis=1).shape[1]),
        "EtlRuns": DAYS * len(PROJECTS),
    }


def _definitions(n: int) -> np.ndarray:
    return np.arange(n) % DEFINITIONS


def _days(n: int) -> np.ndarray:
    return (np.arange(n) * DAYS) // n


@dataclass(frozen=True)
class Fleet:
    """The build-level columns every table repeats, for all builds (50k rows at most: small)."""

    end: datetime
    build_id: np.ndarray
    definition: np.ndarray
    project: np.ndarray
    queue: np.ndarray  # datetime64[us]
    start: np.ndarray
    finish: np.ndarray
    duration: np.ndarray  # seconds
    result: np.ndarray
    retried: np.ndarray
    kind: np.ndarray
    branch: np.ndarray
    target: np.ndarray
    commit: np.ndarray

    @property
    def n(self) -> int:
        return len(self.build_id)


def fleet(fraction: float, end: datetime, seed: int = 14) -> Fleet:
    """Builds spread evenly over the 90 days before *end*, round-robin over the definitions; 10 definitions get a
    20-60 % duration step two thirds of the way through (regressions for detection to find)."""
    rng = np.random.default_rng(seed)
    n = n_builds(fraction)
    definition = _definitions(n)
    t0 = np.datetime64(end - timedelta(days=DAYS), "us")
    span_us = DAYS * 86_400_000_000
    queue = t0 + ((np.arange(n) * span_us) // n + rng.integers(0, span_us // n, n)).astype("timedelta64[us]")
    base = rng.uniform(600, 7200, DEFINITIONS)[definition]
    stepped = definition < 10
    step_at = (np.arange(n) >= (2 * n) // 3) & stepped
    duration = base * np.where(step_at, 1 + rng.uniform(0.2, 0.6, DEFINITIONS)[definition], 1.0)
    duration = duration * (1 + rng.normal(0, 0.05, n))
    result = build_results(n)
    duration = np.where(result == "canceled", duration * 0.3, duration)
    wait = rng.exponential(60, n)
    start = queue + (wait * 1e6).astype("timedelta64[us]")
    finish = start + (duration * 1e6).astype("timedelta64[us]")
    pr = (np.arange(n) % 3) == 0
    kind = np.where(pr, "PullRequest", np.where(np.arange(n) % 7 == 1, "Scheduled", "Rolling"))
    branch = np.where(pr, np.char.add("refs/pull/", np.char.add((np.arange(n) % 5000 + 1).astype(str), "/merge")),
                      "refs/heads/main")
    target = np.where(pr, "refs/heads/main", "")
    commit = np.array([f"{(i * 2654435761) % (1 << 40):010x}{i:030x}" for i in range(n)])
    return Fleet(end, 1_000_000 + np.arange(n, dtype=np.int64), definition, np.array(PROJECTS)[definition % 2],
                 queue, start, finish, duration, result, retried(n), kind, branch, target, commit)


def _definition_names() -> np.ndarray:
    return np.array([f"\\dotnet\\{['runtime', 'sdk', 'aspnetcore', 'roslyn', 'arcade'][d % 5]}-ci-{d:03d}"
                     for d in range(DEFINITIONS)])


def _common(f: Fleet, idx: np.ndarray, ingested: np.datetime64) -> dict[str, pa.Array]:
    """The build columns (Organization … QueueTime, IngestedAt) for row *idx* of the fleet."""
    names = _definition_names()
    n = len(idx)
    return {
        "Organization": pa.array(np.full(n, ORG)),
        "Project": pa.array(f.project[idx]),
        "BuildId": pa.array(f.build_id[idx]),
        "DefinitionId": pa.array(f.definition[idx].astype(np.int64) + 100),
        "Definition": pa.array(names[f.definition[idx]]),
        "SourceBranch": pa.array(f.branch[idx]),
        "TargetBranch": pa.array(f.target[idx]),
        "BuildKind": pa.array(f.kind[idx]),
        "QueueTime": pa.array(f.queue[idx]),
        "IngestedAt": pa.array(np.full(n, ingested)),
    }


def _hex(values: np.ndarray, width: int) -> pa.Array:
    return pa.array([f"{v:0{width}x}" for v in values.tolist()])


def builds_table(f: Fleet, b: np.ndarray, ingested: np.datetime64) -> pa.Table:
    cols = _common(f, b, ingested)
    attempts = np.where(f.retried[b], 2, 1).astype(np.int32)
    pr_number = np.where(f.kind[b] == "PullRequest", np.arange(len(b)) % 5000 + 1, -1)
    return pa.table({
        **cols,
        "BuildNumber": pa.array([f"2026{i:06d}.{a}" for i, a in zip(b.tolist(), attempts.tolist(), strict=True)]),
        "Repository": pa.array(np.full(len(b), "dotnet/runtime")),
        "Reason": pa.array(np.where(f.kind[b] == "PullRequest", "pullRequest",
                                    np.where(f.kind[b] == "Scheduled", "schedule", "batchedCI"))),
        "Status": pa.array(np.full(len(b), "completed")),
        "Result": pa.array(f.result[b]),
        "StartTime": pa.array(f.start[b]),
        "FinishTime": pa.array(f.finish[b]),
        "QueueSeconds": pa.array((f.start[b] - f.queue[b]) / np.timedelta64(1, "s")),
        "DurationSeconds": pa.array(f.duration[b]),
        "PullRequestNumber": pa.array(pr_number, mask=pr_number < 0),
        "SourceVersion": pa.array(f.commit[b]),
        "RequestedFor": pa.array(np.full(len(b), "user-5f1c2a9e")),
        "QueueName": pa.array(np.array(["NetCore-Public", "NetCore1ESPool-Internal"])[f.definition[b] % 2]),
        "Tags": pa.array(np.full(len(b), "[]")),
        "Attempts": pa.array(attempts),
        "LastChangedDate": pa.array(f.finish[b]),
        "Url": pa.array([f"https://dev.azure.com/dnceng/_build/results?buildId={i}" for i in f.build_id[b].tolist()]),
        "System": pa.array(np.full(len(b), "azure_devops")),
    })


def _record_layout() -> dict[str, np.ndarray]:
    """One build's 500 record slots: type, name, parent slot, order, offset and share of the build's duration."""
    types = np.array(["Stage"] * STAGES + ["Phase"] * PHASES + ["Job"] * JOBS + ["Task"] * TASKS)
    slot = np.arange(RECORDS_PER_BUILD)
    stage_of = np.concatenate([np.arange(STAGES), np.arange(PHASES), np.arange(JOBS) % PHASES,
                               (np.arange(TASKS) // (TASKS // (JOBS - RETRIED_JOBS) + 1)) % PHASES])
    job_of_task = np.minimum(np.arange(TASKS) // (TASKS // (JOBS - RETRIED_JOBS) + 1), JOBS - RETRIED_JOBS - 1)
    parent = np.concatenate([np.full(STAGES, -1), np.arange(PHASES), STAGES + np.arange(JOBS) % PHASES,
                             STAGES + PHASES + job_of_task])
    job_slot = np.concatenate([np.full(STAGES + PHASES, -1), np.arange(JOBS), job_of_task])
    names = np.concatenate([[f"Stage{s}" for s in range(STAGES)], [f"Phase{p}" for p in range(PHASES)],
                            [f"Job_{j % (JOBS - RETRIED_JOBS)}" for j in range(JOBS)],
                            [TASK_NAMES[t % len(TASK_NAMES)] for t in range(TASKS)]])
    share = np.concatenate([np.ones(STAGES + PHASES), np.full(JOBS, 0.3), np.full(TASKS, 0.02)])
    offset = np.concatenate([np.zeros(STAGES + PHASES), (np.arange(JOBS) % 10) * 0.05, (np.arange(TASKS) % 30) * 0.02])
    return {"type": types, "slot": slot, "stage": stage_of, "parent": parent, "job": job_slot, "name": names,
            "share": share, "offset": offset}


LAYOUT = _record_layout()
FIRST_TASK = STAGES + PHASES + JOBS


def _failed_task_slots() -> np.ndarray:
    return FIRST_TASK + np.array([37, 211, 402])


def records_table(f: Fleet, b: np.ndarray, ingested: np.datetime64, rng: np.random.Generator) -> pa.Table:
    """Timeline records of builds *b*: 500 per build; retried builds' last two job slots are attempt 2 of jobs
    0 and 1 (same RecordId); failed builds fail three tasks, their jobs, phases and stages."""
    per = RECORDS_PER_BUILD
    idx = np.repeat(b, per)
    slot = np.tile(LAYOUT["slot"], len(b))
    cols = _common(f, idx, ingested)
    is_retry = np.tile(np.isin(LAYOUT["slot"], STAGES + PHASES + JOBS - 1 - np.arange(RETRIED_JOBS)), len(b)) & f.retried[idx]
    # The retried attempt reuses job 0 / 1's id: same record, Attempt 2.
    id_slot = np.where(is_retry, STAGES + PHASES + (slot - (STAGES + PHASES + JOBS - RETRIED_JOBS)), slot)
    build_hex = _hex(f.build_id[b], 8).take(pa.array(np.repeat(np.arange(len(b)), per)))
    record_id = pc.binary_join_element_wise(build_hex, pa.array(np.full(len(idx), "0000-4000-8000")),
                                            _hex(id_slot, 12).take(pa.array(np.arange(len(idx)))), "-")
    parent_slot = np.tile(LAYOUT["parent"], len(b))
    parent_hex = _hex(np.maximum(parent_slot, 0), 12)
    parent_id = pc.binary_join_element_wise(build_hex, pa.array(np.full(len(idx), "0000-4000-8000")), parent_hex, "-")
    parent_id = pc.if_else(pa.array(parent_slot < 0), pa.nulls(len(idx), pa.string()), parent_id)
    dur = f.duration[idx] * np.tile(LAYOUT["share"], len(b)) * rng.uniform(0.5, 1.5, len(idx))
    start = f.start[idx] + (f.duration[idx] * np.tile(LAYOUT["offset"], len(b)) * 1e6).astype("timedelta64[us]")
    finish = start + (dur * 1e6).astype("timedelta64[us]")
    failed_build = f.result[idx] == "failed"
    failed_task = np.isin(slot, _failed_task_slots()) & failed_build
    failed_jobs = np.isin(slot, np.unique(LAYOUT["job"][_failed_task_slots()]))
    failed_parents = np.isin(slot, np.unique(LAYOUT["stage"][_failed_task_slots()]) + np.array([[0], [STAGES]]))
    failed = failed_task | (failed_build & (failed_jobs | failed_parents))
    result = np.where(failed, "failed", "succeeded")
    # The first attempt of a retried job failed; the retry succeeded.
    first_of_retried = np.isin(slot, STAGES + PHASES + np.arange(RETRIED_JOBS)) & f.retried[idx]
    result = np.where(first_of_retried, "failed", result)
    types = np.tile(LAYOUT["type"], len(b))
    task = types == "Task"
    task_name = np.where(task, np.tile(LAYOUT["name"], len(b)), "")
    err = np.where(failed_task, ERRORS_PER_FAILED_TASK, 0).astype(np.int32)
    kinds = (idx * 7 + slot) % len(ERRORS)
    sig = np.where(failed_task, np.char.add("sig-", kinds.astype(str)), "")
    origin = np.where(failed_task, np.array([e[1] for e in ERRORS])[kinds], "")
    category = np.where(failed_task, np.array([e[2] for e in ERRORS])[kinds], "")
    worker = np.where(types == "Job", np.char.add("agent-", ((idx * 13 + slot) % 997).astype(str)), "")
    none_if_empty = lambda a: pa.array(a, mask=(a == ""))  # noqa: E731
    return pa.table({
        **cols,
        "RecordId": record_id,
        "Attempt": pa.array(np.where(is_retry, 2, 1).astype(np.int32)),
        "TimelineId": build_hex,
        "ParentId": parent_id,
        "Type": pa.array(types),
        "Name": pa.array(np.tile(LAYOUT["name"], len(b))),
        "Identifier": pa.array(np.char.add(np.tile(LAYOUT["name"], len(b)), ".__default")),
        "Path": pa.array(np.tile(LAYOUT["name"], len(b))),
        "RecordOrder": pa.array(np.tile(LAYOUT["slot"], len(b)).astype(np.int64) + 1),
        "State": pa.array(np.full(len(idx), "completed")),
        "Result": pa.array(result),
        "StartTime": pa.array(start),
        "FinishTime": pa.array(finish),
        "DurationSeconds": pa.array(dur),
        "WorkerName": none_if_empty(worker),
        "TaskName": none_if_empty(task_name),
        "TaskVersion": none_if_empty(np.where(task, "2.0.0", "")),
        "ErrorCount": pa.array(err),
        "WarningCount": pa.array(np.zeros(len(idx), np.int32)),
        "LogId": pa.array(slot.astype(np.int64) + 1),
        "LastModified": pa.array(finish),
        "FailureCategory": none_if_empty(category),
        "FailureOrigin": none_if_empty(origin),
        "Signature": none_if_empty(sig),
    })


def issues_table(f: Fleet, b: np.ndarray, ingested: np.datetime64) -> pa.Table:
    """Four warnings per build, and two errors per failed task of a failed build."""
    warn_slots = FIRST_TASK + np.array([5, 50, 150, 300])
    fb = b[f.result[b] == "failed"]
    rows_b = np.concatenate([np.repeat(b, WARNINGS_PER_BUILD),
                             np.repeat(fb, FAILED_TASKS_PER_FAILED_BUILD * ERRORS_PER_FAILED_TASK)])
    slots = np.concatenate([np.tile(warn_slots, len(b)),
                            np.tile(np.repeat(_failed_task_slots(), ERRORS_PER_FAILED_TASK), len(fb))])
    index = np.concatenate([np.zeros(len(b) * WARNINGS_PER_BUILD, np.int32),
                            np.tile(np.arange(ERRORS_PER_FAILED_TASK), FAILED_TASKS_PER_FAILED_BUILD * len(fb))])
    is_error = np.arange(len(rows_b)) >= len(b) * WARNINGS_PER_BUILD
    kinds = (rows_b * 7 + slots) % len(ERRORS)
    messages = [ERRORS[k][0].format(n=(int(x) % 97) + 1) if e else f"Warning: package {int(x) % 31} is deprecated"
                for k, x, e in zip(kinds.tolist(), (rows_b + slots).tolist(), is_error.tolist(), strict=True)]
    record_id = [f"{bid:08x}-0000-4000-8000-{s:012x}" for bid, s in zip(f.build_id[rows_b].tolist(), slots.tolist(), strict=True)]
    none_unless_error = lambda a: pa.array(a, mask=~is_error)  # noqa: E731
    return pa.table({
        **_common(f, rows_b, ingested),
        "RecordId": pa.array(record_id),
        "Attempt": pa.array(np.ones(len(rows_b), np.int32)),
        "IssueIndex": pa.array(index.astype(np.int32)),
        "RecordName": pa.array(LAYOUT["name"][slots]),
        "RecordType": pa.array(np.full(len(rows_b), "Task")),
        "TaskName": pa.array(LAYOUT["name"][slots]),
        "Type": pa.array(np.where(is_error, "error", "warning")),
        "Category": pa.array(np.full(len(rows_b), "General")),
        "Message": pa.array(messages),
        "Bucket": none_unless_error(np.full(len(rows_b), "build")),
        "FailureCategory": none_unless_error(np.array([e[2] for e in ERRORS])[kinds]),
        "FailureOrigin": none_unless_error(np.array([e[1] for e in ERRORS])[kinds]),
        "RuleId": none_unless_error(np.char.add("rule-", kinds.astype(str))),
        "Signature": none_unless_error(np.char.add("sig-", kinds.astype(str))),
    })


def tests_tables(f: Fleet, b: np.ndarray, ingested: np.datetime64, rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    """Four test runs of 25 results per build. Each definition runs the same 100 tests; 1 in 50 of them is
    flaky (fails 15 % of the time, half of those pass on rerun); failed builds fail a few more."""
    run_b = np.repeat(b, TEST_RUNS_PER_BUILD)
    run_k = np.tile(np.arange(TEST_RUNS_PER_BUILD), len(b))
    run_id = (run_b * TEST_RUNS_PER_BUILD + run_k + 1).astype(np.int64)
    runs = pa.table({
        **_common(f, run_b, ingested),
        "RunId": pa.array(run_id),
        "Name": pa.array(np.char.add("Tests ", np.array(PLATFORMS)[run_k])),
        "Attempt": pa.array(np.ones(len(run_b), np.int32)),
        "JobName": pa.array(np.char.add("Job_", run_k.astype(str))),
        "State": pa.array(np.full(len(run_b), "Completed")),
        "StartedDate": pa.array(f.start[run_b]),
        "CompletedDate": pa.array(f.finish[run_b]),
        "TotalTests": pa.array(np.full(len(run_b), RESULTS_PER_RUN, np.int64)),
        "SourceVersion": pa.array(f.commit[run_b]),
    })
    per_build = TEST_RUNS_PER_BUILD * RESULTS_PER_RUN
    rb = np.repeat(b, per_build)
    k = np.tile(np.arange(per_build), len(b))
    test = (f.definition[rb] * 41 + k) % 5000
    flaky = test % 50 == 7
    roll = rng.random(len(rb))
    # One run in 500 builds is an outage (agent lost): every result of it failed.
    outage = (rb % 500 == 250) & (k // RESULTS_PER_RUN == 2)
    failed = (flaky & (roll < 0.15)) | ((f.result[rb] == "failed") & (k % 40 == 3)) | outage
    rerun = failed & flaky & (roll < 0.075)
    outcome = np.where(failed, "Failed", "Passed")
    names = np.char.add(np.char.add("System.Tests.Suite", (test // 100).astype(str)), np.char.add(".Test", test.astype(str)))
    results = pa.table({
        **_common(f, rb, ingested),
        "RunId": pa.array((rb * TEST_RUNS_PER_BUILD + k // RESULTS_PER_RUN + 1).astype(np.int64)),
        "ResultId": pa.array((100_000 + k % RESULTS_PER_RUN).astype(np.int64)),
        "Attempt": pa.array(np.ones(len(rb), np.int32)),
        "TestName": pa.array(names),
        "TestStorage": pa.array(np.char.add("System.Tests.Suite", np.char.add((test // 100).astype(str), ".dll"))),
        "Outcome": pa.array(outcome),
        "DurationMs": pa.array(rng.exponential(800, len(rb))),
        "ResultGroupType": pa.array(np.where(rerun, "rerun", "none")),
        "PassedOnRerun": pa.array(rerun),
        "ErrorMessage": pa.array(np.where(failed, "Assert.True() Failure", ""), mask=~failed),
        "Signature": pa.array(np.where(failed, "sig-test", ""), mask=~failed),
        "FailureCategory": pa.array(np.where(failed, "test-failure", ""), mask=~failed),
        "FailureOrigin": pa.array(np.where(failed, "code", ""), mask=~failed),
        "StartedDate": pa.array(f.start[rb]),
        "CompletedDate": pa.array(f.finish[rb]),
        "SourceVersion": pa.array(f.commit[rb]),
        "JobName": pa.array(np.char.add("Job_", (k // RESULTS_PER_RUN).astype(str))),
    })
    return runs, results


def metrics_tables(f: Fleet, b: np.ndarray, ingested: np.datetime64, rng: np.random.Generator) -> tuple[pa.Table, ...]:
    """One metrics document per build with its four stages, and its samples: five per-build figures and three
    memory samples; peak memory of 10 definitions steps up a third of the way through."""
    key = np.char.add(np.char.add(f.project[b], "/"), f.build_id[b].astype(str))
    platform = np.array(PLATFORMS)[f.definition[b] % len(PLATFORMS)]
    peak = 2000 + 40 * f.definition[b] + rng.normal(0, 50, len(b))
    peak = np.where((f.definition[b] >= 10) & (f.definition[b] < 20) & (b >= f.n // 3), peak * 1.4, peak)
    docs = pa.table({
        **_common(f, b, ingested),
        "Source": pa.array(np.full(len(b), "build")), "Key": pa.array(key), "Package": pa.array(np.full(len(b), "dotnet")),
        "Platform": pa.array(platform), "Hostname": pa.array(np.char.add("host-", (b % 997).astype(str))),
        "StartTime": pa.array(f.start[b]), "EndTime": pa.array(f.finish[b]), "DurationSeconds": pa.array(f.duration[b]),
        "PeakMemoryMb": pa.array(peak), "SourceVersion": pa.array(f.commit[b]),
    })
    sb = np.repeat(b, STAGES_PER_METRICS)
    stages = pa.table({
        **_common(f, sb, ingested),
        "Source": pa.array(np.full(len(sb), "build")), "Key": pa.array(np.repeat(key, STAGES_PER_METRICS)),
        "StageIndex": pa.array(np.tile(np.arange(STAGES_PER_METRICS, dtype=np.int32), len(b))),
        "Stage": pa.array(np.tile(np.array(["restore", "build", "test", "publish"]), len(b))),
        "Status": pa.array(np.full(len(sb), "success")),
        "DurationSeconds": pa.array(np.repeat(f.duration[b] / STAGES_PER_METRICS, STAGES_PER_METRICS)),
        "Platform": pa.array(np.repeat(platform, STAGES_PER_METRICS)), "SourceVersion": pa.array(f.commit[sb]),
    })
    per = len(SCALAR_METRICS) + MEMORY_SAMPLES
    mb = np.repeat(b, per)
    m = np.tile(np.arange(per), len(b))
    metric = np.array(list(SCALAR_METRICS) + ["memory_mb"] * MEMORY_SAMPLES)[m]
    values = np.select(
        [m == 0, m == 1, m == 2, m == 3, m == 4],
        [np.repeat(peak, per), 5e8 * (1 + rng.normal(0, 0.05, len(mb))), 2e8 * (1 + rng.normal(0, 0.05, len(mb))),
         80 + rng.normal(0, 2, len(mb)), np.full(len(mb), 120.0)],
        np.repeat(peak, per) * rng.uniform(0.3, 1.0, len(mb)))
    at = f.finish[mb] - np.where(m >= len(SCALAR_METRICS), (per - m) * 60_000_000, 0).astype("timedelta64[us]")
    samples = pa.table({
        **_common(f, mb, ingested),
        "Source": pa.array(np.full(len(mb), "build")), "Key": pa.array(np.repeat(key, per)), "Metric": pa.array(metric),
        "Timestamp": pa.array(at), "Value": pa.array(values),
        "Unit": pa.array(np.array(["MB", "bytes", "bytes", "score", "count"] + ["MB"] * MEMORY_SAMPLES)[m]),
        "Platform": pa.array(np.repeat(platform, per)), "SourceVersion": pa.array(f.commit[mb]),
    })
    matches = pa.table({
        **_common(f, b, ingested),
        "RuleId": pa.array(np.full(len(b), "ki-feed-outage")), "RuleVersion": pa.array(np.full(len(b), "1")),
        "Attempt": pa.array(np.ones(len(b), np.int32)), "Present": pa.array(f.result[b] == "failed"),
        "Mode": pa.array(np.full(len(b), "match")), "MatchCount": pa.array((f.result[b] == "failed").astype(np.int64)),
        "FinishTime": pa.array(f.finish[b]), "EvaluatedAt": pa.array(np.full(len(b), ingested)),
    })
    return docs, stages, samples, matches


def summary_tables(f: Fleet, ingested: np.datetime64) -> tuple[pa.Table, pa.Table]:
    """DailyBuildSummary per definition and day, and two EtlRuns rows (one per project) per day."""
    import pandas as pd

    frame = pd.DataFrame({"d": f.definition, "day": _days(f.n), "result": f.result, "dur": f.duration,
                          "finish": f.finish, "project": f.project})
    t0 = np.datetime64(f.end - timedelta(days=DAYS), "us")
    g = frame.groupby(["d", "day"])
    daily = g.agg(builds=("result", "size"), dur_avg=("dur", "mean"), dur_p50=("dur", "median"),
                  dur_max=("dur", "max"), project=("project", "first")).reset_index()
    for r in ("succeeded", "partiallySucceeded", "failed", "canceled"):
        daily[r] = g["result"].apply(lambda s, r=r: int((s == r).sum())).to_numpy()
    names = _definition_names()
    summary = pa.table({
        "Organization": pa.array(np.full(len(daily), ORG)), "Project": pa.array(daily["project"].to_numpy()),
        "Definition": pa.array(names[daily["d"].to_numpy()]),
        "Day": pa.array(t0 + (daily["day"].to_numpy() * 86_400_000_000).astype("timedelta64[us]")),
        "DefinitionId": pa.array(daily["d"].to_numpy().astype(np.int64) + 100),
        "Builds": pa.array(daily["builds"].to_numpy().astype(np.int64)),
        "Succeeded": pa.array(daily["succeeded"].to_numpy().astype(np.int64)),
        "PartiallySucceeded": pa.array(daily["partiallySucceeded"].to_numpy().astype(np.int64)),
        "Failed": pa.array(daily["failed"].to_numpy().astype(np.int64)),
        "Canceled": pa.array(daily["canceled"].to_numpy().astype(np.int64)),
        "DurationAvgSeconds": pa.array(daily["dur_avg"].to_numpy()),
        "DurationP50Seconds": pa.array(daily["dur_p50"].to_numpy()),
        "DurationMaxSeconds": pa.array(daily["dur_max"].to_numpy()),
        "SummarizedAt": pa.array(np.full(len(daily), ingested)), "IngestedAt": pa.array(np.full(len(daily), ingested)),
    })
    days = np.repeat(np.arange(DAYS), len(PROJECTS))
    started = t0 + (days * 86_400_000_000 + 3_600_000_000).astype("timedelta64[us]")
    runs = pa.table({
        "RunId": pa.array([f"scale-run-{d:03d}" for d in days.tolist()]), "Source": pa.array(np.full(len(days), "dnceng")),
        "Organization": pa.array(np.full(len(days), ORG)), "Project": pa.array(np.tile(np.array(PROJECTS), DAYS)),
        "StartedAt": pa.array(started), "FinishedAt": pa.array(started + np.timedelta64(600, "s")),
        "WatermarkTo": pa.array(started), "Builds": pa.array(np.full(len(days), f.n // DAYS // len(PROJECTS), np.int64)),
        "Quarantined": pa.array(np.zeros(len(days), np.int64)), "Status": pa.array(np.full(len(days), "succeeded")),
        "Attempts": pa.array(np.ones(len(days), np.int64)), "IngestedAt": pa.array(np.full(len(days), ingested)),
    })
    return summary, runs


def chunks(f: Fleet, size: int = CHUNK_BUILDS) -> Iterator[np.ndarray]:
    for lo in range(0, f.n, size):
        yield np.arange(lo, min(lo + size, f.n))


def build(warehouse, fraction: float, end: datetime, progress=None, seed: int = 14) -> dict[str, int]:
    """Write the store at *fraction* of dnceng's scale through `warehouse.ingest_treated`; returns rows sent per
    table. Memory stays bounded by one chunk of CHUNK_BUILDS builds (200k timeline records)."""
    f = fleet(fraction, end, seed)
    ingested = np.datetime64(end, "us")
    rng = np.random.default_rng(seed + 1)
    sent: dict[str, int] = {}

    def put(table: str, rows: pa.Table, batch: str) -> None:
        sent[table] = sent.get(table, 0) + warehouse.ingest_treated(table, rows, f"scale-{table}-{batch}")

    for i, b in enumerate(chunks(f)):
        put("TimelineBuilds", builds_table(f, b, ingested), str(i))
        put("TimelineRecords", records_table(f, b, ingested, rng), str(i))
        put("TimelineIssues", issues_table(f, b, ingested), str(i))
        runs, results = tests_tables(f, b, ingested, rng)
        put("TestRuns", runs, str(i))
        put("TestResults", results, str(i))
        for name, table in zip(("BuildMetrics", "BuildStages", "MetricSamples", "KnownIssueMatches"),
                               metrics_tables(f, b, ingested, rng), strict=True):
            put(name, table, str(i))
        if progress:
            progress(i + 1, -(-f.n // CHUNK_BUILDS))
    summary, etl_runs = summary_tables(f, ingested)
    put("DailyBuildSummary", summary, "all")
    put("EtlRuns", etl_runs, "all")
    return sent


# --- measuring --------------------------------------------------------------------------------------------------

#: Each stored query's table and time column: the reference is a plain DuckDB count over the same rows.
QUERY_TABLES = {
    "builds_in_period": ("TimelineBuilds", "QueueTime"), "jobs_in_period": ("TimelineRecords", "QueueTime"),
    "records_failed": ("TimelineRecords", "QueueTime"), "top_failing_tasks": ("TimelineRecords", "QueueTime"),
    "issues_in_period": ("TimelineIssues", "QueueTime"), "top_signatures": ("TimelineIssues", "QueueTime"),
    "test_results_in_period": ("TestResults", "QueueTime"), "metric_series": ("MetricSamples", "Timestamp"),
    "freshness": ("TimelineBuilds", None), "etl_runs": ("EtlRuns", None), "alerts": ("Alerts", None),
    "alerts_in_period": ("Alerts", "ChangeAt"), "alerts_to_notify": ("Alerts", None),
    "alert_summaries": ("AlertSummaries", None), "alert_digests": ("AlertDigests", None),
    "retried_jobs_in_period": ("TimelineRecords", "QueueTime"), "job_builds_in_period": ("TimelineRecords", "QueueTime"),
    "test_stats_in_period": ("TestResults", "QueueTime"), "test_hard_commits_in_period": ("TestResults", "QueueTime"),
    "test_outages_in_period": ("TestResults", "QueueTime"), "test_failures_in_period": ("TestResults", "QueueTime"),
}
#: What `ci-telemetry report` and `alerts detect` run (the others serve analysts and the alert workflow).
REPORT_QUERIES = {"builds_in_period", "retried_jobs_in_period", "job_builds_in_period", "issues_in_period",
                  "top_failing_tasks", "top_signatures", "test_stats_in_period", "test_hard_commits_in_period",
                  "test_outages_in_period", "test_failures_in_period", "metric_series", "alerts_in_period", "alerts",
                  "freshness", "etl_runs", "pipeline_usage"}


def config_text(store: Path, reports: Path) -> str:
    # The source is never run: the store is built by `build`; the config only needs one to validate.
    return (f"sources:\n  - kind: simulator\n    name: simulated\nwarehouse:\n  kind: local\n  path: {store}\n  memory_limit: 1GB\n"
            f"reports:\n  out_dir: {reports}\n  monitors: {ROOT / 'config' / 'monitors.yaml'}\n")


def _tree_rss(proc) -> int:
    import psutil

    peak = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            peak = max(peak, p.memory_info().rss)
    return peak


def measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run *argv*; (wall seconds, peak RSS of its largest process in MB, stdout). Fails loudly on a non-zero exit."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    handle = psutil.Process(proc.pid)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(handle))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv[:4])} … failed ({proc.returncode}):\n{err[-3000:]}")
    return seconds, peak // (1 << 20), out


def _step_query(config: str, name: str, days: int, end: str) -> None:
    """(Child process) time one stored query and its reference; print JSON."""
    from etl.analysis.data import Period
    from etl.config import load_config
    from etl.warehouse import open_warehouse, run_query_file

    settings = load_config(Path(config))
    period = Period.last_days(days, end=datetime.fromisoformat(end))
    warehouse = open_warehouse(settings, read_only=True)
    params = {**period.params(), "status": "", "alertKind": "", "channel": "", "metric": "", "platform": ""}
    from etl.warehouse.base import read_query

    text = read_query(name)
    declared = text.split("declare query_parameters(", 1)[1].split(");", 1)[0] if "declare query_parameters(" in text else ""
    params = {k: v for k, v in params.items() if f"{k}:" in declared}
    t0 = time.perf_counter()
    rows = len(run_query_file(warehouse, name, params))
    seconds = time.perf_counter() - t0
    table, column = QUERY_TABLES.get(name, (None, None))
    ref = 0.0
    if table:
        sql = f'SELECT count(*) FROM "{table}"' + (f' WHERE "{column}" >= ? AND "{column}" < ?' if column else "")
        t0 = time.perf_counter()
        warehouse.execute_sql(sql, [period.start, period.end] if column else [])
        ref = time.perf_counter() - t0
    warehouse.close()
    print(json.dumps({"rows": rows, "seconds": seconds, "reference": ref, "table": table}))


#: Builds in an hourly run at dnceng's rate (50,000 builds in 90 days: about 23 an hour).
HOURLY_BUILDS = 25


def _step_hourly(config: str, out: str) -> None:
    """(Child process) time an hourly batch's load (`ingest_staged`, the ETL's local load call) into the store,
    again (its keys now there: a replace), and into a fresh store (the reference); the rows added are deleted
    after. The batch is the store's latest HOURLY_BUILDS builds of TimelineRecords with their BuildId moved past
    the last one: new keys, with the store's own values."""
    from etl.config import load_config
    from etl.schema import load_tables
    from etl.stage.outbox import ROW_GROUP_ROWS, staged_table_writer
    from etl.warehouse.local import LocalWarehouse
    from etl.warehouse.rows import arrow_schema

    settings = load_config(Path(config))
    limit = settings.warehouse.load_memory_limit
    schema = arrow_schema(load_tables()["TimelineRecords"])
    store = LocalWarehouse(settings.path(settings.warehouse.path), memory_limit=limit)
    org, project, last = store.con.execute(
        'SELECT Organization, Project, max(BuildId) FROM "TimelineRecords" GROUP BY ALL ORDER BY 3 DESC LIMIT 1').fetchall()[0]
    rows = store.con.sql(
        'SELECT * FROM "TimelineRecords" WHERE Organization = $org AND Project = $project AND BuildId IN '
        '(SELECT DISTINCT BuildId FROM "TimelineRecords" WHERE Organization = $org AND Project = $project '
        f'ORDER BY BuildId DESC LIMIT {HOURLY_BUILDS})', params={"org": org, "project": project}).to_arrow_table()
    first = pc.min(rows["BuildId"]).as_py()
    rows = rows.set_column(rows.schema.get_field_index("BuildId"), "BuildId",
                           pc.add(pc.subtract(rows["BuildId"], first), last + 1))
    staged = Path(out) / "hourly-TimelineRecords.parquet"
    with staged_table_writer(staged, "TimelineRecords") as writer:
        writer.write_table(rows.select(schema.names).cast(schema), row_group_size=ROW_GROUP_ROWS)

    def load(warehouse: LocalWarehouse) -> float:
        t0 = time.perf_counter()
        with warehouse.bulk():
            warehouse.ingest_staged("TimelineRecords", staged, "hourly")
        return time.perf_counter() - t0

    try:
        new, again = load(store), load(store)
    finally:
        store.con.execute('DELETE FROM "TimelineRecords" WHERE Organization = ? AND Project = ? AND BuildId > ?',
                          [org, project, last])
        store.close()
    fresh_dir = Path(out) / "hourly-fresh"
    shutil.rmtree(fresh_dir, ignore_errors=True)
    fresh_dir.mkdir()
    fresh = LocalWarehouse(fresh_dir / "fresh.duckdb", memory_limit=limit)
    fresh.apply_schema()
    reference = load(fresh)
    fresh.close()
    shutil.rmtree(fresh_dir, ignore_errors=True)
    staged.unlink()
    print(json.dumps({"rows": rows.num_rows, "new": new, "again": again, "reference": reference}))


def _rss_mb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def run_bench(args: argparse.Namespace) -> None:
    out = Path(args.out).resolve()
    store = out / "scale.duckdb"
    config = out / "scale.yaml"
    end = datetime.fromisoformat(args.end) if args.end else datetime.combine(datetime.utcnow().date(), datetime.min.time()) + timedelta(days=1)
    out.mkdir(parents=True, exist_ok=True)
    config.write_text(config_text(store, out / "reports"), encoding="utf-8")
    usage = shutil.disk_usage(out)
    print(f"disk free at {out}: {usage.free / 1e9:.0f} GB")
    if not (args.reuse and store.exists()):
        if store.exists():
            store.unlink()
        from etl.config import load_config
        from etl.warehouse import open_warehouse

        warehouse = open_warehouse(load_config(config))
        warehouse.apply_schema()
        t0 = time.perf_counter()
        last = [t0]

        def progress(i: int, total: int) -> None:
            if time.perf_counter() - last[0] > 30 or i == total:
                last[0] = time.perf_counter()
                print(f"  built {i}/{total} chunks, {last[0] - t0:.0f} s, RSS {_rss_mb()} MB", flush=True)

        sent = build(warehouse, args.fraction, end, progress)
        warehouse.close()
        seconds = time.perf_counter() - t0
        records = sent["TimelineRecords"]
        print(f"built {records:,} TimelineRecords ({sum(sent.values()):,} rows in all) in {seconds:.0f} s: "
              f"{records / seconds:,.0f} records/s; {store.stat().st_size / 1e9:.2f} GB; peak RSS {_rss_mb()} MB")
        (out / "end.txt").write_text(end.isoformat(), encoding="utf-8")
    else:
        end = datetime.fromisoformat((out / "end.txt").read_text(encoding="utf-8").strip())
    if args.build_only:
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    py = sys.executable
    cli = [py, "-c", "from etl.cli import main; main()"]

    print(f"\nperiod: {args.days} days ending {end:%Y-%m-%d}; each step in its own process; RSS = its largest process")
    print(f"{'step':28} {'rows':>10} {'seconds':>8} {'reference':>10} {'ratio':>7} {'peak RSS':>9}")
    worst = 0.0
    for name in sorted(p.stem for p in (ROOT / "kql" / "queries").glob("*.kql")):
        _, rss, text = measure([py, __file__, "_query", str(config), name, str(args.days), end.isoformat()], env)
        r = json.loads(text.strip().splitlines()[-1])
        if name in REPORT_QUERIES:
            worst = max(worst, r["seconds"])
        ratio = f"{r['seconds'] / r['reference']:.1f}×" if r["reference"] > 0 else "—"
        print(f"{name:28} {r['rows']:>10,} {r['seconds']:>8.2f} {r['reference']:>10.3f} {ratio:>7} {rss:>6} MB"
              + ("" if name in REPORT_QUERIES else "  (not run by reports)"), flush=True)
    print(f"slowest report query: {worst:.2f} s (target ≤ 2 s)")

    # The reference for whole commands: a process that opens the store and runs `print 1` (startup and open).
    base, base_rss, _ = measure([*cli, "query", "print 1", "--config", str(config)], env)
    print(f"{'query print 1 (reference)':28} {'':>10} {base:>8.2f} {'':>10} {'':>7} {base_rss:>6} MB")
    seconds, rss, text = measure([*cli, "alerts", "detect", "--days", str(args.days), "--config", str(config)], env)
    print(f"{'alerts detect':28} {'':>10} {seconds:>8.2f} {'':>10} {seconds / base:>6.1f}× {rss:>6} MB  "
          f"{text.strip().splitlines()[-1] if text.strip() else ''}", flush=True)
    reports = out / "reports"
    seconds, rss, _ = measure([*cli, "report", "--days", str(args.days), "--config", str(config), "--out", str(reports)],
                              env)
    run = json.loads((reports / "run.json").read_text(encoding="utf-8"))
    for r in run["reports"]:
        print(f"{'  report ' + r['name']:28} {'':>10} {r['seconds']:>8.2f}" + (f"  error: {r['error']}" if r["error"] else ""))
    print(f"{'report (3 notebooks + index)':28} {'':>10} {seconds:>8.2f} {'':>10} {seconds / base:>6.1f}× {rss:>6} MB "
          "(target ≤ 60 s, ≤ 2048 MB)")
    hourly_step(py, config, out, env)


def hourly_step(py: str, config: Path, out: Path, env: dict[str, str]) -> None:
    """An hourly run's load on this store, beside the same load into a fresh store (the reference)."""
    _, rss, text = measure([py, __file__, "_hourly", str(config), str(out)], env)
    r = json.loads(text.strip().splitlines()[-1])
    print(f"{'hourly load, new builds':28} {r['rows']:>10,} {r['new']:>8.2f} {r['reference']:>10.3f} "
          f"{r['new'] / r['reference']:>6.1f}× {rss:>6} MB  ({HOURLY_BUILDS} builds' TimelineRecords; reference: "
          "into a fresh store)")
    print(f"{'hourly load, the same again':28} {r['rows']:>10,} {r['again']:>8.2f} {r['reference']:>10.3f} "
          f"{r['again'] / r['reference']:>6.1f}× {'':>9}  (every key there already: a replace)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_query":
        _step_query(*sys.argv[2:4], int(sys.argv[4]), sys.argv[5])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_hourly":
        _step_hourly(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=1.0, help="share of dnceng's scale (0.01 for a smoke run)")
    parser.add_argument("--days", type=int, default=28, help="report period in days")
    parser.add_argument("--out", default=str(ROOT / "bench" / ".out" / "scale"), help="store, config and reports")
    parser.add_argument("--end", default="", help="end of the 90 days (ISO; default next UTC midnight)")
    parser.add_argument("--reuse", action="store_true", help="measure the store already built in --out")
    parser.add_argument("--build-only", action="store_true", help="build the store, measure nothing")
    run_bench(parser.parse_args())


if __name__ == "__main__":
    main()
