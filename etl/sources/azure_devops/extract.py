"""Pull what a batch needs from one Azure DevOps project: builds, every timeline, tests, uploaded metrics.

Per build, requests run in order (latest timeline → previous-attempt timelines → test runs →
results → artifacts) and builds run in parallel on a pool bounded by `max_parallel_requests`, so
the organization never sees more concurrent requests than configured. A worker ahead of the consumer
holds its latest timeline as bytes until it is at most `DECODED_AHEAD` builds ahead (`DecodeWindow`):
the decoded form is several times larger, and only a few are ever waiting.

Wherever the service states a count, what was read is checked against it (`etl.sources.azure_devops.audit`);
each mismatch is one line in the bundle's `audit`, and the run marks that batch incomplete.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from etl.config import Limits
from etl.sources.azure_devops.audit import BuildsListingAudit, audit_test_run, audit_timeline
from etl.sources.azure_devops.client import AdoClient, NotFound, decode_body
from etl.sources.azure_devops.outline import OutlineRecord, TimelineOutline, outline_or_decoded
from etl.sources.metrics_uploads import MetricsDocument, read_metrics_zip

Progress = Callable[[str, int], None]

#: Bundles decoded ahead of the one the consumer holds (`iter_bundles`): requests stay
#: `max_parallel_requests` in flight, but past this many their timelines wait as bytes.
DECODED_AHEAD = 2


def _noop(_: str, __: int) -> None:
    return None


@dataclass
class BuildBundle:
    """Everything read for one build, raw as the API returned it."""

    project: str
    build: dict[str, Any]
    #: (timeline id, records) — the latest timeline first, then each previous attempt's.
    timelines: list[tuple[str | None, list[dict[str, Any]]]] = field(default_factory=list)
    test_runs: list[dict[str, Any]] = field(default_factory=list)
    #: run id -> results of that run
    test_results: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    metrics: list[MetricsDocument] = field(default_factory=list)
    #: What was read disagrees with a count the service stated: one line each, naming the object.
    audit: list[str] = field(default_factory=list)
    #: The response body each timeline was decoded from, by its position in `timelines`. A staging worker
    #: is sent these instead of the decoded records (`packed`): pickling records cost the main process
    #: more than decoding them again costs the worker.
    encoded: dict[int, bytes] = field(default_factory=dict, repr=False, compare=False)

    def packed(self) -> BuildBundle:
        """This bundle for another process: each timeline whose body is kept travels as that body."""
        if not self.encoded:
            return self
        timelines = [(tid, [] if i in self.encoded else records) for i, (tid, records) in enumerate(self.timelines)]
        return replace(self, timelines=timelines)

    def unpacked(self) -> BuildBundle:
        """The bundle with each timeline held only as its body (`packed`, or outlined) decoded, as the client
        decoded it; the bundle itself when every timeline holds its records already."""
        held = [i for i, (_, records) in enumerate(self.timelines) if not records and i in self.encoded]
        if not held:
            return self
        timelines = [(tid, timeline_records(decode_body(self.encoded[i])) if i in held else records)
                     for i, (tid, records) in enumerate(self.timelines)]
        return replace(self, timelines=timelines, encoded={})

    @property
    def build_id(self) -> int:
        return int(self.build["id"])

    def to_raw(self) -> dict[str, Any]:
        """The bundle as one JSON-able object (what the outbox stages as raw pages)."""
        return {
            "project": self.project,
            "build": self.build,
            "timelines": [{"id": tid, "records": recs} for tid, recs in self.timelines],
            "test_runs": self.test_runs,
            "test_results": {str(k): v for k, v in self.test_results.items()},
            "metrics": [{"artifact": d.artifact, "file": d.file_name, "body": d.body, "error": d.error}
                        for d in self.metrics],
            "audit": list(self.audit),
        }

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> BuildBundle:
        """Inverse of to_raw."""
        return cls(
            project=raw["project"],
            build=raw["build"],
            timelines=[(t.get("id"), t.get("records") or []) for t in raw.get("timelines", [])],
            test_runs=raw.get("test_runs", []),
            test_results={int(k): v for k, v in raw.get("test_results", {}).items()},
            metrics=[MetricsDocument(m["artifact"], m["file"], m.get("body"), m.get("error"))
                     for m in raw.get("metrics", [])],
            audit=list(raw.get("audit") or []),
        )


def timeline_records(body: Any) -> list[Any]:
    """A timeline response's records: its `records` list, or none when the body has no such list."""
    records = body.get("records") if isinstance(body, dict) else None
    return records if isinstance(records, list) else []


