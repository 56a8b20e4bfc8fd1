"""Azure DevOps bodies rendered from the plan: builds, timelines, test runs and results, artifacts.

Mixed into `SimulatedOrganization`, so the server asks the organization for a body by URL and ids.
Every body is a pure function of the plan and the organization URL the server runs at.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from etl.simulator import catalog as cat
from etl.simulator.catalog import Definition, IssueSpec, guid
from etl.simulator.specs import MAX_ATTEMPTS, BuildPlan, JobPlan, JobRun, StagePlan, TestCase, iso

_IST = timezone(timedelta(hours=5, minutes=30))


class AdoBodies:
    """Renders ADO-shaped JSON; expects the organization's plan attributes below."""

    seed: int
    start: datetime
    project_ids: dict[str, str]
    tests: dict[int, list[TestCase]]
    _runs: dict[int, tuple[BuildPlan, JobPlan, JobRun]]

    # --- rendering: builds -------------------------------------------------------------------

    def _project_ref(self, org_url: str, project: str) -> dict[str, Any]:
        pid = self.project_ids[project]
        return {"id": pid, "name": project, "url": f"{org_url}/_apis/projects/{pid}", "state": "wellFormed",
                "revision": 411, "visibility": "private", "lastUpdateTime": iso(self.start - timedelta(days=200))}

    def _identity(self, org_url: str, person: tuple[str, str]) -> dict[str, Any]:
        pid = guid("identity", person[1])
        return {"displayName": person[0], "url": f"{org_url}/_apis/Identities/{pid}", "id": pid,
                "uniqueName": person[1], "imageUrl": f"{org_url}/_apis/GraphProfile/MemberAvatars/aad.{pid[:8]}",
                "descriptor": f"aad.{pid.replace('-', '')[:24]}"}

    def definition_body(self, org_url: str, project: str, d: Definition) -> dict[str, Any]:
        pid = self.project_ids[project]
        return {"drafts": [], "id": d.id, "name": d.name, "path": d.folder, "type": "build",
                "url": f"{org_url}/{pid}/_apis/build/Definitions/{d.id}?revision=7", "uri": f"vstfs:///Build/Definition/{d.id}",
                "queueStatus": "enabled", "revision": 7, "project": self._project_ref(org_url, project)}

    def build_body(self, org_url: str, b: BuildPlan) -> dict[str, Any]:
        """A build in the shape of `GET _apis/build/builds/{id}`."""
        d, pid = b.definition, self.project_ids[b.project]
        base = f"{org_url}/{pid}/_apis/build/Builds/{b.id}"
        pool_name = cat.POOLS[d.platforms[0]][0]
        body: dict[str, Any] = {
            "_links": {"self": {"href": base}, "web": {"href": f"{org_url}/{pid}/_build/results?buildId={b.id}"},
                       "timeline": {"href": f"{base}/Timeline"}},
            "properties": {}, "tags": ["retried"] if b.rounds > 1 else [],
            "validationResults": [{"result": r, "message": m} for r, m, _ in b.validation],
            "plans": [{"planId": b.plan_id}],
            "triggerInfo": {}, "id": b.id, "buildNumber": b.number, "status": b.status,
            "queueTime": iso(b.queue), "url": base, "definition": self.definition_body(org_url, b.project, d),
            "buildNumberRevision": int(b.number.split(".")[1]), "project": self._project_ref(org_url, b.project),
            "uri": f"vstfs:///Build/Build/{b.id}", "sourceBranch": b.source_branch, "sourceVersion": b.commit,
            "queue": {"id": 1000 + d.id, "name": pool_name, "pool": {"id": 10 + d.id, "name": pool_name,
                                                                    "isHosted": pool_name == "Azure Pipelines"}},
            "priority": "normal", "reason": b.reason,
            "requestedFor": self._identity(org_url, b.person),
            "requestedBy": self._identity(org_url, b.person if b.reason in ("manual", "pullRequest") else cat.SERVICE_IDENTITY),
            "lastChangedDate": iso((b.finish or b.at(b.start_offset) or b.queue) + timedelta(seconds=2.5)),
            "lastChangedBy": self._identity(org_url, cat.SERVICE_IDENTITY),
            "orchestrationPlan": {"planId": b.plan_id},
            "logs": {"id": 0, "type": "Container", "url": f"{base}/logs"},
            "repository": {"id": guid(self.seed, "repo", d.repository), "type": "TfsGit", "name": d.repository,
                           "url": f"{org_url}/{b.project}/_git/{d.repository}", "clean": None, "checkoutSubmodules": False},
            "retainedByRelease": False, "triggeredByBuild": None, "appendCommitMessageToRunName": True,
        }
        if b.start is not None:
            body["startTime"] = iso(b.start)
        if b.finish is not None:
            body["finishTime"] = iso(b.finish)
        if b.result is not None:
            body["result"] = b.result
        if b.pr_number is not None:
            target_short = b.target_branch.removeprefix("refs/heads/")
            if b.pr_style in ("both", "parameters"):
                body["parameters"] = json.dumps({
                    "system.pullRequest.pullRequestId": str(b.pr_number * 7 + 3),
                    "system.pullRequest.pullRequestNumber": str(b.pr_number),
                    "system.pullRequest.sourceBranch": b.pr_source,
                    "system.pullRequest.targetBranch": b.target_branch,
                    "system.pullRequest.sourceRepositoryUri": body["repository"]["url"],
                })
            if b.pr_style in ("both", "triggerInfo"):
                body["triggerInfo"] = {"pr.number": str(b.pr_number), "pr.isFork": "False",
                                       "pr.triggerRepository": guid(self.seed, "repo", d.repository),
                                       "pr.triggerRepository.Type": "TfsGit", "pr.sourceBranch": b.pr_source,
                                       "pr.sourceSha": b.commit, "pr.targetBranch": target_short,
                                       "pr.title": f"Fix {d.repository} issue #{b.pr_number}"}
        elif b.reason == "schedule":
            body["triggerInfo"] = {"scheduleName": "Nightly"}
        return body

    # --- rendering: timelines ----------------------------------------------------------------

    def timeline_ids(self, b: BuildPlan) -> list[str]:
        """The latest timeline id, then every previous-attempt timeline id."""
        return [b.timeline_id] + [tid for tid, _ in b.round_timelines]

    def timeline_body(self, org_url: str, b: BuildPlan, timeline_id: str | None = None) -> dict[str, Any] | None:
        """`GET .../timeline[/{id}]`; None when the build has no such timeline."""
        tid = timeline_id or b.timeline_id
        pid = self.project_ids[b.project]
        if tid.lower() == b.timeline_id:
            round_, kind = b.rounds, "full"
        else:
            match = [(r, k) for r, (t, k) in enumerate(b.round_timelines, start=1) if t == tid.lower()]
            if not match:
                return None
            round_, kind = match[0]
        if b.kind in ("config", "cancel_early"):
            records = None
        elif b.kind == "inprogress":
            records = self._inprogress_records(b)
        else:
            records = self._records(org_url, b, round_, kind)
        changed = max((r["changeId"] for r in records), default=1) if records else 1
        last = b.finish or b.at(b.start_offset) or b.queue
        return {"records": records, "lastChangedBy": "00000002-0000-8888-8000-000000000000",
                "lastChangedOn": iso(last), "id": tid, "changeId": changed,
                "url": f"{org_url}/{pid}/_apis/build/builds/{b.id}/Timeline/{tid}"}

    def _records(self, org_url: str, b: BuildPlan, round_: int, kind: str) -> list[dict[str, Any]]:
        pid = self.project_ids[b.project]
        records: list[dict[str, Any]] = []
        timeline_of = {r: tid for r, (tid, _) in enumerate(b.round_timelines, start=1)}
        retried_now = set()
        if kind == "patch":
            # A patch timeline holds only the subtrees of the jobs that were rerun after this round.
            retried_now = {job.identifier for job in b.jobs() if any(r.round == round_ + 1 for r in job.runs)}
        change = 1
        for stage in b.stages:
            runs = [(job, job.run_as_of(round_)) for job in stage.jobs]
            ran = [(job, run) for job, run in runs if run is not None]
            if kind == "patch":
                for job, run in ran:
                    if job.identifier in retried_now:
                        records.extend(self._job_records(org_url, pid, b, stage, job, run, timeline_of))
                continue
            results = [run.result for _, run in ran]
            if not ran:
                stage_result = "canceled" if b.result == "canceled" else "skipped"
            elif "canceled" in results:
                stage_result = "canceled"
            elif "failed" in results:
                stage_result = "failed"
            elif "succeededWithIssues" in results:
                stage_result = "succeededWithIssues"
            else:
                stage_result = "succeeded"
            start = min((run.start for _, run in ran), default=None)
            finish = max((run.finish for _, run in ran), default=None)
            change += 1
            records.append(self._record(
                b, stage.record_id, None, "Stage", stage.name, stage.name, stage.order, stage_result,
                b.at(start), b.at(finish), None, None, 1, [], change))
            for order, (job, run) in enumerate(ran, start=1):
                change += 1
                records.append(self._record(
                    b, job.phase_id, stage.record_id, "Phase", job.template.name, job.identifier, order, run.result,
                    b.at(run.start), b.at(run.finish), None, None, 1, [], change))
                records.extend(self._job_records(org_url, pid, b, stage, job, run, timeline_of))
            if stage.checkpoint_id and ran:
                records.append(self._record(
                    b, stage.checkpoint_id, stage.record_id, "Checkpoint", "Checkpoint", None, 1, "succeeded",
                    b.at(start), b.at(start + 1.5), None, None, 1, [], change))
        return records

    def _record(self, b: BuildPlan, rid: str, parent: str | None, typ: str, name: str, identifier: str | None,
                order: int, result: str | None, start: datetime | None, finish: datetime | None,
                worker: str | None, log: dict[str, Any] | None, attempt: int, previous: list[dict[str, Any]],
                change: int, *, task: tuple[str, str, str] | None = None, issues: list[IssueSpec] | None = None,
                result_code: str | None = None) -> dict[str, Any]:
        errors = sum(1 for i in issues or [] if i.type == "error")
        record: dict[str, Any] = {
            "previousAttempts": previous, "id": rid, "parentId": parent, "type": typ, "name": name,
            "startTime": iso(start), "finishTime": iso(finish), "currentOperation": None, "percentComplete": None,
            "state": "completed", "result": result, "resultCode": result_code, "changeId": change,
            "lastModified": iso(finish) if typ in ("Job", "Stage") and finish else "0001-01-01T00:00:00",
            "workerName": worker, "order": order, "details": None, "errorCount": errors,
            "warningCount": len(issues or []) - errors, "url": None, "log": log,
            "task": {"id": task[0], "name": task[1], "version": task[2]} if task else None,
            "attempt": attempt, "identifier": identifier,
        }
        if issues:
            record["issues"] = [{"type": i.type, "category": i.issue_category,
                                 "message": i.message.replace("{build}", str(b.id)), "data": dict(i.data)}
                                for i in issues]
        return record

    def _job_records(self, org_url: str, pid: str, b: BuildPlan, stage: StagePlan, job: JobPlan, run: JobRun,
                     timeline_of: dict[int, str]) -> list[dict[str, Any]]:
        logs = f"{org_url}/{pid}/_apis/build/builds/{b.id}/logs"
        jobs = b.jobs()
        position = next(i for i, j in enumerate(jobs) if j is job)
        # Log ids: one block per job, room for every attempt, so ids never collide across attempts.
        log_base = 3 + sum(len(j.tasks) + 1 for j in jobs[:position]) * MAX_ATTEMPTS
        log_base += (run.attempt - 1) * (len(job.tasks) + 1)
        earlier = [r for r in job.runs if r.attempt < run.attempt]
        prev = [{"attempt": r.attempt, "timelineId": timeline_of[r.round], "recordId": r.record_id} for r in earlier]
        out = [self._record(
            b, run.record_id, job.phase_id, "Job", job.template.name, f"{job.identifier}.__default", 1, run.result,
            b.at(run.start), b.at(run.finish), run.worker, {"id": log_base, "type": "Container", "url": f"{logs}/{log_base}"},
            run.attempt, prev, 10 + run.attempt, issues=run.issues.get(-1))]
        t = run.start + 1.0
        for i, task in enumerate(job.tasks[: run.n_tasks]):
            duration = run.durations[i]
            if run.fail_index is not None and i == run.fail_index:
                result = run.fail_result
            elif run.fail_index is not None and i > run.fail_index and not task.always:
                result = "skipped"
            elif i == run.swi_index:
                result = "succeededWithIssues"
            else:
                result = "succeeded"
            skipped = result == "skipped"
            rid = guid(b.seed, "task", job.identifier, run.attempt, i)
            task_prev = [{"attempt": r.attempt, "timelineId": timeline_of[r.round],
                          "recordId": guid(b.seed, "task", job.identifier, r.attempt, i)} for r in earlier]
            log_id = log_base + 1 + i
            out.append(self._record(
                b, rid, run.record_id, "Task", task.name, None, i + 1, result, b.at(t), b.at(t + duration),
                run.worker, None if skipped else {"id": log_id, "type": "Container", "url": f"{logs}/{log_id}"},
                run.attempt, task_prev, 10 + run.attempt, task=task.task, issues=run.issues.get(i),
                result_code="Evaluating: succeeded()\r\nResult: False\r\n" if skipped else None))
            t += duration
        return out

    def _inprogress_records(self, b: BuildPlan) -> list[dict[str, Any]]:
        records = []
        for stage in b.stages:
            first = stage.order == 1
            rec = self._record(b, stage.record_id, None, "Stage", stage.name, stage.name, stage.order, None,
                               b.at(b.start_offset) if first else None, None, None, None, 1, [], 1)
            rec["state"] = "inProgress" if first else "pending"
            records.append(rec)
        return records

    # --- rendering: tests --------------------------------------------------------------------

    def test_run_body(self, org_url: str, b: BuildPlan, job: JobPlan, run: JobRun) -> dict[str, Any]:
        """A test run with run details and its `pipelineReference`."""
        tr = run.test_run
        pid = self.project_ids[b.project]
        counts: dict[str, int] = defaultdict(int)
        for i, test in enumerate(self.tests[b.definition.id]):
            counts[self._outcome(test, tr.outcomes.get(i))] += 1
        counts["Passed"] += tr.extra
        total = sum(counts.values())
        stage = job.identifier.split(".")[0]
        return {
            "id": tr.id, "name": f"{b.definition.name} {job.template.name} (attempt {run.attempt})",
            "url": f"{org_url}/{pid}/_apis/test/Runs/{tr.id}", "isAutomated": True, "state": "Completed",
            "build": {"id": str(b.id), "name": b.number, "url": f"{org_url}/{pid}/_apis/build/Builds/{b.id}"},
            "buildConfiguration": {"id": b.id, "number": b.number, "uri": f"vstfs:///Build/Build/{b.id}",
                                   "flavor": "Release", "platform": cat.PLATFORM_ARCH[job.template.platform],
                                   "buildDefinitionId": b.definition.id, "branchName": b.source_branch,
                                   "sourceVersion": b.commit},
            "startedDate": iso(b.at(tr.started)), "completedDate": iso(b.at(tr.completed)),
            "totalTests": total, "passedTests": counts.get("Passed", 0), "unanalyzedTests": counts.get("Failed", 0),
            "incompleteTests": 0, "notApplicableTests": 0, "postProcessState": "Complete",
            "project": {"id": pid, "name": b.project},
            "webAccessUrl": f"{org_url}/{b.project}/_TestManagement/Runs?runId={tr.id}",
            "pipelineReference": {
                "pipelineId": b.id,
                "stageReference": {"stageName": stage, "attempt": 1},
                "phaseReference": {"phaseName": job.identifier.split(".")[1], "attempt": run.attempt},
                "jobReference": {"jobName": "__default", "attempt": run.attempt},
            },
            "runStatistics": [{"state": "Completed", "outcome": k, "count": v} for k, v in sorted(counts.items()) if v],
        }

    @staticmethod
    def _outcome(test: TestCase, override: tuple[str, str] | None) -> str:
        if override is not None:
            return "Passed" if override[0] == "R" else "Failed"
        return "NotExecuted" if test.kind == "ignored" else "Passed"

    def test_results(self, org_url: str, run_id: int, *, sub_results: bool) -> list[dict[str, Any]] | None:
        """Every result of a test run (None when there is no such run)."""
        found = self._runs.get(run_id)
        if found is None:
            return None
        b, job, run = found
        tr = run.test_run
        pid = self.project_ids[b.project]
        out = []
        t = tr.started
        span = max(tr.completed - tr.started, 1.0)
        tests = self.tests[b.definition.id]
        for i, test in enumerate(tests):
            rng = random.Random(run.seed * 1_000_003 + i)
            override = tr.outcomes.get(i)
            outcome = self._outcome(test, override)
            duration = 0.0 if outcome == "NotExecuted" else round(rng.uniform(5, span * 1000 / len(tests)), 1)
            rid = 100000 + i
            result: dict[str, Any] = {
                "id": rid, "project": {"id": pid, "name": b.project},
                "startedDate": iso(b.at(t)), "completedDate": iso(b.at(t + duration / 1000)),
                "durationInMs": duration, "outcome": outcome, "revision": 1, "state": "Completed",
                "testCase": {"name": test.name.rsplit(".", 1)[-1]},
                "testRun": {"id": str(tr.id), "name": f"{b.definition.name} {job.template.name}",
                            "url": f"{org_url}/{pid}/_apis/test/Runs/{tr.id}"},
                "build": {"id": str(b.id), "name": b.number, "url": f"{org_url}/{pid}/_apis/build/Builds/{b.id}"},
                "url": f"{org_url}/{pid}/_apis/test/Runs/{tr.id}/Results/{rid}", "failureType": "None",
                "automatedTestName": test.name, "automatedTestStorage": test.storage,
                "automatedTestType": {"dotnet": "MSTest", "node": "JUnit", "python": "JUnit", "cpp": "CTest"}[
                    b.definition.language],
                "testCaseTitle": test.name.rsplit(".", 1)[-1], "priority": 0, "customFields": [],
            }
            if override is not None:
                code, message = override
                if code in ("F", "RF"):
                    result["errorMessage"] = message
                    result["stackTrace"] = f"   at {test.name}() in {cat.source_path(job.template.platform, 'tests', 'Tests.cs')}:line {rng.randint(10, 500)}"
                if code in ("R", "RF"):
                    result["resultGroupType"] = "rerun"
                    if sub_results:
                        second = "Passed" if code == "R" else "Failed"
                        result["subResults"] = [
                            {"id": 1, "displayName": f"{test.name} (attempt 1)", "outcome": "Failed",
                             "errorMessage": message, "durationInMs": duration / 2,
                             "startedDate": iso(b.at(t)), "completedDate": iso(b.at(t + duration / 2000))},
                            {"id": 2, "displayName": f"{test.name} (attempt 2)", "outcome": second,
                             "durationInMs": duration / 2, "startedDate": iso(b.at(t + duration / 2000)),
                             "completedDate": iso(b.at(t + duration / 1000))},
                        ]
            else:
                result["resultGroupType"] = "none"
            out.append(result)
            t += duration / 1000
        out.extend(self._data_rows(org_url, b, job, run, len(tests), t))
        return out

    def _data_rows(self, org_url: str, b: BuildPlan, job: JobPlan, run: JobRun, first: int,
                   t: float) -> list[dict[str, Any]]:
        """The extra rows of a large run: one data-driven test, every row passing in 2 ms."""
        tr = run.test_run
        if not tr.extra:
            return []
        pid = self.project_ids[b.project]
        test = next(x for x in self.tests[b.definition.id] if x.kind == "stable")
        language = b.definition.language
        kind = {"dotnet": "MSTest", "node": "JUnit", "python": "JUnit", "cpp": "CTest"}[language]
        run_ref = {"id": str(tr.id), "name": f"{b.definition.name} {job.template.name}",
                   "url": f"{org_url}/{pid}/_apis/test/Runs/{tr.id}"}
        build_ref = {"id": str(b.id), "name": b.number, "url": f"{org_url}/{pid}/_apis/build/Builds/{b.id}"}
        rows = []
        for k in range(tr.extra):
            rid = 100000 + first + k
            name = f"{test.name}(row: {k + 1})"
            at = t + k * 0.002
            rows.append({
                "id": rid, "project": {"id": pid, "name": b.project}, "startedDate": iso(b.at(at)),
                "completedDate": iso(b.at(at + 0.002)), "durationInMs": 2.0, "outcome": "Passed", "revision": 1,
                "state": "Completed", "testCase": {"name": name.rsplit(".", 1)[-1]}, "testRun": run_ref,
                "build": build_ref, "url": f"{org_url}/{pid}/_apis/test/Runs/{tr.id}/Results/{rid}",
                "failureType": "None", "automatedTestName": name, "automatedTestStorage": test.storage,
                "automatedTestType": kind, "testCaseTitle": name.rsplit(".", 1)[-1], "priority": 0,
                "customFields": [], "resultGroupType": "none",
            })
        return rows

    def test_runs_for_build(self, org_url: str, b: BuildPlan) -> list[dict[str, Any]]:
        runs = sorted(self.test_runs_of(b), key=lambda jr: jr[1].test_run.id)
        return [self.test_run_body(org_url, b, job, run) for job, run in runs]

    def test_run_by_id(self, org_url: str, run_id: int) -> tuple[str, dict[str, Any]] | None:
        found = self._runs.get(run_id)
        if found is None:
            return None
        b, job, run = found
        return b.project, self.test_run_body(org_url, b, job, run)

    # --- rendering: metrics artifacts ---------------------------------------------------------

    def metrics_documents(self, b: BuildPlan) -> dict[str, dict[str, Any]]:
        """The documents of a build's `telemetry` artifact, by file name (empty when it uploaded none)."""
        m = b.metrics
        if m is None:
            return {}
        rng = random.Random(m.seed)
        end = b.at(m.end_offset)
        duration = round(m.duration * m.duration_factor, 3)
        peak = round(m.peak_memory * m.memory_factor, 2)
        start = end - timedelta(seconds=duration)
        os_info, interface, cores, total_mb = cat.OS_INFO[m.platform]
        docs: dict[str, dict[str, Any]] = {}
        if m.metrics_json:
            step = duration / m.n_samples
            peak_at = rng.randrange(m.n_samples)
            # The format's own types on half the builds: epoch-second sample times, `+hhmm` session offsets.
            native = m.seed % 2 == 0
            stamp = _epoch_seconds if native else iso
            session_time = _with_offset if native else iso
            samples = [{"timestamp": stamp(start + timedelta(seconds=round(step * (k + 0.5), 3))),
                        "memory_mb": peak if k == peak_at else round(peak * rng.uniform(0.35, 0.95), 2)}
                       for k in range(m.n_samples)]
            weights = [rng.uniform(0.5, 2.0) for _ in m.stages]
            ran = [w if status != "skipped" else 0.0 for w, (_, status) in zip(weights, m.stages, strict=True)]
            stages = [{"name": name, "status": status, "duration": round(duration * w / max(sum(ran), 1e-9), 3)}
                      for (name, status), w in zip(m.stages, ran, strict=True)]
            diff_d = round((m.duration_factor - 1) * 100 + rng.gauss(0, 3), 2)
            diff_m = round((m.memory_factor - 1) * 100 + rng.gauss(0, 3), 2)
            regressions = [name for name, diff in (("duration", diff_d), ("memory", diff_m)) if diff > 15]
            failure = m.failure
            docs["metrics.json"] = {
                "build_session": {"start_time": session_time(start), "end_time": session_time(end),
                                  "duration_seconds": duration,
                                  "hostname": cat.POOLS[m.platform][1].format(n=rng.randint(1, 48)),
                                  "os_info": os_info, "cpu_cores": cores, "memory_total_mb": total_mb,
                                  "disk_available_gb": round(rng.uniform(14, 120), 1)},
                "memory_metrics": {"peak_usage_mb": peak, "samples": samples},
                "network_metrics": {"bytes_downloaded": rng.randint(200_000_000, 2_500_000_000),
                                    "bytes_uploaded": rng.randint(5_000_000, 400_000_000),
                                    "interface": interface, "connection_count": rng.randint(20, 900)},
                "build_metrics": {"failure_category": failure[0] if failure else None,
                                  "failure_stage": failure[1] if failure else None,
                                  "failure_reason": failure[2].replace("{build}", str(b.id)) if failure else None,
                                  "packages_built": rng.randint(8, 60) if not failure else rng.randint(0, 8),
                                  "packages_failed": 0 if not failure else rng.randint(1, 4),
                                  "build_stages": stages},
                "performance_metrics": {"regressions_detected": regressions,
                                        "baseline_comparison": {"duration_diff_percent": diff_d,
                                                                "memory_diff_percent": diff_m},
                                        # Flat on purpose: only duration and peak memory carry planted changes.
                                        "performance_score": round(min(100.0, rng.gauss(92, 2)), 1)},
            }
        if m.summary_json:
            docs["build-summary.json"] = {
                "package": b.definition.package,
                "version": f"{b.number.split('.')[0][2:6]}.{b.number.split('.')[1]}.0",
                "telemetry": {"build_duration_seconds": round(rng.uniform(300, 340), 3),
                              "peak_memory_mb": round(rng.uniform(900, 1000), 2),
                              "cpu_seconds": round(rng.uniform(2000, 2600), 1),
                              "artifact_size_mb": round(rng.uniform(120, 130), 2),
                              "test_count": len(self.tests[b.definition.id]),
                              # Last, so the figures above keep their values: the format's network figures.
                              "network_downloaded_bytes": rng.randint(200_000_000, 2_500_000_000),
                              "network_uploaded_bytes": rng.randint(5_000_000, 400_000_000),
                              "failure_category": (m.failure[0] if m.failure else "")},
            }
        return docs

    def artifact_zip(self, b: BuildPlan) -> bytes | None:
        """The `telemetry` artifact as ADO serves it: a zip with the files under `telemetry/`."""
        docs = self.metrics_documents(b)
        if not docs:
            return None
        stamp = b.at(b.metrics.end_offset)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, doc in docs.items():
                info = zipfile.ZipInfo(f"telemetry/{name}", date_time=stamp.timetuple()[:6])
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, json.dumps(doc, indent=2))
        return buffer.getvalue()


def _epoch_seconds(value: datetime) -> int | float:
    """A UTC time as Unix epoch seconds, an integer when whole (the build-telemetry format's sample time)."""
    seconds = round(value.replace(tzinfo=value.tzinfo or UTC).timestamp(), 3)
    return int(seconds) if seconds.is_integer() else seconds


def _with_offset(value: datetime) -> str:
    """A UTC time as ISO 8601 local time at +05:30 written `+0530`, as the format's guide shows its times."""
    local = value.replace(tzinfo=value.tzinfo or UTC).astimezone(_IST)
    return local.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + local.strftime("%z")
