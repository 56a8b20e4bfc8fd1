"""The simulated organization rendered as GitHub Actions: repositories, workflows, runs, jobs, artifacts.

The same plans as the Azure DevOps simulator (`SimulatedOrganization`): a project is a repository,
a definition a workflow (`.github/workflows/<name>.yml`) whose build and test jobs are matrix jobs,
a build a workflow run, a retry round a `run_attempt`, a job attempt a job with its steps, the
planted issues of a failed job its check-run annotations, a test run a JUnit XML artifact and the
metrics documents a `telemetry-data` artifact. Every body is rendered on demand from the plans;
`ground_truth()` counts from the same plans what the ETL must load.

The workflows' steps use actions at deprecated versions (`actions/checkout@v2`,
`actions/upload-artifact@v3`, `actions/setup-node@v3`), unpinned ones (`@main`, `@master`), a local
action (`./…`) and a Docker action (`docker://…`), so pipeline-usage reports have all of them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import quoteattr

import yaml

from etl.simulator import catalog as cat
from etl.simulator.catalog import Definition, TaskTemplate, hexdigest
from etl.simulator.model import SimulatedOrganization, count_metrics_document
from etl.simulator.specs import BuildPlan, JobPlan, JobRun

RUNNER_STEPS = {"init": "Set up job", "finalize": "Complete job"}
_SETUP = {
    "dotnet": {"name": "Install .NET SDK", "uses": "actions/setup-dotnet@v4", "with": {"dotnet-version": "8.0.x"}},
    "node": {"name": "Use Node.js 20.x", "uses": "actions/setup-node@v3", "with": {"node-version": "20"}},
    "python": {"name": "Use Python 3.12", "uses": "./.github/actions/setup-python-cached"},
    "cpp": {"name": "Configure CMake", "uses": "jwlawson/actions-setup-cmake@master"},
}
_RESTORE = {"dotnet": "dotnet restore", "node": "npm ci", "python": "pip install -r requirements.txt",
            "cpp": None}
_BUILD = {"dotnet": "dotnet build -c Release --no-restore", "node": "npm run build",
          "python": "python -m build", "cpp": "cmake --build build --config Release"}
_TEST = {"dotnet": "dotnet test -c Release --logger junit", "node": "npm test -- --reporters=jest-junit",
         "python": "pytest --junitxml=test-results/junit.xml", "cpp": "ctest --test-dir build --output-junit junit.xml"}
CONCLUSION = {"succeeded": "success", "partiallySucceeded": "success", "succeededWithIssues": "success",
              "failed": "failure", "canceled": "cancelled"}
EVENTS = {"individualCI": "push", "batchedCI": "push", "pullRequest": "pull_request", "schedule": "schedule",
          "manual": "workflow_dispatch"}
#: Runs in the first days of the history uploaded artifacts that have expired since.
EXPIRED_DAYS = 2
RUN_ID_BASE = 9_100_000_000


def gh_iso(value: datetime | None) -> str | None:
    """GitHub's timestamp style: whole seconds, `Z`."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def _number(*parts: object, digits: int = 11) -> int:
    """A stable positive id of at most *digits* hex digits."""
    return int(hexdigest(*parts)[:digits], 16)


def _login(person: tuple[str, str]) -> str:
    if person == cat.SERVICE_IDENTITY:
        return "github-actions[bot]"
    return person[0].lower().replace(" ", "-")


@dataclass(frozen=True)
class GhStep:
    """One step of a workflow job: its YAML, and its name as the jobs API shows it (None: a runner step)."""

    kind: str
    api_name: str
    yaml: dict[str, Any] | None
    #: (TaskName, TaskVersion) the ETL must record for the step.
    usage: tuple[str | None, str | None]


def _usage(step: dict[str, Any]) -> tuple[str | None, str | None]:
    uses = step.get("uses")
    if uses is None:
        return ("run", None)
    if uses.startswith("docker://"):
        image, _, tag = uses[len("docker://"):].rpartition(":")
        return (f"docker://{image}", tag)
    if uses.startswith("./"):
        return (uses, None)
    name, _, ref = uses.partition("@")
    return (name, ref)


def _default_name(step: dict[str, Any]) -> str:
    if step.get("name"):
        return str(step["name"])
    if step.get("uses"):
        return f"Run {step['uses']}"
    return f"Run {str(step['run']).splitlines()[0]}"


