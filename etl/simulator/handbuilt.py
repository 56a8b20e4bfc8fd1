"""Serve a hand-built organization: the REST payloads themselves, exactly as a test or benchmark wrote them.

`SimulatedOrganization` plans an organization from a seed; some tests need one exact build, a
timeline with `records: null`, a finish time that does not parse. `serve_organization(org)` serves
such a `HandBuiltOrganization` through the simulator's own HTTP layer, so routing, paths matched
case-insensitively, authentication, scheduled faults, continuation tokens by time and the page
limits are the simulator's, and there is one fake Azure DevOps, not two. It also records what it
saw (`requests`, `max_in_flight`) and can answer every request after a fixed latency. Test runs and
results are served by the simulator's own endpoints, through the organization's lookup methods.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from etl.simulator.faults import Faults
from etl.simulator.model import iso
from etl.simulator.server import (
    DEFAULT_BUILDS_PAGE,
    MAX_BUILDS_PAGE,
    HttpError,
    Response,
    SimulatorServer,
    _parse_time,
)
from etl.timeutil import to_utc_naive


@dataclass
class HandBuiltOrganization:
    """What to serve, as Azure DevOps' JSON bodies; edit the dicts freely, the server reads them per request."""

    organization: str = "handbuilt"
    #: project name -> build bodies as the builds list returns them
    builds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: build id -> the latest timeline body
    timelines: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: (build id, timeline id) -> an earlier attempt's timeline body
    previous_timelines: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    #: build id -> its test runs (with run details)
    test_runs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    #: test run id -> its results, in order (with `subResults`, which are served only when asked for)
    results: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    #: (build id, artifact name) -> the artifact's zip
    artifacts: dict[tuple[int, str], bytes] = field(default_factory=dict)
    seed: int = 0  # the simulator's random faults draw from it

    @property
    def projects(self) -> list[str]:
        return list(self.builds)

    def project_name(self, name: str) -> str | None:
        """The project's name as the organization spells it (Azure DevOps matches names case-insensitively)."""
        return next((p for p in self.builds if p.lower() == name.lower()), None)

    def ground_truth(self) -> dict[str, Any]:
        return {}

    # The base server's test-run endpoints (and their paging limits) read the organization through these.

    def list_builds(self, project: str) -> list[dict[str, Any]]:
        return self.builds.get(project, [])

    def build_plan(self, project: str, build_id: int) -> dict[str, Any] | None:
        return next((b for b in self.builds.get(project, []) if b.get("id") == build_id), None)

    def test_runs_for_build(self, url: str, build: dict[str, Any]) -> list[dict[str, Any]]:
        return self.test_runs.get(build["id"], [])

    def test_run_by_id(self, url: str, run_id: int) -> tuple[str, dict[str, Any]] | None:
        for project, builds in self.builds.items():
            for build in builds:
                run = next((r for r in self.test_runs.get(build.get("id"), []) if r.get("id") == run_id), None)
                if run is not None:
                    return project, run
        return None

    def test_results(self, url: str, run_id: int, sub_results: bool = False) -> list[dict[str, Any]] | None:
        results = self.results.get(run_id)
        if results is None or sub_results:
            return results
        # Without detailsToInclude=SubResults the service leaves sub-results out.
        return [{k: v for k, v in r.items() if k != "subResults"} for r in results]


_ORDER_FIELDS = {"finish": "finishTime", "start": "startTime", "queue": "queueTime"}


_LAST = datetime.max.replace(tzinfo=UTC)


def _when(build: Mapping[str, Any], name: str) -> datetime:
    # A deliberately broken time (a test's hostile input) sorts last instead of breaking the listing.
    try:
        value = to_utc_naive(build.get(name))
    except (ValueError, TypeError):
        return _LAST
    return value.replace(tzinfo=UTC) if value is not None else _LAST


