"""Rows written straight to the store (not through the outbox) get their FIELD_POLICY treatment too."""

from __future__ import annotations

from etl.config import Settings
from etl.warehouse import connected
from etl.warehouse.local import LocalWarehouse

NOW = "2026-11-30T12:00:00"


def _stored(settings: Settings, sql: str) -> list[tuple]:
    wh = LocalWarehouse(settings.path(settings.warehouse.path))
    try:
        return wh.execute_sql(sql)
    finally:
        wh.close()


def test_a_direct_write_redacts_its_free_text_columns(local_settings: Settings) -> None:
    with connected(local_settings) as warehouse:
        warehouse.apply_schema()
        warehouse.ingest("FailureTriage", [{
            "Organization": "org", "Project": "p", "BuildId": 1, "RecordId": "r", "Attempt": 1, "IssueIndex": 0,
            "FailureCategory": "test", "FailureOrigin": "product",
            "Note": "asked alice@example.com; key AKIAIOSFODNN7EXAMPLE", "TriagedBy": "alice",
            "TriagedAt": NOW, "IngestedAt": NOW}], "triage-test")
    note, by = _stored(local_settings, 'SELECT Note, TriagedBy FROM "FailureTriage"')[0]
    assert note == "asked <email>; key <secret>"
    assert by.startswith("anon-") and len(by) == len("anon-") + 12


def test_staged_rows_load_without_a_second_treatment(local_settings: Settings) -> None:
    with connected(local_settings) as warehouse:
        warehouse.apply_schema()
        assert warehouse.ingest_treated("FailureTriage", [{
            "Organization": "org", "Project": "p", "BuildId": 1, "RecordId": "r", "Attempt": 1, "IssueIndex": 0,
            "Note": "already treated by the outbox", "TriagedBy": "anon-0123456789ab",
            "TriagedAt": NOW, "IngestedAt": NOW}], "triage-test") == 1
    assert _stored(local_settings, 'SELECT Note, TriagedBy FROM "FailureTriage"')[0] == (
        "already treated by the outbox", "anon-0123456789ab")