def gh_steps(d: Definition, tasks: list[TaskTemplate], kind: str) -> list[GhStep]:
    """The GitHub steps of a job: one per Azure DevOps task of the plan, so durations and failures carry over."""
    lang = d.language
    checkout = {"uses": "actions/checkout@v2" if lang in ("dotnet", "cpp") else "actions/checkout@v4"}
    arch = "${{ matrix.arch }}"
    out: list[GhStep] = []
    for task in tasks:
        step: dict[str, Any] | None
        if task.kind in RUNNER_STEPS:
            out.append(GhStep(task.kind, RUNNER_STEPS[task.kind], None, (None, None)))
            continue
        if task.kind == "postcheckout":
            out.append(GhStep(task.kind, f"Post {_default_name(checkout)}", None, _usage(checkout)))
            continue
        step = {
            "checkout": checkout,
            "setup": _SETUP[lang],
            "restore": {"name": task.name, "run": _RESTORE[lang]} if _RESTORE[lang] else
                       {"name": task.name, "uses": "docker://ghcr.io/contoso/vcpkg-restore:2024.06"},
            "build": {"name": task.name, "run": _BUILD[lang]},
            "artifact": {"name": "Publish build artifacts", "uses": "actions/upload-artifact@v3",
                         "with": {"name": f"build-{arch}", "path": "artifacts/"}},
            "telemetry": {"name": "Upload telemetry", "if": "always()", "uses": "actions/upload-artifact@v4",
                          "with": {"name": "telemetry-data", "path": ".telemetry/", "overwrite": True}},
            "test": {"name": task.name, "run": _TEST[lang]},
            "testresults": {"name": "Publish test results", "if": "always()", "uses": "actions/upload-artifact@v4",
                            "with": {"name": f"test-results-{arch}-${{{{ github.run_attempt }}}}",
                                     "path": "test-results/"}},
            "download": {"uses": "actions/download-artifact@v4"},
            "sign": {"name": "Sign packages", "uses": "contoso/esrp-sign-action@main"},
            "pack": {"run": "dotnet pack -c Release -o out" if lang == "dotnet" else "python -m build --sdist"},
            "push": {"name": "Push packages to feed", "run": "dotnet nuget push out/*.nupkg --skip-duplicate"},
            "script": {"name": task.name, "run": f"echo {task.name}"},
        }.get(task.kind)
        if step is None:
            raise ValueError(f"no GitHub step for task kind {task.kind!r}")
        out.append(GhStep(task.kind, _default_name(step).replace(arch, "{arch}"), step, _usage(step)))
    return out