class HandBuiltServer(SimulatorServer):
    """The simulator's server over a HandBuiltOrganization; start it with `serve_organization`."""

    org: HandBuiltOrganization  # type: ignore[assignment]

    def __init__(self, org: HandBuiltOrganization, *, faults: Faults | Mapping[str, Any] | None = None,
                 token: str | None = None, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.latency = latency
        self.requests: list[str] = []
        super().__init__(org, faults=faults, token=token, host=host, port=port)  # type: ignore[arg-type]

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str]) -> tuple[Response, float]:
        with self._lock:
            self.requests.append(raw_path)
        response, delay = super().handle(method, raw_path, headers)
        # The base server waits out the delay while the request counts as in flight (max_in_flight).
        return response, delay + self.latency

    def _build_body(self, project: str, params: Mapping[str, str]) -> dict[str, Any]:
        build_id = int(params["build"])
        found = next((b for b in self.org.builds[project] if b.get("id") == build_id), None)
        if found is None:
            raise HttpError(404, "BuildNotFoundException", f"The requested build {build_id} could not be found.")
        return found

    def _get_projects(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        value = [{"id": name, "name": name, "state": "wellFormed"} for name in self.org.projects]
        return Response({"count": len(value), "value": value})

    def _get_definitions(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        refs = {b["definition"]["id"]: b["definition"] for b in self.org.builds[project] if b.get("definition")}
        value = [{"id": i, "name": refs[i].get("name", f"def-{i}"), "path": refs[i].get("path", "\\")}
                 for i in sorted(refs)]
        return Response({"count": len(value), "value": value})

    def _get_builds(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        order = query.get("queryorder") or "queueTimeDescending"
        field_name = _ORDER_FIELDS.get(re.sub(r"time.*$", "", order.lower()), "queueTime")
        descending = order.lower().endswith("descending")
        builds = list(self.org.builds[project])
        status = query.get("statusfilter", "")
        if status and status.lower() != "all":
            wanted = {s.strip().lower() for s in status.split(",")}
            builds = [b for b in builds if str(b.get("status", "")).lower() in wanted]
        if query.get("definitions"):
            ids = {int(x) for x in query["definitions"].split(",") if x.strip().isdigit()}
            builds = [b for b in builds if (b.get("definition") or {}).get("id") in ids]
        if query.get("branchname"):
            branch = query["branchname"]
            branch = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
            builds = [b for b in builds if b.get("sourceBranch") == branch]
        try:
            low = _parse_time(query["mintime"]) if query.get("mintime") else None
            high = _parse_time(query["maxtime"]) if query.get("maxtime") else None
            token = _parse_time(query["continuationtoken"]) if query.get("continuationtoken") else None
            top = min(int(query.get("$top") or DEFAULT_BUILDS_PAGE), MAX_BUILDS_PAGE)
        except ValueError as exc:
            raise HttpError(400, "InvalidQueryParameterException", f"Invalid query value: {exc}") from None
        keyed = [(_when(b, field_name), b) for b in builds]
        keyed = [(k, b) for k, b in keyed if (low is None or k >= low) and (high is None or k <= high)]
        keyed.sort(key=lambda kb: (kb[0], kb[1].get("id", 0)), reverse=descending)
        if token is not None:
            keyed = [(k, b) for k, b in keyed if (k <= token if descending else k >= token)]
        page, rest = keyed[:top], keyed[top:]
        headers = {"x-ms-continuationtoken": iso(rest[0][0])} if rest else {}
        return Response({"count": len(page), "value": [b for _, b in page]}, headers=headers)

    def _get_build(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        return Response(self._build_body(project, params))

    def _get_timeline(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        build = self._build_body(project, params)
        body = self.org.timelines.get(build["id"])
        if body is None:
            raise HttpError(404, "TimelineNotFoundException", f"No timeline was found for build {build['id']}.")
        return Response(body)

    def _get_timeline_attempt(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        build = self._build_body(project, params)
        body = self.org.previous_timelines.get((build["id"], params["timeline"]))
        if body is None:
            raise HttpError(404, "TimelineNotFoundException",
                            f"Timeline {params['timeline']} was not found for build {build['id']}.")
        return Response(body)

    def _artifact(self, project: str, build_id: int, name: str) -> dict[str, Any]:
        base = f"{self.url}/{project}/_apis/build/builds/{build_id}/artifacts"
        return {"id": 7 + len(name), "name": name,
                "resource": {"type": "Container", "data": f"#/{build_id * 3}/{name}",
                             "url": f"{base}?artifactName={name}&api-version=7.1",
                             "downloadUrl": f"{base}?artifactName={name}&api-version=7.1&%24format=zip"}}

    def _get_artifacts(self, project: str, params: dict[str, str], query: dict[str, str]) -> Response:
        build_id = self._build_body(project, params)["id"]
        names = [n for (b, n) in self.org.artifacts if b == build_id]
        name = query.get("artifactname")
        if name is None:
            value = [self._artifact(project, build_id, n) for n in names]
            return Response({"count": len(value), "value": value})
        match = next((n for n in names if n.lower() == name.lower()), None)
        if match is None:
            raise HttpError(404, "ArtifactNotFoundException", f"No artifact with name {name} was found for build {build_id}.")
        if query.get("$format", "").lower() == "zip":
            return Response(self.org.artifacts[(build_id, match)], content_type="application/zip")
        return Response(self._artifact(project, build_id, match))



def serve_organization(org: HandBuiltOrganization, *, faults: Faults | Mapping[str, Any] | None = None,
                       token: str | None = None, latency: float = 0.0, host: str = "127.0.0.1",
                       port: int = 0) -> HandBuiltServer:
    """Serve a hand-built organization on loopback; use as a context manager or call `.stop()`.

    Example: `with serve_organization(org, faults={"schedule": {"builds": ["429"]}}) as srv: ...srv.url...`
    """
    return HandBuiltServer(org, faults=faults, token=token, latency=latency, host=host, port=port)
