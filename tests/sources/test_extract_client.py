"""The Azure DevOps client and extractor against a real HTTP server on loopback."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from ado_fixtures import latest_timeline_id, previous_timeline_id, synthetic_organization
from azure.core.credentials import AccessToken
from pytest_httpserver import HTTPServer

from etl.simulator import Faults
from etl.simulator.handbuilt import HandBuiltServer, serve_organization
from etl.sources.azure_devops.client import (
    AdoClient,
    AuthError,
    RetryPolicy,
    SourceError,
    entra_token_provider,
    retry_after_seconds,
)
from etl.sources.azure_devops.extract import AzureDevOpsExtractor

SINCE = datetime(2026, 10, 1)


class Sleeps(list):
    """Records the waits the client asks for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(srv: HandBuiltServer, sleeps: Sleeps, **kw: object) -> AdoClient:
    policy = RetryPolicy(max_retries=kw.pop("max_retries", 6), backoff_seconds=1.0, max_backoff_seconds=30.0)
    return AdoClient("ado", srv.url, policy=policy, sleep=sleeps, **kw)  # type: ignore[arg-type]


@pytest.fixture
def server():
    org, _ = synthetic_organization(builds=5)
    with serve_organization(org) as srv:
        yield srv


def test_builds_are_paged_by_continuation_token(server: HandBuiltServer) -> None:
    ex = AzureDevOpsExtractor(client_for(server, Sleeps()), page_size=2)
    pages = [[b["id"] for b in page] for page in ex.list_builds("alpha", SINCE)]
    assert pages == [[101, 102], [103, 104], [105]]
    assert sum("continuationToken=" in r for r in server.requests) == 2


def test_builds_are_asked_from_the_watermark_inclusive(server: HandBuiltServer) -> None:
    ex = AzureDevOpsExtractor(client_for(server, Sleeps()), page_size=10)
    pages = list(ex.list_builds("alpha", datetime(2026, 11, 1, 8, 30, 0, 123456)))
    assert [b["id"] for b in pages[0]] == [103, 104, 105]
    assert "minTime=2026-11-01T08%3A30%3A00.123456Z" in server.requests[0]


def test_429_with_retry_after_seconds_waits_that_long_then_succeeds(server: HandBuiltServer) -> None:
    server.faults = Faults(schedule={"builds": ("429",)}, retry_after=7)
    sleeps = Sleeps()
    body, _ = client_for(server, sleeps).get_json(f"{server.url}/alpha/_apis/build/builds")
    assert sleeps == [7.0]
    assert body["count"] == 5


def test_429_with_retry_after_http_date_waits_until_then() -> None:
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=12), usegmt=True)
    assert retry_after_seconds(header, now=now) == 12.0


def test_429_with_http_date_header_then_success(httpserver: HTTPServer) -> None:
    # Azure DevOps sends seconds; RFC 9110 also allows a date, which a proxy in front may send. A one-off fake.
    header = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    path = "/org/alpha/_apis/build/builds"
    httpserver.expect_ordered_request(path).respond_with_json({"message": "slow down"}, 429, {"Retry-After": header})
    httpserver.expect_ordered_request(path).respond_with_json({"count": 5, "value": []})
    sleeps = Sleeps()
    client = AdoClient("ado", httpserver.url_for("/org"), policy=RetryPolicy(max_retries=6), sleep=sleeps)
    body, _ = client.get_json(httpserver.url_for(path))
    assert len(sleeps) == 1 and 17.0 <= sleeps[0] <= 20.0
    assert body["count"] == 5


def test_500_storm_backs_off_exponentially_then_succeeds(server: HandBuiltServer) -> None:
    server.faults = Faults(schedule={"builds": ("500",) * 4})
    sleeps = Sleeps()
    body, _ = client_for(server, sleeps).get_json(f"{server.url}/alpha/_apis/build/builds")
    assert body["count"] == 5
    caps = [1.0, 2.0, 4.0, 8.0]
    assert len(sleeps) == 4
    assert all(cap / 2 <= s <= cap for s, cap in zip(sleeps, caps, strict=True))


