"""Azure DevOps as it really pages, throttles and refuses, served by the simulator; the ETL loses nothing.

Each test runs the real client (and, end to end, the real ETL into a DuckDB file) against the
simulator on loopback with one documented limit or fault switched on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from etl.config import Settings, load_config
from etl.run import run_etl
from etl.simulator import Faults, start_server
from etl.simulator.model import SimulatedOrganization
from etl.sources.azure_devops.audit import BuildsListingAudit, audit_test_run, audit_timeline
from etl.sources.azure_devops.client import AdoClient, AuthError, Page, RetryPolicy, SourceError
from etl.sources.azure_devops.outline import outline
from etl.warehouse.local import LocalWarehouse
from tests.conftest import table_counts

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
SIM = {"seed": 11, "days": 2, "builds_per_day": 4}
TABLES = ("TimelineBuilds", "TimelineRecords", "TimelineIssues", "TestRuns", "TestResults", "BuildMetrics",
          "BuildStages", "MetricSamples")


def source(url: str, projects: list[str], **extra: Any) -> dict[str, Any]:
    return {"kind": "azure_devops", "name": "sim", "organization_url": url, "projects": projects, "auth": "none",
            "page_size": 3, "backoff_seconds": 0, "max_backoff_seconds": 0, "max_retries": 4,
            "initial_lookback_days": 10, **extra}


def settings_for(write_config: Callable[..., Path], *sources: dict[str, Any]) -> Settings:
    return load_config(write_config({"sources": list(sources), "warehouse": {"kind": "local", "path": "data/w.duckdb"},
                                     "staging": {"dir": "data/staging"},
                                     "privacy": {"pseudonymization_key": "env://ADO_LIMITS_TEST_KEY"}}))


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADO_LIMITS_TEST_KEY", "ado-limits-test-key-0123456789")


def sql(settings: Settings, query: str, *params: Any) -> list[tuple[Any, ...]]:
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        return [tuple(row) for row in wh.execute_sql(query, list(params))]
    finally:
        wh.close()


def results_of(settings: Settings, run_id: int) -> int:
    return sql(settings, 'SELECT count(DISTINCT "ResultId") FROM "TestResults" WHERE "RunId" = ?', run_id)[0][0]


def run_where(org: SimulatedOrganization, run_id: int) -> tuple[str, int]:
    b, _, _ = org._runs[run_id]
    return b.project, b.id


# --- paging by what the service says -----------------------------------------------------------


def test_a_server_capping_top_at_100_with_250_results_in_one_run_loads_all_250(write_config) -> None:
    with start_server(**SIM, large_runs=1, large_run_results=250, faults={"results_cap": 100}) as srv:
        (run_id, total), = srv.org.large_runs().items()
        settings = settings_for(write_config, source(srv.url, srv.projects))
        summary = run_etl(settings)
        expected = srv.ground_truth["expected_counts"]
        pages = srv.counters["test_results"]
    assert total == 250
    assert results_of(settings, run_id) == 250
    assert table_counts(settings, TABLES) == expected
    assert summary.errors == []
    # Every run ends on an empty page: 40 + empty for the small runs, 100 + 100 + 50 + empty for the big one.
    assert pages == 2 * (expected["TestRuns"] - 1) + 4


def test_a_run_listing_fewer_results_than_total_tests_is_incomplete_and_the_next_run_fetches_the_rest(
        write_config) -> None:
    with start_server(**SIM) as srv:
        run_id = sorted(srv.org._runs)[0]
        project, build = run_where(srv.org, run_id)
        srv.faults = Faults(withhold_results={run_id: 7})
        settings = settings_for(write_config, source(srv.url, srv.projects))
        first = run_etl(settings)
        after_first = results_of(settings, run_id)
        srv.faults = None  # the service serves the whole run again
        second = run_etl(settings)
        expected = srv.ground_truth["expected_counts"]
    line = f"sim: simulated/{project} build {build} run {run_id}: 33 of 40 results (totalTests 40)"
    assert first.errors == [line]
    assert [o.status for o in first.outcomes if o.project == project] == ["incomplete"]
    incomplete = sql(settings, "SELECT \"Errors\" FROM \"EtlRuns\" WHERE \"Status\" = 'incomplete'")
    assert [json.loads(row[0]) for row in incomplete] == [[line]]
    assert after_first == 33
    assert second.errors == []
    assert results_of(settings, run_id) == 40
    assert table_counts(settings, TABLES) == expected


def test_results_paging_does_not_stop_on_a_short_page_only_on_an_empty_one() -> None:
    with start_server(**SIM, large_runs=1, large_run_results=450) as srv:
        (run_id, _), = srv.org.large_runs().items()
        project, _ = run_where(srv.org, run_id)
        client = AdoClient("sim", srv.url)
        url = client.url(project, f"_apis/test/Runs/{run_id}/results")
        # Asked for 1000 with details, the service gives 200 a page.
        sizes = [len(p.items) for p in client.pages_by_skip(url, {"detailsToInclude": "SubResults"}, 1000)]
    assert sizes == [200, 200, 50]
    assert srv.counters["test_results"] == 4


def test_the_default_organization_has_runs_over_1000_results() -> None:
    org = SimulatedOrganization(seed=7, days=28, builds_per_day=12)
    runs = org.large_runs()
    assert sorted(runs.values()) == [1250, 1250, 1250]
    assert org.ground_truth()["expected_counts"]["TestResults"] == 30110


@pytest.mark.slow
def test_runs_of_1250_results_past_every_results_page_cap_load_every_result(write_config) -> None:
    # Runs the size of the default organization's (1250 results, the test above), in the smallest organization
    # that holds them: past the 200-a-page cap with details and the 1000 cap without, builds paged 3 at a time.
    with start_server(**SIM, large_runs=3, large_run_results=1250) as srv:
        settings = settings_for(write_config, source(srv.url, srv.projects))
        summary = run_etl(settings)
        expected, large = srv.ground_truth["expected_counts"], srv.org.large_runs()
    assert sorted(large.values()) == [1250, 1250, 1250]
    assert summary.errors == []
    assert table_counts(settings, TABLES) == expected
    assert {run: results_of(settings, run) for run in large} == large


# --- refused credentials ------------------------------------------------------------------------


def test_a_203_sign_in_page_ends_the_organization_at_once_with_one_auth_error_line(
        write_config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADO_LIMITS_BAD_PAT", "expired-pat-value")
    with start_server(**SIM, token="the-real-pat", honor_suppress_redirect=False) as srv:
        settings = settings_for(write_config, source(srv.url, srv.projects, auth="pat",
                                                     token="env://ADO_LIMITS_BAD_PAT"))
        summary = run_etl(settings)
        served = sum(srv.counters.values())
    assert served == 1  # no retry, no second project
    assert summary.errors == [
        f"sim: organization simulated: HTTP 203 sign-in page instead of JSON for "
        f"{srv.url}/{srv.projects[0]}/_apis/build/builds — check the PAT (expired or revoked? scopes Build: Read "
        "and Test Management: Read) or the Entra identity's access to the organization"]
    assert "expired-pat-value" not in summary.errors[0]


def test_the_client_asks_for_a_401_instead_of_a_sign_in_redirect() -> None:
    with start_server(**SIM, token="the-real-pat") as srv:
        client = AdoClient("sim", srv.url, auth="pat", token=lambda: "wrong")
        with pytest.raises(AuthError) as info:
            client.get_json(client.url(srv.projects[0], "_apis/build/builds"))
    assert info.value.status == 401
    assert sum(srv.counters.values()) == 1


# --- one retry policy, bounded ------------------------------------------------------------------


class FakeClock:
    """Time that moves only when someone sleeps: the client's sleeps drive the simulator's clock."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_cut_off_json_body_is_retried_by_the_one_policy_not_by_a_nested_loop() -> None:
    with start_server(**SIM, faults={"schedule": {"builds": ["malformed"] * 5}}) as srv:
        clock = FakeClock()
        client = AdoClient("sim", srv.url, policy=RetryPolicy(max_retries=2), sleep=clock.sleep)
        url = client.url(srv.projects[0], "_apis/build/builds")
        with pytest.raises(SourceError) as info:
            client.get_json(url)
    assert str(info.value) == f"sim: {url}: gave up after 3 attempts: response is not valid JSON"
    assert srv.counters["builds"] == 3


