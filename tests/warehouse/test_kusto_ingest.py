"""Kusto ingestion at the HTTP layer: a loopback server plays the cluster's ingestion service.

It answers what azure-kusto-ingest really calls: `.get ingestion resources` and `.get kusto
identity token` on the ingest URL's `/v1/rest/mgmt`, the blob PUT and the queue message POST on
the "storage" URLs it handed out, and the status queues the client polls for the outcome
(`GET .../messages`, `DELETE .../messages/{id}`). Streaming ingestion's
`/v1/rest/ingest/{db}/{table}` is served too. Everything above the socket is the real SDK.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from etl.config import KustoWarehouse as KustoSettings
from etl.schema import table
from etl.warehouse.base import WarehouseError
from etl.warehouse.kusto import KustoWarehouse, _timespan, to_json_lines
from etl.warehouse.rows import to_arrow

ROWS = [
    {"Organization": "contoso", "Project": "Engineering", "BuildId": 101, "Result": "failed",
     "FinishTime": "2026-01-02T03:04:05.1234567Z", "Tags": ["nightly", "x86"], "Attempts": 2,
     "IngestedAt": "2026-01-03T00:00:00Z"},
    {"Organization": "contoso", "Project": "Engineering", "BuildId": 102, "QueueSeconds": 1.5,
     "IngestedAt": "2026-01-03T00:00:00Z"},
]
EXPECTED_LINES = [
    {"Organization": "contoso", "Project": "Engineering", "BuildId": 101, "Result": "failed",
     "FinishTime": "2026-01-02T03:04:05.123456Z", "Tags": ["nightly", "x86"], "Attempts": 2,
     "IngestedAt": "2026-01-03T00:00:00Z"},
    {"Organization": "contoso", "Project": "Engineering", "BuildId": 102, "QueueSeconds": 1.5,
     "IngestedAt": "2026-01-03T00:00:00Z"},
]


@dataclass
class FakeIngestionService:
    """State of the loopback ingestion service, inspected by the tests."""

    url: str = ""
    #: ErrorCode to report for every ingestion (None: report success; "" : never report).
    outcome: str | None = None
    #: HTTP status for `/v1/rest/mgmt` (200: answer normally).
    mgmt_status: int = 200
    #: HTTP status for blob uploads (201: accept).
    blob_status: int = 201
    blobs: dict[str, bytes] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    streamed: list[tuple[str, dict[str, list[str]], bytes]] = field(default_factory=list)
    queues: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {"successes": [], "failures": []})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def storage(self, name: str) -> str:
        return f"{self.url}/{name}?sv=2024-01-01&sig=fake"

    def report(self, message: dict[str, Any]) -> None:
        """What the cluster does after reading a queued ingestion message."""
        if self.outcome == "":
            return
        status: dict[str, Any] = {
            "OperationId": str(uuid.uuid4()), "Database": message["DatabaseName"], "Table": message["TableName"],
            "IngestionSourceId": message["Id"], "IngestionSourcePath": message["BlobPath"],
            "RootActivityId": str(uuid.uuid4()),
        }
        if self.outcome is None:
            queue, status = "successes", {**status, "SucceededOn": "2026-01-03T00:00:01Z"}
        else:
            queue, status = "failures", {**status, "FailedOn": "2026-01-03T00:00:01Z", "ErrorCode": self.outcome,
                                         "FailureStatus": "Permanent", "Details": "mapping 'X' not found",
                                         "ShouldRetry": False}
        text = base64.b64encode(json.dumps(status).encode()).decode()
        self.queues[queue].append((str(uuid.uuid4()), text))


def _v1(columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"Tables": [{"TableName": "Table_0",
                        "Columns": [{"ColumnName": c, "DataType": "String", "ColumnType": "string"} for c in columns],
                        "Rows": rows}]}


def _handler(service: FakeIngestionService) -> Callable[[Request], Response]:
    def send(status: int, body: bytes = b"", content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> Response:
        return Response(body, status, {"x-ms-request-id": str(uuid.uuid4()), "x-ms-version": "2024-01-01",
                                       **(headers or {})}, content_type=content_type)

    def post(request: Request) -> Response:
        body = request.get_data()
        if request.path == "/v1/rest/mgmt":
            if service.mgmt_status != 200:
                error = {"error": {"code": "Forbidden", "message": "Caller is not authorized",
                                   "@type": "Kusto.DataNode.Exceptions.UnauthorizedDatabaseAccessException",
                                   "@message": "Principal is not authorized to ingest", "@permanent": True}}
                return send(service.mgmt_status, json.dumps(error).encode())
            csl = json.loads(body)["csl"]
            if csl == ".get ingestion resources":
                rows = [["SecuredReadyForAggregationQueue", service.storage("readyforaggregation")],
                        ["FailedIngestionsQueue", service.storage("failures")],
                        ["SuccessfulIngestionsQueue", service.storage("successes")],
                        ["TempStorage", service.storage("tempstorage")],
                        ["IngestionsStatusTable", service.storage("ingestionsstatus")]]
                return send(200, json.dumps(_v1(["ResourceTypeName", "StorageRoot"], rows)).encode())
            if csl == ".get kusto identity token":
                return send(200, json.dumps(_v1(["AuthorizationContext"], [["fake-context"]])).encode())
            return send(400, b"{}")
        if request.path.startswith("/v1/rest/ingest/"):
            if service.outcome not in (None, ""):
                error = {"error": {"code": "BadRequest", "message": "Request is invalid",
                                   "@type": "Kusto.Common.Svc.Exceptions.IngestionException",
                                   "@message": f"{service.outcome}: mapping 'X' not found", "@permanent": True}}
                return send(400, json.dumps(error).encode())
            if request.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            service.streamed.append((request.path, parse_qs(request.query_string.decode()), body))
            return send(200, json.dumps(_v1(["ExtentId"], [[str(uuid.uuid4())]])).encode())
        if request.path == "/readyforaggregation/messages":
            text = ElementTree.fromstring(body).findtext("MessageText") or ""
            message = json.loads(base64.b64decode(text))
            with service.lock:
                service.messages.append(message)
                service.report(message)
            return send(201, _queue_xml([(str(uuid.uuid4()), None)]), "application/xml")
        return send(404)

    def put(request: Request) -> Response:
        body = request.get_data()
        if request.path.startswith("/tempstorage/") and service.blob_status != 201:
            error = b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationFailure</Code>' \
                    b"<Message>This request is not authorized to perform this operation.</Message></Error>"
            return send(service.blob_status, error, "application/xml", {"x-ms-error-code": "AuthorizationFailure"})
        if request.path.startswith("/tempstorage/"):
            service.blobs[request.path.removeprefix("/tempstorage/")] = body
            return send(201, headers={"ETag": '"0x1"', "Last-Modified": formatdate(usegmt=True),
                                      "x-ms-request-server-encrypted": "true"})
        return send(404)

    def get(request: Request) -> Response:
        queue = request.path.removesuffix("/messages").strip("/")
        if queue in service.queues:
            with service.lock:
                messages, service.queues[queue][:] = list(service.queues[queue]), []
            return send(200, _queue_xml(messages), "application/xml")
        return send(404)

    routes = {"POST": post, "PUT": put, "GET": get, "DELETE": lambda request: send(204)}
    return lambda request: routes[request.method](request)


def _queue_xml(messages: list[tuple[str, str | None]]) -> bytes:
    now = formatdate(usegmt=True)
    items = "".join(
        f"<QueueMessage><MessageId>{mid}</MessageId><InsertionTime>{now}</InsertionTime>"
        f"<ExpirationTime>{now}</ExpirationTime><PopReceipt>receipt</PopReceipt>"
        f"<TimeNextVisible>{now}</TimeNextVisible>"
        + (f"<DequeueCount>1</DequeueCount><MessageText>{text}</MessageText>" if text is not None else "")
        + "</QueueMessage>"
        for mid, text in messages
    )
    return f'<?xml version="1.0" encoding="utf-8"?><QueueMessagesList>{items}</QueueMessagesList>'.encode()


@pytest.fixture
def service(httpserver: HTTPServer) -> FakeIngestionService:
    state = FakeIngestionService()
    httpserver.expect_request(re.compile(".*")).respond_with_handler(_handler(state))
    state.url = httpserver.url_for("").rstrip("/")
    return state


def _warehouse(service: FakeIngestionService, **overrides: Any) -> KustoWarehouse:
    settings = KustoSettings(cluster_url=service.url, ingest_url=service.url, database="CiTelemetry", auth="none",
                             **{"ingestion_timeout_seconds": 5, **overrides})
    return KustoWarehouse(settings, status_poll_seconds=0.05)


def _lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def test_queued_ingestion_sends_the_batch_as_json_lines_with_its_mapping_and_tags(service: FakeIngestionService) -> None:
    wh = _warehouse(service)
    try:
        assert wh.ingest("TimelineBuilds", ROWS, "batch-7f3a") == 2
    finally:
        wh.close()
    [message] = service.messages
    extra = message["AdditionalProperties"]
    assert (message["DatabaseName"], message["TableName"]) == ("CiTelemetry", "TimelineBuilds")
    assert extra["format"] == "multijson"
    assert extra["ingestionMappingReference"] == "TimelineBuilds_json"
    assert extra["ingestionMappingType"] == "Json"
    assert json.loads(extra["tags"]) == ["ingest-by:batch-7f3a"]
    assert json.loads(extra["ingestIfNotExists"]) == ["batch-7f3a"]
    assert (message["ReportLevel"], message["ReportMethod"]) == (2, 0)  # FailuresAndSuccesses, Queue
    [(name, blob)] = service.blobs.items()
    assert name.startswith("CiTelemetry__TimelineBuilds__") and name.endswith(".gz")
    assert message["BlobPath"].startswith(f"{service.url}/tempstorage/{name}")
    assert _lines(gzip.decompress(blob)) == EXPECTED_LINES


def test_a_key_twice_in_one_batch_is_sent_once_with_its_last_row(service: FakeIngestionService) -> None:
    wh = _warehouse(service)
    try:
        assert wh.ingest("TimelineBuilds", [ROWS[0], ROWS[1], {**ROWS[0], "Result": "succeeded"}], "b1") == 2
    finally:
        wh.close()
    [blob] = service.blobs.values()
    assert [(r["BuildId"], r.get("Result")) for r in _lines(gzip.decompress(blob))] == [(102, None), (101, "succeeded")]


def test_a_failure_report_raises_naming_table_batch_and_error_code(service: FakeIngestionService) -> None:
    service.outcome = "BadRequest_InvalidMappingReference"
    wh = _warehouse(service)
    try:
        with pytest.raises(WarehouseError, match=r"^Kusto ingestion into TimelineBuilds \(batch b1\) failed: "
                                                 r"BadRequest_InvalidMappingReference \(Permanent\)"):
            wh.ingest("TimelineBuilds", ROWS, "b1")
    finally:
        wh.close()


def test_a_batch_the_cluster_already_holds_is_a_no_op_not_an_error(service: FakeIngestionService) -> None:
    service.outcome = "Skipped_IngestByTagAlreadyExists"
    wh = _warehouse(service)
    try:
        assert wh.ingest("TimelineBuilds", ROWS, "b1") == 0
    finally:
        wh.close()


def test_no_report_within_the_timeout_raises_and_keeps_the_batch_staged(service: FakeIngestionService) -> None:
    service.outcome = ""
    wh = _warehouse(service, ingestion_timeout_seconds=0.3)
    try:
        with pytest.raises(WarehouseError, match=r"no success or failure report within 0.3s; the batch stays staged"):
            wh.ingest("TimelineBuilds", ROWS, "b1")
    finally:
        wh.close()


def test_an_http_error_from_the_ingestion_service_raises_one_line(service: FakeIngestionService) -> None:
    service.mgmt_status = 403
    wh = _warehouse(service)
    try:
        with pytest.raises(WarehouseError, match=r"^Kusto ingestion into TimelineBuilds \(batch b1\) failed: .+") as info:
            wh.ingest("TimelineBuilds", ROWS, "b1")
    finally:
        wh.close()
    assert "\n" not in str(info.value)
    assert service.messages == []


def test_a_refused_blob_upload_raises_and_enqueues_nothing(service: FakeIngestionService) -> None:
    service.blob_status = 403
    wh = _warehouse(service)
    try:
        with pytest.raises(WarehouseError, match=r"^Kusto ingestion into TimelineBuilds \(batch b1\) failed uploading "
                                                 r"to the ingestion storage: This request is not authorized"):
            wh.ingest("TimelineBuilds", ROWS, "b1")
    finally:
        wh.close()
    assert service.messages == []


def test_reports_for_other_batches_are_kept_for_their_own_wait(service: FakeIngestionService) -> None:
    wh = _warehouse(service)
    try:
        wh._reports["someone-else"] = (True, "")
        assert wh.ingest("TimelineBuilds", ROWS, "b1") == 2
        assert wh.ingest("TimelineBuilds", ROWS, "b2") == 2
        assert set(wh._reports) == {"someone-else"}
    finally:
        wh.close()


def test_streaming_ingestion_posts_json_lines_with_format_and_mapping(service: FakeIngestionService) -> None:
    wh = _warehouse(service, ingestion="streaming")
    try:
        assert wh.ingest("TimelineBuilds", ROWS, "b1") == 2
    finally:
        wh.close()
    [(path, query, body)] = service.streamed
    assert path == "/v1/rest/ingest/CiTelemetry/TimelineBuilds"
    assert query == {"streamFormat": ["multijson"], "mappingName": ["TimelineBuilds_json"]}
    assert _lines(body) == EXPECTED_LINES
    assert service.messages == []


def test_streaming_a_batch_twice_sends_it_twice_with_no_tag_to_skip_it(service: FakeIngestionService) -> None:
    """Streaming ingestion has no ingest-by tag or ingestIfNotExists: at least once, not exactly once.
    The cluster's `Latest<Table>` materialized views are what keep one row per key (docs/deploy-adx.md)."""
    wh = _warehouse(service, ingestion="streaming")
    try:
        assert wh.ingest("TimelineBuilds", ROWS, "b1") == 2
        assert wh.ingest("TimelineBuilds", ROWS, "b1") == 2
    finally:
        wh.close()
    assert [query for _, query, _ in service.streamed] == [
        {"streamFormat": ["multijson"], "mappingName": ["TimelineBuilds_json"]}] * 2


