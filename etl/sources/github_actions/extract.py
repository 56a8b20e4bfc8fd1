"""Pull what a batch needs from one repository: workflow runs, every attempt's jobs, annotations, artifacts.

Runs are listed by `created` window (`GET /repos/{o}/{r}/actions/runs?status=completed&created=A..B`),
one UTC day at a time so the URLs of past days repeat between ETL runs and their ETags spare the
rate limit (`etl.sources.github_actions.listing_index`). The listing stops at 1,000 results per query: a window whose `total_count` is larger
is split in halves (to the second) until each holds no more. Per run, requests go in order: each
attempt's jobs, the workflow file at the run's commit (once per path and commit), the check-run
annotations of failed jobs, the artifact listing and the wanted artifacts' downloads; runs are
read in parallel on a pool of `max_parallel_requests`.
"""

from __future__ import annotations

import base64
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from etl.config import Limits
from etl.sources.bounded import read_archive_entries
from etl.sources.github_actions.client import AuthError, GitHubClient, Gone, NotFound, SourceError
from etl.sources.github_actions.listing_index import ListingIndex
from etl.sources.github_actions.models import Repository
from etl.sources.github_actions.workflow import parse_workflow, step_usages
from etl.sources.metrics_uploads import MetricsDocument, read_metrics_zip
from etl.timeutil import to_utc_naive

#: The most results one listing query returns, whatever its total_count says.
MAX_RESULTS = 1_000
PER_PAGE = 100
FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "startup_failure"})
#: Marks a run known only by id and times (from the listing index); its body is fetched when read.
STUB = "_listed_before"
Progress = Callable[[str, int], None]


def _noop(_: str, __: int) -> None:
    return None


def gh_time(value: datetime) -> str:
    """A UTC time as the search syntax writes it (`2026-11-01T00:00:00Z`)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value.tzinfo else \
        value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class JUnitFile:
    """One JUnit XML file of an artifact: its bytes (or why it could not be read), attempt and job."""

    artifact: str
    path: str
    data: bytes | None = None
    error: str | None = None
    attempt: int = 1
    job: str | None = None


@dataclass
class RunBundle:
    """Everything read for one workflow run, raw as the API returned it."""

    owner: str
    repo: str
    run: dict[str, Any]
    #: (attempt number, jobs of that attempt)
    attempts: list[tuple[int, list[dict[str, Any]]]] = field(default_factory=list)
    #: `jobid.stepnumber` -> (TaskName, TaskVersion) read from the workflow file
    usages: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    #: job id -> check-run annotations of that (failed) job
    annotations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    junit: list[JUnitFile] = field(default_factory=list)
    metrics: list[MetricsDocument] = field(default_factory=list)
    audit: list[str] = field(default_factory=list)
    #: Set when the run's details could not be read (a bad payload, not a service error): quarantined.
    reason: str | None = None

    def repository(self) -> Repository:
        """The repository, for runs whose body lacks it."""
        return Repository(name=self.repo, full_name=f"{self.owner}/{self.repo}", owner={"login": self.owner})

    def to_raw(self) -> dict[str, Any]:
        """JSON-able form for the outbox's raw pages (JUnit files by name and size, not their bytes)."""
        return {
            "owner": self.owner, "repo": self.repo, "run": self.run,
            "attempts": [{"attempt": n, "jobs": jobs} for n, jobs in self.attempts],
            "usages": {k: list(v) for k, v in self.usages.items()},
            "annotations": self.annotations,
            "junit": [{"artifact": j.artifact, "path": j.path, "bytes": len(j.data or b""), "error": j.error,
                       "attempt": j.attempt} for j in self.junit],
            "metrics": [{"artifact": d.artifact, "file": d.file_name, "body": d.body, "error": d.error}
                        for d in self.metrics],
            "audit": list(self.audit),
        }

    @property
    def body(self) -> dict[str, Any]:
        """What a quarantine entry keeps of the bundle."""
        return self.to_raw()