def test_500_beyond_max_retries_gives_up_with_one_line(server: HandBuiltServer) -> None:
    server.faults = Faults(schedule={"builds": ("500",) * 3})
    with pytest.raises(SourceError) as info:
        client_for(server, Sleeps(), max_retries=2).get_json(f"{server.url}/alpha/_apis/build/builds")
    assert str(info.value) == f"ado: HTTP 500 for {server.url}/alpha/_apis/build/builds after 3 attempts"


def test_401_stops_with_one_line_naming_source_and_url_without_token(server: HandBuiltServer) -> None:
    server.token = "s3cr3t-pat-value"
    client = client_for(server, Sleeps(), auth="pat", token=lambda: "wrong-token")
    with pytest.raises(AuthError) as info:
        client.get_json(f"{server.url}/alpha/_apis/build/builds")
    message = str(info.value)
    assert message == (f"ado: organization handbuilt: HTTP 401 unauthorized for {server.url}/alpha/_apis/build/builds"
                       " — check the PAT (expired or revoked? scopes Build: Read and Test Management: Read)"
                       " or the Entra identity's access to the organization")
    assert "wrong-token" not in message and "\n" not in message


def test_latest_timeline_with_null_records_gives_an_empty_timeline(server: HandBuiltServer) -> None:
    server.org.timelines[102]["records"] = None
    ex = AzureDevOpsExtractor(client_for(server, Sleeps()), metrics_artifacts=[])
    assert ex.bundle("alpha", server.org.builds["alpha"][1]).timelines == [(latest_timeline_id(102), [])]


def test_get_json_calls_before_decode_once_when_the_body_has_arrived(server: HandBuiltServer) -> None:
    client = client_for(server, Sleeps())
    calls: list[int] = []
    body, _ = client.get_json(client.url("alpha", "_apis/build/builds/102/timeline"),
                              before_decode=lambda: calls.append(len(server.requests)))
    assert calls == [1]  # after the one request was answered
    assert body["id"] == latest_timeline_id(102)


def test_pat_is_sent_as_basic_auth_with_empty_user(server: HandBuiltServer) -> None:
    server.token = "good-pat"
    body, _ = client_for(server, Sleeps(), auth="pat", token=lambda: "good-pat").get_json(
        f"{server.url}/alpha/_apis/build/builds")
    assert body["count"] == 5


def test_token_is_not_sent_to_a_foreign_host(server: HandBuiltServer) -> None:
    client = client_for(server, Sleeps(), auth="pat", token=lambda: "pat")
    assert client._trusted(f"{server.url}/alpha/_apis/build/builds")
    assert client._trusted("https://artprodcus3.artifacts.visualstudio.com/A1/_apis/artifact/x")
    assert not client._trusted("https://evil.example.com/steal")
    assert not client._trusted("http://127.0.0.1:1/other-port")


def test_connection_refused_is_retried_then_reported() -> None:
    client = AdoClient("ado", "http://127.0.0.1:9/org", policy=RetryPolicy(max_retries=2, backoff_seconds=0.5),
                       sleep=Sleeps())
    with pytest.raises(SourceError, match=r"^ado: http://127.0.0.1:9/org/x: gave up after 3 attempts: ConnectionError$"):
        client.get("http://127.0.0.1:9/org/x")


def test_bundle_reads_latest_and_previous_attempt_timelines_tests_and_metrics(server: HandBuiltServer) -> None:
    ex = AzureDevOpsExtractor(client_for(server, Sleeps()), metrics_artifacts=["telemetry"])
    build = server.org.builds["alpha"][0]
    bundle = ex.bundle("alpha", build)
    assert [tid for tid, _ in bundle.timelines] == [latest_timeline_id(101), previous_timeline_id(101)]
    assert list(bundle.test_results) == [1010]
    assert len(bundle.test_results[1010]) == 3
    assert [(d.file_name, d.error) for d in bundle.metrics] == [("metrics.json", None)]


def test_test_results_are_paged_by_skip_and_top_until_an_empty_page(server: HandBuiltServer) -> None:
    ex = AzureDevOpsExtractor(client_for(server, Sleeps()), results_page_size=2, metrics_artifacts=[])
    bundle = ex.bundle("alpha", server.org.builds["alpha"][1])
    assert [r["id"] for r in bundle.test_results[1020]] == [100000, 100001, 100002]
    pages = [r for r in server.requests if "/results" in r]
    # The short second page is not taken for the end: only the empty third one is.
    assert [p.split("%24skip=")[1].split("&")[0] for p in pages] == ["0", "2", "3"]
    assert "detailsToInclude=SubResults" in pages[0]


