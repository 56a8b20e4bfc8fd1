"""A small Azure DevOps REST server on loopback with hand-built fixtures, for tests and the extraction benchmark.

It serves exactly the endpoints the extractor calls (builds list with minTime and continuation
tokens, latest and per-id timelines, test runs by buildUri, results with $skip/$top, artifacts and
their zip download) from in-memory data, and can inject faults: scripted status codes per path
prefix (429 with Retry-After, 500, 401), a fixed latency per request, and a required token.
The full simulated organization with ground truth is `etl.simulator`; this is the minimal fixture.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from etl.timeutil import to_utc_naive


@dataclass
class FakeOrganization:
    """What the server serves: builds per project and every detail keyed by build or run id."""

    builds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    timelines: dict[int, dict[str, Any]] = field(default_factory=dict)
    previous_timelines: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    test_runs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    test_results: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    artifacts: dict[tuple[int, str], bytes] = field(default_factory=dict)


def _when(build: dict[str, Any]) -> datetime:
    # A deliberately broken finishTime (a test's bad input) sorts last instead of breaking the server.
    try:
        return to_utc_naive(build.get("finishTime")) or datetime.max
    except ValueError:
        return datetime.max


class FakeAdoServer:
    """`with FakeAdoServer(org) as srv:` serves *org* at `srv.url` (organization URL)."""

    def __init__(self, org: FakeOrganization, name: str = "fakeorg", token: str | None = None,
                 latency: float = 0.0) -> None:
        self.org = org
        self.name = name
        self.token = token
        self.latency = latency
        self.faults: dict[str, deque[tuple[int, dict[str, str]]]] = defaultdict(deque)
        self.requests: list[str] = []
        self.concurrent = 0
        self.max_concurrent = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{self.name}"

    def fail(self, path_contains: str, *responses: tuple[int, dict[str, str]]) -> None:
        """Answer the next requests whose path contains *path_contains* with these (status, headers)."""
        self.faults[path_contains].extend(responses)

    def __enter__(self) -> FakeAdoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append(self.path)
                    server.concurrent += 1
                    server.max_concurrent = max(server.max_concurrent, server.concurrent)
                self._counted = True
                try:
                    if server.latency:
                        time.sleep(server.latency)
                    self._serve()
                finally:
                    self._done()

            def _done(self) -> None:
                # Counted out before the response is written: once the client has its answer it may send
                # the next request, which must not overlap this one in the count.
                if self._counted:
                    self._counted = False
                    with server._lock:
                        server.concurrent -= 1

            def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
                      raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
                self._done()
                self.send_response(status)
                self.send_header("Content-Type", "application/zip" if raw is not None else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _serve(self) -> None:
                parsed = urlparse(self.path)
                path = unquote(parsed.path)
                query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
                with server._lock:
                    for needle, queue in server.faults.items():
                        if needle in path and queue:
                            status, headers = queue.popleft()
                            break
                    else:
                        status = 0
                if status:
                    self._send(status, {"message": "injected fault"}, headers)
                    return
                if server.token is not None:
                    expected = "Basic " + base64.b64encode(f":{server.token}".encode()).decode()
                    if self.headers.get("Authorization") not in (expected, f"Bearer {server.token}"):
                        self._send(401, {"message": "unauthorized"})
                        return
                parts = path.strip("/").split("/")
                if len(parts) < 4 or parts[0] != server.name or parts[2] not in ("_apis",):
                    self._send(404, {"message": "not found"})
                    return
                project, rest = parts[1], parts[3:]
                org = server.org
                if rest == ["build", "builds"]:
                    self._builds(project, query)
                elif rest[:2] == ["build", "builds"] and len(rest) >= 4 and rest[3] == "timeline":
                    build_id = int(rest[2])
                    body = (org.timelines.get(build_id) if len(rest) == 4
                            else org.previous_timelines.get((build_id, rest[4])))
                    self._send(200, body) if body is not None else self._send(404, {"message": "no timeline"})
                elif rest[:2] == ["build", "builds"] and len(rest) == 4 and rest[3] == "artifacts":
                    name = query.get("artifactName", "")
                    if (int(rest[2]), name) not in org.artifacts:
                        self._send(404, {"message": "no artifact"})
                        return
                    download = f"{server.url}/{project}/_apis/build/builds/{rest[2]}/artifacts/{name}/zip"
                    self._send(200, {"name": name, "resource": {"type": "Container", "downloadUrl": download}})
                elif rest[:2] == ["build", "builds"] and len(rest) == 6 and rest[5] == "zip":
                    self._send(200, raw=org.artifacts[(int(rest[2]), rest[4])])
                elif rest == ["build", "definitions"]:
                    ids = sorted({b["definition"]["id"] for b in org.builds.get(project, [])})
                    self._send(200, {"count": len(ids), "value": [{"id": i, "name": f"def-{i}"} for i in ids]})
                elif rest == ["test", "runs"]:
                    build_id = int(query.get("buildUri", "").rsplit("/", 1)[-1])
                    runs = org.test_runs.get(build_id, [])
                    self._send(200, {"count": len(runs), "value": runs})
                elif len(rest) == 4 and rest[0] == "test" and rest[1].lower() == "runs" and rest[3] == "results":
                    results = org.test_results.get(int(rest[2]), [])
                    skip, top = int(query.get("$skip", 0)), int(query.get("$top", 1000))
                    page = results[skip: skip + top]
                    self._send(200, {"count": len(page), "value": page})
                else:
                    self._send(404, {"message": "not found"})

            def _builds(self, project: str, query: dict[str, str]) -> None:
                builds = list(server.org.builds.get(project, []))
                since = to_utc_naive(query["minTime"]) if query.get("minTime") else None
                if since is not None:
                    builds = [b for b in builds if _when(b) >= since]
                if query.get("definitions"):
                    wanted = {int(d) for d in query["definitions"].split(",")}
                    builds = [b for b in builds if b.get("definition", {}).get("id") in wanted]
                builds.sort(key=lambda b: (_when(b), b["id"]))
                start = int(query.get("continuationToken", 0))
                top = int(query.get("$top", 1000))
                page = builds[start: start + top]
                headers = {}
                if start + top < len(builds):
                    headers["x-ms-continuationtoken"] = str(start + top)
                self._send(200, {"count": len(page), "value": page}, headers)

        return Handler


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
                           first_id: int = 100) -> tuple[FakeOrganization, dict[str, int]]:
    """A small organization exercising every path (retries, PRs, tests with reruns, metrics); and its row counts.

    Every third build (index 0, 3, ...) has job 0 retried: the latest timeline holds attempt 2 and
    points at a partial previous timeline with attempt 1 (which fails with one error issue) and an
    unchanged copy of the stage record (one execution, so one row).
    """
    from datetime import timedelta

    org = FakeOrganization()
    counts = dict.fromkeys(("TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults",
                            "BuildMetrics", "BuildStages", "MetricSamples"), 0)
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
                    tid = f"prev-{bid}"
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
            org.timelines[bid] = {"id": f"latest-{bid}", "changeId": 5, "records": records}
            counts["TimelineRecords"] += len(records)
            counts["TimelineIssues"] += len(build["validationResults"])
            if retried:
                org.previous_timelines[(bid, f"prev-{bid}")] = {"id": f"prev-{bid}", "records": previous_records}
                counts["TimelineRecords"] += 2  # the old job and its task; the stage copy is the same execution
                counts["TimelineIssues"] += 1
            run_id = bid * 10
            org.test_runs[bid] = [{
                "id": run_id, "name": "unit tests", "state": "Completed", "totalTests": 3, "passedTests": 2,
                "startedDate": build["startTime"], "completedDate": finish,
                "pipelineReference": {"pipelineId": bid, "stageReference": {"stageName": "Build", "attempt": 1},
                                      "phaseReference": {"phaseName": "Build", "attempt": 1},
                                      "jobReference": {"jobName": "Job 1", "attempt": 1}},
            }]
            org.test_results[run_id] = [
                {"id": 100000, "outcome": "Passed", "automatedTestName": "Suite.Passes", "durationInMs": 12.5},
                {"id": 100001, "outcome": "Failed", "automatedTestName": "Suite.Fails",
                 "errorMessage": "Assert failed for bob@example.com", "durationInMs": 3},
                {"id": 100002, "outcome": "Passed", "automatedTestName": "Suite.Flaky", "resultGroupType": "rerun",
                 "subResults": [{"id": 1, "outcome": "Failed"}, {"id": 2, "outcome": "Passed"}]},
            ]
            counts["TimelineBuilds"] += 1
            counts["TestRuns"] += 1
            counts["TestResults"] += 3
            org.artifacts[(bid, "telemetry")] = _metrics_zip(bid, finish)
            counts["BuildMetrics"] += 1
            counts["BuildStages"] += 2
            counts["MetricSamples"] += 6 + 2 + 2  # per-build figures + memory samples + stage durations
    return org, counts
