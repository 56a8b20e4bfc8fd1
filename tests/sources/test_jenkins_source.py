"""The Jenkins reader against the simulated controller: folders, range paging, auth failures, the step table."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from etl.config import Settings
from etl.simulator.jenkins import NO_READ_USER, TOKEN, JenkinsServer, start_jenkins
from etl.sources import SourceEnv
from etl.sources.base import Scope, SourceFailed, Start
from etl.sources.jenkins.client import JenkinsClient
from etl.sources.jenkins.config import JenkinsSimulatorSource
from etl.sources.jenkins.source import JenkinsReader
from etl.sources.jenkins.steps import step_function


@pytest.fixture(scope="module")
def server() -> Iterator[JenkinsServer]:
    with start_jenkins(seed=11, days=3, builds_per_day=6) as srv:
        yield srv


def reader(server: JenkinsServer, user: str = "sim", token: str = TOKEN, **cfg: object) -> JenkinsReader:
    client = JenkinsClient("ci", server.url, user, token, max_retries=2, backoff=0, max_backoff=0)
    settings = Settings.model_validate({"sources": [{"kind": "inbox", "path": "x"}]})
    return JenkinsReader("ci", "jenkins-test", client, JenkinsSimulatorSource(**cfg), [],
                         datetime(2000, 1, 1), SourceEnv(settings))


def test_scopes_are_the_top_level_folders(server) -> None:
    assert [s.project for s in reader(server).scopes()] == ["engineering", "platform"]


def test_folders_are_walked_recursively_to_their_pipeline_jobs(server) -> None:
    assert reader(server).pipeline_jobs("engineering") == ["engineering/ci/runtime", "engineering/ci/sdk",
                                                           "engineering/pr/web"]


def test_builds_are_listed_by_allbuilds_ranges_of_page_size(server) -> None:
    r = reader(server, page_size=4)
    job = "engineering/ci/runtime"
    total = len(server.sim.jobs[job])
    r.list_builds(job, 0)
    ranges = [p.split("]{", 1)[1] for p in r.client.log.paths if "allBuilds" in p]
    assert ranges == [f"{a},{a + 4}}}" for a in range(0, (total // 4 + 1) * 4, 4)]


def test_listing_stops_at_builds_started_before_the_watermark_minus_the_overlap(server) -> None:
    r = reader(server, page_size=2, overlap_hours=0)
    job = "engineering/ci/runtime"
    newest = server.sim.jobs[job][-1].timestamp
    r.list_builds(job, newest + 1)
    assert [p.split("]{", 1)[1] for p in r.client.log.paths if "allBuilds" in p] == ["0,2}"]


def test_builds_still_building_are_not_listed_for_loading(server) -> None:
    job, number = server.sim.in_progress()[0]
    wanted, _, known = reader(server).list_builds(job, 0)
    assert number in known and number not in [w.build.number for w in wanted]


def test_a_refused_token_ends_the_source_with_one_line_naming_it(server) -> None:
    with pytest.raises(SourceFailed) as exc:
        reader(server, token="wrong").scopes()
    assert str(exc.value) == "ci: GET /api/json: HTTP 401 (user or API token refused)"


def test_a_user_without_overall_read_ends_the_source_with_403(server) -> None:
    r = reader(server, user=NO_READ_USER)
    with pytest.raises(SourceFailed) as exc:
        list(r.batches(Scope("ci", "jenkins-test", "engineering"), Start(None)))
    assert str(exc.value) == "ci: GET /job/engineering/api/json: HTTP 403 (no Overall/Read or Job/Read permission)"


def test_an_unknown_job_ends_its_scope_only(server) -> None:
    from etl.sources.base import ScopeFailed

    with pytest.raises(ScopeFailed) as exc:
        list(reader(server).batches(Scope("ci", "jenkins-test", "nope"), Start(None)))
    assert str(exc.value) == "ci: job or folder 'nope': not found (HTTP 404)"


def test_a_malformed_build_is_quarantined_alone(server) -> None:
    job = "platform/ci/agent"
    server.sim.malformed.add((job, 1))
    try:
        batches = list(reader(server).batches(Scope("ci", "jenkins-test", "platform"), Start(None)))
        items = [i for b in batches for i in b.items]
    finally:
        server.sim.malformed.discard((job, 1))
    bad = [i for i in items if i.reason is not None]
    assert [(i.obj, i.field_name, i.reason) for i in bad] == [
        (f"{job} build 1", "timestamp", "invalid number 'yesterday'")]
    assert len(items) == sum(1 for j, s in server.sim.jobs.items() if j.startswith("platform/")
                                 for b in s if not b.building)


def test_a_5xx_is_retried(server) -> None:
    r = reader(server)
    server.fail_next(2, 503)
    assert [s.project for s in r.scopes()] == ["engineering", "platform"]
    assert r.client.log.retries == 2


def test_a_cut_off_body_is_retried(server) -> None:
    r = reader(server)
    server.truncate_next(1)
    assert [s.project for s in r.scopes()] == ["engineering", "platform"]
    assert r.client.log.retries == 1


def test_batches_are_bounded_and_ordered_by_completion(server) -> None:
    batches = list(reader(server, batch_size=5).batches(Scope("ci", "jenkins-test", "engineering"),
                                                        Start(datetime(2000, 1, 1))))
    assert all(b.builds <= 5 for b in batches[:-1])
    ends = [b.window.end for b in batches]
    assert ends == sorted(ends) and batches[0].window.start == datetime(2000, 1, 1)
    assert all(a.window.end == b.window.start for a, b in itertools.pairwise(batches))
    assert ends[-1] - ends[0] < timedelta(days=5)


@pytest.mark.parametrize(("display", "function"), [
    ("Shell Script", "sh"), ("Windows Batch Script", "bat"), ("Windows PowerShell Script", "powershell"),
    ("PowerShell Core Script", "pwsh"), ("Run arbitrary Pipeline script", "script"), ("Print Message", "echo"),
    ("Check out from version control", "checkout"), ("Archive JUnit-formatted test results", "junit"),
    ("Archive the artifacts", "archiveArtifacts"), ("Some Plugin Step", "Some Plugin Step")])
def test_step_display_names_map_to_step_functions_and_unknown_names_are_kept(display, function) -> None:
    assert step_function(display) == function


def test_only_the_last_attempt_of_a_root_in_a_batch_writes_its_build_row(server) -> None:
    retried = next(r for r in server.ground_truth()["retries"])
    job = retried["job"]
    scope = Scope("ci", "jenkins-test", job.split("/")[0])
    items = [i for b in reader(server, batch_size=1000).batches(scope, Start(datetime(2000, 1, 1))) for i in b.items]
    chain = [i.payload for i in items if i.reason is None and i.payload.job == job
             and i.payload.root_number == retried["root"]]
    assert [(p.attempt, p.superseded) for p in chain] == [
        *((a, True) for a in range(1, len(chain))), (len(chain), False)]