def test_a_permanent_streaming_error_raises_instead_of_falling_back(service: FakeIngestionService) -> None:
    service.outcome = "BadRequest_InvalidMappingReference"
    wh = _warehouse(service, ingestion="streaming")
    try:
        with pytest.raises(WarehouseError, match=r"^Kusto ingestion into TimelineBuilds \(batch b1\) failed: .*"
                                                 r"BadRequest_InvalidMappingReference"):
            wh.ingest("TimelineBuilds", ROWS, "b1")
    finally:
        wh.close()
    assert service.messages == []


def test_an_empty_batch_sends_nothing(service: FakeIngestionService) -> None:
    wh = _warehouse(service)
    try:
        assert wh.ingest("TimelineBuilds", [], "b1") == 0
    finally:
        wh.close()
    assert service.blobs == {} and service.messages == []


def test_timespans_are_written_in_kusto_text_form() -> None:
    assert _timespan(timedelta(days=1, hours=2, seconds=3.5)) == "1.02:00:03.5000000"
    assert _timespan(-timedelta(minutes=5)) == "-00:05:00"


def test_json_lines_leave_null_columns_out() -> None:
    schema = table("BuildStages")
    row = {"Source": "s", "Key": "k", "StageIndex": 1, "Organization": "o", "Project": "p", "BuildId": 1,
           "IngestedAt": "2026-01-01"}
    data = to_arrow(schema, [row])
    assert _lines(to_json_lines(schema, data)) == [{**row, "IngestedAt": "2026-01-01T00:00:00Z"}]


