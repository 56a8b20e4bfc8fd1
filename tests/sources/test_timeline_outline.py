"""Timelines outlined for staging workers: extraction reads the same ids, parents, types and previous
attempts as a full decode, and the bundle unpacks to the one read in full."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from ado_fixtures import latest_timeline_id, previous_timeline_id, synthetic_organization

from etl.simulator.handbuilt import HandBuiltServer, serve_organization
from etl.sources.azure_devops.client import AdoClient, RetryPolicy
from etl.sources.azure_devops.extract import AzureDevOpsExtractor, BuildBundle
from etl.sources.azure_devops.outline import outline

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples" / "azure-devops"
FIELDS = ("id", "parentId", "type", "previousAttempts")


def _sample_bodies() -> list[tuple[str, bytes]]:
    documented = json.loads((SAMPLES / "build-5.0" / "GET__build_builds__knownBuildId__timeline.json").read_text())
    return [("build-5.0 documented timeline", orjson.dumps(documented["responses"]["200"]["body"])),
            ("vsteam recorded timeline", (SAMPLES / "recorded" / "vsteam" / "buildTimeline.json").read_bytes()),
            ("vsteam timeline with null records",
             (SAMPLES / "recorded" / "vsteam" / "buildTimelineEmptyRecords.json").read_bytes())]


@pytest.mark.parametrize(("name", "body"), _sample_bodies(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_outline_of_a_real_timeline_holds_what_a_full_decode_reads(name: str, body: bytes) -> None:
    full = json.loads(body)
    found = outline(body)
    assert found is not None, name
    assert found.id == full.get("id")
    assert [{k: r.get(k) for k in FIELDS} for r in found.records] == [
        {k: r.get(k) for k in FIELDS} for r in full.get("records") or []]


def test_the_recorded_timeline_outlines_its_twelve_records_with_an_empty_previous_attempts_text() -> None:
    found = outline((SAMPLES / "recorded" / "vsteam" / "buildTimeline.json").read_bytes())
    assert found is not None
    assert len(found.records) == 12
    assert found.records[0].get("previousAttempts") == ""


@pytest.mark.parametrize("body", [
    b'{"records":[{"id":"a","percentComplete":NaN}]}',  # NaN: only the standard library reads it
    b'\xef\xbb\xbf{"records":[]}',  # a byte-order mark
    b'{"records":["not a record"]}',
    b'{"records":{"id":"a"}}',
    b'[{"id":"a"}]',
    b'{"records":[{"id":"a","issues":' + b"[" * 2000 + b"]" * 2000 + b"}]}",
    b'{"records":[{"id":"a","name":"\\ud800"}]}',  # a lone surrogate
    b'{"records":[{"id":"a"',  # cut short
    b'{"records":[{"id":"a","name":"\xff"}]}',  # not UTF-8, in a field the outline skips
], ids=["nan", "bom", "string-record", "records-object", "list-body", "nested-2000", "lone-surrogate", "truncated",
        "not-utf8"])
def test_a_body_the_outline_refuses_is_left_to_the_full_decode(body: bytes) -> None:
    assert outline(body) is None


def test_an_outlined_record_reads_as_a_decoded_record_does() -> None:
    found = outline(b'{"records":[{"id":"a","type":"Job","name":"Build","previousAttempts":[{"attempt":1}]}]}')
    assert found is not None
    record = found.records[0]
    assert [record.get(k) for k in ("id", "parentId", "type", "previousAttempts")] == [
        "a", None, "Job", [{"attempt": 1}]]
    assert (record.get("name"), record.get("name", "-")) == (None, "-")  # not outlined: the default


@pytest.fixture
def server():
    org, _ = synthetic_organization(builds=5)
    with serve_organization(org) as srv:
        yield srv


def _extractor(srv: HandBuiltServer, *, outlined: bool) -> AzureDevOpsExtractor:
    client = AdoClient("ado", srv.url, policy=RetryPolicy(max_retries=2, backoff_seconds=0.0),
                       sleep=lambda _: None)
    return AzureDevOpsExtractor(client, metrics_artifacts=[], timelines_outlined=outlined)


def _timelines(bundle: BuildBundle) -> list[tuple[str | None, list[dict]]]:
    return bundle.unpacked().timelines


def test_an_outlined_bundle_keeps_both_timelines_as_bodies_and_no_records(server: HandBuiltServer) -> None:
    bundle = _extractor(server, outlined=True).bundle("alpha", server.org.builds["alpha"][0])
    assert [(tid, records) for tid, records in bundle.timelines] == [
        (latest_timeline_id(101), []), (previous_timeline_id(101), [])]
    assert sorted(bundle.encoded) == [0, 1]


def test_an_outlined_bundle_unpacks_to_the_bundle_read_in_full(server: HandBuiltServer) -> None:
    build = server.org.builds["alpha"][0]
    full = _extractor(server, outlined=False).bundle("alpha", build)
    lean = _extractor(server, outlined=True).bundle("alpha", build)
    assert _timelines(lean) == full.timelines
    assert len(full.timelines[0][1]) == 10
    assert lean.audit == full.audit


def test_a_timeline_the_outline_refuses_is_read_in_full_and_audited_alike(server: HandBuiltServer) -> None:
    server.org.timelines[102]["records"].append("not a record")
    server.org.timelines[102]["records"][0]["percentComplete"] = float("nan")
    build = server.org.builds["alpha"][1]
    full = _extractor(server, outlined=False).bundle("alpha", build)
    lean = _extractor(server, outlined=True).bundle("alpha", build)
    assert lean.timelines == full.timelines
    assert lean.timelines[0][1][-1] == "not a record"
    assert lean.audit == full.audit


@pytest.mark.parametrize("workers", [0, 2])
def test_timelines_are_outlined_with_or_without_staging_workers(server: HandBuiltServer, workers: int) -> None:
    # Staging reads a held body's records from its bytes (etl/normalize/held_timelines.py), in this process or in a worker.
    from types import SimpleNamespace

    from etl.config import Limits
    from etl.sources import SourceEnv
    from etl.sources.azure_devops.source import extractor_for

    settings = SimpleNamespace(staging=SimpleNamespace(workers=workers), limits=Limits(),
                               privacy=SimpleNamespace(opt_out=SimpleNamespace(definitions=[])))
    cfg = SimpleNamespace(page_size=100, test_results=True, metrics_artifacts=[], max_parallel_requests=2)
    extractor = extractor_for(cfg, _extractor(server, outlined=False).client, SourceEnv(settings))
    assert extractor.timelines_outlined is True