def test_retries_stop_when_the_next_wait_would_pass_the_total_wait_budget() -> None:
    with start_server(**SIM, faults={"schedule": {"builds": ["429"] * 5}, "retry_after": 7}) as srv:
        clock = FakeClock()
        policy = RetryPolicy(max_retries=6, max_backoff_seconds=60, max_total_wait_seconds=10)
        client = AdoClient("sim", srv.url, policy=policy, sleep=clock.sleep, clock=clock.time)
        url = client.url(srv.projects[0], "_apis/build/builds")
        with pytest.raises(SourceError) as info:
            client.get_json(url)
    assert clock.sleeps == [7.0]
    assert str(info.value) == f"sim: HTTP 429 for {url} after 2 attempts"


@pytest.mark.parametrize(("pacing", "blocked"), [(True, 0), (False, 60)])
def test_the_client_slows_down_on_rate_limit_headers_before_it_is_blocked(pacing: bool, blocked: int) -> None:
    clock = FakeClock()
    with start_server(**SIM, faults={"rate_limit": 20, "rate_window": 60}, clock=clock.time) as srv:
        policy = RetryPolicy(max_retries=0) if pacing else RetryPolicy(max_retries=0, max_pace_seconds=0)
        client = AdoClient("sim", srv.url, policy=policy, sleep=clock.sleep, clock=clock.time)
        url = client.url(srv.projects[0], "_apis/build/builds")
        refused = 0
        for _ in range(100):
            try:
                client.get_json(url, {"$top": 1})
            except SourceError:
                refused += 1
    assert (refused, srv.faults_served["rate-limit-429"]) == (blocked, blocked)
    assert (client.stats.paced > 0) is pacing


