"""Bounded reading of uploads: every limit refuses its input with one line, never an exception."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import pytest

from etl.config import Limits
from etl.sources.bounded import nesting_depth, parse_json_document, read_archive_entries, read_json_file
from etl.sources.metrics_uploads import read_metrics_zip

SMALL = Limits(max_document_bytes=1_000, max_depth=8, max_archive_bytes=4_000, max_archive_entries=3)


def deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def zipped(entries: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_nesting_depth_ignores_brackets_inside_strings() -> None:
    assert nesting_depth(b'{"a": "[[[{{", "b": [{"c": "\\"]]"}]}') == 3


def test_a_1000_deep_document_is_refused_in_one_line_before_parsing() -> None:
    parsed = parse_json_document(deep(1000))
    assert (parsed.body, parsed.error) == (None, "nesting depth 1000 exceeds max_depth 32")
    assert parsed.excerpt == '{"a":' * 400


def test_a_100000_deep_array_is_refused_without_recursion() -> None:
    assert parse_json_document(b"[" * 100_000).error == "nesting depth 100000 exceeds max_depth 32"


def test_the_depth_limit_is_inclusive() -> None:
    assert parse_json_document(deep(8), SMALL).body is not None
    assert parse_json_document(deep(9), SMALL).error == "nesting depth 9 exceeds max_depth 8"


def test_an_oversized_document_is_refused_unparsed() -> None:
    data = json.dumps({"pad": "x" * 1_000}).encode()
    assert parse_json_document(data, SMALL).error == f"{len(data)} bytes exceeds max_document_bytes 1000"


def test_nan_infinity_and_huge_numbers_parse_to_values_the_normalizer_can_drop() -> None:
    body = parse_json_document(b'{"a": NaN, "b": -Infinity, "c": 1e300, "d": 123456789012345678901234567890}').body
    assert math.isnan(body["a"]) and body["b"] == -math.inf and body["c"] == 1e300
    assert body["d"] == 1.2345678901234568e29
    assert parse_json_document(b'{"n": 9223372036854775807}').body == {"n": 9223372036854775807}


def test_a_5000_digit_integer_does_not_fail_the_document() -> None:
    assert parse_json_document(b'{"n": ' + b"9" * 5000 + b"}").body == {"n": math.inf}


def test_text_that_is_not_utf8_or_not_json_is_refused_in_one_line() -> None:
    assert parse_json_document(b'{"a": "\xff"}').error == "not UTF-8 text: byte 7"
    assert parse_json_document(b"{not json").error == (
        "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)")


def test_a_file_is_read_no_further_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"[" + b"1," * 5_000 + b"1]")
    parsed = read_json_file(path, SMALL)
    assert parsed.error == "10003 bytes exceeds max_document_bytes 1000"
    assert read_json_file(tmp_path / "gone.json").error == "unreadable: No such file or directory"


def test_a_corrupt_entry_is_that_entrys_error_and_the_next_entry_is_read() -> None:
    good = json.dumps({"telemetry": {"n": 1}}).encode()
    data = bytearray(zipped({"a/metrics.json": b'{"build_session": {"hostname": "h"}}', "b/build-summary.json": good}))
    at = data.index(b'"hostname"')
    data[at + 1:at + 2] = b"H"  # stored data changed under its CRC
    docs = read_metrics_zip("telemetry", bytes(data))
    assert [(d.file_name, d.error) for d in docs] == [
        ("metrics.json", "corrupt entry: Bad CRC-32 for file 'a/metrics.json'"), ("build-summary.json", None)]
    assert docs[1].body == {"telemetry": {"n": 1}}


def test_corrupt_deflate_data_is_a_corrupt_entry() -> None:
    data = bytearray(zipped({"metrics.json": json.dumps({"k": "v" * 200}).encode()}, zipfile.ZIP_DEFLATED))
    start = 30 + len("metrics.json")
    data[start:start + 8] = b"\xff" * 8
    [doc] = read_metrics_zip("telemetry", bytes(data))
    assert doc.error is not None and doc.error.startswith("corrupt entry: ")


def test_archive_limits_refuse_the_whole_archive() -> None:
    many = zipped({f"f{i}.txt": b"" for i in range(4)})
    assert [(e.path, e.error) for e in read_archive_entries(many, {"metrics.json"}, SMALL)] == [
        ("(archive)", "4 entries exceeds max_archive_entries 3")]
    big = b"PK" + b"\0" * 5_000
    assert [e.error for e in read_archive_entries(big, {"metrics.json"}, SMALL)] == [
        "5002 bytes exceeds max_archive_bytes 4000"]
    assert [(d.file_name, d.error) for d in read_metrics_zip("telemetry", b"<html>sign in</html>")] == [
        ("(artifact)", "not a readable zip file: File is not a zip file")]


def test_an_entry_over_the_document_limit_is_refused_unread() -> None:
    bomb = zipped({"metrics.json": b" " * 100_000}, zipfile.ZIP_DEFLATED)
    assert len(bomb) < 4_000
    assert [d.error for d in read_metrics_zip("telemetry", bomb, SMALL)] == [
        "100000 bytes exceeds max_document_bytes 1000"]


def test_an_entry_whose_header_understates_its_size_is_caught() -> None:
    data = bytearray(zipped({"metrics.json": b"[" + b"0," * 1_000 + b"0]"}))
    # Rewrite both size fields (local header and central directory) to claim 10 bytes.
    real = (2003).to_bytes(4, "little")
    data = bytearray(bytes(data).replace(real + real, (10).to_bytes(4, "little") * 2))
    [doc] = read_metrics_zip("telemetry", bytes(data), SMALL)
    assert doc.error is not None and doc.error.startswith("corrupt entry: ")


def test_a_second_entry_of_the_same_name_is_refused() -> None:
    data = zipped({"a/metrics.json": b"{}", "b/metrics.json": b'{"x": 1}'})
    assert [(d.body, d.error) for d in read_metrics_zip("telemetry", data)] == [
        ({}, None), (None, "second metrics.json in the artifact (b/metrics.json); a/metrics.json was read")]


def test_a_refused_document_keeps_the_start_of_its_text_for_the_quarantine() -> None:
    [doc] = read_metrics_zip("telemetry", zipped({"metrics.json": b"[" * 50}))
    assert (doc.error, doc.body) == ("nesting depth 50 exceeds max_depth 32", "[" * 50)


@pytest.mark.parametrize("field", ["max_document_bytes", "max_depth", "max_archive_bytes", "max_archive_entries"])
def test_every_limit_refuses_zero(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Limits(**{field: 0})


def test_an_unpaired_surrogate_makes_the_document_unreadable() -> None:
    assert parse_json_document(b'{"host": "a\\ud800"}').error == (
        "not valid Unicode: an unpaired surrogate '\\ud800' in a string (I-JSON, RFC 7493)")
    assert parse_json_document(b'{"emoji": "\\ud83d\\ude00"}').body == {"emoji": "\U0001f600"}
