"""Known issues: rule matching, the KnownIssueMatches ledger (idempotent, back-applied), and the KQL functions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from test_classify_rebuild import NOW, QUEUED, SINCE, seed  # the same seeded store as the rebuild tests
from typer.testing import CliRunner

from etl.classify import RuleFileError
from etl.classify.known_issues import KnownIssue, compile_issue, evaluate_known_issues, load_known_issues
from etl.cli import app
from etl.warehouse.local import LocalWarehouse

ROOT = Path(__file__).resolve().parents[2]


def issue(**fields) -> KnownIssue:
    return KnownIssue.model_validate({"id": "k", "title": "t", **fields})


def test_shipped_known_issues_load() -> None:
    ids = [i.issue.id for i in load_known_issues(ROOT / "config" / "known-issues.yaml")]
    assert "agent-stopped-responding" in ids
    assert len(ids) == len(set(ids))


def test_substring_match_counts_every_matching_text() -> None:
    rule = compile_issue(issue(match={"substring": "Widget Exploded"}), "f")
    assert rule.evaluate(["x", "the widget exploded", "widget exploded again"]) == (True, 2, "the widget exploded")


def test_regex_match_is_case_insensitive_by_default() -> None:
    rule = compile_issue(issue(match={"regex": r"error NU1\d{3}"}), "f")
    assert rule.evaluate(["ERROR nu1301: unable to load"]) == (True, 1, "ERROR nu1301: unable to load")


def test_sequence_needs_its_lines_in_order() -> None:
    rule = compile_issue(issue(match={"sequence": ["error: RPC failed", "fatal: early EOF"]}), "f")
    assert rule.evaluate(["error: RPC failed; curl 92\nfetch-pack: unexpected\nfatal: early EOF"])[0] is True
    assert rule.evaluate(["error: RPC failed", "later", "fatal: early EOF"])[:2] == (True, 1)
    assert rule.evaluate(["fatal: early EOF", "error: RPC failed"])[:2] == (False, 0)


def test_scope_globs_on_definition_and_branches() -> None:
    rule = compile_issue(issue(match={"substring": "x"}, scope={"definitions": ["ci\\*"],
                                                                "branches": ["refs/heads/release/*"]}), "f")
    assert rule.in_scope("ci\\main", ["refs/heads/release/1.0", None]) is True
    assert rule.in_scope("ci\\main", ["refs/heads/main", None]) is False
    assert rule.in_scope("pr\\validate", ["refs/heads/release/1.0", None]) is False


def test_version_changes_with_the_match_but_not_the_title() -> None:
    a = issue(match={"substring": "x"})
    assert a.version == issue(title="other title", url="https://x", match={"substring": "x"}).version
    assert a.version != issue(match={"substring": "y"}).version


def test_invalid_known_issue_regex_names_the_file_and_rule(tmp_path: Path) -> None:
    path = tmp_path / "ki.yaml"
    path.write_text(yaml.safe_dump({"issues": [{"id": "bad", "title": "t", "match": {"regex": "(a)\\1"}}]}))
    with pytest.raises(RuleFileError, match=r"ki.yaml: known issue 'bad' match.regex"):
        load_known_issues(path)


def test_unknown_key_in_a_known_issue_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "ki.yaml"
    path.write_text(yaml.safe_dump({"issues": [{"id": "bad", "title": "t", "match": {"substring": "a"},
                                                "severity": "high"}]}))
    with pytest.raises(RuleFileError, match=r"known issue 'bad' severity: unknown key"):
        load_known_issues(path)


@pytest.fixture
def wh(tmp_path: Path) -> LocalWarehouse:
    store = LocalWarehouse(tmp_path / "w.duckdb")
    store.apply_schema()
    seed(store)
    yield store
    store.close()


WIDGET = issue(id="widget", match={"substring": "widget exploded"}, mode="explains")


def ledger(wh: LocalWarehouse) -> list[tuple]:
    rows = wh.query("LatestKnownIssueMatches | project RuleId, BuildId, Attempt, Present, MatchCount"
                    " | order by RuleId asc, BuildId asc, Attempt asc")
    return [tuple(r) for r in rows.itertuples(index=False)]


def test_ledger_has_one_row_per_rule_and_build_attempt(wh: LocalWarehouse) -> None:
    since = QUEUED - timedelta(days=1)
    outcome = evaluate_known_issues(wh, [compile_issue(WIDGET, "f")], since)
    assert (outcome.evaluated, outcome.present) == ({"widget": 4}, {"widget": 2})
    # build 2: the uploaded failure reason; build 3 attempt 1: the issue and a failed test's message
    assert ledger(wh) == [("widget", 1, 1, False, 0), ("widget", 2, 1, True, 1), ("widget", 3, 1, True, 2),
                          ("widget", 3, 2, False, 0)]
    sample = wh.query("LatestKnownIssueMatches | where BuildId == 3 and Attempt == 1 | project SampleMessage, Mode")
    assert sample.iloc[0].tolist() == ["The widget exploded at /home/<user>/w/1/s (code 7)", "explains"]


def test_evaluating_again_writes_nothing(wh: LocalWarehouse) -> None:
    since = QUEUED - timedelta(days=1)
    evaluate_known_issues(wh, [compile_issue(WIDGET, "f")], since)
    again = evaluate_known_issues(wh, [compile_issue(WIDGET, "f")], since)
    assert again.evaluated == {"widget": 0}
    assert len(ledger(wh)) == 4


def test_a_new_rule_is_back_applied_over_history(wh: LocalWarehouse) -> None:
    since = QUEUED - timedelta(days=1)
    evaluate_known_issues(wh, [compile_issue(WIDGET, "f")], since)
    dns = issue(id="dns", match={"substring": "Could not resolve host"})
    outcome = evaluate_known_issues(wh, [compile_issue(WIDGET, "f"), compile_issue(dns, "f")], since)
    assert (outcome.evaluated, outcome.present) == ({"widget": 0, "dns": 4}, {"widget": 0, "dns": 1})
    assert len(ledger(wh)) == 8


def test_an_edited_rule_replaces_its_ledger_rows(wh: LocalWarehouse) -> None:
    since = QUEUED - timedelta(days=1)
    evaluate_known_issues(wh, [compile_issue(WIDGET, "f")], since)
    edited = issue(id="widget", match={"substring": "under load"})
    outcome = evaluate_known_issues(wh, [compile_issue(edited, "f")], since)
    assert (outcome.evaluated, outcome.present) == ({"widget": 4}, {"widget": 1})
    assert ledger(wh) == [("widget", 1, 1, False, 0), ("widget", 2, 1, False, 0), ("widget", 3, 1, True, 1),
                          ("widget", 3, 2, False, 0)]
    versions = wh.query("LatestKnownIssueMatches | summarize dcount(RuleVersion)")
    assert versions.iloc[0, 0] == 1


def test_scope_limits_which_attempts_are_evaluated(wh: LocalWarehouse) -> None:
    scoped = issue(id="scoped", match={"substring": "widget"}, scope={"branches": ["refs/heads/release/*"]})
    outcome = evaluate_known_issues(wh, [compile_issue(scoped, "f")], QUEUED - timedelta(days=1))
    assert outcome.evaluated == {"scoped": 0}


def test_classify_rebuild_back_applies_known_issues(write_config: Callable[..., Path], tmp_path: Path) -> None:
    store = LocalWarehouse(tmp_path / "data" / "warehouse.duckdb")
    store.apply_schema()
    seed(store)
    store.close()
    ki = tmp_path / "config" / "known-issues.yaml"
    ki.parent.mkdir(exist_ok=True)
    ki.write_text(yaml.safe_dump({"issues": [{"id": "widget", "title": "Widget", "match": {"substring": "widget"}}]}))
    cfg = write_config({"sources": [{"kind": "simulator"}], "warehouse": {"kind": "local",
                        "path": "data/warehouse.duckdb"}, "classification": {"known_issues": "config/known-issues.yaml"}})
    first = CliRunner().invoke(app, ["classify", "--rebuild", "--since", SINCE, "--config", str(cfg)])
    assert "  widget: 4 / 2" in first.output, first.output
    second = CliRunner().invoke(app, ["classify", "--rebuild", "--since", SINCE, "--config", str(cfg)])
    assert "  widget: 0 / 0" in second.output


def test_known_issue_hits_counts_per_rule_and_day_from_the_ledger(warehouse: LocalWarehouse) -> None:
    rows = []
    for build, days_ago, present in [(1, 0, True), (2, 0, True), (3, 2, True), (4, 10, True), (5, 40, True),
                                     (6, 0, False)]:
        finish = NOW.replace(hour=12, minute=0, second=0) - timedelta(days=days_ago)
        rows.append({"RuleId": "widget", "RuleVersion": "v1", "Organization": "org", "Project": "app",
                     "BuildId": build, "Attempt": 1, "Present": present, "Mode": "tracking", "MatchCount": 2,
                     "FinishTime": finish, "IngestedAt": NOW})
    warehouse.ingest("KnownIssueMatches", rows, "ledger")
    out = warehouse.query("declare query_parameters(since:datetime); KnownIssueHits(since)",
                          {"since": NOW - timedelta(days=30)})
    got = [(r.RuleId, r.Day.date(), r.Hits, r.Builds, r.Last7Days, r.Last30Days) for r in out.itertuples()]
    today = NOW.date()
    assert got == [
        ("widget", today - timedelta(days=10), 1, 1, 3, 4),
        ("widget", today - timedelta(days=2), 1, 1, 3, 4),
        ("widget", today, 2, 2, 3, 4),
    ]


def test_top_signatures_ranks_issue_and_test_fingerprints(warehouse: LocalWarehouse) -> None:
    def issue_row(build: int, sig: str, msg: str, definition: str = "ci\\main") -> dict:
        return {"Organization": "org", "Project": "app", "BuildId": build, "RecordId": "r", "Attempt": 1,
                "IssueIndex": 0, "Type": "error", "Message": msg, "Signature": sig, "Definition": definition,
                "FailureCategory": "network", "QueueTime": NOW - timedelta(days=build), "IngestedAt": NOW}

    warehouse.ingest("TimelineIssues", [issue_row(1, "aaaa", "dns"), issue_row(2, "aaaa", "dns", "pr\\validate"),
                                        issue_row(3, "bbbb", "disk"), issue_row(40, "aaaa", "old dns")], "issues")
    warehouse.ingest("TestResults", [
        {"Organization": "org", "Project": "app", "RunId": 1, "ResultId": i, "BuildId": 1, "Attempt": 1,
         "Outcome": "Failed", "ErrorMessage": "dns", "Signature": "aaaa", "Definition": "ci\\main",
         "QueueTime": NOW - timedelta(days=1), "IngestedAt": NOW} for i in range(2)
    ] + [{"Organization": "org", "Project": "app", "RunId": 1, "ResultId": 9, "BuildId": 1, "Attempt": 1,
          "Outcome": "Passed", "Signature": "cccc", "QueueTime": NOW, "IngestedAt": NOW}], "tests")
    out = warehouse.query("declare query_parameters(since:datetime, n:long); TopSignatures(since, n)",
                          {"since": NOW - timedelta(days=30), "n": 1})
    assert out[["Signature", "Count", "Builds", "Definitions"]].values.tolist() == [["aaaa", 4, 2, 2]]
    both = warehouse.query("declare query_parameters(since:datetime); TopSignatures(since, 5)",
                           {"since": NOW - timedelta(days=30)})
    assert both["Signature"].tolist() == ["aaaa", "bbbb"]
    assert both["FirstSeen"].iloc[1] == NOW - timedelta(days=3)
