"""The simulated organization over real HTTP: Azure DevOps REST URL layout on 127.0.0.1.

`start_server(seed=7, days=28, builds_per_day=12, faults=None, end=None)` plans the organization
and serves it from a `ThreadingHTTPServer` on an ephemeral port; `.url` is the organization URL
(`http://127.0.0.1:PORT/simulated`). Paths are matched case-insensitively, as Azure DevOps does;
unknown query parameters (api-version, ...) are ignored.

Limits of the real service it enforces (docs/azure-devops.md lists their sources):
- test results: `$top` is capped at 200 with `detailsToInclude`, 1000 without, so a page holds
  fewer results than asked while more remain; the listing ends with an empty page;
- refused credentials get 203 and an HTML sign-in page, or 401 when the request carries
  `X-TFS-FedAuthRedirect: Suppress`;
- with `Faults.rate_limit`, `X-RateLimit-Resource/-Limit/-Remaining/-Reset` near the limit,
  `X-RateLimit-Delay` (and a delayed answer) past it, then 429 with `Retry-After` and the same headers.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import threading
import time
import zipfile
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from etl.simulator.faults import Faults
from etl.simulator.model import BuildPlan, SimulatedOrganization, iso

JSON_TYPE = "application/json; charset=utf-8; api-version=7.1"
MAX_BUILDS_PAGE = 5000
DEFAULT_BUILDS_PAGE = 1000
#: Test results per page: the service's caps on `$top`, without and with `detailsToInclude`.
MAX_RESULTS_PAGE = 1000
MAX_RESULTS_PAGE_DETAILS = 200
SIGN_IN_PAGE = (b"<!DOCTYPE html><html lang=\"en-US\"><head><meta charset=\"utf-8\">"
                b"<title>Azure DevOps Services | Sign In</title></head><body><form id=\"signin\" method=\"post\" "
                b"action=\"https://login.microsoftonline.com/\"><p>Sign in to continue to Azure DevOps.</p>"
                b"</form></body></html>")

# Azure DevOps matches paths case-insensitively (`Runs`, `Timeline`, `Builds` all appear in the wild).
_ROUTES: list[tuple[str, re.Pattern[str]]] = [(kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in [
    ("projects", r"^/(?P<org>[^/]+)/_apis/projects/?$"),
    ("definitions", r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/build/definitions/?$"),
    ("builds", r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/build/builds/?$"),
    ("build", r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/build/builds/(?P<build>\d+)/?$"),
    ("timeline", r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/build/builds/(?P<build>\d+)/timeline/?$"),
    ("timeline_attempt", r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/build/builds/(?P<build>\d+)/timeline/(?P<timeline>[0-9a-fA-F-]{36})/?$"),
    ("artifacts", r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/build/builds/(?P<build>\d+)/artifacts/?$"),
    ("test_runs", r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/test/runs/?$"),
    ("test_run", r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/test/runs/(?P<run>\d+)/?$"),
    ("test_results", r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/test/runs/(?P<run>\d+)/results/?$"),
]]


class HttpError(Exception):
    """An ADO-style error response."""

    def __init__(self, status: int, type_key: str, message: str) -> None:
        super().__init__(message)
        self.status, self.type_key, self.message = status, type_key, message

    def body(self) -> dict[str, Any]:
        return {"$id": "1", "innerException": None, "message": self.message,
                "typeName": f"Microsoft.TeamFoundation.{self.type_key}, Microsoft.TeamFoundation.Build2.WebApi",
                "typeKey": self.type_key, "errorCode": 0, "eventId": 3000}


#: (route kind, decoded JSON body) -> the body to serve instead.
PayloadHook = Callable[[str, Any], Any]


class Response:
    """What a handler returns: status, headers and a body (JSON or bytes)."""

    def __init__(self, body: Any, status: int = 200, headers: Mapping[str, str] | None = None,
                 content_type: str = JSON_TYPE) -> None:
        self.status = status
        self.headers = dict(headers or {})
        self.content_type = content_type
        self.data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        #: Send only the first half of the body, then close the connection (the `cut` fault).
        self.cut = False


def _parse_time(value: str) -> datetime:
    text = value.strip().replace(" ", "+")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.11 accepts at most 6 fractional digits; ADO sends up to 7.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class SimulatorServer:
    """A running simulated organization; a context manager that stops the server on exit."""

    def __init__(self, org: SimulatedOrganization, *, faults: Faults | Mapping[str, Any] | None = None,
                 token: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 honor_suppress_redirect: bool = True, clock: Callable[[], float] = time.time,
                 payload_hook: PayloadHook | None = None) -> None:
        self.org = org
        #: Rewrites every JSON body (and every JSON file inside an artifact zip) before it is served:
        #: how tests plant hostile text into every field of every response.
        self.payload_hook = payload_hook
        self.faults = Faults.from_value(faults, seed=org.seed)
        self.token = token
        #: Answer refused credentials with 401 when the client sends `X-TFS-FedAuthRedirect: Suppress`
        #: (False: a sign-in page whatever the client asks, as some proxies and hosts do).
        self.honor_suppress_redirect = honor_suppress_redirect
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self.faults_served: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._recent: deque[float] = deque()  # request times inside the rate-limit window
        self._results_cache: OrderedDict[tuple[int, bool], list[dict[str, Any]]] = OrderedDict()
        self._per_url: dict[str, tuple[int, int]] = {}  # url -> (requests seen, consecutive random faults)
        self._build_cache: dict[tuple[str, int], dict[str, Any]] = {}
        handler = type("Handler", (_Handler,), {"sim": self})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="ado-simulator", daemon=True)  # a quick stop()
        self._thread.start()

    @property
    def url(self) -> str:
        """The organization URL, e.g. http://127.0.0.1:PORT/simulated."""
        return f"http://{self.host}:{self.port}/{self.org.organization}"

    @property
    def projects(self) -> list[str]:
        return self.org.projects

    @property
    def ground_truth(self) -> dict[str, Any]:
        return self.org.ground_truth()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- request handling ----------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str]) -> tuple[Response, float]:
        """Route one request; returns the response and how long to wait before sending it."""
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = {k.lower(): v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        kind, match = self._route(path)
        if kind == "artifacts" and query.get("$format", "").lower() == "zip":
            kind = "artifact_zip"  # same path, but a download: counted and faulted on its own
        with self._lock:
            self.counters[kind or "unknown"] += 1
        if method != "GET":
            return Response(HttpError(405, "MethodNotAllowed", f"{method} is not supported").body(), 405), 0.0
        if kind is None or match is None:
            return self._error(HttpError(404, "ResourceNotFoundException", f"No API matches {path}")), 0.0
        if not self._authorized(headers):
            suppress = (headers.get("X-TFS-FedAuthRedirect") or "").lower() == "suppress"
            if suppress and self.honor_suppress_redirect:
                return Response({"message": "TF400813: The user is not authorized to access this resource."}, 401,
                                {"WWW-Authenticate": 'Basic realm="https://simulated.visualstudio.com/"'}), 0.0
            return Response(SIGN_IN_PAGE, 203, content_type="text/html; charset=utf-8"), 0.0
        blocked, rate_headers, delay = self._rate_limit()
        if blocked is not None:
            return blocked, 0.0
        fault = self._fault(kind, raw_path)
        if fault in ("429", "500", "503"):
            return self._fault_response(fault), 0.0
        if fault == "slow" and self.faults is not None:
            delay += self.faults.delay
        try:
            response = self._dispatch(kind, match.groupdict(), query)
        except HttpError as exc:
            response = self._error(exc)
        if self.payload_hook is not None and response.status == 200:
            self._apply_hook(kind, response)
        if fault == "malformed" and response.content_type.startswith("application/json"):
            response.data = response.data[: max(1, len(response.data) // 2)]
        if fault == "cut":  # a copy: the routes may hand out one response object to every request
            response = Response(response.data, response.status, response.headers, response.content_type)
            response.cut = True
        response.headers.update(rate_headers)
        return response, delay

    def _rate_limit(self) -> tuple[Response | None, dict[str, str], float]:
        """Azure DevOps-style throttling of one user: (a 429 to send or None, headers to add, delay)."""
        limit = self.faults.rate_limit if self.faults is not None else 0
        if not limit:
            return None, {}, 0.0
        window = self.faults.rate_window
        now = self.clock()
        with self._lock:
            while self._recent and self._recent[0] <= now - window:
                self._recent.popleft()
            used = len(self._recent) + 1
            blocked = used > 2 * limit
            if not blocked:  # a blocked request consumes nothing
                self._recent.append(now)
            oldest = self._recent[0] if self._recent else now
        if used * 2 < limit:
            return None, {}, 0.0
        headers = {"X-RateLimit-Resource": "Core", "X-RateLimit-Limit": str(limit),
                   "X-RateLimit-Remaining": str(max(limit - used, 0)), "X-RateLimit-Reset": str(math.ceil(now + window))}
        if blocked:
            self.faults_served["rate-limit-429"] += 1
            wait = max(math.ceil(oldest + window - now), 1)
            return Response({"message": "TF400733: The request has been canceled: Request was blocked due to "
                                        "exceeding usage of resource 'Core' in namespace 'User'."}, 429,
                            {**headers, "Retry-After": str(wait), "X-RateLimit-Delay": "0.000"}), headers, 0.0
        delay = 0.0
        if used > limit:
            # Past the limit Azure DevOps delays each request a little more, and says by how much.
            delay = round(min(0.002 * (used - limit), 0.05), 3)
            headers["X-RateLimit-Delay"] = f"{delay:.3f}"
            self.faults_served["rate-limit-delay"] += 1
        return None, headers, delay

    def _apply_hook(self, kind: str, response: Response) -> None:
        assert self.payload_hook is not None
        if response.content_type.startswith("application/json"):
            response.data = json.dumps(self.payload_hook(kind, json.loads(response.data))).encode()
        elif kind == "artifact_zip" and response.data:
            out = io.BytesIO()
            with zipfile.ZipFile(io.BytesIO(response.data)) as src, zipfile.ZipFile(out, "w") as dst:
                for info in src.infolist():
                    data = src.read(info)
                    if info.filename.endswith(".json"):
                        data = json.dumps(self.payload_hook("artifact_file", json.loads(data))).encode()
                    dst.writestr(info.filename, data)
            response.data = out.getvalue()

    @staticmethod
    def _route(path: str) -> tuple[str | None, re.Match[str] | None]:
        for kind, pattern in _ROUTES:
            m = pattern.match(path)
            if m:
                return kind, m
        return None, None

    def _fault(self, kind: str, url: str) -> str | None:
        if self.faults is None:
            return None
        with self._lock:
            nth_kind = self.counters[kind]
            seen, streak = self._per_url.get(url, (0, 0))
            fault = self.faults.scheduled(kind, nth_kind)
            if fault is None:
                fault = self.faults.random_fault(kind, url, seen + 1, streak)
                streak = streak + 1 if fault else 0
            self._per_url[url] = (seen + 1, streak)
            if fault:
                self.faults_served[fault] += 1
        return fault

    def _fault_response(self, fault: str) -> Response:
        if fault == "429":
            seconds = self.faults.retry_after if self.faults else 1
            return Response({"message": "TF400733: The request has been canceled: Request was blocked due to "
                                        "exceeding usage of resource 'Build' in namespace 'User'."}, 429,
                            {"Retry-After": str(math.ceil(seconds)), "X-RateLimit-Resource": "Build",
                             "X-RateLimit-Delay": str(seconds), "X-RateLimit-Limit": "200",
                             "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0"})
        status = int(fault)
        message = "Service Unavailable" if status == 503 else "VS402371: An unexpected error occurred."
        return Response({"message": message, "typeKey": "ServiceUnavailable" if status == 503 else "ServerError"},
                        status)

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        if not self.token:
            return True
        value = headers.get("Authorization") or headers.get("authorization") or ""
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() == "bearer":
            return credentials.strip() == self.token
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip()).decode()
            except ValueError:
                return False
            return decoded.partition(":")[2] == self.token
        return False

    @staticmethod
    def _error(exc: HttpError) -> Response:
        return Response(exc.body(), exc.status)

    def _project(self, params: Mapping[str, str]) -> str:
        if params["org"].lower() != self.org.organization.lower():
            raise HttpError(404, "OrganizationNotFoundException", f"Organization {params['org']} was not found.")
        project = params.get("project")
        if project is None:
            return ""
        name = self.org.project_name(project)
        if name is None:
            raise HttpError(404, "ProjectDoesNotExistWithNameException",
                            f"TF200016: The following project does not exist: {project}.")
        return name

    def _build(self, project: str, params: Mapping[str, str]) -> BuildPlan:
        b = self.org.build_plan(project, int(params["build"]))
        if b is None:
            raise HttpError(404, "BuildNotFoundException", f"The requested build {params['build']} could not be found.")
        return b

    def _dispatch(self, kind: str, params: dict[str, str], query: dict[str, str]) -> Response:
        project = self._project(params)
        name = "artifacts" if kind == "artifact_zip" else kind
        handler: Callable[[str, dict[str, str], dict[str, str]], Response] = getattr(self, f"_get_{name}")
        return handler(project, params, query)

    # --- endpoints -----------------------------------------------------------------------

    def _get_projects(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        value = [self.org._project_ref(self.url, name) for name in self.org.projects]
        return Response({"count": len(value), "value": value})

    def _get_definitions(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        value = [self.org.definition_body(self.url, p, d) for p, d in self.org.definitions.values() if p == project]
        return Response({"count": len(value), "value": value})

    def _build_body(self, b: BuildPlan) -> dict[str, Any]:
        key = (self.url, b.id)
        body = self._build_cache.get(key)
        if body is None:
            body = self._build_cache[key] = self.org.build_body(self.url, b)
        return body

    def _get_builds(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        order = query.get("queryorder") or "queueTimeDescending"
        field_name = {"finish": "finish", "start": "start", "queue": "queue"}.get(
            re.sub(r"time.*$", "", order.lower()), "queue")
        descending = order.lower().endswith("descending")
        builds = self.org.list_builds(project)
        status = query.get("statusfilter", "")
        if status and status.lower() != "all":
            wanted = {s.strip().lower() for s in status.split(",")}
            builds = [b for b in builds if b.status.lower() in wanted]
        if query.get("resultfilter"):
            wanted = {s.strip().lower() for s in query["resultfilter"].split(",")}
            builds = [b for b in builds if (b.result or "").lower() in wanted]
        if query.get("definitions"):
            ids = {int(x) for x in query["definitions"].split(",") if x.strip().isdigit()}
            builds = [b for b in builds if b.definition.id in ids]
        if query.get("branchname"):
            branch = query["branchname"]
            branch = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
            builds = [b for b in builds if b.source_branch == branch]

        def key(b: BuildPlan) -> datetime | None:
            return {"finish": b.finish, "start": b.start, "queue": b.queue}[field_name]

        builds = [b for b in builds if key(b) is not None]
        try:
            if query.get("mintime"):
                low = _parse_time(query["mintime"])
                builds = [b for b in builds if key(b) >= low]
            if query.get("maxtime"):
                high = _parse_time(query["maxtime"])
                builds = [b for b in builds if key(b) <= high]
            token = _parse_time(query["continuationtoken"]) if query.get("continuationtoken") else None
        except ValueError as exc:
            raise HttpError(400, "InvalidQueryParameterException", f"Invalid time value: {exc}") from None
        builds.sort(key=lambda b: (key(b), b.id), reverse=descending)
        if token is not None:
            builds = [b for b in builds if (key(b) <= token if descending else key(b) >= token)]
        try:
            top = min(int(query.get("$top") or DEFAULT_BUILDS_PAGE), MAX_BUILDS_PAGE)
        except ValueError:
            raise HttpError(400, "InvalidQueryParameterException", "$top must be an integer") from None
        page, rest = builds[:top], builds[top:]
        headers = {"x-ms-continuationtoken": iso(key(rest[0]))} if rest else {}
        value = [self._build_body(b) for b in page]
        return Response({"count": len(value), "value": value}, headers=headers)

    def _get_build(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        return Response(self._build_body(self._build(project, params)))

    def _get_timeline(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        b = self._build(project, params)
        return Response(self.org.timeline_body(self.url, b))

    def _get_timeline_attempt(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        b = self._build(project, params)
        body = self.org.timeline_body(self.url, b, params["timeline"])
        if body is None:
            raise HttpError(404, "TimelineNotFoundException",
                            f"Timeline {params['timeline']} was not found for build {b.id}.")
        return Response(body)

    def _artifact(self, b: BuildPlan, name: str) -> dict[str, Any]:
        pid = self.org.project_ids[b.project]
        base = f"{self.url}/{pid}/_apis/build/builds/{b.id}/artifacts"
        return {"id": 7 + len(name), "name": name, "source": _artifact_source(b),
                "resource": {"type": "Container", "data": f"#/{b.id * 3}/{name}",
                             "properties": {"localpath": f"D:\\a\\1\\a\\{name}", "artifactsize": "4096"},
                             "url": f"{base}?artifactName={name}&api-version=7.1",
                             "downloadUrl": f"{base}?artifactName={name}&api-version=7.1&%24format=zip"}}

    def _get_artifacts(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        b = self._build(project, params)
        names = (["telemetry"] if b.metrics is not None else [])
        name = query.get("artifactname")
        if name is None:
            value = [self._artifact(b, n) for n in names]
            return Response({"count": len(value), "value": value})
        if name.lower() not in names:
            raise HttpError(404, "ArtifactNotFoundException", f"No artifact with name {name} was found for build {b.id}.")
        if query.get("$format", "").lower() == "zip":
            data = self.org.artifact_zip(b)
            return Response(data or b"", content_type="application/zip")
        return Response(self._artifact(b, "telemetry"))

    def _get_test_runs(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        uri = query.get("builduri")
        if uri:
            m = re.match(r"vstfs:///Build/Build/(\d+)$", uri, re.I)
            b = self.org.build_plan(project, int(m.group(1))) if m else None
            builds = [b] if b is not None else []
        else:
            builds = self.org.list_builds(project)
        runs = [r for b in builds for r in self.org.test_runs_for_build(self.url, b)]
        if query.get("includerundetails", "").lower() != "true":
            runs = [{"id": r["id"], "name": r["name"], "url": r["url"]} for r in runs]
        try:
            skip = max(int(query.get("$skip") or 0), 0)
            top = max(int(query.get("$top") or len(runs) or 1), 1)
        except ValueError:
            raise HttpError(400, "InvalidQueryParameterException", "$top and $skip must be integers") from None
        page = runs[skip: skip + top]
        return Response({"count": len(page), "value": page})

    def _get_test_run(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        found = self.org.test_run_by_id(self.url, int(params["run"]))
        if found is None or found[0] != project:
            raise HttpError(404, "TestObjectNotFoundException", f"Test run {params['run']} not found.")
        return Response(found[1])

    def _get_test_results(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        found = self.org.test_run_by_id(self.url, int(params["run"]))
        if found is None or found[0] != project:
            raise HttpError(404, "TestObjectNotFoundException", f"Test run {params['run']} not found.")
        details = query.get("detailstoinclude", "").strip().lower()
        run_id = int(params["run"])
        results = self._results(run_id, sub_results="subresults" in details)
        if self.faults is not None and self.faults.withhold_results.get(run_id):
            results = results[: max(len(results) - self.faults.withhold_results[run_id], 0)]
        if query.get("outcomes"):
            wanted = {o.strip().lower() for o in query["outcomes"].split(",")}
            results = [r for r in results if r["outcome"].lower() in wanted]
        cap = MAX_RESULTS_PAGE_DETAILS if details and details != "none" else MAX_RESULTS_PAGE
        if self.faults is not None and self.faults.results_cap:
            cap = min(cap, self.faults.results_cap)
        try:
            skip = max(int(query.get("$skip") or 0), 0)
            top = min(max(int(query.get("$top") or 100), 1), cap)
        except ValueError:
            raise HttpError(400, "InvalidQueryParameterException", "$top and $skip must be integers") from None
        page = results[skip: skip + top]
        return Response({"count": len(page), "value": page})

    def _results(self, run_id: int, *, sub_results: bool) -> list[dict[str, Any]]:
        """A run's rendered results; the last few runs are kept, since a big run is read page by page."""
        key = (run_id, sub_results)
        with self._lock:
            cached = self._results_cache.get(key)
            if cached is not None:
                self._results_cache.move_to_end(key)
                return cached
        results = self.org.test_results(self.url, run_id, sub_results=sub_results) or []
        with self._lock:
            self._results_cache[key] = results
            while len(self._results_cache) > 16:
                self._results_cache.popitem(last=False)
        return results


def _artifact_source(b: BuildPlan) -> str:
    """The id of the job that published an artifact."""
    jobs = b.jobs()
    return jobs[0].runs[-1].record_id if jobs and jobs[0].runs else ""


class _Handler(BaseHTTPRequestHandler):
    sim: SimulatorServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle on, a kept-alive connection waits for the
    # client's delayed ACK (~40 ms) before the body, which made every simulated request cost 40 ms.
    disable_nagle_algorithm = True
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._serve("POST")

    def _serve(self, method: str) -> None:
        sim = self.sim
        with sim._lock:
            sim.in_flight += 1
            sim.max_in_flight = max(sim.max_in_flight, sim.in_flight)
        try:
            try:
                response, delay = sim.handle(method, self.path, self.headers)
            except Exception as exc:  # a simulator bug must surface as a 500, not a hung connection
                response, delay = Response({"message": f"simulator error: {type(exc).__name__}: {exc}"}, 500), 0.0
            if delay:
                time.sleep(delay)
        finally:
            with sim._lock:
                sim.in_flight -= 1
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.data)))
        self.send_header("ActivityId", "00000000-0000-0000-0000-000000000000")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if response.cut:
            self.wfile.write(response.data[: len(response.data) // 2])
            self.close_connection = True
            return
        self.wfile.write(response.data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines would drown test and CLI output."""


def start_server(
    seed: int = 7,
    days: int = 28,
    builds_per_day: int = 12,
    faults: Faults | Mapping[str, Any] | None = None,
    end: datetime | None = None,
    *,
    token: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    organization: str = "simulated",
    records_per_job: int = 0,
    tests_per_definition: int = 40,
    large_runs: int | None = None,
    large_run_results: int = 1250,
    honor_suppress_redirect: bool = True,
    clock: Callable[[], float] = time.time,
    payload_hook: PayloadHook | None = None,
) -> SimulatorServer:
    """Plan a simulated organization and serve it; use as a context manager or call `.stop()`.

    `token`: when set, requests need it as a PAT (HTTP Basic password) or Bearer token; others get
    a 203 sign-in page (401 when they send `X-TFS-FedAuthRedirect: Suppress` and
    `honor_suppress_redirect`).
    `records_per_job`: extra steps per job, for big timelines (benchmarks).
    `large_runs`, `large_run_results`: how many test runs hold `large_run_results` results
    (None: one per 100 builds, at most 3). `clock`: the rate limit's time source.
    """
    org = SimulatedOrganization(seed, days, builds_per_day, end, organization=organization,
                                records_per_job=records_per_job, tests_per_definition=tests_per_definition,
                                large_runs=large_runs, large_run_results=large_run_results)
    return SimulatorServer(org, faults=faults, token=token, host=host, port=port,
                           honor_suppress_redirect=honor_suppress_redirect, clock=clock,
                           payload_hook=payload_hook)
