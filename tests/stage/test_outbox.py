"""The outbox's own rules: deterministic batch ids, manifest-last commits, chunked reads, pruning."""

from __future__ import annotations

import json
from pathlib import Path

from etl.stage.outbox import Manifest, Outbox, batch_id_for
from etl.stage.quarantine import Quarantine


def manifest(batch_id: str, to: str = "2026-11-01T06:00:00") -> Manifest:
    return Manifest(batch_id, "ado", "org", "proj", "2026-11-01T00:00:00", to, "2026-11-23T06:00:00")


def test_batch_id_is_the_same_for_the_same_window() -> None:
    a = batch_id_for("ado", "org", "proj", "2026-11-01T00:00:00", "2026-11-01T06:00:00")
    b = batch_id_for("ado", "org", "proj", "2026-11-01T00:00:00", "2026-11-01T06:00:00")
    c = batch_id_for("ado", "org", "proj", "2026-11-01T00:00:00", "2026-11-01T07:00:00")
    assert a == b != c
    assert a.startswith("20261101T060000-")


def test_a_batch_without_manifest_is_not_listed(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    staged = outbox.start(manifest("b1"))
    staged.add_rows("TimelineBuilds", [{"BuildId": 1}])
    assert outbox.batches() == []
    staged.commit("pending")
    assert [(m.batch_id, m.status, m.counts) for m in outbox.batches()] == [("b1", "pending", {"TimelineBuilds": 1})]


def test_rows_are_read_back_in_bounded_chunks(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    staged = outbox.start(manifest("b1"))
    staged.add_rows("TestResults", [{"ResultId": i} for i in range(5)])
    staged.commit("pending")
    assert [len(c) for c in outbox.rows("b1", "TestResults", chunk=2)] == [2, 2, 1]


def test_prune_keeps_the_newest_loaded_batches(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    for i in range(3):
        outbox.start(manifest(f"b{i}", to=f"2026-11-0{i + 1}T00:00:00")).commit("loaded")
    outbox.start(manifest("held", to="2026-11-01T00:00:00")).commit("held")
    assert outbox.prune(1) == ["b0", "b1"]
    assert sorted(m.batch_id for m in outbox.batches()) == ["b2", "held"]


def test_quarantine_keeps_reason_source_object_field_and_scrubbed_payload(tmp_path: Path) -> None:
    def scrub(value: object) -> object:
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        return value.replace("a@b.c", "<email>") if isinstance(value, str) else value

    lines: list[str] = []
    q = Quarantine(tmp_path, scrub=scrub, report=lines.append)
    path = q.add("ado", "build 123 timeline record r1", "startTime", "invalid datetime 'a@b.c'", {"who": "a@b.c"})
    assert json.loads(path.read_text()) == {"reason": "invalid datetime '<email>'", "source": "ado",
                                            "object": "build 123 timeline record r1", "field": "startTime",
                                            "payload": {"who": "<email>"}}
    assert lines == ["ado build 123 timeline record r1: field startTime: invalid datetime '<email>'"]
    assert path.parent == tmp_path / "quarantine" / "ado"