def test_rows_staged_in_the_outbox_are_sent_as_the_same_json_lines(service: FakeIngestionService, tmp_path) -> None:
    from etl.stage.outbox import Manifest, Outbox

    outbox = Outbox(tmp_path)
    staged = outbox.start(Manifest("b1", "ado", "contoso", "Engineering", None, None, "2026-01-03T00:00:00"))
    staged.add_rows("TimelineBuilds", [dict(r) for r in ROWS])
    staged.commit("pending")
    [chunk] = list(outbox.tables("b1", "TimelineBuilds"))
    wh = _warehouse(service)
    try:
        assert wh.ingest_treated("TimelineBuilds", chunk, "b1") == 2
    finally:
        wh.close()
    [blob] = service.blobs.values()
    assert _lines(gzip.decompress(blob)) == EXPECTED_LINES


def test_each_staged_chunk_of_a_table_is_sent_with_its_own_idempotency_tag(service: FakeIngestionService, tmp_path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from etl.load import load_facts
    from etl.stage import outbox as outbox_module
    from etl.stage.outbox import Manifest, Outbox

    monkeypatch.setattr(outbox_module, "ROW_GROUP_ROWS", 1)
    outbox = Outbox(tmp_path)
    manifest = Manifest("b1", "ado", "contoso", "Engineering", None, None, "2026-01-03T00:00:00")
    staged = outbox.start(manifest)
    staged.add_rows("TimelineBuilds", [dict(r) for r in ROWS])
    staged.commit("pending")
    wh = _warehouse(service)
    try:
        assert load_facts(wh, outbox, manifest) == {"TimelineBuilds": 2}
    finally:
        wh.close()
    assert [json.loads(m["AdditionalProperties"]["ingestIfNotExists"]) for m in service.messages] == [["b1"], ["b1.1"]]
