"""What one bundle stages when its raw payload cannot be written as a JSON line."""

from __future__ import annotations

from typing import Any

from etl.normalize.batch import normalize_item, normalize_payload
from etl.sources.azure_devops.extract import BuildBundle
from etl.sources.base import Item
from tests.normalize.test_normalize_samples import Sink, make_ctx


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"d": value}
    return value


def test_a_build_nested_past_the_writers_limit_stages_its_rows_without_its_raw_line() -> None:
    sink = Sink()
    out = normalize_payload(BuildBundle("proj", {"id": 7, "buildNumber": "7.1", "triggerInfo": nested(300)}),
                            make_ctx(sink), "build 7")
    assert out.raw is None
    assert [row["BuildId"] for row in out.tables["TimelineBuilds"]] == [7]
    assert [item[:4] for item in sink.items] == [
        ("samples", "build 7", "(raw payload)", "not staged raw: TypeError: Recursion limit reached")]


def test_a_build_within_the_limit_stages_its_raw_line() -> None:
    sink = Sink()
    out = normalize_payload(BuildBundle("proj", {"id": 7, "buildNumber": "7.1", "triggerInfo": nested(200)}),
                            make_ctx(sink), "build 7")
    assert isinstance(out.raw, bytes) and out.raw.startswith(b'{"audit":[],"build":{"buildNumber":"7.1","id":7,"triggerInfo":{"d":')
    assert sink.items == []


def test_a_kept_timeline_body_is_decoded_where_the_bundle_is_normalized() -> None:
    body = b'{"id":"t1","records":[{"id":"r1","parentId":null,"type":"Stage","name":"Build","order":1,"attempt":1}]}'
    bundle = BuildBundle("proj", {"id": 7, "buildNumber": "7.1"}, timelines=[("t1", [])], encoded={0: body})
    out = normalize_payload(bundle, make_ctx(Sink()), "build 7")
    assert [(row["RecordId"], row["Name"], row["Path"]) for row in out.tables["TimelineRecords"]] == [
        ("r1", "Build", "0001")]
    assert b'"records":[{"attempt":1,"id":"r1"' in out.raw


def test_a_kept_timeline_body_that_does_not_decode_quarantines_its_build_alone() -> None:
    sink = Sink()
    item = Item(obj="build 7", payload=BuildBundle("proj", {"id": 7}, timelines=[("t1", [])],
                                                   encoded={0: b'{"records":[{"id":'}))
    assert normalize_item(make_ctx(sink), item) is None
    assert [entry[:3] for entry in sink.items] == [("samples", "build 7", "(payload)")]
    assert sink.items[0][3].startswith("normalizing failed: JSONDecodeError: ")


def test_a_timeline_decoded_already_is_not_decoded_again_from_its_kept_body() -> None:
    records = [{"id": "r1", "parentId": None, "type": "Stage", "name": "Build", "order": 1, "attempt": 1}]
    bundle = BuildBundle("proj", {"id": 7, "buildNumber": "7.1"}, timelines=[("t1", records)],
                         encoded={0: b"not json: decoding it would fail"})
    out = normalize_payload(bundle, make_ctx(Sink()), "build 7")
    assert [row["RecordId"] for row in out.tables["TimelineRecords"]] == ["r1"]


def test_a_build_whose_normalizing_fails_is_quarantined_with_its_kept_timeline_decoded(monkeypatch) -> None:
    import etl.normalize.batch as batch

    def broken(ctx: object, bundle: BuildBundle, held: object = None) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(batch, "normalize_bundle", broken)
    sink = Sink()
    body = b'{"id":"t1","records":[{"id":"r1","name":"Build"}]}'
    item = Item(obj="build 7", payload=BuildBundle("proj", {"id": 7}, timelines=[("t1", [])], encoded={0: body}))
    assert normalize_item(make_ctx(sink), item) is None
    assert [entry[:4] for entry in sink.items] == [("samples", "build 7", "(payload)", "normalizing failed: RuntimeError: a bug")]
    assert sink.items[0][4]["timelines"] == [{"id": "t1", "records": [{"id": "r1", "name": "Build"}]}]
