"""A timeline held as its body's bytes stages what the same timeline decoded stages.

Extraction keeps each timeline as the bytes of its response (`BuildBundle.encoded`); staging reads its
records from there (`etl.normalize.held_timelines`) and stages it raw from its records' bytes
(`etl.privacy_bytes`). The reference is the same bundle with its records decoded: the typed tables, the
raw line (as JSON values), and the quarantine must be the same.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from etl.normalize.held_timelines import held_timelines
from etl.privacy import apply_policy
from etl.sources.azure_devops.client import decode_body
from etl.sources.azure_devops.extract import BuildBundle, timeline_records
from etl.sources.base import Item
from etl.stage.prepare import Prepared, prepare_item
from tests.normalize.test_normalize_samples import Sink, body, make_ctx
from tests.normalize.test_normalize_timeline_list import TIMELINES, VARIANTS

BUILD = {"id": 7, "buildNumber": "20261201.1", "result": "failed", "requestedFor": {"displayName": "Jane Doe",
                                                                                     "uniqueName": "jane@contoso.com"}}


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def bundle(content: bytes, held: bool) -> BuildBundle:
    if held:
        return BuildBundle("proj", dict(BUILD), timelines=[("t1", [])], encoded={0: content})
    return BuildBundle("proj", dict(BUILD), timelines=[("t1", timeline_records(decode_body(content)))])


def prepared(content: bytes, held: bool) -> tuple[Prepared, list[Any]]:
    sink = Sink()
    ctx = replace(make_ctx(sink), columns=True)
    item = Item(obj="build 7", payload=bundle(content, held))
    return prepare_item(ctx, item, functools.partial(apply_policy, ctx.scrubber)), sink.items


def assert_same_staging(content: bytes) -> None:
    (staged, quarantined), (reference, ref_quarantined) = prepared(content, True), prepared(content, False)
    assert {t: (x.schema, x.to_pylist()) for t, x in staged.typed.items()} == {
        t: (x.schema, x.to_pylist()) for t, x in reference.typed.items()}
    assert staged.raw_line is not None and reference.raw_line is not None
    assert json.loads(staged.raw_line) == json.loads(reference.raw_line)
    assert quarantined == ref_quarantined


def two_records(**variant: Any) -> bytes:
    return compact({"id": "t1", "records": [
        {"id": "root", "type": "Stage", "order": 1, "workerName": "agent-7"},
        {"id": "r1", "parentId": "root", "type": "Task", "name": "Build", "order": 2, **variant}]})


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "indented"])
@pytest.mark.parametrize("path", TIMELINES, ids=lambda p: p.name)
def test_a_sample_timeline_held_as_bytes_stages_as_decoded(path: Path, indent: int | None) -> None:
    data = body(path)
    assert_same_staging(compact(data) if indent is None else json.dumps(data, indent=indent).encode())


PRIVACY_VARIANTS = [
    {"workerName": "agent-8", "name": "Job on agent-7"},
    {"resultCode": "Evaluating: succeeded()\r\nResult: False\r\n"},
    {"issues": [{"type": "error", "message": "C:\\Users\\jdoe\\src\\build.cmd exited with code 1"}]},
    {"issues": [{"type": "error", "message": "push failed for jane.doe@contoso.com\r\n10.1.2.3 refused"}]},
    {"log": {"id": 4, "url": "https://st.blob.core.windows.net/c/a.zip?sv=2021&sig=AbCdEf%2Bg123%3D"}},
    {"details": {"owner": {"displayName": "John Roe", "uniqueName": "john@contoso.com"}}},
    {"name": "Jane Doe's step", "workerName": None},
]


@pytest.mark.parametrize("variant", VARIANTS + PRIVACY_VARIANTS, ids=repr)
def test_a_record_variant_held_as_bytes_stages_as_decoded(variant: dict[str, Any]) -> None:
    assert_same_staging(two_records(**variant))


def test_the_rest_sample_is_read_from_its_bytes_and_the_powershell_one_is_not() -> None:
    read = {p.name: held_timelines(bundle(compact(body(p)), True)) is not None for p in TIMELINES}
    assert read == {"GET__build_builds__knownBuildId__timeline.json": True, "buildTimeline.json": False,
                    "buildTimelineEmptyRecords.json": True}


@pytest.mark.parametrize("content", [
    b'{"records":[{"id":"r1","order":NaN}]}',  # the standard library reads it, msgspec does not
    b'{"records":[{"id":"r1","name":"caf\xe9"}]}',  # not UTF-8
    b'\xef\xbb\xbf{"records":[{"id":"r1"}]}',  # a byte-order mark
    b'{"records":{"r1":{"id":"r1"}}}',
    b'{"records":[{"id":"r1","order":"3"}]}',
], ids=["nan", "latin-1", "bom", "records-object", "order-as-text"])
def test_a_body_the_bytes_reader_refuses_is_decoded_instead(content: bytes) -> None:
    assert held_timelines(bundle(content, True)) is None


def test_a_timeline_not_held_as_bytes_is_not_read_from_bytes() -> None:
    assert held_timelines(bundle(two_records(), False)) is None


def test_a_held_body_gives_the_records_and_each_records_bytes() -> None:
    held = held_timelines(bundle(two_records(), True))
    assert held is not None
    assert [(tid, [r.id for r in records]) for tid, records in held.parsed] == [("t1", ["root", "r1"])]
    assert [bytes(e) for e in held.elements[0]] == [
        b'{"id":"root","type":"Stage","order":1,"workerName":"agent-7"}',
        b'{"id":"r1","parentId":"root","type":"Task","name":"Build","order":2}']