class _XmlEntries:
    """Archive entry names a JUnit artifact is read for: every `*.xml` file."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower().endswith(".xml")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__


class GitHubExtractor:
    """Reads workflow runs and their details for one owner through a GitHubClient."""

    def __init__(self, client: GitHubClient, *, telemetry_artifacts: list[str], junit_artifacts: list[str],
                 annotations: bool = True, workflow_files: bool = True, max_parallel_requests: int = 4,
                 limits: Limits | None = None, progress: Progress = _noop, max_results: int = MAX_RESULTS,
                 index: ListingIndex | None = None) -> None:
        self.client = client
        self.telemetry = list(telemetry_artifacts)
        self.junit = list(junit_artifacts)
        self.annotations = annotations
        self.workflow_files = workflow_files
        self.max_parallel = max_parallel_requests
        self.limits = limits or Limits()
        self.progress = progress
        self.max_results = max_results
        self.index = index or ListingIndex()
        self._workflows: dict[tuple[str, str, str, str], list[Any]] = {}
        self._workflows_lock = threading.Lock()

    # -- listing ----------------------------------------------------------------------------------

    def repositories(self, owner: str) -> list[str]:
        """Every repository of an organization (or a user), by name."""
        try:
            pages = list(self.client.pages(f"orgs/{owner}/repos", {"per_page": PER_PAGE, "type": "all"}))
        except NotFound:
            pages = list(self.client.pages(f"users/{owner}/repos", {"per_page": PER_PAGE}))
        return sorted(str(r["name"]) for body, _ in pages for r in (body if isinstance(body, list) else [])
                      if isinstance(r, dict) and r.get("name"))

    def list_runs(self, owner: str, repo: str, since: datetime, until: datetime,
                  audit: list[str] | None = None) -> list[dict[str, Any]]:
        """Completed runs created from *since* to *until*, one UTC day per query, narrowed under the 1,000 cap."""
        since, until = to_utc_naive(since), to_utc_naive(until)
        assert since is not None and until is not None
        day = since.replace(hour=0, minute=0, second=0, microsecond=0)
        runs: dict[int, dict[str, Any]] = {}
        while day <= until:
            end = day + timedelta(days=1) - timedelta(seconds=1)
            for run in self._window(owner, repo, day, end, audit if audit is not None else []):
                if isinstance(run, dict) and isinstance(run.get("id"), int):
                    runs[run["id"]] = run  # a run can move between pages while they are read
            day += timedelta(days=1)
        return list(runs.values())

    def _window(self, owner: str, repo: str, start: datetime, end: datetime, audit: list[str]) -> Iterator[Any]:
        params = {"status": "completed", "created": f"{gh_time(start)}..{gh_time(end)}", "per_page": PER_PAGE}
        path = f"repos/{owner}/{repo}/actions/runs"
        key = f"{owner}/{repo} created={params['created']}"
        known = self.index.get(key)
        body, response = self.client.get_json(path, params, etag=known.etag if known else None)
        if response.status_code == 304 and known is not None:
            # Unchanged since the last ETL run: the same runs, each fetched later only if still wanted.
            yield from ({"id": i, "updated_at": u, "status": s, STUB: True} for i, u, s in known.runs)
            return
        total = body.get("total_count") if isinstance(body, dict) else None
        if isinstance(total, int) and total > self.max_results:
            if end > start:
                middle = start + (end - start) / 2
                middle = middle.replace(microsecond=0)
                yield from self._window(owner, repo, start, middle, audit)
                yield from self._window(owner, repo, middle + timedelta(seconds=1), end, audit)
                return
            audit.append(f"{owner}/{repo}: {total} runs created at {gh_time(start)}, more than the "
                         f"{self.max_results} one query returns; only those were read")
        runs = (body.get("workflow_runs") or []) if isinstance(body, dict) else []
        etag = response.headers.get("ETag")
        if etag and isinstance(total, int) and total <= PER_PAGE and "next" not in response.links:
            self.index.put(key, etag, [r for r in runs if isinstance(r, dict)])
        else:
            self.index.forget(key)
        yield from runs
        seen = {response.url}
        while True:
            following = (response.links.get("next") or {}).get("url")
            if not following or following in seen:
                return
            seen.add(following)
            body, response = self.client.get_json(following)
            yield from (body.get("workflow_runs") or []) if isinstance(body, dict) else []

    # -- one run ----------------------------------------------------------------------------------

    def iter_bundles(self, owner: str, repo: str, runs: list[dict[str, Any]]) -> Iterator[RunBundle]:
        """Details of *runs* in input order, fetched in parallel, at most 2 × max_parallel held in memory."""
        if not runs:
            return
        with ThreadPoolExecutor(max_workers=min(self.max_parallel, len(runs)), thread_name_prefix="gh-extract") as pool:
            pending: deque[Future[RunBundle]] = deque()
            try:
                for run in runs:
                    pending.append(pool.submit(self._isolated, owner, repo, run))
                    if len(pending) >= 2 * self.max_parallel:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()

    def _isolated(self, owner: str, repo: str, run: dict[str, Any]) -> RunBundle:
        """The run's bundle; one whose details break the reader (odd payloads) carries `reason` instead.

        Service errors (SourceError) still propagate: they end the repository or the source.
        """
        try:
            return self.bundle(owner, repo, run)
        except SourceError:
            raise
        except Exception as exc:  # one bad run must not stop the batch
            return RunBundle(owner, repo, run, reason=f"{type(exc).__name__}: {_one_line(exc)}")

    def bundle(self, owner: str, repo: str, run: dict[str, Any]) -> RunBundle:
        """Every attempt's jobs, the steps' actions, failed jobs' annotations and the wanted artifacts of one run."""
        run_id = int(run["id"])
        if run.get(STUB):  # listed from the index: the run's body is read now
            run, _ = self.client.get_json(f"repos/{owner}/{repo}/actions/runs/{run_id}")
        bundle = RunBundle(owner, repo, run)
        base = f"repos/{owner}/{repo}/actions/runs/{run_id}"
        attempts = run.get("run_attempt") if isinstance(run.get("run_attempt"), int) else 1
        for n in range(1, max(attempts, 1) + 1):
            jobs: list[dict[str, Any]] = []
            total = None
            try:
                for body, _ in self.client.pages(f"{base}/attempts/{n}/jobs", {"per_page": PER_PAGE}):
                    jobs.extend(j for j in (body or {}).get("jobs") or [] if isinstance(j, dict))
                    total = (body or {}).get("total_count", total)
            except NotFound:
                continue
            if isinstance(total, int) and total != len(jobs):
                bundle.audit.append(f"{owner}/{repo} run {run_id} attempt {n}: {len(jobs)} of {total} jobs read")
            bundle.attempts.append((n, jobs))
        self.progress("timelines", len(bundle.attempts))
        if self.workflow_files:
            self._usages(owner, repo, run, bundle)
        if self.annotations:
            for _, jobs in bundle.attempts:
                for job in jobs:
                    if (job.get("conclusion") or "") in FAILED_CONCLUSIONS and job.get("id") is not None:
                        bundle.annotations[str(job["id"])] = self._annotations(owner, repo, job["id"])
        if self.telemetry or self.junit:
            self._artifacts(owner, repo, run_id, bundle)
        self.progress("builds", 1)
        return bundle

    def _annotations(self, owner: str, repo: str, job_id: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        try:
            for body, _ in self.client.pages(f"repos/{owner}/{repo}/check-runs/{job_id}/annotations",
                                             {"per_page": PER_PAGE}):
                out.extend(a for a in (body if isinstance(body, list) else []) if isinstance(a, dict))
        except NotFound:
            return []
        return out

    def workflow(self, owner: str, repo: str, path: str, sha: str) -> list[Any]:
        """The parsed workflow file at *path* and commit *sha*, read once per (path, sha), conditionally."""
        key = (owner, repo, path, sha)
        with self._workflows_lock:
            if key in self._workflows:
                return self._workflows[key]
        try:
            body, _ = self.client.get_json(f"repos/{owner}/{repo}/contents/{path}", {"ref": sha}, conditional=True)
            content = body.get("content") if isinstance(body, dict) else None
            text = base64.b64decode(content or "").decode("utf-8", errors="replace") \
                if (body or {}).get("encoding", "base64") == "base64" else str(content or "")
            parsed = parse_workflow(text)
        except (NotFound, Gone, ValueError):
            parsed = []
        with self._workflows_lock:
            self._workflows[key] = parsed
        return parsed

    def _usages(self, owner: str, repo: str, run: dict[str, Any], bundle: RunBundle) -> None:
        path = str(run.get("path") or "").split("@")[0]
        sha = run.get("head_sha")
        if not path or not sha:
            return
        workflow = self.workflow(owner, repo, path, str(sha))
        if not workflow:
            return
        for _, jobs in bundle.attempts:
            for job in jobs:
                steps = [(s.get("number"), str(s.get("name") or "")) for s in job.get("steps") or []
                         if isinstance(s, dict) and isinstance(s.get("number"), int)]
                for number, usage in step_usages(workflow, str(job.get("name") or ""), steps).items():
                    bundle.usages[f"{job.get('id')}.{number}"] = usage

    def _artifacts(self, owner: str, repo: str, run_id: int, bundle: RunBundle) -> None:
        artifacts: list[dict[str, Any]] = []
        try:
            for body, _ in self.client.pages(f"repos/{owner}/{repo}/actions/runs/{run_id}/artifacts",
                                             {"per_page": PER_PAGE}):
                artifacts.extend(a for a in (body or {}).get("artifacts") or [] if isinstance(a, dict))
        except NotFound:
            return
        for artifact in sorted(artifacts, key=lambda a: (str(a.get("name")), str(a.get("id")))):
            name = str(artifact.get("name") or "")
            telemetry = any(fnmatchcase(name, p) for p in self.telemetry)
            junit = any(fnmatchcase(name, p) for p in self.junit)
            if not (telemetry or junit) or artifact.get("expired") is True:
                continue  # expired: absent, not an error
            url = artifact.get("archive_download_url") or f"repos/{owner}/{repo}/actions/artifacts/{artifact.get('id')}/zip"
            try:
                data = self.client.download(str(url), self.limits.max_archive_bytes)
            except Gone:
                continue  # expired between the listing and the download
            except NotFound:
                continue
            except AuthError:
                raise
            except SourceError as exc:
                error = f"download failed: {_one_line(exc)}"
                if telemetry:
                    bundle.metrics.append(MetricsDocument(name, "(artifact)", error=error))
                else:
                    bundle.junit.append(JUnitFile(name, "(artifact)", error=error))
                continue
            if telemetry:
                bundle.metrics.extend(read_metrics_zip(name, data, self.limits))
                continue
            attempt, job = self._attempt_of(bundle, artifact)
            for entry in read_archive_entries(data, _XmlEntries(), self.limits):  # type: ignore[arg-type]
                bundle.junit.append(JUnitFile(name, entry.path, entry.data, entry.error, attempt, job))

    @staticmethod
    def _attempt_of(bundle: RunBundle, artifact: dict[str, Any]) -> tuple[int, str | None]:
        """The attempt (and job) that uploaded an artifact: of the jobs running when it was created, the
        one that ended soonest after (an upload step comes near a job's end).

        GitHub does not say which attempt or job uploaded an artifact; attempts run one after the
        other, so its creation time tells the attempt, and usually the job.
        """
        try:
            created = to_utc_naive(artifact.get("created_at"))
        except (TypeError, ValueError):
            created = None
        fallback: tuple[int, str | None] = (bundle.attempts[-1][0] if bundle.attempts else 1, None)
        if created is None:
            return fallback
        best: tuple[timedelta, int, str | None] | None = None
        for n, jobs in bundle.attempts:
            for job in jobs:
                try:
                    start, end = to_utc_naive(job.get("started_at")), to_utc_naive(job.get("completed_at"))
                except (TypeError, ValueError):
                    continue
                if (start is not None and end is not None and start <= created <= end
                        and (best is None or end - created < best[0])):
                    best = (end - created, n, job.get("name"))
        return (best[1], best[2]) if best else fallback