def test_rate_limit_headers_come_with_a_429_as_azure_devops_sends_them() -> None:
    clock = FakeClock()
    with start_server(**SIM, faults={"rate_limit": 2, "rate_window": 60}, clock=clock.time) as srv:
        url = f"{srv.url}/{srv.projects[0]}/_apis/build/builds"
        statuses = [requests.get(url, timeout=10) for _ in range(5)]
    last = statuses[-1]
    assert [r.status_code for r in statuses] == [200, 200, 200, 200, 429]
    assert {k: last.headers[k] for k in ("Retry-After", "X-RateLimit-Resource", "X-RateLimit-Limit",
                                          "X-RateLimit-Remaining", "X-RateLimit-Reset")} == {
        "Retry-After": "60", "X-RateLimit-Resource": "Core", "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(clock.now) + 60)}
    assert statuses[2].headers["X-RateLimit-Delay"] == "0.002"


# --- the audits -----------------------------------------------------------------------------------


def test_run_statistics_that_disagree_with_total_tests_are_a_finding() -> None:
    run = {"totalTests": 250, "runStatistics": [{"outcome": "Passed", "count": 240}, {"outcome": "Failed", "count": 5}]}
    assert audit_test_run("o/p build 1 run 123", run, 250) == ["o/p build 1 run 123: runStatistics count 245 but "
                                                               "totalTests 250"]
    assert audit_test_run("o/p build 1 run 123", run, 200) == [
        "o/p build 1 run 123: 200 of 250 results (totalTests 250)",
        "o/p build 1 run 123: runStatistics count 245 but totalTests 250"]


def test_a_timeline_record_whose_parent_is_missing_is_a_finding() -> None:
    records = [{"id": "s1", "type": "Stage", "parentId": None}, {"id": "p1", "type": "Phase", "parentId": "s1"},
               {"id": "j1", "type": "Job", "parentId": "p9"}]
    assert audit_timeline("o/p build 7", "t1", records) == [
        "o/p build 7 timeline t1: 1 of 3 records have a parentId not in the timeline (p9)"]
    assert audit_timeline("o/p build 7", "t1", records[:2]) == []


def test_outlined_records_get_the_findings_of_decoded_ones() -> None:
    records = [{"id": "s1", "type": "Stage", "parentId": None}, {"id": "j1", "type": "Job", "parentId": "p9"},
               {"id": "j1", "type": "Job", "parentId": "s1"}, {"id": "p2", "type": "Phase", "parentId": "s7"}]
    outlined = outline(json.dumps({"id": "t1", "records": records}).encode())
    assert outlined is not None
    assert audit_timeline("o/p build 7", "t1", outlined.records) == [
        "o/p build 7 timeline t1: 1 record id(s) appear more than once: j1",
        "o/p build 7 timeline t1: 1 of 4 records have a parentId not in the timeline (p9)"]
    assert audit_timeline("o/p build 7", "t1", outlined.records) == audit_timeline("o/p build 7", "t1", records)


def test_a_real_timeline_whose_phase_names_an_absent_stage_passes_the_audit() -> None:
    # Real capture from the vsteam project's test files (MIT): 12 records, the Phase's Stage not among them.
    body = json.loads((SAMPLES / "azure-devops/recorded/vsteam/buildTimeline.json").read_text(encoding="utf-8"))
    assert len(body["records"]) == 12
    assert audit_timeline("o/p build 568", body["id"], body["records"]) == []


def test_a_builds_page_that_miscounts_or_repeats_its_token_is_a_finding() -> None:
    audit = BuildsListingAudit("o", "p", top=2)
    assert audit.check(Page([{"id": 1}, {"id": 2}], count=2, token="a")) == []
    assert audit.check(Page([{"id": 3}], count=2, token="a", repeated=True)) == [
        "o/p builds listing: page 2 says count 2 but holds 1 builds",
        "o/p builds listing: continuation token repeated after 3 builds (page 2); later builds were not listed"]