def test_opted_out_definition_gets_no_detail_requests(server: HandBuiltServer) -> None:
    ex = AzureDevOpsExtractor(client_for(server, Sleeps()), opt_out_definitions=[7])
    builds = [b for page in ex.list_builds("alpha", SINCE) for b in page]
    assert [b for b in builds if ex.wanted(b)] == []


def test_opted_out_definition_is_left_out_of_the_builds_request_itself(server: HandBuiltServer) -> None:
    ex = AzureDevOpsExtractor(client_for(server, Sleeps()), opt_out_definitions=[7])
    assert [b for page in ex.list_builds("alpha", SINCE) for b in page] == []
    assert [r for r in server.requests if "/_apis/build/" in r] == ["/handbuilt/alpha/_apis/build/definitions?api-version=7.1"]


def test_definition_filter_drops_the_opted_out_ids_from_the_request(server: HandBuiltServer) -> None:
    ex = AzureDevOpsExtractor(client_for(server, Sleeps()), definitions=[7, 9], opt_out_definitions=[7])
    list(ex.list_builds("alpha", SINCE))
    builds_requests = [r for r in server.requests if "/_apis/build/builds" in r]
    assert len(builds_requests) == 1 and "definitions=9&" in builds_requests[0] + "&"


def test_concurrency_is_bounded_by_max_parallel_requests() -> None:
    org, _ = synthetic_organization(builds=12)
    with serve_organization(org, latency=0.02) as srv:
        ex = AzureDevOpsExtractor(client_for(srv, Sleeps(), max_parallel_requests=3), max_parallel_requests=3)
        bundles = ex.bundles("alpha", org.builds["alpha"])
        assert [b.build_id for b in bundles] == [b["id"] for b in org.builds["alpha"]]
        assert srv.max_in_flight == 3


class StubCredential:
    """Plays an azure-identity credential: hands out numbered tokens with a given lifetime."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: object) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(f"entra-token-{len(self.scopes)}", int(time.time() + self.lifetime))


def test_entra_auth_sends_a_bearer_token_for_the_azure_devops_resource(server: HandBuiltServer) -> None:
    credential = StubCredential(lifetime=3600)
    server.token = "entra-token-1"
    client = client_for(server, Sleeps(), auth="entra", token=entra_token_provider(credential))
    client.get_json(client.url("alpha", "_apis/build/builds"))
    client.get_json(client.url("alpha", "_apis/build/builds"))
    assert credential.scopes == [("499b84ac-1321-427f-aa17-267ca6975798/.default",)]


def test_entra_token_is_renewed_when_it_is_about_to_expire(server: HandBuiltServer) -> None:
    credential = StubCredential(lifetime=60)  # inside the five-minute renewal margin
    token = entra_token_provider(credential)
    assert [token(), token()] == ["entra-token-1", "entra-token-2"]


def test_a_body_cut_off_halfway_is_retried_and_read_whole(server: HandBuiltServer) -> None:
    server.faults = Faults(schedule={"timeline": ("cut", "cut")})
    sleeps = Sleeps()
    client = client_for(server, sleeps)
    body, _ = client.get_json(client.url("alpha", "_apis/build/builds/102/timeline"))
    assert body["id"] == latest_timeline_id(102)
    assert len(sleeps) == 2
    assert client.stats.requests == 3


def test_a_body_cut_off_on_every_attempt_gives_up_with_one_line(server: HandBuiltServer) -> None:
    server.faults = Faults(schedule={"timeline": ("cut",) * 3})
    client = client_for(server, Sleeps(), max_retries=2)
    with pytest.raises(SourceError, match=r"^ado: .*/alpha/_apis/build/builds/102/timeline: gave up after 3 attempts: "
                                          r"body cut short \(ProtocolError\)$"):
        client.get_json(client.url("alpha", "_apis/build/builds/102/timeline"))
