"""The simulated organization through a simulated GitHub REST API, on loopback.

`start_github_server(seed=8, days=28, builds_per_day=6, owner="octo-sim")` plans the same kind of
organization as the Azure DevOps simulator (`SimulatedOrganization`) and serves it as GitHub
Actions (`etl.simulator.github_render`) from its own `ThreadingHTTPServer` on 127.0.0.1, with a
second server on another loopback address (127.0.0.2 where the system has it) standing for the
blob host artifact downloads redirect to.

Limits of the real API it enforces (docs.github.com, REST API "Using pagination", "Rate limits",
"Best practices", "Workflow runs", "Artifacts"):
- `per_page` at most 100 (default 30), pages by `page`, `Link` header with first/prev/next/last;
- the runs listing returns at most 1,000 results per query (`total_count` still says all): pages
  past them are empty and no `next` link leads there;
- `x-ratelimit-limit/-remaining/-used/-reset/-resource` on every response; once the budget of the
  window is spent, 403 "API rate limit exceeded" until `x-ratelimit-reset`; a 304 costs nothing;
- secondary rate limits (a fault): 429 (or 403) with `retry-after`;
- `ETag` on every JSON response and 304 for a matching `If-None-Match`;
- artifact downloads answer 302 to the blob host, which refuses any request carrying
  `Authorization` (and a wrong signature); an expired artifact answers 410;
- a missing or wrong token gets 401 "Bad credentials".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from etl.simulator.github_render import GitHubBodies
from etl.simulator.model import SimulatedOrganization
from etl.simulator.specs import BuildPlan

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30
MAX_LISTING_RESULTS = 1_000
DOCS = "https://docs.github.com/rest"

_ROUTES: list[tuple[str, re.Pattern[str]]] = [(kind, re.compile(pattern)) for kind, pattern in [
    ("org_repos", r"^/orgs/(?P<owner>[^/]+)/repos$"),
    ("runs", r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/actions/runs$"),
    ("run", r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/actions/runs/(?P<run>\d+)$"),
    ("attempt_jobs", r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/actions/runs/(?P<run>\d+)/attempts/(?P<attempt>\d+)/jobs$"),
    ("run_artifacts", r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/actions/runs/(?P<run>\d+)/artifacts$"),
    ("artifact_zip", r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/actions/artifacts/(?P<artifact>\d+)/zip$"),
    ("annotations", r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/check-runs/(?P<job>\d+)/annotations$"),
    ("contents", r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/contents/(?P<path>.+)$"),
    ("rate_limit", r"^/rate_limit$"),
]]


@dataclass
class GitHubFaults:
    """Faults to serve: secondary rate limits and server errors at given request numbers (1-based, API host)."""

    #: Request numbers answered 429 with `retry-after: secondary_retry_after`.
    secondary_at: set[int] = field(default_factory=set)
    secondary_retry_after: float = 1.0
    #: Request numbers answered 502.
    server_error_at: set[int] = field(default_factory=set)
    #: Request numbers whose connection closes halfway through the body (`Content-Length` announces it whole).
    cut_at: set[int] = field(default_factory=set)


class GitHubHttpError(Exception):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"
    #: Send only the first half of the body, then close the connection (`GitHubFaults.cut_at`).
    cut: bool = False

    @property
    def data(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Logged:
    """One request the API host answered (tests read these)."""

    kind: str
    path: str
    query: dict[str, str]
    status: int


def parse_created(value: str) -> tuple[datetime | None, datetime | None]:
    """The inclusive (start, end) of a `created` qualifier: `A..B`, `>=A`, `<=B`, `>A`, `<B`, a date, `*`."""
    def when(text: str, end: bool = False) -> datetime | None:
        if text in ("", "*"):
            return None
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day + timedelta(days=1) - timedelta(seconds=1) if end else day
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    value = value.strip()
    if ".." in value:
        a, _, b = value.partition("..")
        return when(a), when(b, end=True)
    for op in (">=", "<=", ">", "<"):
        if value.startswith(op):
            t = when(value[len(op):], end=op in ("<=", ">"))
            if op == ">=":
                return t, None
            if op == "<=":
                return None, t
            if op == ">":
                return (t + timedelta(seconds=1) if t else None), None
            return None, (t - timedelta(seconds=1) if t else None)
    return when(value), when(value, end=True)


def _loopback_pair() -> str:
    """A second loopback address for the blob host (127.0.0.2 on Linux), else 127.0.0.1 (another port)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.2", 0))
        return "127.0.0.2"
    except OSError:
        return "127.0.0.1"


