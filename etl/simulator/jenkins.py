"""The simulated organization served as a Jenkins controller on loopback (`start_jenkins`).

The same plan as the Azure DevOps simulator (`SimulatedOrganization`) rendered through the Jenkins
JSON API: a folder per project and per definition folder, a Pipeline job per definition
(`engineering/ci/runtime`), a Jenkins build per attempt round of each planned build, so an Azure
DevOps retry becomes a restart (`RestartDeclarativePipelineCause`) or a replay (`ReplayCause`) of
the previous build; each job attempt of the round is a stage whose steps are `echo`, `checkout`,
`sh`/`bat`, `script`, `powershell`, `junit`, `archiveArtifacts`, `deleteDir`. Test runs are the
build's `testReport` (404 without one) and, archived beside it, a JUnit XML file; metrics documents
are archived as `telemetry/<name>.json`.

It enforces what the ETL must cope with: HTTP basic auth (401 without or with a wrong token, 403
for a user without Overall/Read), `tree=` filtering with `{a,b}` ranges (b exclusive), 404 for
unknown jobs, builds, reports and artifacts, builds still `building: true` (`complete()` finishes
them), and faults (`fail_next` 5xx, `truncate_next` cut-off bodies, `malformed` list items).
`ground_truth()` gives the rows each table should hold after loading everything completed.
"""

from __future__ import annotations

import base64
import random
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import quoteattr

import orjson

from etl.simulator.model import SimulatedOrganization, count_metrics_document
from etl.simulator.specs import BuildPlan, JobPlan, JobRun
from etl.sources.jenkins.mapping import build_id
from etl.sources.jenkins.steps import FUNCTION_TO_DISPLAY

USER, TOKEN = "sim", "11aa22bb33cc44dd55ee66ff77aa88bb99"
#: Authenticates but lacks Overall/Read: every request answers 403.
NO_READ_USER = "no-read"
FOLDER = "com.cloudbees.hudson.plugins.folder.Folder"
PIPELINE = "org.jenkinsci.plugins.workflow.job.WorkflowJob"
RUN = "org.jenkinsci.plugins.workflow.job.WorkflowRun"
RESTART = "org.jenkinsci.plugins.pipeline.modeldefinition.causes.RestartDeclarativePipelineCause"
REPLAY = "org.jenkinsci.plugins.workflow.cps.replay.ReplayCause"
_CAUSES = {"individualCI": "hudson.triggers.SCMTrigger$SCMTriggerCause",
           "batchedCI": "hudson.triggers.SCMTrigger$SCMTriggerCause",
           "pullRequest": "jenkins.branch.BranchEventCause",
           "schedule": "hudson.triggers.TimerTrigger$TimerTriggerCause",
           "manual": "hudson.model.Cause$UserIdCause"}
_STATUS = {"succeeded": "SUCCESS", "failed": "FAILED", "canceled": "ABORTED", "succeededWithIssues": "UNSTABLE"}


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _step_function(kind: str, platform: str, language: str) -> str:
    shell = "bat" if platform == "windows" else "sh"
    return {"init": "echo", "checkout": "checkout", "artifact": "archiveArtifacts", "telemetry": "archiveArtifacts",
            "testresults": "junit", "sign": "powershell", "postcheckout": "deleteDir", "finalize": "cleanWs",
            "script": "script", "restore": "script" if language in ("node", "python") else shell}.get(kind, shell)


@dataclass
class SimBuild:
    """One Jenkins build as served."""

    job: str
    number: int
    plan: BuildPlan
    round: int
    timestamp: int
    duration: int
    result: str | None
    building: bool
    causes: list[dict[str, Any]]
    stages: list[dict[str, Any]] = field(default_factory=list)  # stage details with stageFlowNodes
    suites: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    root: int = 0
    attempt: int = 1


