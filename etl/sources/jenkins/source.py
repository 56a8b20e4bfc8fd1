"""Jenkins as a `Source`: one scope per configured job or folder, batches of builds by completion time.

Each scope's jobs are found by walking its folders (`api/json?tree=jobs[name,_class]`); each job's
builds are listed newest first by `allBuilds[...]{a,b}` ranges until a range holds only builds
started before the watermark minus `overlap_hours` (or the list ends). Builds still `building` are
left for a later run; the others that completed (timestamp + duration) after the watermark are
sorted by completion and cut into batches of `batch_size`, never splitting builds that completed at
the same millisecond, so a window's end can be exclusive of the next one. A build's stages, steps,
test report and artifacts are read while its batch is staged.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import ValidationError

from etl.normalize.context import describe_validation_error
from etl.secret_refs import SecretError
from etl.sources import SourceEnv
from etl.sources.base import Batch, Item, Scope, ScopeFailed, SourceFailed, Start, Window
from etl.sources.jenkins.client import AuthError, JenkinsClient, JenkinsError, NotFound, TooLarge, job_path
from etl.sources.jenkins.config import JenkinsSimulatorSource, JenkinsSource
from etl.sources.jenkins.mapping import Document, JenkinsBuild
from etl.sources.jenkins.models import Artifact, ListedBuild, RunDescription
from etl.timeutil import to_utc_naive, utc_now

BUILD_FIELDS = ("number,result,timestamp,duration,building,url,"
                "actions[causes[*],lastBuiltRevision[SHA1,branch[name]]]")
#: Folder-like items (folders, organization folders, multibranch projects) list `jobs`; depth bounds the walk.
MAX_FOLDER_DEPTH = 12
MAX_RETRY_CHAIN = 50


@dataclass
class _Listed:
    job: str
    build: ListedBuild
    raw: dict[str, Any]


def _ms(value: datetime) -> int:
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return int(aware.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)


class JenkinsReader:
    """Every configured job or folder of one controller, batch by batch."""

    def __init__(self, name: str, organization: str, client: JenkinsClient, cfg: JenkinsSource | JenkinsSimulatorSource,
                 jobs: list[str], default_since: datetime, env: SourceEnv) -> None:
        self.name = name
        self.organization = organization
        self.client = client
        self.cfg = cfg
        self.jobs = jobs
        self.default_since = default_since
        self.env = env

    def scopes(self) -> list[Scope]:
        entries = self.jobs
        if not entries:
            try:
                body = self.client.json("/api/json", {"tree": "jobs[name,_class]"})
            except AuthError as exc:
                raise SourceFailed(str(exc)) from None
            except JenkinsError as exc:
                raise SourceFailed(str(exc)) from None
            entries = [j["name"] for j in body.get("jobs") or [] if isinstance(j, dict) and j.get("name")]
        return [Scope(self.name, self.organization, entry) for entry in entries]

    # -- listing ---------------------------------------------------------------------------------

    def pipeline_jobs(self, entry: str) -> list[str]:
        """Full names of the buildable jobs at or under *entry* (folders walked recursively)."""
        found: list[str] = []
        pending = [(entry, 0)]
        while pending:
            name, depth = pending.pop(0)
            body = self.client.json(job_path(name) + "/api/json", {"tree": "_class,jobs[name,_class]"})
            children = body.get("jobs") if isinstance(body, dict) else None
            if isinstance(children, list):
                if depth < MAX_FOLDER_DEPTH:
                    pending.extend((f"{name}/{c['name']}", depth + 1) for c in children
                                   if isinstance(c, dict) and isinstance(c.get("name"), str))
            else:
                found.append(name)
        return sorted(found)

    def list_builds(self, job: str, since_ms: int) -> tuple[list[_Listed], list[Item], dict[int, _Listed]]:
        """(builds completed after *since_ms*, unreadable list items, every build listed by number)."""
        size = self.cfg.page_size
        overlap = int(self.cfg.overlap_hours * 3_600_000)
        wanted: list[_Listed] = []
        bad: list[Item] = []
        known: dict[int, _Listed] = {}
        start = 0
        while True:
            body = self.client.json(job_path(job) + "/api/json",
                                    {"tree": f"allBuilds[{BUILD_FIELDS}]{{{start},{start + size}}}"})
            page = body.get("allBuilds") if isinstance(body, dict) else None
            page = page if isinstance(page, list) else []
            older = 0
            for raw in page:
                try:
                    listed = ListedBuild.model_validate(raw)
                except ValidationError as exc:
                    field, reason = describe_validation_error(exc)
                    number = raw.get("number") if isinstance(raw, dict) else None
                    stamp = raw.get("timestamp") if isinstance(raw, dict) else None
                    if isinstance(stamp, int) and stamp + int(raw.get("duration") or 0) <= since_ms:
                        continue  # already past: reported when it was new
                    bad.append(Item(f"{job} build {number}", raw, reason, field))
                    continue
                entry = _Listed(job, listed, raw)
                known[listed.number] = entry
                if listed.timestamp < since_ms - overlap:
                    older += 1
                if not listed.building and listed.completed_ms > since_ms:
                    wanted.append(entry)
            if len(page) < size or (page and older == len(page)):
                break
            start += size
        return wanted, bad, known

    def _chain(self, job: str, listed: ListedBuild, known: dict[int, _Listed]) -> tuple[int, int, int, str | None,
                                                                                         list[dict[str, Any]]]:
        """(root number, root timestamp, attempt, retry kind, root causes) following restart/replay causes."""
        kind = None
        link = listed.retry_of()
        current = listed
        attempt = 1
        while link is not None and attempt <= MAX_RETRY_CHAIN:
            link_kind, number = link
            kind = kind or link_kind
            origin = known.get(number)
            if origin is None:
                try:
                    raw = self.client.json(f"{job_path(job)}/{number}/api/json", {"tree": BUILD_FIELDS})
                    origin = _Listed(job, ListedBuild.model_validate(raw), raw)
                    known[number] = origin
                except (NotFound, ValidationError):
                    attempt += 1
                    return number, current.timestamp, attempt, kind, []
            attempt += 1
            current = origin.build
            link = current.retry_of()
        causes = [c.model_dump(by_alias=True) for c in current.causes]
        return current.number, current.timestamp, attempt, kind, causes

    # -- batches ---------------------------------------------------------------------------------

    def batches(self, scope: Scope, start: Start) -> Iterator[Batch]:
        wm_from = to_utc_naive(start.watermark) if start.watermark else self.default_since
        since = _ms(wm_from)
        try:
            try:
                jobs = self.pipeline_jobs(scope.project)
            except NotFound:
                raise ScopeFailed(f"{self.name}: job or folder {scope.project!r}: not found (HTTP 404)") from None
            listed: list[_Listed] = []
            bad: list[Item] = []
            known: dict[str, dict[int, _Listed]] = {}
            for job in jobs:
                try:
                    wanted, unreadable, numbers = self.list_builds(job, since)
                except NotFound:  # deleted between the walk and the listing
                    bad.append(Item(f"{self.name} job {job}", None, "not found (HTTP 404)", "(job)"))
                    continue
                listed.extend(wanted)
                bad.extend(unreadable)
                known[job] = numbers
            listed.sort(key=lambda e: (e.build.completed_ms, e.job, e.build.number))
            for chunk in _chunks(listed, self.cfg.batch_size):
                wm_to = _dt(chunk[-1].build.completed_ms)
                batch = Batch(scope, Window(wm_from, wm_to), (), builds=len(chunk))
                batch.items = self._items(chunk, bad, known)
                bad = []
                yield batch
                wm_from = wm_to
            if bad:  # unreadable list items and nothing new to carry them
                yield Batch(scope, Window(wm_from, wm_from), iter(bad), builds=0)
        except AuthError as exc:
            raise SourceFailed(str(exc)) from None
        except JenkinsError as exc:
            raise ScopeFailed(str(exc)) from None

    def _items(self, chunk: list[_Listed], bad: list[Item], known: dict[str, dict[int, _Listed]]) -> Iterator[Item]:
        yield from bad
        superseded = _superseded(chunk, known)
        try:
            with ThreadPoolExecutor(self.cfg.max_parallel_requests) as pool:
                for item in pool.map(lambda e: self._item(e, known.get(e.job, {}), id(e) in superseded), chunk):
                    self.env.progress("builds", 1)
                    yield item
        except AuthError as exc:
            raise SourceFailed(str(exc)) from None
        except JenkinsError as exc:
            raise ScopeFailed(str(exc)) from None

    def _item(self, entry: _Listed, known: dict[int, _Listed], superseded: bool = False) -> Item:
        obj = f"{entry.job} build {entry.build.number}"
        try:
            payload = self.read_build(entry, known)
            payload.superseded = superseded
            return Item(obj, payload)
        except (NotFound, TooLarge) as exc:
            return Item(obj, entry.raw, str(exc), "(build)")
        except ValidationError as exc:
            field, reason = describe_validation_error(exc)
            return Item(obj, entry.raw, reason, field)
        except JenkinsError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a malformed body: this build alone
            return Item(obj, entry.raw, f"unreadable: {type(exc).__name__}", "(build)")

    def read_build(self, entry: _Listed, known: dict[int, _Listed]) -> JenkinsBuild:
        """Everything of one build: its retry chain, stages and steps, test report and wanted artifacts."""
        job, listed = entry.job, entry.build
        base = f"{job_path(job)}/{listed.number}"
        root, root_ts, attempt, kind, causes = self._chain(job, listed, known)
        payload = JenkinsBuild(self.name, self.organization, job, entry.raw, root, root_ts, attempt, kind, causes)
        try:
            describe = self.client.json(f"{base}/wfapi/describe")
        except NotFound:
            describe = None  # not a Pipeline job (freestyle): no stages
        if describe is not None:
            run = RunDescription.model_validate(describe)
            payload.describe = describe
            for stage in run.stages:
                payload.stages.append(self.client.json(f"{base}/execution/node/{quote(stage.id, safe='')}/wfapi/describe"))
        if self.cfg.test_report:
            try:
                payload.test_report = self.client.json(f"{base}/testReport/api/json")
            except NotFound:
                payload.test_report = None  # no tests recorded
        wanted = [*self.cfg.metrics_artifacts, *self.cfg.junit_artifacts]
        if wanted:
            body = self.client.json(f"{base}/api/json", {"tree": "artifacts[fileName,relativePath]"})
            for raw in body.get("artifacts") or []:
                art = Artifact.model_validate(raw)
                kind_of = _matches(art.relativePath, self.cfg.metrics_artifacts, self.cfg.junit_artifacts)
                if kind_of is None:
                    continue
                doc = self._artifact(base, art)
                (payload.metrics if kind_of == "metrics" else payload.junit).append(doc)
        return payload

    def _artifact(self, base: str, art: Artifact) -> Document:
        path = "/".join(quote(p, safe="") for p in art.relativePath.split("/"))
        try:
            return Document(art.relativePath, self.client.bytes(f"{base}/artifact/{path}", self.cfg.max_artifact_bytes))
        except TooLarge as exc:
            return Document(art.relativePath, error=str(exc))
        except NotFound:
            return Document(art.relativePath, error="listed but not found (HTTP 404)")


def _superseded(chunk: list[_Listed], known: dict[str, dict[int, _Listed]]) -> set[int]:
    """Ids of the entries of *chunk* followed, in the same chunk, by a later attempt of the same root build."""

    def root(entry: _Listed) -> tuple[str, int]:
        build, seen = entry.build, 0
        while (link := build.retry_of()) is not None and seen < MAX_RETRY_CHAIN:
            origin = known.get(entry.job, {}).get(link[1])
            if origin is None:
                return entry.job, link[1]
            build, seen = origin.build, seen + 1
        return entry.job, build.number

    last: dict[tuple[str, int], int] = {}
    for entry in chunk:
        last[root(entry)] = id(entry)
    return {id(e) for e in chunk} - set(last.values())


def _matches(path: str, metrics: list[str], junit: list[str]) -> str | None:
    def hit(globs: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(path, g) or (g.startswith("**/") and fnmatch.fnmatchcase(path, g[3:]))
                   for g in globs)

    if hit(metrics):
        return "metrics"
    if hit(junit):
        return "junit"
    return None


def _chunks(listed: list[_Listed], size: int) -> Iterator[list[_Listed]]:
    """Runs of at most *size* builds (more when builds completed at the same millisecond as the last one)."""
    chunk: list[_Listed] = []
    for entry in listed:
        if len(chunk) >= size and entry.build.completed_ms != chunk[-1].build.completed_ms:
            yield chunk
            chunk = []
        chunk.append(entry)
    if chunk:
        yield chunk


def organization_label(cfg: JenkinsSource) -> str:
    """The configured label, else the controller's host name."""
    return cfg.organization or (urlsplit(cfg.url).hostname or cfg.url)


