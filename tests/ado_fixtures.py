"""A small hand-built Azure DevOps organization exercising every path the extractor reads, and its row counts.

Served by the simulator (`etl.simulator.handbuilt.serve_organization`), so tests that need exact
payloads run against the same HTTP layer, paging and faults as the rest of the suite.
"""

from __future__ import annotations

import json
from datetime import datetime

from etl.simulator.handbuilt import HandBuiltOrganization


def latest_timeline_id(build_id: int) -> str:
    """The latest timeline's id (a GUID, as Azure DevOps and the simulator's routes require)."""
    return f"00000000-0000-0000-0000-{build_id:012d}"


def previous_timeline_id(build_id: int) -> str:
    """The id of the previous attempt's timeline of a retried build."""
    return f"00000000-0000-0000-0001-{build_id:012d}"


def _metrics_zip(build_id: int, end: str) -> bytes:
    import io
    import zipfile

    doc = {
        "build_session": {"start_time": "2026-11-01T00:00:00Z", "end_time": end, "duration_seconds": 120.5,
                          "hostname": "build-agent-07.corp.example", "os_info": "Linux-6.8-x86_64",
                          "cpu_cores": 8, "memory_total_mb": 32000.0, "disk_available_gb": 120.5},
        "memory_metrics": {"peak_usage_mb": 2048.0, "samples": [
            {"timestamp": "2026-11-01T00:00:10Z", "memory_mb": 1000.0},
            {"timestamp": "2026-11-01T00:00:20Z", "memory_mb": 2048.0}]},
        "network_metrics": {"bytes_downloaded": 1000, "bytes_uploaded": 10, "interface": "eth0",
                            "connection_count": 3},
        "build_metrics": {"failure_category": None, "failure_stage": None, "failure_reason": None,
                          "packages_built": 4, "packages_failed": 0,
                          "build_stages": [{"name": "restore", "status": "success", "duration": 20.0},
                                           {"name": "build", "status": "success", "duration": 100.5}]},
        "performance_metrics": {"regressions_detected": [], "performance_score": 97.5,
                                "baseline_comparison": {"duration_diff_percent": 1.5, "memory_diff_percent": -2.0}},
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("telemetry/metrics.json", json.dumps(doc))
    return buf.getvalue()


def synthetic_organization(projects: tuple[str, ...] = ("alpha",), builds: int = 4, jobs: int = 2, tasks: int = 3,
                           first_id: int = 100, organization: str = "handbuilt") -> tuple[HandBuiltOrganization, dict[str, int]]:
    """A small organization exercising every path (retries, PRs, tests with reruns, metrics); and its row counts.

    Every third build (index 0, 3, ...) has job 0 retried: the latest timeline holds attempt 2 and
    points at a partial previous timeline with attempt 1 (which fails with one error issue) and an
    unchanged copy of the stage record (one execution, so one row).
    """
    from datetime import timedelta

    org = HandBuiltOrganization(organization)
    counts = dict.fromkeys(("TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults",
                            "BuildMetrics", "BuildStages", "MetricSamples", "PipelineSteps"), 0)
    start = datetime(2026, 11, 1, 6, 0, 0)
    bid = first_id
    for project in projects:
        org.builds[project] = []
        for i in range(builds):
            bid += 1
            finish = (start + timedelta(hours=i, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.1234567Z")
            pr = i % 2 == 1
            build = {
                "id": bid, "buildNumber": f"2026110{i}.1", "status": "completed",
                "result": "failed" if i % 3 == 0 else "succeeded",
                "reason": "pullRequest" if pr else "individualCI",
                "queueTime": (start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S.1234567Z"),
                "startTime": (start + timedelta(hours=i, minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "finishTime": finish,
                "sourceBranch": f"refs/pull/{40 + i}/merge" if pr else "refs/heads/main",
                "sourceVersion": f"{bid:040x}",
                "definition": {"id": 7, "name": "main", "path": "\\ci"},
                "project": {"id": "p-guid", "name": project},
                "repository": {"id": "r", "name": "repo", "type": "TfsGit"},
                "queue": {"id": 3, "name": "Azure Pipelines"},
                "requestedFor": {"displayName": "Alice Example", "uniqueName": "alice@example.com",
                                 "imageUrl": "https://x/avatar"},
                "tags": ["b", "a"],
                "parameters": json.dumps({"system.pullRequest.targetBranch": "main",
                                          "system.pullRequest.pullRequestNumber": str(40 + i)}) if pr else None,
                "triggerInfo": {"pr.number": str(40 + i)} if pr else {},
                "validationResults": [{"result": "warning", "message": "YAML uses a deprecated task"}]
                if i == 0 else [],
                "_links": {"web": {"href": f"https://dev.example/{project}/_build/results?buildId={bid}"}},
                "uri": f"vstfs:///Build/Build/{bid}",
            }
            org.builds[project].append(build)
            retried = i % 3 == 0
            stage = {"id": f"s-{bid}", "parentId": None, "type": "Stage", "name": "Build", "order": 1,
                     "state": "completed", "result": build["result"], "attempt": 1,
                     "startTime": build["startTime"], "finishTime": finish, "identifier": "Build"}
            phase = {"id": f"p-{bid}", "parentId": f"s-{bid}", "type": "Phase", "name": "Build", "order": 1,
                     "state": "completed", "result": build["result"], "attempt": 1}
            records = [stage, phase]
            previous_records = [dict(stage)]
            for j in range(jobs):
                job = {"id": f"j{j}-{bid}", "parentId": f"p-{bid}", "type": "Job", "name": f"Job {j}",
                       "order": j + 1, "state": "completed", "result": "succeeded", "attempt": 1,
                       "workerName": "agent-host-01", "startTime": build["startTime"], "finishTime": finish}
                if retried and j == 0:
                    tid = previous_timeline_id(bid)
                    job["attempt"] = 2
                    job["previousAttempts"] = [{"attempt": 1, "timelineId": tid, "recordId": f"j0a1-{bid}"}]
                    old = {**job, "id": f"j0a1-{bid}", "attempt": 1, "result": "failed", "previousAttempts": []}
                    previous_records.append(old)
                    previous_records.append({
                        "id": f"t-a1-{bid}", "parentId": old["id"], "type": "Task", "name": "Run tests",
                        "order": 1, "state": "completed", "result": "failed", "attempt": 1,
                        "task": {"id": "guid-task", "name": "CmdLine", "version": "2.0.0"},
                        "issues": [{"type": "error", "category": "General",
                                    "message": "error: cannot open /home/alice/src/app.c (agent-host-01)",
                                    "data": {"logFileLineNumber": "42", "type": "error"}}],
                        "errorCount": 1, "log": {"id": 9, "url": "https://dev.example/logs/9"}})
                records.append(job)
                for k in range(tasks):
                    records.append({"id": f"t{j}.{k}-{bid}", "parentId": job["id"], "type": "Task",
                                    "name": f"Step {k}", "order": k + 1, "state": "completed",
                                    "result": "succeeded", "attempt": job["attempt"],
                                    "task": {"id": "guid-task", "name": "CmdLine", "version": "2.0.0"},
                                    "startTime": build["startTime"], "finishTime": finish})
            org.timelines[bid] = {"id": latest_timeline_id(bid), "changeId": 5, "records": records}
            counts["TimelineRecords"] += len(records)
            counts["TimelineIssues"] += len(build["validationResults"])
            if retried:
                org.previous_timelines[(bid, previous_timeline_id(bid))] = {"id": previous_timeline_id(bid), "records": previous_records}
                counts["TimelineRecords"] += 2  # the old job and its task; the stage copy is the same execution
                counts["TimelineIssues"] += 1
            run_id = bid * 10
            org.test_runs[bid] = [{
                "id": run_id, "name": "unit tests", "url": f"https://dev.example/{project}/_apis/test/Runs/{run_id}",
                "state": "Completed", "totalTests": 3, "passedTests": 2,
                "startedDate": build["startTime"], "completedDate": finish,
                "pipelineReference": {"pipelineId": bid, "stageReference": {"stageName": "Build", "attempt": 1},
                                      "phaseReference": {"phaseName": "Build", "attempt": 1},
                                      "jobReference": {"jobName": "Job 1", "attempt": 1}},
            }]
            org.results[run_id] = [
                {"id": 100000, "outcome": "Passed", "automatedTestName": "Suite.Passes", "durationInMs": 12.5},
                {"id": 100001, "outcome": "Failed", "automatedTestName": "Suite.Fails",
                 "errorMessage": "Assert failed for bob@example.com", "durationInMs": 3},
                {"id": 100002, "outcome": "Passed", "automatedTestName": "Suite.Flaky", "resultGroupType": "rerun",
                 "subResults": [{"id": 1, "outcome": "Failed"}, {"id": 2, "outcome": "Passed"}]},
            ]
            counts["TimelineBuilds"] += 1
            counts["PipelineSteps"] += 1  # every task is CmdLine 2.x: one step identity per build
            counts["TestRuns"] += 1
            counts["TestResults"] += 3
            org.artifacts[(bid, "telemetry")] = _metrics_zip(bid, finish)
            counts["BuildMetrics"] += 1
            counts["BuildStages"] += 2
            counts["MetricSamples"] += 6 + 2 + 2  # per-build figures + memory samples + stage durations
    return org, counts