class GitHubSimulator:
    """A running simulated GitHub API (and blob host); a context manager that stops both on exit."""

    def __init__(self, org: SimulatedOrganization, *, owner: str = "octo-sim", token: str | None = None,
                 rate_limit: int = 5000, rate_window: float = 3600.0, faults: GitHubFaults | None = None,
                 max_results: int = MAX_LISTING_RESULTS, clock: Callable[[], float] = time.time,
                 secondary_status: int = 429) -> None:
        self.org = org
        self.bodies = GitHubBodies(org, owner)
        self.owner = owner
        self.token = token if token is not None else secrets.token_hex(20)
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.faults = faults or GitHubFaults()
        self.max_results = max_results
        self.clock = clock
        self.secondary_status = secondary_status
        self.counters: Counter[str] = Counter()
        self.log: deque[Logged] = deque(maxlen=200_000)
        self.blob_log: deque[tuple[str, bool, int]] = deque(maxlen=200_000)  # (path, had Authorization, status)
        self._lock = threading.Lock()
        self._requests = 0
        self._window_start: float | None = None
        self._used = 0
        self._key = secrets.token_bytes(16)
        self._commits: dict[int, set[str]] = {d_id: set() for d_id in org.definitions}
        for b in org.builds:
            self._commits[b.definition.id].add(b.commit)
        self._httpd = _QuietServer(("127.0.0.1", 0), type("GitHubHandler", (_Handler,), {"serve": self._api}))
        self._blob = _QuietServer((_loopback_pair(), 0), type("BlobHandler", (_Handler,), {"serve": self._blob_get}))
        self.host, self.port = self._httpd.server_address[:2]
        self.blob_host, self.blob_port = self._blob.server_address[:2]
        self._threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                                          name=name) for s, name in ((self._httpd, "github-sim"), (self._blob, "blob-sim"))]
        for t in self._threads:
            t.start()

    @property
    def url(self) -> str:
        """The API root, e.g. http://127.0.0.1:PORT."""
        return f"http://{self.host}:{self.port}"

    @property
    def repositories(self) -> list[str]:
        return sorted(self.bodies.repos)

    def ground_truth(self) -> dict[str, Any]:
        return self.bodies.ground_truth()

    def stop(self) -> None:
        for server in (self._httpd, self._blob):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> GitHubSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the rate limit -------------------------------------------------------------------------

    def _rate_headers(self, charge: bool) -> tuple[dict[str, str], bool]:
        """(x-ratelimit-* headers, exhausted) for one request; *charge* spends one unit of the budget."""
        now = self.clock()
        with self._lock:
            if self._window_start is None or now >= self._window_start + self.rate_window:
                self._window_start, self._used = now, 0
            exhausted = self._used >= self.rate_limit
            if charge and not exhausted:
                self._used += 1
            headers = {"x-ratelimit-limit": str(self.rate_limit),
                       "x-ratelimit-remaining": str(max(self.rate_limit - self._used, 0)),
                       "x-ratelimit-used": str(self._used),
                       "x-ratelimit-reset": str(math.ceil(self._window_start + self.rate_window)),
                       "x-ratelimit-resource": "core"}
        return headers, exhausted

    # -- the API host ---------------------------------------------------------------------------

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        scheme, _, value = (headers.get("Authorization") or "").partition(" ")
        return scheme.lower() in ("bearer", "token") and hmac.compare_digest(value.strip(), self.token)

    def _api(self, path: str, query: dict[str, str], headers: Mapping[str, str]) -> Reply:
        with self._lock:
            self._requests += 1
            nth = self._requests
        kind, match = next(((k, m) for k, p in _ROUTES if (m := p.match(path))), (None, None))
        self.counters[kind or "unknown"] += 1
        reply = self._answer(nth, kind, match, query, headers)
        if nth in self.faults.cut_at:
            self.counters["fault:cut"] += 1
            reply = replace(reply, cut=True)
        self.log.append(Logged(kind or "unknown", path, {k: v for k, v in query.items() if k != "__path__"},
                               reply.status))
        return reply

    def _answer(self, nth: int, kind: str | None, match: re.Match[str] | None, query: dict[str, str],
                headers: Mapping[str, str]) -> Reply:
        if not self._authorized(headers):
            rate, _ = self._rate_headers(charge=False)
            return Reply(401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}, rate)
        if nth in self.faults.secondary_at:
            self.counters["fault:secondary"] += 1
            rate, _ = self._rate_headers(charge=False)
            return Reply(self.secondary_status, {
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": DOCS}, {**rate, "retry-after": f"{self.faults.secondary_retry_after:g}"})
        if nth in self.faults.server_error_at:
            self.counters["fault:502"] += 1
            rate, _ = self._rate_headers(charge=False)
            return Reply(502, {"message": "Server Error"}, rate)
        _, exhausted = self._rate_headers(charge=False)
        if exhausted:
            self.counters["fault:rate-limit"] += 1
            rate, _ = self._rate_headers(charge=False)
            return Reply(403, {"message": "API rate limit exceeded for installation ID 1. If you reach out to "
                                          "GitHub Support for help, please include the request ID.",
                               "documentation_url": DOCS}, rate)
        try:
            if kind is None or match is None:
                raise GitHubHttpError(404, "Not Found")
            reply = getattr(self, f"_get_{kind}")(match.groupdict(), query)
        except GitHubHttpError as exc:
            reply = Reply(exc.status, {"message": exc.message, "documentation_url": DOCS}, exc.headers)
        if reply.status == 200 and not isinstance(reply.body, bytes):
            etag = '"' + hashlib.sha256(reply.data).hexdigest()[:40] + '"'
            reply.headers["ETag"] = etag
            if (headers.get("If-None-Match") or "").strip() in (etag, f"W/{etag}"):
                rate, _ = self._rate_headers(charge=False)  # a 304 costs no budget
                self.counters["not_modified"] += 1
                return Reply(304, None, {**rate, "ETag": etag})
        rate, _ = self._rate_headers(charge=kind != "rate_limit")  # GitHub does not charge for /rate_limit
        reply.headers.update(rate)
        return reply

    def _repo(self, params: Mapping[str, str]) -> str:
        if params["owner"] != self.owner or params["repo"] not in self.bodies.repos:
            raise GitHubHttpError(404, "Not Found")
        return params["repo"]

    def _run(self, params: Mapping[str, str]) -> BuildPlan:
        repo = self._repo(params)
        b = self.bodies.runs.get(int(params["run"]))
        if b is None or self.bodies.repo_of(b) != repo:
            raise GitHubHttpError(404, "Not Found")
        return b

    def _page(self, items: list[Any], query: dict[str, str], cap: int | None = None) -> tuple[list[Any], dict[str, str]]:
        """One page of *items* and its Link header; with *cap*, nothing past the first *cap* items is reachable."""
        try:
            per_page = min(max(int(query.get("per_page", DEFAULT_PER_PAGE)), 1), MAX_PER_PAGE)
            page = max(int(query.get("page", 1)), 1)
        except ValueError:
            raise GitHubHttpError(422, "Invalid request: per_page and page must be integers") from None
        reachable = min(len(items), cap) if cap is not None else len(items)
        last = max(math.ceil(reachable / per_page), 1)
        chunk = items[(page - 1) * per_page: min(page * per_page, reachable)] if page <= last else []
        links = []
        path = query.get("__path__", "")

        def link(n: int, rel: str) -> str:
            params = {k: v for k, v in query.items() if k != "__path__"}
            params.update({"per_page": str(per_page), "page": str(n)})
            return f'<{self.url}{path}?{urlencode(params)}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(min(page - 1, last), "prev")]
        return chunk, ({"Link": ", ".join(links)} if links else {})

    def _get_rate_limit(self, params: Mapping[str, str], query: dict[str, str]) -> Reply:
        rate, _ = self._rate_headers(charge=False)
        core = {"limit": int(rate["x-ratelimit-limit"]), "remaining": int(rate["x-ratelimit-remaining"]),
                "reset": int(rate["x-ratelimit-reset"]), "used": int(rate["x-ratelimit-used"])}
        return Reply(200, {"resources": {"core": core}, "rate": core})

    def _get_org_repos(self, params: Mapping[str, str], query: dict[str, str]) -> Reply:
        if params["owner"] != self.owner:
            raise GitHubHttpError(404, "Not Found")
        repos = [self.bodies.repository(r) for r in sorted(self.bodies.repos)]
        chunk, link = self._page(repos, query)
        return Reply(200, chunk, link)

    def _get_runs(self, params: Mapping[str, str], query: dict[str, str]) -> Reply:
        repo = self._repo(params)
        runs = self.bodies.all_runs(repo)
        if query.get("status"):
            want = query["status"]
            runs = [b for b in runs if (want == "completed" and b.status == "completed")
                    or (want == "in_progress" and b.status != "completed")]
        if query.get("created"):
            try:
                start, end = parse_created(query["created"])
            except ValueError:
                raise GitHubHttpError(422, f"Invalid created qualifier {query['created']!r}") from None
            runs = [b for b in runs if (start is None or self.bodies.created(b) >= start)
                    and (end is None or self.bodies.created(b) <= end)]
        runs.sort(key=lambda b: (self.bodies.created(b), self.bodies.run_id(b)), reverse=True)  # newest first
        filtered = any(k in query for k in ("created", "status", "actor", "branch", "event", "head_sha"))
        chunk, link = self._page(runs, query, cap=self.max_results if filtered else None)
        return Reply(200, {"total_count": len(runs), "workflow_runs": [self.bodies.run_body(b) for b in chunk]}, link)

    def _get_run(self, params: Mapping[str, str], query: dict[str, str]) -> Reply:
        return Reply(200, self.bodies.run_body(self._run(params)))

    def _get_attempt_jobs(self, params: Mapping[str, str], query: dict[str, str]) -> Reply:
        b = self._run(params)
        attempt = int(params["attempt"])
        if not 1 <= attempt <= b.rounds:
            raise GitHubHttpError(404, "Not Found")
        jobs = self.bodies.attempt_jobs(b, attempt)
        chunk, link = self._page(jobs, query)
        return Reply(200, {"total_count": len(jobs), "jobs": chunk}, link)

    def _get_annotations(self, params: Mapping[str, str], query: dict[str, str]) -> Reply:
        repo = self._repo(params)
        found = self.bodies.jobs.get(int(params["job"]))
        if found is None or self.bodies.repo_of(found[0]) != repo:
            raise GitHubHttpError(404, "Not Found")
        chunk, link = self._page(self.bodies.annotations(*found), query)
        return Reply(200, chunk, link)

    def _get_run_artifacts(self, params: Mapping[str, str], query: dict[str, str]) -> Reply:
        b = self._run(params)
        artifacts = self.bodies.run_artifacts(b)
        chunk, link = self._page(artifacts, query)
        return Reply(200, {"total_count": len(artifacts), "artifacts": chunk}, link)

    def _get_artifact_zip(self, params: Mapping[str, str], query: dict[str, str]) -> Reply:
        repo = self._repo(params)
        aid = int(params["artifact"])
        found = self.bodies.artifacts.get(aid)
        if found is None or self.bodies.repo_of(found[0]) != repo:
            raise GitHubHttpError(404, "Not Found")
        if found[1]["expired"] or self.bodies.gone(aid):
            raise GitHubHttpError(410, "Artifact has expired")
        expiry = int(self.clock()) + 60
        signature = self._sign(aid, expiry)
        location = f"http://{self.blob_host}:{self.blob_port}/artifacts/{aid}.zip?se={expiry}&sig={signature}"
        return Reply(302, b"", {"Location": location})

    def _get_contents(self, params: Mapping[str, str], query: dict[str, str]) -> Reply:
        repo = self._repo(params)
        path = unquote(params["path"])
        ref = query.get("ref")
        for _, (project, d) in sorted(self.org.definitions.items()):
            if project.lower() != repo or self.bodies.workflow_path(d) != path:
                continue
            if ref is not None and ref not in self._commits[d.id] and ref not in ("main", "master"):
                raise GitHubHttpError(404, "No commit found for the ref")
            return Reply(200, self.bodies.contents_body(d, ref or "main"))
        raise GitHubHttpError(404, "Not Found")

    # -- the blob host --------------------------------------------------------------------------

    def _sign(self, artifact_id: int, expiry: int) -> str:
        return hmac.new(self._key, f"{artifact_id}:{expiry}".encode(), hashlib.sha256).hexdigest()[:32]

    def _blob_get(self, path: str, query: dict[str, str], headers: Mapping[str, str]) -> Reply:
        has_auth = "Authorization" in headers
        m = re.fullmatch(r"/artifacts/(\d+)\.zip", path)
        if has_auth:
            # Azure Blob Storage refuses a SAS URL that also carries an Authorization header.
            reply = Reply(400, b"<?xml version=\"1.0\"?><Error><Code>InvalidAuthenticationInfo</Code><Message>"
                               b"Authentication information is not given in the correct format.</Message></Error>",
                          content_type="application/xml")
        elif m is None or int(m.group(1)) not in self.bodies.artifacts:
            reply = Reply(404, b"<Error><Code>BlobNotFound</Code></Error>", content_type="application/xml")
        elif not hmac.compare_digest(query.get("sig", ""), self._sign(int(m.group(1)), int(query.get("se", "0") or 0))) \
                or int(query.get("se", "0") or 0) < self.clock():
            reply = Reply(403, b"<Error><Code>AuthenticationFailed</Code></Error>", content_type="application/xml")
        else:
            reply = Reply(200, self.bodies.artifact_zip(int(m.group(1))), content_type="application/zip")
        self.blob_log.append((path, has_auth, reply.status))
        return reply


class _QuietServer(ThreadingHTTPServer):
    """A client that drops a kept-alive connection is no simulator error worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    serve: Callable[..., Reply]
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "GitHub.com"
    sys_version = ""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        query_with_path = {**query, "__path__": parts.path}
        try:
            reply = type(self).serve(parts.path, query_with_path, self.headers)
        except Exception as exc:  # a simulator bug must surface as a 500, not a hung connection
            reply = Reply(500, {"message": f"simulator error: {type(exc).__name__}: {exc}"})
        data = reply.data
        self.send_response(reply.status)
        if reply.status != 304:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if data and reply.cut:
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
        elif data:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines would drown test and CLI output."""


def start_github_server(seed: int = 8, days: int = 28, builds_per_day: int = 6, *, owner: str = "octo-sim",
                        end: datetime | None = None, token: str | None = None, rate_limit: int = 5000,
                        rate_window: float = 3600.0, faults: GitHubFaults | None = None,
                        max_results: int = MAX_LISTING_RESULTS, tests_per_definition: int = 40,
                        clock: Callable[[], float] = time.time, secondary_status: int = 429) -> GitHubSimulator:
    """Plan a simulated organization and serve it as GitHub; use as a context manager or call `.stop()`.

    `token`: the one token accepted (None: a random one, `.token`). `rate_limit` requests per
    `rate_window` seconds; `max_results`: the listing cap (GitHub's is 1,000).
    """
    org = SimulatedOrganization(seed, days, builds_per_day, end, organization=owner,
                                tests_per_definition=tests_per_definition, large_runs=0)
    return GitHubSimulator(org, owner=owner, token=token, rate_limit=rate_limit, rate_window=rate_window,
                           faults=faults, max_results=max_results, clock=clock, secondary_status=secondary_status)