class JenkinsSimulation:
    """The organization's builds as Jenkins jobs and builds (pure data; the server only serves it)."""

    def __init__(self, org: SimulatedOrganization, base_url: str = "") -> None:
        self.org = org
        self.base_url = base_url
        self.jobs: dict[str, list[SimBuild]] = defaultdict(list)
        self.malformed: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        for b in sorted(org.builds, key=lambda p: (p.queue, p.id)):
            self._render(b)
        for builds in self.jobs.values():
            builds.sort(key=lambda s: (s.timestamp, s.round))
        self._number()

    @staticmethod
    def job_name(b: BuildPlan) -> str:
        folder = b.definition.folder.strip("\\").replace("\\", "/")
        return "/".join(p for p in (b.project.lower(), folder, b.definition.name) if p)

    def _render(self, b: BuildPlan) -> None:
        job = self.job_name(b)
        queue = _ms(b.queue)
        rounds = max(b.rounds, 1) if b.stages else 1
        for r in range(1, rounds + 1):
            runs = [(stage, jp, run) for stage in b.stages for jp in stage.jobs for run in jp.runs if run.round == r]
            last = r == rounds
            if r == 1:
                start = int(b.start_offset * 1000) if b.start_offset is not None else 0
            else:
                start = int(min(run.start for _, _, run in runs) * 1000) if runs else 0
            building = last and b.status != "completed"
            if last and not building:
                end = int(b.finish_offset * 1000)
            else:
                end = int(max((run.finish for _, _, run in runs), default=start / 1000 + 5) * 1000) + 2000
            sim = SimBuild(job, 0, b, r, queue + start, 0 if building else max(end - start, 0), None, building, [])
            if not building:
                sim.result = self._result(b, runs, last)
            self._stages(sim, runs)
            self._tests(sim, runs)
            if last and not building:
                for name, doc in self.org.metrics_documents(b).items():
                    sim.artifacts[f"telemetry/{name}"] = orjson.dumps(doc)
            self.jobs[job].append(sim)

    @staticmethod
    def _result(b: BuildPlan, runs: list[tuple[Any, JobPlan, JobRun]], last: bool) -> str:
        if last and not runs:
            return {"failed": "FAILURE", "canceled": "ABORTED"}.get(b.result or "", "SUCCESS")
        results = {run.result for _, _, run in runs}
        if "failed" in results:
            return "FAILURE"
        if "canceled" in results:
            return "ABORTED"
        return "UNSTABLE" if "succeededWithIssues" in results else "SUCCESS"

    def _stages(self, sim: SimBuild, runs: list[tuple[Any, JobPlan, JobRun]]) -> None:
        b = sim.plan
        queue = _ms(b.queue)
        node = 5
        for stage, jp, run in runs:
            node += 1
            stage_id = str(node)
            steps = []
            t = run.start + 1.0
            for i, task in enumerate(jp.tasks[: run.n_tasks]):
                node += 1
                duration = run.durations[i]
                if run.fail_index is not None and i == run.fail_index:
                    status = "ABORTED" if run.fail_result == "canceled" else "FAILED"
                elif run.fail_index is not None and i > run.fail_index and not task.always:
                    status = "NOT_EXECUTED"
                elif i == run.swi_index:
                    status = "UNSTABLE"
                else:
                    status = "SUCCESS"
                function = _step_function(task.kind, jp.template.platform, b.definition.language)
                step: dict[str, Any] = {
                    "_links": {"self": {"href": f"/job/x/execution/node/{node}/wfapi/describe"}},
                    "id": str(node), "name": FUNCTION_TO_DISPLAY[function], "execNode": "",
                    "status": status, "parameterDescription": task.name,
                    "startTimeMillis": queue + int(t * 1000),
                    "durationMillis": 0 if status == "NOT_EXECUTED" else int(duration * 1000),
                    "pauseDurationMillis": 0, "parentNodes": [stage_id],
                }
                if status in ("FAILED", "ABORTED"):
                    issues = [*run.issues.get(i, []), *run.issues.get(-1, [])]
                    message = next((x.message for x in issues if x.type == "error"), None)
                    step["error"] = {"message": message or "script returned exit code 1",
                                     "type": "hudson.AbortException"}
                steps.append(step)
                t += duration
            detail = {
                "id": stage_id, "name": f"{stage.name} {jp.template.name}", "execNode": "",
                "status": _STATUS.get(run.result, "SUCCESS"), "startTimeMillis": queue + int(run.start * 1000),
                "durationMillis": int((run.finish - run.start) * 1000), "pauseDurationMillis": 0,
                "stageFlowNodes": steps,
            }
            if run.result == "failed":
                detail["error"] = {"message": steps[-1].get("error", {}).get("message", "failed") if steps else "failed",
                                   "type": "hudson.AbortException"}
            sim.stages.append(detail)

    def _tests(self, sim: SimBuild, runs: list[tuple[Any, JobPlan, JobRun]]) -> None:
        b = sim.plan
        tests = self.org.tests[b.definition.id]
        for _, jp, run in runs:
            tr = run.test_run
            if tr is None:
                continue
            cases = []
            rng = random.Random(run.seed)
            for i, test in enumerate(tests):
                override = tr.outcomes.get(i)
                if override is not None and override[0] in ("F", "RF"):
                    status, details = "FAILED", override[1]
                elif test.kind == "ignored":
                    status, details = "SKIPPED", None
                else:
                    status, details = "PASSED", None
                cls, _, name = test.name.rpartition(".")
                cases.append({"className": cls, "name": name, "status": status, "skipped": status == "SKIPPED",
                              "duration": 0.0 if status == "SKIPPED" else round(rng.uniform(0.005, 2.0), 3),
                              "errorDetails": details, "errorStackTrace": None})
            for k in range(tr.extra):
                cases.append({"className": "DataDriven", "name": f"row_{k:05d}", "status": "PASSED",
                              "skipped": False, "duration": 0.001, "errorDetails": None})
            suite = {"name": f"{jp.template.name}", "duration": round(sum(c["duration"] for c in cases), 3),
                     "timestamp": datetime.fromtimestamp((_ms(b.queue) + tr.started * 1000) / 1000, UTC)
                     .strftime("%Y-%m-%dT%H:%M:%S"), "cases": cases}
            sim.suites.append(suite)
            sim.artifacts[f"test-results/{jp.identifier}.xml"] = _junit_xml(suite)

    def _number(self) -> None:
        for builds in self.jobs.values():
            by_plan: dict[int, SimBuild] = {}
            for number, sim in enumerate(builds, start=1):
                sim.number = number
                previous = by_plan.get(sim.plan.id)
                if previous is None:
                    kind = _CAUSES.get(sim.plan.reason, "hudson.model.Cause$UserIdCause")
                    cause: dict[str, Any] = {"_class": kind, "shortDescription": "Started"}
                    if kind.endswith("UserIdCause"):
                        cause.update({"userId": sim.plan.person[1], "userName": sim.plan.person[0]})
                    sim.causes = [cause]
                    sim.root, sim.attempt = number, 1
                else:
                    sim.root, sim.attempt = previous.root, previous.attempt + 1
                    if (sim.plan.seed + sim.round) % 3 == 0:
                        sim.causes = [{"_class": REPLAY, "shortDescription": f"Replayed #{previous.number}"}]
                    else:
                        first = sim.stages[0]["name"] if sim.stages else ""
                        sim.causes = [{"_class": RESTART, "originRunNumber": previous.number, "originStage": first,
                                       "shortDescription": f"Restarted from build #{previous.number}, stage {first}"}]
                by_plan[sim.plan.id] = sim

    # -- lookups ---------------------------------------------------------------------------------

    def folders(self) -> dict[str, list[tuple[str, str]]]:
        """Children (name, class) of every folder path ('' = the root)."""
        out: dict[str, dict[str, str]] = defaultdict(dict)
        for job in self.jobs:
            parts = job.split("/")
            for depth in range(len(parts)):
                parent = "/".join(parts[:depth])
                out[parent][parts[depth]] = PIPELINE if depth == len(parts) - 1 else FOLDER
        return {k: sorted(v.items()) for k, v in out.items()}

    def build(self, job: str, number: int) -> SimBuild | None:
        builds = self.jobs.get(job) or []
        return builds[number - 1] if 0 < number <= len(builds) else None

    def build_body(self, sim: SimBuild) -> dict[str, Any]:
        url = f"{self.base_url}{_job_url(sim.job)}/{sim.number}/"
        branch = sim.plan.source_branch.removeprefix("refs/heads/")
        body: dict[str, Any] = {
            "_class": RUN, "number": sim.number, "id": str(sim.number), "url": url,
            "result": sim.result, "timestamp": sim.timestamp, "duration": sim.duration, "building": sim.building,
            "displayName": f"#{sim.number}", "fullDisplayName": f"{sim.job} #{sim.number}",
            "actions": [{"_class": "hudson.model.CauseAction", "causes": sim.causes},
                        {"_class": "hudson.plugins.git.util.BuildData",
                         "lastBuiltRevision": {"SHA1": sim.plan.commit, "branch": [{"SHA1": sim.plan.commit,
                                                                                    "name": f"origin/{branch}"}]}},
                        {}],
            "artifacts": [{"fileName": p.rsplit("/", 1)[-1], "relativePath": p, "displayPath": p}
                          for p in sorted(sim.artifacts)] if not sim.building else [],
        }
        if (sim.job, sim.number) in self.malformed:
            body["timestamp"] = "yesterday"
        return body

    def describe(self, sim: SimBuild) -> dict[str, Any]:
        stages = [{k: v for k, v in s.items() if k != "stageFlowNodes"} for s in sim.stages]
        return {"id": str(sim.number), "name": f"#{sim.number}",
                "status": "IN_PROGRESS" if sim.building else _STATUS.get({"SUCCESS": "succeeded", "FAILURE": "failed",
                                                                            "ABORTED": "canceled", "UNSTABLE": "succeededWithIssues"}.get(sim.result or "", ""), "SUCCESS"),
                "startTimeMillis": sim.timestamp, "durationMillis": sim.duration, "stages": stages}

    def test_report(self, sim: SimBuild) -> dict[str, Any] | None:
        if not sim.suites or sim.building:
            return None
        cases = [c for s in sim.suites for c in s["cases"]]
        return {"_class": "hudson.tasks.junit.TestResult", "duration": round(sum(s["duration"] for s in sim.suites), 3),
                "empty": False, "failCount": sum(c["status"] == "FAILED" for c in cases),
                "passCount": sum(c["status"] == "PASSED" for c in cases),
                "skipCount": sum(c["status"] == "SKIPPED" for c in cases), "suites": sim.suites}

    def complete(self, job: str, number: int, duration_ms: int = 600_000, at_ms: int | None = None) -> None:
        """Finish a build still in progress (its completion time *at_ms*, else timestamp + *duration_ms*)."""
        with self._lock:
            sim = self.build(job, number)
            if sim is None or not sim.building:
                raise KeyError(f"{job} #{number} is not in progress")
            if at_ms is not None:
                sim.timestamp = min(sim.timestamp, at_ms - duration_ms)
                duration_ms = at_ms - sim.timestamp
            sim.building, sim.duration, sim.result = False, duration_ms, "SUCCESS"

    def in_progress(self) -> list[tuple[str, int]]:
        return [(s.job, s.number) for builds in self.jobs.values() for s in builds if s.building]

    # -- ground truth ----------------------------------------------------------------------------

    def ground_truth(self, *, junit_artifacts: bool = False, test_report: bool = True) -> dict[str, Any]:
        """Rows per table after every completed build is loaded (and which builds are retries)."""
        counts = dict.fromkeys(("TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults",
                                "BuildMetrics", "BuildStages", "MetricSamples"), 0)
        roots: set[int] = set()
        retries: list[dict[str, Any]] = []
        builds = 0
        for job, sims in self.jobs.items():
            for sim in sims:
                if sim.building or (job, sim.number) in self.malformed:
                    continue
                builds += 1
                roots.add(build_id(job, sim.root))
                if sim.attempt > 1:
                    retries.append({"job": job, "number": sim.number, "root": sim.root, "attempt": sim.attempt,
                                    "cause": sim.causes[0]["_class"].rsplit(".", 1)[-1]})
                for stage in sim.stages:
                    counts["TimelineRecords"] += 2 + len(stage["stageFlowNodes"])
                    counts["TimelineIssues"] += sum(1 for s in stage["stageFlowNodes"] if s.get("error"))
                if sim.suites and test_report:
                    counts["TestRuns"] += 1
                    counts["TestResults"] += sum(len(s["cases"]) for s in sim.suites)
                if junit_artifacts:
                    counts["TestRuns"] += len(sim.suites)
                    counts["TestResults"] += sum(len(s["cases"]) for s in sim.suites)
                for path, data in sim.artifacts.items():
                    if not path.startswith("telemetry/"):
                        continue
                    count_metrics_document(counts, orjson.loads(data))
        counts["TimelineBuilds"] = len(roots)
        return {"expected_counts": counts, "builds": builds, "retries": retries, "jobs": sorted(self.jobs),
                "in_progress": self.in_progress()}


