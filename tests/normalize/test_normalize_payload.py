"""What one bundle stages when its raw payload cannot be written as a JSON line."""

from __future__ import annotations

from typing import Any

from etl.normalize.batch import normalize_payload
from etl.sources.azure_devops.extract import BuildBundle
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