class GitHubBodies:
    """Renders one simulated organization as GitHub REST bodies."""

    def __init__(self, org: SimulatedOrganization, owner: str) -> None:
        self.org = org
        self.owner = owner
        self.repos = {project.lower(): project for project in org.projects}
        self.steps = {(d.id, kind): gh_steps(d, org._tasks[(d.id, kind)], kind)
                      for _, d in org.definitions.values() for kind in ("build", "test", "publish")}
        self.runs: dict[int, BuildPlan] = {}
        self.numbers: dict[int, int] = {}
        per_definition: Counter[int] = Counter()
        for b in sorted(org.builds, key=lambda x: (x.queue, x.id)):
            per_definition[b.definition.id] += 1
            self.runs[self.run_id(b)] = b
            self.numbers[self.run_id(b)] = per_definition[b.definition.id]
        self.jobs: dict[int, tuple[BuildPlan, JobPlan, JobRun]] = {
            self.job_id(b, job, run): (b, job, run) for b in org.builds for job in b.jobs() for run in job.runs}
        self.artifacts: dict[int, tuple[BuildPlan, dict[str, Any], Any]] = {}
        for b in org.builds:
            for body, what in self._artifact_specs(b):
                self.artifacts[body["id"]] = (b, body, what)

    # --- ids and names ------------------------------------------------------------------------

    @staticmethod
    def run_id(b: BuildPlan) -> int:
        return RUN_ID_BASE + b.id

    @staticmethod
    def job_id(b: BuildPlan, job: JobPlan, run: JobRun) -> int:
        return 30_000_000_000 + _number(b.seed, "gh-job", job.identifier, run.attempt, digits=10)

    def repo_of(self, b: BuildPlan) -> str:
        return b.project.lower()

    @staticmethod
    def workflow_path(d: Definition) -> str:
        return f".github/workflows/{d.name}.yml"

    def repository(self, repo: str) -> dict[str, Any]:
        return {"id": _number("repo", repo, digits=8), "name": repo, "full_name": f"{self.owner}/{repo}",
                "private": True, "owner": {"login": self.owner, "id": _number("owner", self.owner, digits=7),
                                           "type": "Organization"},
                "html_url": f"https://github.com/{self.owner}/{repo}"}

    def completed_runs(self, repo: str) -> list[BuildPlan]:
        return [b for b in self.org.builds if self.repo_of(b) == repo and b.status == "completed"]

    def all_runs(self, repo: str) -> list[BuildPlan]:
        return [b for b in self.org.builds if self.repo_of(b) == repo]

    # --- workflows ----------------------------------------------------------------------------

    def workflow_text(self, d: Definition) -> str:
        """The workflow file of a definition: matrix build and test jobs, and the publish job when it has one."""
        arches = lambda platforms: [cat.PLATFORM_ARCH[p] for p in platforms]  # noqa: E731
        jobs: dict[str, Any] = {
            "build": {"name": "Build ${{ matrix.arch }}", "runs-on": "${{ matrix.arch }}",
                      "strategy": {"fail-fast": False, "matrix": {"arch": arches(d.platforms)}},
                      "steps": [s.yaml for s in self.steps[(d.id, "build")] if s.yaml is not None]},
            "test": {"name": "Test ${{ matrix.arch }}", "needs": "build", "runs-on": "${{ matrix.arch }}",
                     "strategy": {"fail-fast": False, "matrix": {"arch": arches(d.test_platforms)}},
                     "steps": [s.yaml for s in self.steps[(d.id, "test")] if s.yaml is not None]},
        }
        if d.publish:
            jobs["publish"] = {"name": "Publish packages", "needs": "test", "runs-on": "windows-latest",
                               "steps": [s.yaml for s in self.steps[(d.id, "publish")] if s.yaml is not None]}
        doc = {"name": d.name, "on": {"push": {"branches": ["main", "release/**"]}, "pull_request": {},
                                      "schedule": [{"cron": "0 3 * * *"}], "workflow_dispatch": {}},
               "permissions": {"contents": "read"}, "jobs": jobs}
        return yaml.dump(doc, Dumper=_PlainDumper, sort_keys=False, width=200)

    def contents_body(self, d: Definition, sha: str) -> dict[str, Any]:
        text = self.workflow_text(d).encode()
        encoded = base64.b64encode(text).decode()
        path = self.workflow_path(d)
        return {"type": "file", "encoding": "base64", "size": len(text), "name": path.rsplit("/", 1)[-1],
                "path": path, "sha": hashlib.sha1(b"blob %d\0" % len(text) + text).hexdigest(),
                "content": "\n".join(encoded[i:i + 60] for i in range(0, len(encoded), 60)) + "\n",
                "url": f"https://api.github.com/repos/{self.owner}/{self.org.definitions[d.id][0].lower()}/contents/{path}?ref={sha}"}

    # --- runs ---------------------------------------------------------------------------------

    def attempt_start(self, b: BuildPlan, attempt: int) -> datetime | None:
        starts = [run.start for job in b.jobs() for run in job.runs if run.round == attempt]
        return b.at(min(starts)) if starts else b.start

    def run_body(self, b: BuildPlan) -> dict[str, Any]:
        d = b.definition
        rid = self.run_id(b)
        repo = self.repo_of(b)
        completed = b.status == "completed"
        conclusion = CONCLUSION.get(b.result or "") if completed else None
        if b.kind == "config":
            conclusion = "startup_failure"  # the workflow file did not validate: no job ran
        branch = (b.pr_source if b.reason == "pullRequest" else b.source_branch) or "refs/heads/main"
        actor = {"login": _login(b.person), "id": _number("user", b.person[0], digits=7), "type": "User"}
        prs = []
        if b.reason == "pullRequest" and b.pr_number is not None:
            prs.append({"number": b.pr_number, "head": {"ref": branch.removeprefix("refs/heads/"), "sha": b.commit},
                        "base": {"ref": (b.target_branch or "refs/heads/main").removeprefix("refs/heads/")}})
        finish = b.finish if completed else None
        return {
            "id": rid, "name": d.name, "node_id": f"WFR_{rid}", "head_branch": branch.removeprefix("refs/heads/"),
            "head_sha": b.commit, "path": self.workflow_path(d), "display_title": f"{d.name} #{self.numbers[rid]}",
            "run_number": self.numbers[rid], "event": EVENTS.get(b.reason, "push"),
            "status": "completed" if completed else "in_progress", "conclusion": conclusion,
            "workflow_id": 70_000_000 + d.id, "check_suite_id": 20_000_000_000 + b.id,
            "url": f"https://api.github.com/repos/{self.owner}/{repo}/actions/runs/{rid}",
            "html_url": f"https://github.com/{self.owner}/{repo}/actions/runs/{rid}",
            "pull_requests": prs,
            "created_at": gh_iso(b.queue),
            "updated_at": gh_iso(finish or b.queue),
            "actor": actor, "triggering_actor": actor,
            "run_attempt": b.rounds if completed else 1,
            "run_started_at": gh_iso(self.attempt_start(b, b.rounds if completed else 1)),
            "jobs_url": f"https://api.github.com/repos/{self.owner}/{repo}/actions/runs/{rid}/jobs",
            "artifacts_url": f"https://api.github.com/repos/{self.owner}/{repo}/actions/runs/{rid}/artifacts",
            "repository": self.repository(repo), "head_repository": self.repository(repo),
        }

    def created(self, b: BuildPlan) -> datetime:
        assert b.queue is not None
        return _whole(b.queue)

    # --- jobs ---------------------------------------------------------------------------------

    def attempt_jobs(self, b: BuildPlan, attempt: int) -> list[dict[str, Any]]:
        """The jobs of one attempt: the job attempts of that retry round."""
        return [self.job_body(b, job, run) for job in b.jobs() for run in job.runs if run.round == attempt]

    def job_body(self, b: BuildPlan, job: JobPlan, run: JobRun) -> dict[str, Any]:
        steps = self.steps[(b.definition.id, job.template.kind)][: run.n_tasks]
        arch = cat.PLATFORM_ARCH[job.template.platform]
        t = run.start
        rendered = []
        for i, step in enumerate(steps):
            duration = run.durations[i] if i < len(run.durations) else 0.0
            if run.fail_index is not None and i == run.fail_index:
                conclusion = CONCLUSION.get(run.fail_result, "failure")
            elif run.fail_index is not None and i > run.fail_index and not job.tasks[i].always:
                conclusion = "skipped"
            else:
                conclusion = "success"
            rendered.append({"name": step.api_name.replace("{arch}", arch), "status": "completed",
                             "conclusion": conclusion, "number": i + 1, "started_at": gh_iso(b.at(t)),
                             "completed_at": gh_iso(b.at(t + duration))})
            t += duration
        jid = self.job_id(b, job, run)
        repo = self.repo_of(b)
        return {
            "id": jid, "run_id": self.run_id(b), "run_attempt": run.round, "node_id": f"CR_{jid}",
            "head_sha": b.commit, "head_branch": self.run_body(b)["head_branch"], "workflow_name": b.definition.name,
            "url": f"https://api.github.com/repos/{self.owner}/{repo}/actions/jobs/{jid}",
            "html_url": f"https://github.com/{self.owner}/{repo}/actions/runs/{self.run_id(b)}/job/{jid}",
            "status": "completed", "conclusion": CONCLUSION.get(run.result, "failure"), "name": job.template.name,
            "created_at": gh_iso(b.at(run.start)), "started_at": gh_iso(b.at(run.start)),
            "completed_at": gh_iso(b.at(run.finish)), "steps": rendered, "labels": [arch],
            "runner_id": _number("runner", run.worker, digits=5), "runner_name": run.worker,
            "runner_group_id": 1, "runner_group_name": "Default",
            "check_run_url": f"https://api.github.com/repos/{self.owner}/{repo}/check-runs/{jid}",
        }

    def annotations(self, b: BuildPlan, job: JobPlan, run: JobRun) -> list[dict[str, Any]]:
        """Check-run annotations of a failed job: its planted issues (none for other jobs)."""
        if CONCLUSION.get(run.result) != "failure":
            return []
        steps = self.steps[(b.definition.id, job.template.kind)]
        out = []
        for key in sorted(run.issues):
            for issue in run.issues[key]:
                line = int(issue.data.get("logFileLineNumber") or issue.data.get("linenumber") or 1)
                title = steps[key].api_name.replace("{arch}", cat.PLATFORM_ARCH[job.template.platform]) \
                    if 0 <= key < len(steps) else job.template.name
                out.append({"path": issue.data.get("sourcepath") or ".github", "start_line": line, "end_line": line,
                            "start_column": None, "end_column": None,
                            "annotation_level": "failure" if issue.type == "error" else "warning",
                            "title": title, "message": issue.message.replace("{build}", str(self.run_id(b))),
                            "raw_details": None, "blob_href": f"https://github.com/{self.owner}/{self.repo_of(b)}/blob/{b.commit}/.github"})
        return out

    # --- artifacts ----------------------------------------------------------------------------

    def expired(self, b: BuildPlan) -> bool:
        """Artifacts of runs in the first days of the history have expired."""
        span = min(timedelta(days=EXPIRED_DAYS), (self.org.end - self.org.start) / 4)
        return b.finish is not None and b.finish < self.org.start + span

    @staticmethod
    def gone(artifact_id: int) -> bool:
        """A few artifacts are listed unexpired but expire before their download (410)."""
        return artifact_id % 23 == 0

    def _artifact_specs(self, b: BuildPlan) -> list[tuple[dict[str, Any], Any]]:
        if b.status != "completed":
            return []
        out = []
        repo = self.repo_of(b)
        expired = self.expired(b)

        def body(name: str, created: datetime, size: int) -> dict[str, Any]:
            aid = 4_000_000_000 + _number(b.seed, "gh-artifact", name, digits=8)
            return {"id": aid, "node_id": f"MDg6QXJ0aWZhY3Q{aid}", "name": name, "size_in_bytes": size,
                    "url": f"https://api.github.com/repos/{self.owner}/{repo}/actions/artifacts/{aid}",
                    "archive_download_url": f"/repos/{self.owner}/{repo}/actions/artifacts/{aid}/zip",
                    "expired": expired, "created_at": gh_iso(created), "updated_at": gh_iso(created),
                    "expires_at": gh_iso(created + timedelta(days=EXPIRED_DAYS if expired else 90)),
                    "workflow_run": {"id": self.run_id(b), "repository_id": self.repository(repo)["id"],
                                     "head_branch": self.run_body(b)["head_branch"], "head_sha": b.commit}}

        for job, run in b.test_runs():
            arch = cat.PLATFORM_ARCH[job.template.platform]
            created = b.at(run.test_run.completed + 0.5)
            out.append((body(f"test-results-{arch}-{run.round}", created, 4096), ("junit", job, run)))
        if self.org.metrics_documents(b):
            out.append((body("telemetry-data", b.at(b.metrics.end_offset), 2048), ("telemetry", None, None)))
        jobs = b.jobs()
        if jobs and jobs[0].runs:
            out.append((body(f"build-{cat.PLATFORM_ARCH[jobs[0].template.platform]}", b.finish, 1 << 20),
                        ("other", None, None)))
        return out

    def run_artifacts(self, b: BuildPlan) -> list[dict[str, Any]]:
        return sorted((body for (plan, body, _) in self.artifacts.values() if plan is b), key=lambda a: a["id"])

    def available(self, artifact_id: int) -> bool:
        _, body, _ = self.artifacts[artifact_id]
        return not body["expired"] and not self.gone(artifact_id)

    def junit_xml(self, b: BuildPlan, job: JobPlan, run: JobRun) -> bytes:
        """The JUnit report of one test job attempt (jest/pytest style: suites per storage, no root time)."""
        tr = run.test_run
        tests = self.org.tests[b.definition.id]
        started = b.at(tr.started)
        span = max(tr.completed - tr.started, 1.0)
        suites: dict[str, list[str]] = {}
        for i, test in enumerate(tests):
            code, message = tr.outcomes.get(i, ("P", ""))
            classname, _, name = test.name.rpartition(".")
            seconds = 0.0 if test.kind == "ignored" else round(span / len(tests), 3)
            body = ""
            if test.kind == "ignored" and (i not in tr.outcomes):
                body = "<skipped/>"
            elif code in ("F", "RF"):
                body = f"<failure message={quoteattr(message)} type=\"AssertionError\">{_xml_text(message)}</failure>"
                if code == "RF":
                    body += f"<rerunFailure message={quoteattr(message)}/>"
            elif code == "R":
                body = f"<flakyFailure message={quoteattr(message)} type=\"AssertionError\"/>"
            suites.setdefault(test.storage, []).append(
                f"<testcase classname={quoteattr(classname)} name={quoteattr(name)} time=\"{seconds}\">{body}</testcase>")
        parts = ['<?xml version="1.0" encoding="UTF-8"?>',
                 f"<testsuites name={quoteattr(b.definition.name + ' ' + job.template.name)}>"]
        for storage, cases in suites.items():
            parts.append(f"<testsuite name={quoteattr(storage)} tests=\"{len(cases)}\" "
                         f"timestamp=\"{started.strftime('%Y-%m-%dT%H:%M:%S')}\" "
                         f"time=\"{round(span * len(cases) / len(tests), 3)}\">")
            parts.extend(cases)
            parts.append("</testsuite>")
        parts.append("</testsuites>")
        return "\n".join(parts).encode()

    def artifact_zip(self, artifact_id: int) -> bytes:
        b, _, (what, job, run) = self.artifacts[artifact_id]
        stamp = (b.finish or self.org.end).timetuple()[:6]
        files: dict[str, bytes] = {}
        if what == "junit":
            files["junit.xml"] = self.junit_xml(b, job, run)
        elif what == "telemetry":
            files = {name: json.dumps(doc, indent=2).encode() for name, doc in self.org.metrics_documents(b).items()}
        else:
            files["README.txt"] = b"build output\n"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
        return buffer.getvalue()

    # --- ground truth -------------------------------------------------------------------------

    def ground_truth(self) -> dict[str, Any]:
        """Expected rows per table, step usage, and the artifacts that are absent, from the plans."""
        counts = dict.fromkeys(("TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults",
                                "BuildMetrics", "BuildStages", "MetricSamples"), 0)
        usage: Counter[str] = Counter()
        attempts = jobs = 0
        expired = gone = 0
        for b in self.org.builds:
            if b.status != "completed":
                continue
            counts["TimelineBuilds"] += 1
            attempts += b.rounds
            for job in b.jobs():
                steps = self.steps[(b.definition.id, job.template.kind)]
                for run in job.runs:
                    jobs += 1
                    counts["TimelineRecords"] += 1 + run.n_tasks
                    counts["TimelineIssues"] += len(self.annotations(b, job, run))
                    for step in steps[: run.n_tasks]:
                        name, version = step.usage
                        usage[f"{name}@{version}" if version else str(name)] += 1
            for body in self.run_artifacts(b):
                aid = body["id"]
                what = self.artifacts[aid][2][0]
                if what == "other":
                    continue
                if body["expired"]:
                    expired += 1
                    continue
                if self.gone(aid):
                    gone += 1
                    continue
                if what == "junit":
                    counts["TestRuns"] += 1
                    counts["TestResults"] += len(self.org.tests[b.definition.id])
                else:
                    for doc in self.org.metrics_documents(b).values():
                        count_metrics_document(counts, doc)
        return {"owner": self.owner, "repositories": sorted(self.repos), "expected_counts": counts,
                "attempts": attempts, "jobs": jobs, "step_usage": dict(sorted(usage.items())),
                "expired_artifacts": expired, "gone_artifacts": gone,
                "deprecated_steps": sorted(k for k in usage if k in DEPRECATED),
                "unpinned_steps": sorted(k for k in usage if k.rsplit("@", 1)[-1] in ("main", "master"))}


#: Versions their publishers deprecated (Node 12/16 runtimes, artifact actions v1-v3).
DEPRECATED = ("actions/checkout@v2", "actions/upload-artifact@v3", "actions/setup-node@v3")


class _PlainDumper(yaml.SafeDumper):
    """Writes shared step definitions out in full, as a person writes a workflow (no `&id001` anchors)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