class BuildPage(list[dict[str, Any]]):
    """A page of listed builds, with what the listing audit found about it (attached to its first bundle)."""

    def __init__(self, builds: list[dict[str, Any]], audit: list[str] | None = None) -> None:
        super().__init__(builds)
        self.audit = list(audit or [])


class DecodeWindow:
    """Lets the timeline of the build at position i of a page decode only once the consumer has taken
    the build at i - ahead: at most *ahead* decoded bundles wait beside the one being normalized.

    Positions are granted in order, so the build the consumer waits for can always decode (no deadlock
    when later builds finish first). `release` opens it for everyone (the consumer stopped).
    """

    def __init__(self, ahead: int) -> None:
        self.ahead = ahead
        self.taken = -1
        self._open = False
        self._changed = threading.Condition()

    def wait_turn(self, position: int) -> None:
        """Block until the build at *position* may decode."""
        with self._changed:
            self._changed.wait_for(lambda: self._open or position <= self.taken + self.ahead)

    def take(self, position: int) -> None:
        """The consumer now holds the build at *position* (the ones before it are done)."""
        with self._changed:
            self.taken = position
            self._changed.notify_all()

    def release(self) -> None:
        with self._changed:
            self._open = True
            self._changed.notify_all()


def _iso_z(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AzureDevOpsExtractor:
    """Reads builds and their details for one organization through an AdoClient."""

    def __init__(
        self,
        client: AdoClient,
        *,
        definitions: list[int] | None = None,
        branches: list[str] | None = None,
        opt_out_definitions: list[int] | None = None,
        page_size: int = 200,
        test_results: bool = True,
        metrics_artifacts: list[str] | None = None,
        max_parallel_requests: int = 8,
        results_page_size: int = 200,
        progress: Progress = _noop,
        limits: Limits | None = None,
        decoded_ahead: int = DECODED_AHEAD,
        timelines_outlined: bool = False,
    ) -> None:
        self.client = client
        self.definitions = list(definitions or [])
        self.branches = set(branches or [])
        self.opt_out = set(opt_out_definitions or [])
        self.page_size = page_size
        self.test_results = test_results
        self.metrics_artifacts = list(metrics_artifacts or [])
        self.max_parallel = max_parallel_requests
        self.results_page_size = results_page_size
        self.progress = progress
        self.limits = limits or Limits()
        self.decoded_ahead = max(1, decoded_ahead)
        #: Timelines read as outlines and kept as bytes (`etl.sources.azure_devops.outline`): staging reads their
        #: records from the bytes (`etl.normalize.held_timelines`), in a staging worker when there are workers.
        self.timelines_outlined = timelines_outlined
        #: The worker thread's page window and the position of the build it reads (None outside iter_bundles).
        self._turn = threading.local()

    def wanted(self, build: dict[str, Any]) -> bool:
        """Whether a listed build is in scope: definition and branch filters, opt-outs."""
        definition = (build.get("definition") or {}).get("id")
        if definition in self.opt_out:
            return False
        if self.definitions and definition not in self.definitions:
            return False
        return not (self.branches and build.get("sourceBranch") not in self.branches)

    def definitions_in_scope(self, project: str) -> list[int] | None:
        """The definition ids to ask builds for, or None for all.

        The builds API can only include definitions, not exclude them; with opt-outs and no
        inclusion list we first list the project's definitions, so an opted-out definition's builds
        are never requested at all — not even their summaries.
        """
        if self.definitions:
            return [d for d in self.definitions if d not in self.opt_out]
        if not self.opt_out:
            return None
        url = self.client.url(project, "_apis/build/definitions")
        ids = [d.get("id") for page in self.client.pages_by_continuation(url, {}) for d in page.items]
        return sorted(int(i) for i in ids if isinstance(i, int) and i not in self.opt_out)

    def list_builds(self, project: str, since: datetime) -> Iterator[BuildPage]:
        """Pages of completed builds finished at or after *since*, oldest first, in scope only.

        Each page carries the listing audit's findings about it (`BuildPage.audit`).
        """
        params: dict[str, Any] = {
            "queryOrder": "finishTimeAscending",
            "minTime": _iso_z(since),
            "statusFilter": "completed",
            "$top": self.page_size,
        }
        scope = self.definitions_in_scope(project)
        if scope is not None:
            if not scope:
                return
            params["definitions"] = ",".join(str(d) for d in scope)
        if len(self.branches) == 1:
            params["branchName"] = next(iter(self.branches))
        url = self.client.url(project, "_apis/build/builds")
        listing = BuildsListingAudit(self.client.organization, project, self.page_size)
        for page in self.client.pages_by_continuation(url, params):
            yield BuildPage([b for b in page.items if self.wanted(b)], listing.check(page))

    def bundles(self, project: str, builds: list[dict[str, Any]]) -> list[BuildBundle]:
        """Details of *builds*, fetched in parallel, returned in the input order."""
        return list(self.iter_bundles(project, builds))

    def iter_bundles(self, project: str, builds: list[dict[str, Any]]) -> Iterator[BuildBundle]:
        """Details of *builds* in input order, fetched in parallel with at most max_parallel in flight.

        A build with a huge timeline is megabytes (about 5 MB decoded for 2,000 records); a page of them
        must stream through normalization, not pile up behind it. Normalizing is slower than reading, so
        the workers soon wait on the consumer: each holds its latest timeline as bytes and decodes it only
        when the consumer is at most `decoded_ahead` builds behind (`DecodeWindow`). max_parallel requests
        stay in flight (what hides the service's latency) while only a few bundles are decoded.
        """
        if not builds:
            return
        window = self.max_parallel
        decode = DecodeWindow(self.decoded_ahead)
        listing_audit = list(getattr(builds, "audit", []))
        with ThreadPoolExecutor(max_workers=min(self.max_parallel, len(builds)),
                                thread_name_prefix="ado-extract") as pool:
            pending: deque[Future[BuildBundle]] = deque()
            taken = 0
            try:
                for position, build in enumerate(builds):
                    pending.append(pool.submit(self._bundle_at, decode, position, project, build))
                    if len(pending) >= window:
                        decode.take(taken)
                        taken += 1
                        yield self._with(listing_audit, pending.popleft().result())
                while pending:
                    decode.take(taken)
                    taken += 1
                    yield self._with(listing_audit, pending.popleft().result())
            finally:
                for future in pending:
                    future.cancel()
                decode.release()  # workers still waiting for their turn finish, so the pool can shut down

    def _bundle_at(self, decode: DecodeWindow, position: int, project: str, build: dict[str, Any]) -> BuildBundle:
        """`bundle` in a worker of `iter_bundles`, its latest timeline decoded in *position*'s turn."""
        self._turn.window, self._turn.position = decode, position
        try:
            return self.bundle(project, build)
        finally:
            self._turn.window = None

    def _wait_turn(self) -> None:
        window = getattr(self._turn, "window", None)
        if window is not None:
            window.wait_turn(self._turn.position)

    @staticmethod
    def _with(listing_audit: list[str], bundle: BuildBundle) -> BuildBundle:
        """The first bundle of a page carries the page's listing findings (popped, so only once)."""
        if listing_audit:
            bundle.audit[:0] = listing_audit
            listing_audit.clear()
        return bundle

    def bundle(self, project: str, build: dict[str, Any]) -> BuildBundle:
        """Every timeline, test run, test result and metrics document of one build."""
        bundle = BuildBundle(project, build)
        build_id = bundle.build_id
        base = f"_apis/build/builds/{build_id}"
        response = None
        # Outlined, a timeline waits as its body (it is decoded where it is normalized): no decode turn to wait for.
        outlined: dict[str, Any] = {"decoder": outline_or_decoded} if self.timelines_outlined else {}
        try:
            latest, response = self.client.get_json(self.client.url(project, f"{base}/timeline"),
                                                    **(outlined or {"before_decode": self._wait_turn}))
        except NotFound:
            latest = None
        latest_id, records = self._timeline(bundle, latest, response)
        where = f"{self.client.organization}/{project} build {build_id}"
        bundle.audit += audit_timeline(where, latest_id, records)
        previous: list[str] = []
        for rec in records:
            attempts = rec.get("previousAttempts") if isinstance(rec, dict | OutlineRecord) else None
            for prev in attempts if isinstance(attempts, list) else []:
                tid = prev.get("timelineId") if isinstance(prev, dict) else None
                if tid and tid not in previous and tid != latest_id:
                    previous.append(tid)
        for tid in previous:
            try:
                body, response = self.client.get_json(self.client.url(project, f"{base}/timeline/{tid}"),
                                                      **outlined)
            except NotFound:
                continue
            self._timeline(bundle, body, response, tid)
        self.progress("timelines", len(bundle.timelines))
        if self.test_results:
            self._tests(project, bundle)
        for name in self.metrics_artifacts:
            self._metrics(project, bundle, name)
        self.progress("builds", 1)
        return bundle

    @staticmethod
    def _timeline(bundle: BuildBundle, body: Any, response: Any, requested_id: str | None = None,
                  ) -> tuple[Any, list[Any]]:
        """Adds one timeline response to *bundle*; (the timeline's id, the records extraction reads).

        The latest timeline (no *requested_id*) keeps its body for a staging worker (`BuildBundle.packed`).
        An outlined body (`TimelineOutline`) is kept as bytes whichever timeline it is, its records left
        empty until `BuildBundle.unpacked` decodes them.
        """
        outlined = isinstance(body, TimelineOutline)
        if outlined:
            timeline_id, records = body.id, body.records
        else:
            timeline_id = body.get("id") if isinstance(body, dict) else None
            records = timeline_records(body)
        if requested_id is not None:
            timeline_id = requested_id
        if response is not None and records and (outlined or requested_id is None):
            bundle.encoded[len(bundle.timelines)] = response.content
        bundle.timelines.append((timeline_id, [] if outlined else records))
        return timeline_id, records

    def _tests(self, project: str, bundle: BuildBundle) -> None:
        runs_url = self.client.url(project, "_apis/test/runs")
        body, _ = self.client.get_json(
            runs_url, {"buildUri": f"vstfs:///Build/Build/{bundle.build_id}", "includeRunDetails": "true"})
        bundle.test_runs = list((body or {}).get("value") or [])
        for run in bundle.test_runs:
            run_id = run.get("id") if isinstance(run, dict) else None
            if run_id is None:
                continue
            url = self.client.url(project, f"_apis/test/Runs/{run_id}/results")
            results: list[dict[str, Any]] = []
            for page in self.client.pages_by_skip(url, {"detailsToInclude": "SubResults"}, self.results_page_size):
                results.extend(page.items)
            bundle.test_results[int(run_id)] = results
            where = f"{self.client.organization}/{project} build {bundle.build_id} run {run_id}"
            bundle.audit += audit_test_run(where, run, len(results))
            self.progress("tests", len(results))

    def _metrics(self, project: str, bundle: BuildBundle, artifact: str) -> None:
        url = self.client.url(project, f"_apis/build/builds/{bundle.build_id}/artifacts")
        try:
            body, _ = self.client.get_json(url, {"artifactName": artifact})
        except NotFound:
            return  # this build uploaded no metrics
        if isinstance(body, dict) and "value" in body:  # a listing instead of one artifact
            body = next((a for a in body.get("value") or [] if a.get("name") == artifact), None)
        download = ((body or {}).get("resource") or {}).get("downloadUrl") if isinstance(body, dict) else None
        if not download:
            return
        try:
            response = self.client.get(download, {"api-version": None} if download.startswith("http") else None)
        except NotFound:
            return
        bundle.metrics.extend(read_metrics_zip(artifact, response.content, self.limits))