@contextlib.contextmanager
def open_jenkins(cfg: JenkinsSource, env: SourceEnv) -> Iterator[JenkinsReader]:
    """Registry factory for `kind: jenkins`."""
    try:
        token = cfg.token.reveal()
    except SecretError as exc:
        line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceFailed(f"{cfg.name}: {line}") from None
    client = JenkinsClient(cfg.name, cfg.url, cfg.user, token, timeout=cfg.request_timeout_seconds,
                           max_retries=cfg.max_retries, backoff=cfg.backoff_seconds, max_backoff=cfg.max_backoff_seconds,
                           pool=cfg.max_parallel_requests)
    try:
        default = utc_now() - timedelta(days=cfg.initial_lookback_days)
        yield JenkinsReader(cfg.name, organization_label(cfg), client, cfg, list(cfg.jobs), default, env)
    finally:
        client.close()


@contextlib.contextmanager
def open_jenkins_simulator(cfg: JenkinsSimulatorSource, env: SourceEnv) -> Iterator[JenkinsReader]:
    """Registry factory for `kind: jenkins_simulator`: starts the simulated controller for the run, stops it after."""
    from etl.simulator.jenkins import start_jenkins

    server = start_jenkins(seed=cfg.seed, days=cfg.days, builds_per_day=cfg.builds_per_day)
    client = JenkinsClient(cfg.name, server.url, server.user, server.token, max_retries=8, backoff=0.05,
                           max_backoff=1.0, pool=cfg.max_parallel_requests)
    try:
        default = utc_now() - timedelta(days=cfg.days + 2)
        yield JenkinsReader(cfg.name, cfg.organization, client, cfg, [], default, env)
    finally:
        client.close()
        server.stop()