def _junit_xml(suite: dict[str, Any]) -> bytes:
    lines = [f'<testsuite name={quoteattr(suite["name"])} tests="{len(suite["cases"])}" '
             f'time="{suite["duration"]}" timestamp="{suite["timestamp"]}">']
    for c in suite["cases"]:
        head = f'  <testcase classname={quoteattr(c["className"])} name={quoteattr(c["name"])} time="{c["duration"]}"'
        if c["status"] == "FAILED":
            lines.append(f'{head}><failure message={quoteattr(c["errorDetails"] or "failed")}/></testcase>')
        elif c["status"] == "SKIPPED":
            lines.append(f"{head}><skipped/></testcase>")
        else:
            lines.append(f"{head}/>")
    lines.append("</testsuite>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _job_url(job: str) -> str:
    return "".join(f"/job/{p}" for p in job.split("/"))


# -- tree= filtering --------------------------------------------------------------------------------

_RANGE = re.compile(r"\{(\d*),?(\d*)\}")


def parse_tree(spec: str) -> dict[str, tuple[dict | None, tuple[int | None, int | None] | None]]:
    """`a,b[c,d]{0,10}` → {name: (sub-spec or None, (start, end) or None)}; ValueError when unbalanced."""
    out: dict[str, tuple[dict | None, tuple[int | None, int | None] | None]] = {}
    i = 0

    def parse(level: int) -> dict:
        nonlocal i
        result: dict = {}
        while i < len(spec):
            m = re.match(r"[A-Za-z0-9_*$]+", spec[i:])
            if not m:
                raise ValueError(f"bad tree at {i}")
            name = m.group(0)
            i += len(name)
            sub = None
            rng = None
            if i < len(spec) and spec[i] == "[":
                i += 1
                sub = parse(level + 1)
                if i >= len(spec) or spec[i] != "]":
                    raise ValueError("unbalanced [")
                i += 1
            if i < len(spec) and spec[i] == "{":
                r = _RANGE.match(spec, i)
                if not r:
                    raise ValueError("bad range")
                text = r.group(0)
                a, b = r.group(1), r.group(2)
                rng = (int(a) if a else None, int(b) if b else None) if "," in text else (int(a), int(a) + 1)
                i = r.end()
            result[name] = (sub, rng)
            if i < len(spec) and spec[i] == ",":
                i += 1
                continue
            if i < len(spec) and spec[i] == "]" and level > 0:
                return result
            if i < len(spec):
                raise ValueError(f"unexpected {spec[i]!r}")
        if level > 0:
            raise ValueError("unbalanced [")
        return result

    out = parse(0)
    return out


def apply_tree(value: Any, tree: dict | None) -> Any:
    """*value* keeping only the fields *tree* names (Jenkins always keeps `_class`)."""
    if tree is None or ("*" in tree and len(tree) == 1 and tree["*"][0] is None):
        return value
    if isinstance(value, list):
        return [apply_tree(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    if "_class" in value:
        out["_class"] = value["_class"]
    for name, (sub, rng) in tree.items():
        keys = list(value) if name == "*" else [name]
        for key in keys:
            if key not in value:
                continue
            item = value[key]
            if isinstance(item, list) and rng is not None:
                start, end = rng
                item = item[start or 0: end]
            out[key] = apply_tree(item, sub) if sub is not None else item
    return out


# -- the server -------------------------------------------------------------------------------------


class JenkinsServer:
    """A running simulated controller; use as a context manager or call `.stop()`."""

    def __init__(self, sim: JenkinsSimulation, httpd: ThreadingHTTPServer) -> None:
        self.sim = sim
        self.httpd = httpd
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        sim.base_url = self.url
        self.user, self.token = USER, TOKEN
        self.requests: list[str] = []
        self._fail: list[int] = []
        self._truncate = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        self._thread.start()

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        """The next *n* requests answer *status* (a 5xx)."""
        with self._lock:
            self._fail.extend([status] * n)

    def truncate_next(self, n: int = 1) -> None:
        """The next *n* bodies are cut off halfway (Content-Length says the full size)."""
        with self._lock:
            self._truncate += n

    def ground_truth(self, **options: bool) -> dict[str, Any]:
        return self.sim.ground_truth(**options)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> JenkinsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(server_ref: list[JenkinsServer]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            return

        def do_GET(self) -> None:
            srv = server_ref[0]
            with srv._lock:
                srv.requests.append(self.path)
                fail = srv._fail.pop(0) if srv._fail else None
                truncate = srv._truncate > 0
                if truncate:
                    srv._truncate -= 1
            auth = self.headers.get("Authorization", "")
            user = None
            if auth.startswith("Basic "):
                try:
                    user, _, token = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
                except ValueError:
                    user, token = None, ""
                if token != TOKEN:
                    user = None
            if user is None:
                return self._send(401, b"<html>Authentication required</html>", "text/html",
                                  {"WWW-Authenticate": 'Basic realm="Jenkins"'})
            if user == NO_READ_USER:
                return self._send(403, f"<html>{user} is missing the Overall/Read permission</html>".encode(),
                                  "text/html")
            if fail is not None:
                return self._send(fail, b"<html>Service Unavailable</html>", "text/html")
            try:
                status, body, ctype = self._route(srv.sim)
            except ValueError as exc:
                return self._send(400, str(exc).encode(), "text/plain")
            self._send(status, body, ctype, truncate=truncate)

        def _route(self, sim: JenkinsSimulation) -> tuple[int, bytes, str]:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            tree = parse_tree(query["tree"][0]) if "tree" in query else None
            segs = [unquote(s) for s in parts.path.strip("/").split("/") if s]
            job_parts = []
            while len(segs) >= 2 and segs[0] == "job":
                job_parts.append(segs[1])
                segs = segs[2:]
            name = "/".join(job_parts)
            folders = sim.folders()
            if name and name not in sim.jobs and name not in folders:
                return 404, b"<html>Not found</html>", "text/html"
            if segs == ["api", "json"]:
                if name in sim.jobs:
                    body = {"_class": PIPELINE, "name": job_parts[-1], "fullName": name,
                            "url": f"{sim.base_url}{_job_url(name)}/",
                            "allBuilds": [{**sim.build_body(s)} for s in reversed(sim.jobs[name])]}
                else:
                    body = {"_class": FOLDER if name else "hudson.model.Hudson", "name": job_parts[-1] if name else "",
                            "jobs": [{"_class": cls, "name": child,
                                      "url": f"{sim.base_url}{_job_url(f'{name}/{child}' if name else child)}/"}
                                     for child, cls in folders.get(name, [])]}
                    if name:
                        body["fullName"] = name
                return self._json(apply_tree(body, tree))
            if name not in sim.jobs or not segs or not segs[0].isdigit():
                return 404, b"<html>Not found</html>", "text/html"
            build = sim.build(name, int(segs[0]))
            if build is None:
                return 404, b"<html>Not found</html>", "text/html"
            rest = segs[1:]
            if rest == ["api", "json"]:
                return self._json(apply_tree(sim.build_body(build), tree))
            if rest == ["wfapi", "describe"]:
                return self._json(sim.describe(build))
            if len(rest) == 5 and rest[0] == "execution" and rest[1] == "node" and rest[3:] == ["wfapi", "describe"]:
                stage = next((s for s in build.stages if s["id"] == rest[2]), None)
                return self._json(stage) if stage is not None else (404, b"<html>Not found</html>", "text/html")
            if rest == ["testReport", "api", "json"]:
                report = sim.test_report(build)
                return self._json(apply_tree(report, tree)) if report is not None else (
                    404, b"<html>Not found</html>", "text/html")
            if rest and rest[0] == "artifact" and not build.building:
                data = build.artifacts.get("/".join(rest[1:]))
                if data is not None:
                    return 200, data, "application/octet-stream"
            return 404, b"<html>Not found</html>", "text/html"

        @staticmethod
        def _json(body: Any) -> tuple[int, bytes, str]:
            return 200, orjson.dumps(body), "application/json;charset=utf-8"

        def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None,
                  truncate: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if truncate:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if truncate else body)
            if truncate:
                self.close_connection = True

    return Handler


def start_jenkins(seed: int = 7, days: int = 28, builds_per_day: int = 12, end: datetime | None = None, *,
                  port: int = 0) -> JenkinsServer:
    """Plan the simulated organization and serve it as a Jenkins controller on 127.0.0.1."""
    org = SimulatedOrganization(seed, days, builds_per_day, end)
    sim = JenkinsSimulation(org)
    ref: list[JenkinsServer] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(ref))
    httpd.daemon_threads = True
    server = JenkinsServer(sim, httpd)
    ref.append(server)
    return server
