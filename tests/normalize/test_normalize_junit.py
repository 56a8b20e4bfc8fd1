"""JUnit XML reports parse into TestRuns/TestResults rows; hostile reports give one-line errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl.normalize.junit import JUnitError, normalize_junit, parse_junit, parse_seconds, read_junit, run_id_for
from tests.normalize.test_normalize_samples import FACTS, Sink, assert_fits, make_ctx

DATA = Path(__file__).parents[1] / "data" / "junit"


def report(name: str):
    return parse_junit((DATA / name).read_bytes(), "inbox", name)


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.xml")))
def test_every_fixture_normalizes_into_rows_that_fit_the_tables(name: str) -> None:
    sink = Sink()
    run, results = normalize_junit(make_ctx(sink), FACTS, report(name), key=f"proj/1/{name}")
    assert_fits("TestRuns", [run])
    assert_fits("TestResults", results)
    assert run["TotalTests"] == len(results) > 0
    assert sink.items == []


def test_surefire_flaky_failure_is_passed_on_rerun_and_rerun_failure_stays_failed() -> None:
    _, rows = normalize_junit(make_ctx(), FACTS, report("surefire-flaky.xml"), key="k")
    got = {r["TestName"]: (r["Outcome"], r["PassedOnRerun"], r["ResultGroupType"]) for r in rows}
    assert got == {
        "example.ExampleTests.throwsAlways": ("Error", False, "Rerun"),
        "example.ExampleTests.failsAssertionAlways": ("Failed", False, "Rerun"),
        "example.ExampleTests.failsAssertionOnlyFirstAttempt": ("Passed", True, "Rerun"),
        "example.ExampleTests.throwsOnlyFirstAttempt": ("Passed", True, "Rerun"),
    }


def test_surefire_run_counts_errors_as_failed() -> None:
    run, _ = normalize_junit(make_ctx(), FACTS, report("surefire-flaky.xml"), key="k")
    assert (run["TotalTests"], run["PassedTests"], run["FailedTests"], run["NotExecutedTests"]) == (4, 2, 2, 0)


def test_failure_message_comes_from_the_message_attribute_and_is_classified() -> None:
    _, rows = normalize_junit(make_ctx(), FACTS, report("surefire-flaky.xml"), key="k")
    failed = rows[1]
    assert failed["ErrorMessage"] == "Always fails assertion ==> expected: <1> but was: <2>"
    assert failed["Signature"] is not None


def test_pytest_skipped_is_not_executed_and_duration_is_milliseconds() -> None:
    run, rows = normalize_junit(make_ctx(), FACTS, report("pytest-junit.gloo.elastic.xml"), key="k")
    assert (run["TotalTests"], run["PassedTests"], run["NotExecutedTests"]) == (14, 10, 4)
    assert rows[1]["TestName"] == "test.integration.test_elastic_torch.ElasticTorchTests.test_all_ranks_failure"
    assert rows[1]["DurationMs"] == 2874.0
    assert rows[1]["TestStorage"] == "test/integration/elastic_common.py"


def test_run_time_is_the_earliest_suite_timestamp_plus_the_suites_time() -> None:
    run, _ = normalize_junit(make_ctx(), FACTS, report("pytest-junit.gloo.elastic.xml"), key="k")
    assert run["StartedDate"] == datetime(2020, 8, 31, 9, 25, 25, 803505)
    assert run["CompletedDate"] == datetime(2020, 8, 31, 9, 26, 37, 997505)


def test_jest_testsuites_time_and_name_come_from_the_root() -> None:
    r = report("jest-junit.xml")
    assert (r.name, r.seconds, r.started) == ("jest tests", 0.929, datetime(2022, 12, 29, 15, 34, 28, tzinfo=UTC))
    assert [c.test_name for c in r.cases] == ["Load widget via link", "Mount iframe"]


def test_nested_suites_are_flattened_with_their_path() -> None:
    r = report("testsuite-root.xml")
    assert [(c.suite, c.name) for c in r.cases] == [
        ("Project Test Suite/TestSuite1", "TestCase1"),
        ("Project Test Suite/TestSuite1", "TestCase2"),
        ("Project Test Suite/TestSuite2/TestSuite2.1", "TestCase3"),
        ("Project Test Suite/TestSuite2", "TestCase4"),
        ("Project Test Suite", "TestCase5"),
    ]


def test_predefined_entities_are_decoded() -> None:
    r = report("with-xml-entities.xml")
    assert [c.outcome for c in r.cases] == ["NotExecuted", "Failed", "Error", "NotExecuted"]
    assert r.cases[2].name == "Test with & in the test name"


def test_system_out_is_ignored() -> None:
    xml = b'<testsuite name="s"><testcase name="t"><system-out>token=ghp_secret</system-out></testcase></testsuite>'
    _, rows = normalize_junit(make_ctx(), FACTS, parse_junit(xml, "inbox", "a.xml"), key="k")
    assert (rows[0]["Outcome"], rows[0]["ErrorMessage"]) == ("Passed", None)


def test_rerun_failure_on_a_finally_passing_case_is_passed_on_rerun() -> None:
    xml = b'<testsuite><testcase name="t" time="1"><rerunFailure message="boom"/></testcase></testsuite>'
    case = parse_junit(xml, "inbox", "a.xml").cases[0]
    assert (case.outcome, case.reruns, case.passed_on_rerun) == ("Passed", 1, True)


def test_run_id_is_stable_and_positive() -> None:
    assert run_id_for("o/r/1/1/junit.xml") == run_id_for("o/r/1/1/junit.xml")
    assert 0 < run_id_for("o/r/1/1/junit.xml") < 2**63
    assert run_id_for("o/r/1/1/junit.xml") != run_id_for("o/r/1/2/junit.xml")


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                             for i in range(1, 10))
                  + b']><testsuite name="&lol9;"/>')


@pytest.mark.parametrize(("data", "expected"), [
    (BILLION_LAUGHS, "inbox a.xml: field (DTD): refused: DTDForbidden"),
    (b"<testsuite>" * 10_000, "inbox a.xml: field (nesting): deeper than 64 elements"),
    (b"<testsuite", "inbox a.xml: field (xml): malformed XML: unclosed token: line 1, column 0"),
    (b"", "inbox a.xml: field (xml): malformed XML: no element found: line 1, column 0"),
    (b"<html/>", "inbox a.xml: field (root): not a JUnit report: root element <html>"),
])
def test_hostile_document_is_one_line_error_naming_source_object_and_field(data: bytes, expected: str) -> None:
    with pytest.raises(JUnitError) as exc:
        parse_junit(data, "inbox", "a.xml")
    assert str(exc.value) == expected


def test_size_limit_is_checked_before_parsing() -> None:
    with pytest.raises(JUnitError, match=r"^inbox a.xml: field \(size\): 101 bytes, more than the limit of 100$"):
        parse_junit(b" " * 101, "inbox", "a.xml", max_bytes=100)


def test_element_count_limit() -> None:
    xml = b"<testsuite>" + b'<testcase name="t"/>' * 10 + b"</testsuite>"
    with pytest.raises(JUnitError, match=r"^inbox a.xml: field \(elements\): more than 5 elements$"):
        parse_junit(xml, "inbox", "a.xml", max_elements=5)


@pytest.mark.parametrize(("value", "reason"), [
    ("NaN", "out of range 'NaN' (0 to 2592000 s)"),
    ("inf", "out of range 'inf' (0 to 2592000 s)"),
    ("-1", "out of range '-1' (0 to 2592000 s)"),
    ("9" * 400, "out of range '9999999999999999999999999999999999999...' (0 to 2592000 s)"),
    ("fast", "invalid number 'fast'"),
])
def test_bad_time_is_quarantined_and_the_other_cases_load(value: str, reason: str) -> None:
    xml = f'<testsuite><testcase name="bad" time="{value}"/><testcase name="ok" time="1,234.5"/></testsuite>'
    sink = Sink()
    _, rows = normalize_junit(make_ctx(sink), FACTS, parse_junit(xml.encode(), "inbox", "a.xml"), key="k")
    assert [(r["TestName"], r["DurationMs"]) for r in rows] == [("ok", 1234500.0)]
    assert [item[:4] for item in sink.items] == [("inbox", "a.xml testcase 1 'bad'", "time", reason)]


def test_bad_suite_timestamp_is_quarantined_and_the_cases_load() -> None:
    xml = b'<testsuite name="s" timestamp="yesterday"><testcase name="t"/></testsuite>'
    sink = Sink()
    run, rows = normalize_junit(make_ctx(sink), FACTS, parse_junit(xml, "inbox", "a.xml"), key="k")
    assert (run["StartedDate"], len(rows)) == (None, 1)
    assert [item[:4] for item in sink.items] == [("inbox", "a.xml testsuite 's'", "timestamp", "invalid datetime 'yesterday'")]


def test_absent_time_is_none() -> None:
    assert parse_seconds(None, "inbox", "x") is None
    assert parse_seconds(" ", "inbox", "x") is None


def test_quarantined_case_keeps_its_attributes() -> None:
    sink = Sink()
    xml = b'<testsuite><testcase name="bad" classname="c" time="NaN"/></testsuite>'
    normalize_junit(make_ctx(sink), FACTS, parse_junit(xml, "inbox", "a.xml"), key="o/r/1/a.xml")
    assert sink.items[0][4] == {"report": "o/r/1/a.xml", "element": {"name": "bad", "classname": "c", "time": "NaN"}}


def test_unreadable_file_is_quarantined_with_its_head_and_gives_no_rows() -> None:
    sink = Sink()
    ctx = make_ctx(sink)
    assert read_junit(ctx, FACTS, BILLION_LAUGHS, name="a.xml", key="o/r/1/a.xml") == ([], [])
    source, obj, field, reason, payload = sink.items[0]
    assert (source, obj, field, reason) == ("samples", "a.xml", "(DTD)", "refused: DTDForbidden")
    assert (payload["bytes"], payload["head"][:21]) == (len(BILLION_LAUGHS), '<?xml version="1.0"?>')


def test_readable_file_gives_one_run_and_its_results() -> None:
    runs, results = read_junit(make_ctx(), FACTS, (DATA / "jest-junit.xml").read_bytes(), name="jest-junit.xml",
                               key="o/r/1/jest-junit.xml", attempt=2, job="test")
    assert [(r["Name"], r["Attempt"], r["JobName"], r["TotalTests"]) for r in runs] == [("jest tests", 2, "test", 2)]
    assert {r["RunId"] for r in results} == {runs[0]["RunId"]}


def test_timestamp_at_the_end_of_time_has_no_completed_date() -> None:
    xml = b'<testsuite name="s" timestamp="9999-12-31T23:59:59" time="100"><testcase name="t"/></testsuite>'
    run, _ = normalize_junit(make_ctx(), FACTS, parse_junit(xml, "inbox", "a.xml"), key="k")
    assert (run["StartedDate"], run["CompletedDate"]) == (datetime(9999, 12, 31, 23, 59, 59), None)


def test_bad_root_time_is_quarantined_with_the_root_attributes() -> None:
    sink = Sink()
    xml = b'<testsuites time="NaN"><testsuite name="s"><testcase name="t"/></testsuite></testsuites>'
    run, _ = normalize_junit(make_ctx(sink), FACTS, parse_junit(xml, "inbox", "a.xml"), key="k")
    assert run["TotalTests"] == 1
    assert [(i[1], i[2], i[4]["element"]) for i in sink.items] == [("a.xml testsuites", "time", {"time": "NaN"})]
