"""The alert workflow: summaries file once on a tracker, the digest posts once a day, sync brings resolutions
back and nudges quiet summaries, and failures are one line that stops nothing else.

The trackers are loopback fakes of the published Azure DevOps and GitHub APIs (tests/tracker_fakes.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from etl.alerting import states
from etl.alerting.config import Notify, load_notify
from etl.alerting.digest import post_digest
from etl.alerting.filing import file_summaries
from etl.alerting.http import TrackerItem
from etl.alerting.ledger import read_alerts, read_summaries
from etl.alerting.summaries import group
from etl.alerting.sync import sync
from etl.alerting.trackers import tracker_for
from etl.alerting.webhook import payload
from etl.cli import app
from etl.warehouse.local import LocalWarehouse
from tests.tracker_fakes import FakeAzureDevOps, FakeGitHub

DAY0 = datetime(2026, 12, 1, 6, 0)
ADO_PAT = "ado-pat-4b1d9c0e7f"
GH_TOKEN = "ghp_fake0token0value0123"


def alert(alert_id: str, before: int, after: int, *, platform: str = "linux", mode: str = "alert",
          kind: str = "regression", metric: str = "duration_seconds", definition: str = "ci", pct: float = 25.0) -> dict:
    return {
        "AlertId": alert_id, "Kind": kind, "Metric": metric, "Series": f"web/{definition}/{platform}",
        "Organization": "https://dev.azure.com/contoso", "Project": "web", "Definition": definition,
        "Platform": platform, "Technique": "pelt", "DetectedAt": DAY0 - timedelta(hours=1),
        "ChangeAt": DAY0 - timedelta(days=2), "BuildBefore": before, "BuildAfter": after,
        "CommitBefore": f"{before:040x}", "CommitAfter": f"{after:040x}", "Before": 100.0, "After": 100.0 + pct,
        "ChangePercent": pct, "Direction": kind, "Score": 9.0, "Status": "open", "Resolution": "", "Url": "",
        "Details": {"mode": mode}, "IngestedAt": DAY0 - timedelta(hours=1),
    }


def store(warehouse: LocalWarehouse, *rows: dict) -> None:
    warehouse.ingest("Alerts", list(rows), batch_id=f"test-{'-'.join(r['AlertId'] for r in rows)}")


@pytest.fixture
def ado(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> FakeAzureDevOps:
    monkeypatch.setenv("ALERTS_ADO_PAT", ADO_PAT)
    return FakeAzureDevOps(httpserver, "contoso", "web", ADO_PAT).install()


@pytest.fixture
def github(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    monkeypatch.setenv("ALERTS_GH_TOKEN", GH_TOKEN)
    return FakeGitHub(httpserver, "contoso/web", GH_TOKEN).install()


def ado_notify(fake: FakeAzureDevOps, **extra) -> Notify:
    return Notify.model_validate({
        "tracker": "azure-devops",
        "azure_devops": {"organization_url": fake.organization_url, "project": "web", "token": "env://ALERTS_ADO_PAT"},
        "report_url": "https://ci.example/reports/regressions.html#{metric}",
        "compare_url": "https://dev.azure.com/contoso/web/_git/web/branchCompare?baseVersion=GC{before}&targetVersion=GC{after}",
        **extra,
    })


def gh_notify(fake: FakeGitHub, **extra) -> Notify:
    return Notify.model_validate({
        "tracker": "github",
        "github": {"repository": "contoso/web", "api_url": fake.api_url, "token": "env://ALERTS_GH_TOKEN"},
        "compare_url": "https://github.com/contoso/web/compare/{before}...{after}", **extra,
    })


# --- grouping ---------------------------------------------------------------------------------------------

def test_alerts_of_one_metric_and_definition_with_overlapping_builds_form_one_summary() -> None:
    summaries = group([alert("a", 10, 12), alert("b", 11, 13, platform="windows"), alert("c", 40, 41)], [])
    assert sorted(sorted(a["AlertId"] for a in s.alerts) for s in summaries) == [["a", "b"], ["c"]]
    assert sorted((s.build_first, s.build_last) for s in summaries) == [(10, 13), (40, 41)]


def test_other_metrics_definitions_and_monitor_mode_alerts_are_not_grouped_in() -> None:
    summaries = group([alert("a", 10, 12), alert("b", 10, 12, metric="peak_memory_mb"),
                       alert("c", 10, 12, definition="nightly"), alert("d", 10, 12, mode="monitor")], [])
    assert sorted(a["AlertId"] for s in summaries for a in s.alerts) == ["a", "b", "c"]
    assert len(summaries) == 3


# --- filing -----------------------------------------------------------------------------------------------

def test_an_alert_mode_summary_opens_exactly_one_work_item_across_three_runs(warehouse: LocalWarehouse, ado: FakeAzureDevOps) -> None:
    store(warehouse, alert("a1", 10, 12))
    notify = ado_notify(ado)
    outcomes = [file_summaries(warehouse, notify, tracker_for(notify), DAY0 + timedelta(hours=h)) for h in (0, 1, 2)]
    assert [len(o.filed) for o in outcomes] == [1, 0, 0]
    assert list(ado.items) == [131489]
    assert [s["TrackerId"] for s in read_summaries(warehouse)] == ["131489"]
    assert read_alerts(warehouse)[0]["Url"] == ado.server.url_for("/contoso/web/_workitems/edit/131489")


def test_an_alert_mode_summary_opens_exactly_one_github_issue_across_three_runs(warehouse: LocalWarehouse, github: FakeGitHub) -> None:
    store(warehouse, alert("a1", 10, 12))
    notify = gh_notify(github)
    outcomes = [file_summaries(warehouse, notify, tracker_for(notify), DAY0) for _ in range(3)]
    assert [len(o.filed) for o in outcomes] == [1, 0, 0]
    assert list(github.issues) == [1347]
    assert github.issues[1347]["labels"] == [{"id": 0, "name": "ci-telemetry"}]


def test_an_alert_that_joins_a_filed_summary_files_nothing_new(warehouse: LocalWarehouse, github: FakeGitHub) -> None:
    notify = gh_notify(github)
    store(warehouse, alert("a1", 10, 12))
    file_summaries(warehouse, notify, tracker_for(notify), DAY0)
    store(warehouse, alert("a2", 11, 14, platform="windows"))
    again = file_summaries(warehouse, notify, tracker_for(notify), DAY0 + timedelta(days=1))
    assert (again.filed, list(github.issues)) == ([], [1347])
    assert read_summaries(warehouse)[0]["AlertIds"] == ["a1", "a2"]
    assert {a["AlertId"]: a["Url"] for a in read_alerts(warehouse)} == {
        "a1": "https://github.com/contoso/web/issues/1347", "a2": "https://github.com/contoso/web/issues/1347"}


def test_a_summary_of_improvements_only_is_recorded_but_not_filed(warehouse: LocalWarehouse, github: FakeGitHub) -> None:
    store(warehouse, alert("i1", 10, 12, kind="improvement", pct=-30.0))
    notify = gh_notify(github)
    outcome = file_summaries(warehouse, notify, tracker_for(notify), DAY0)
    assert (outcome.filed, outcome.recorded, github.issues) == ([], 1, {})


def test_the_work_item_states_metric_series_before_after_builds_commits_compare_and_report(warehouse: LocalWarehouse, ado: FakeAzureDevOps) -> None:
    store(warehouse, alert("a1", 10, 12))
    notify = ado_notify(ado)
    file_summaries(warehouse, notify, tracker_for(notify), DAY0)
    fields = ado.items[131489]["fields"]
    assert fields["System.Title"] == "+25.0% duration_seconds regression in web/ci (builds 10..12)"
    assert fields["System.WorkItemType"] == "Bug"
    assert fields["System.Tags"] == "ci-telemetry"
    html = fields["Microsoft.VSTS.TCM.ReproSteps"]
    assert html == fields["System.Description"]
    for part in ("<code>duration_seconds</code>", "<td>web/ci/linux</td>", "<td>100</td>", "<td>125</td>",
                 "<td>+25.0%</td>", "<b>Build range:</b> 10..12", f"{10:040x}"[:12] + ".." + f"{12:040x}"[:12],
                 f'href="https://dev.azure.com/contoso/web/_git/web/branchCompare?baseVersion=GC{10:040x}&amp;targetVersion=GC{12:040x}"',
                 'href="https://ci.example/reports/regressions.html#duration_seconds"'):
        assert part in html, part


def test_ci_text_in_the_issue_body_is_escaped_and_secrets_are_masked(warehouse: LocalWarehouse, ado: FakeAzureDevOps) -> None:
    row = alert("a1", 10, 12)
    row["Series"] = f"<script>x</script>/{ADO_PAT}"
    store(warehouse, row)
    notify = ado_notify(ado)
    file_summaries(warehouse, notify, tracker_for(notify), DAY0)
    html = ado.items[131489]["fields"]["System.Description"]
    assert "<td>&lt;script&gt;x&lt;/script&gt;/***</td>" in html
    assert all(ADO_PAT not in body for body in ado.bodies)


# --- failures ---------------------------------------------------------------------------------------------

def test_an_auth_failure_is_one_line_and_the_other_summaries_still_file(warehouse: LocalWarehouse, github: FakeGitHub) -> None:
    store(warehouse, alert("a1", 10, 12), alert("b1", 50, 52))
    github.refuse_next = [(401, {})]
    notify = gh_notify(github)
    first = file_summaries(warehouse, notify, tracker_for(notify), DAY0)
    assert first.errors == ["github contoso/web: create issue: HTTP 401, the credential env://ALERTS_GH_TOKEN was "
                            "refused; the token needs Issues: write on the repository"]
    assert len(first.filed) == 1
    second = file_summaries(warehouse, notify, tracker_for(notify), DAY0)
    assert (len(second.filed), second.errors, len(github.issues)) == (1, [], 2)


def test_a_403_with_no_rate_limit_left_is_reported_as_the_rate_limit_not_as_auth(warehouse: LocalWarehouse, github: FakeGitHub) -> None:
    store(warehouse, alert("a1", 10, 12))
    github.refuse_next = [(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1764572400"})]
    notify = gh_notify(github)
    outcome = file_summaries(warehouse, notify, tracker_for(notify), DAY0)
    assert outcome.errors == ["github contoso/web: create issue: HTTP 403, rate limit exhausted until epoch 1764572400; re-run later"]


def test_azure_devops_203_sign_in_page_is_an_auth_failure(warehouse: LocalWarehouse, ado: FakeAzureDevOps) -> None:
    store(warehouse, alert("a1", 10, 12))
    ado.refuse_next = [203]
    notify = ado_notify(ado)
    outcome = file_summaries(warehouse, notify, tracker_for(notify), DAY0)
    assert outcome.errors == [f"azure-devops {ado.organization_url}/web: create Bug: HTTP 203, the credential "
                              "env://ALERTS_ADO_PAT was refused; the PAT needs the Work Items (Read & write) scope in this organization"]
    assert read_summaries(warehouse)[0]["TrackerId"] == ""


# --- sync -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("state", "reason", "tags", "expected"), [
    ("Active", "Implementation started", "", None),
    ("Resolved", "Fixed", "", "FIXED"),
    ("Closed", "Verified", "", "FIXED"),
    ("Done", "Work finished", "", "FIXED"),
    ("Resolved", "As Designed", "", "WONTFIX"),
    ("Closed", "Obsolete", "", "WONTFIX"),
    ("Resolved", "Cannot Reproduce", "", "WORKSFORME"),
    ("Closed", "Duplicate", "", "INVALID"),
    ("Removed", "Removed from the backlog", "", "INVALID"),
    ("Closed", "Fixed", "ci-telemetry; invalid", "INVALID"),
])
def test_azure_devops_state_and_reason_map_to_a_resolution(state: str, reason: str, tags: str, expected: str | None) -> None:
    item = TrackerItem("1", "", state, reason, tuple(t.strip() for t in tags.split(";") if t.strip()))
    assert states.azure_devops_resolution(item) == expected


@pytest.mark.parametrize(("state", "reason", "labels", "expected"), [
    ("open", "", (), None),
    ("open", "reopened", (), None),
    ("closed", "completed", (), "FIXED"),
    ("closed", "", (), "FIXED"),
    ("closed", "not_planned", (), "WONTFIX"),
    ("closed", "duplicate", (), "INVALID"),
    ("closed", "completed", ("invalid",), "INVALID"),
    ("closed", "not_planned", ("worksforme",), "WORKSFORME"),
])
def test_github_state_reason_and_labels_map_to_a_resolution(state: str, reason: str, labels: tuple, expected: str | None) -> None:
    assert states.github_resolution(TrackerItem("1", "", state, reason, labels)) == expected


def _cli_config(tmp_path: Path, notify: dict) -> Path:
    (tmp_path / "config").mkdir(exist_ok=True)
    monitors = tmp_path / "config" / "monitors.yaml"
    monitors.write_text(yaml.safe_dump({"monitors": [{"metric": "duration_seconds"}], "notify": notify}), encoding="utf-8")
    config = tmp_path / "config" / "test.yaml"
    config.write_text(yaml.safe_dump({
        "sources": [{"kind": "simulator", "name": "simulated", "seed": 7, "days": 1, "builds_per_day": 1}],
        "warehouse": {"kind": "local", "path": str(tmp_path / "warehouse.duckdb")},
        "staging": {"dir": str(tmp_path / "staging")},
        "reports": {"monitors": str(monitors)},
    }), encoding="utf-8")
    return config


def test_a_resolution_set_on_the_fake_tracker_appears_in_alerts_list_after_alerts_sync(
    tmp_path: Path, warehouse: LocalWarehouse, github: FakeGitHub
) -> None:
    store(warehouse, alert("a1", 10, 12))
    warehouse.close()
    config = _cli_config(tmp_path, {"tracker": "github", "github": {
        "repository": "contoso/web", "api_url": github.api_url, "token": "env://ALERTS_GH_TOKEN"}})
    runner = CliRunner()
    notified = runner.invoke(app, ["alerts", "notify", "-c", str(config), "--now", "2026-12-01T06:00:00Z"])
    assert notified.exit_code == 0, notified.output
    github.close(1347, "not_planned")
    synced = runner.invoke(app, ["alerts", "sync", "-c", str(config), "--now", "2026-12-02T06:00:00Z"])
    assert synced.exit_code == 0, synced.output
    assert "resolved" in synced.output and "-> WONTFIX" in synced.output
    listed = runner.invoke(app, ["alerts", "list", "--status", "resolved", "-c", str(config)])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.lstrip().startswith("a1"))
    assert row.split()[:3] == ["a1", "resolved", "WONTFIX"]
    assert GH_TOKEN not in notified.output + synced.output + listed.output


def test_an_auth_failure_on_the_command_line_is_one_error_line_naming_no_secret(
    tmp_path: Path, warehouse: LocalWarehouse, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    store(warehouse, alert("a1", 10, 12), alert("b1", 50, 52))
    warehouse.close()
    monkeypatch.setenv("ALERTS_GH_TOKEN", "ghp_wrong0token0value0999")
    config = _cli_config(tmp_path, {"tracker": "github", "github": {
        "repository": "contoso/web", "api_url": github.api_url, "token": "env://ALERTS_GH_TOKEN"}})
    result = CliRunner().invoke(app, ["alerts", "notify", "-c", str(config)])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: github contoso/web: create issue: HTTP 401, the credential env://ALERTS_GH_TOKEN was "
                      "refused; the token needs Issues: write on the repository (x2)"]
    assert "ghp_wrong0token0value0999" not in result.output + result.stderr
    assert "summaries: 0 filed" in result.output


def test_an_item_closed_on_the_tracker_resolves_every_alert_of_its_summary(warehouse: LocalWarehouse, ado: FakeAzureDevOps) -> None:
    store(warehouse, alert("a1", 10, 12), alert("a2", 11, 12, platform="windows"))
    notify = ado_notify(ado)
    tracker = tracker_for(notify)
    file_summaries(warehouse, notify, tracker, DAY0)
    ado.set_state(131489, "Resolved", "Cannot Reproduce")
    outcome = sync(warehouse, notify, tracker, DAY0 + timedelta(days=1))
    summary_id = read_summaries(warehouse)[0]["SummaryId"]
    assert outcome.resolved == [f"{summary_id}: azure-devops 131489 Resolved/Cannot Reproduce -> WORKSFORME"]
    assert {(a["AlertId"], a["Status"], a["Resolution"]) for a in read_alerts(warehouse)} == {
        ("a1", "resolved", "WORKSFORME"), ("a2", "resolved", "WORKSFORME")}
    assert sync(warehouse, notify, tracker, DAY0 + timedelta(days=2)).checked == 0


def test_nudges_once_at_3_and_once_at_7_quiet_days(warehouse: LocalWarehouse, github: FakeGitHub) -> None:
    store(warehouse, alert("a1", 10, 12))
    notify = gh_notify(github)
    tracker = tracker_for(notify)
    file_summaries(warehouse, notify, tracker, DAY0)
    counts = []
    for day in (1, 2, 3, 3, 4, 6, 7, 7, 8, 12):
        github.now = DAY0 + timedelta(days=day)
        sync(warehouse, notify, tracker, github.now)
        counts.append(len(github.comments.get(1347, [])))
    assert counts == [0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    assert [c["body"][:53] for c in github.comments[1347]] == [
        "This alert summary has had no activity for 3 days. Pl", "This alert summary has had no activity for 7 days. Pl"]


def test_activity_by_a_person_restarts_the_quiet_period(warehouse: LocalWarehouse, ado: FakeAzureDevOps) -> None:
    store(warehouse, alert("a1", 10, 12))
    notify = ado_notify(ado)
    tracker = tracker_for(notify)
    file_summaries(warehouse, notify, tracker, DAY0)
    ado.now = DAY0 + timedelta(days=2)
    ado.set_state(131489, "Active", "Implementation started")
    counts = []
    for day in (3, 4, 5):
        ado.now = DAY0 + timedelta(days=day)
        sync(warehouse, notify, tracker, ado.now)
        counts.append(len(ado.comments.get(131489, [])))
    assert counts == [0, 0, 1]
    assert ado.comments[131489][0]["text"].startswith("<p>This alert summary has had no activity for 3 days.")


def test_a_sync_missed_for_days_sends_one_nudge_for_the_highest_threshold(warehouse: LocalWarehouse, github: FakeGitHub) -> None:
    store(warehouse, alert("a1", 10, 12))
    notify = gh_notify(github)
    tracker = tracker_for(notify)
    file_summaries(warehouse, notify, tracker, DAY0)
    github.now = DAY0 + timedelta(days=9)
    sync(warehouse, notify, tracker, github.now)
    sync(warehouse, notify, tracker, github.now + timedelta(days=1))
    assert [c["body"][:45] for c in github.comments[1347]] == ["This alert summary has had no activity for 7 "]


# --- digest -----------------------------------------------------------------------------------------------

def test_the_digest_posts_once_per_day_with_only_changes_not_sent_before(
    warehouse: LocalWarehouse, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTS_WEBHOOK", httpserver.url_for("/hook/T000/B000/XXXX"))
    posts: list[dict] = []

    def receive(request):
        posts.append(json.loads(request.get_data(as_text=True)))
        from werkzeug import Response
        return Response("ok", status=200)

    httpserver.expect_request("/hook/T000/B000/XXXX", method="POST").respond_with_handler(receive)
    hook = Notify.model_validate({"webhook": {"kind": "json", "url": "env://ALERTS_WEBHOOK"}}).webhook
    assert hook is not None
    store(warehouse, alert("m1", 10, 12, mode="monitor"), alert("m2", 20, 22, mode="monitor"), alert("a1", 30, 32))
    first = [post_digest(warehouse, hook, DAY0 + timedelta(hours=h)).posted for h in (0, 5, 10)]
    store(warehouse, alert("m3", 40, 42, mode="monitor"))
    second = [post_digest(warehouse, hook, DAY0 + timedelta(days=1, hours=h)).posted for h in (0, 5)]
    third = post_digest(warehouse, hook, DAY0 + timedelta(days=2))
    assert (first, second, third.posted, third.reason) == ([2, 0, 0], [1, 0], 0, "no new monitored changes")
    assert [[c["AlertId"] for c in p["changes"]] for p in posts] == [["m1", "m2"], ["m3"]]
    assert [p["day"] for p in posts] == ["2026-12-01", "2026-12-02"]


def test_slack_and_teams_digests_use_their_webhook_shapes() -> None:
    changes = [alert("m1", 10, 12, mode="monitor")]
    slack = payload("slack", DAY0, changes)
    teams = payload("teams", DAY0, changes)
    assert slack == {"text": "ci-telemetry: 1 monitored change(s) on 2026-12-01\n"
                             "• duration_seconds +25.0% regression on web/ci/linux (builds 10..12)"}
    card = teams["attachments"][0]
    assert (teams["type"], card["contentType"], card["content"]["type"]) == (
        "message", "application/vnd.microsoft.card.adaptive", "AdaptiveCard")
    assert [b["text"] for b in card["content"]["body"]] == [
        "ci-telemetry: 1 monitored change(s) on 2026-12-01", "- duration_seconds +25.0% regression on web/ci/linux (builds 10..12)"]


# --- config -----------------------------------------------------------------------------------------------

def test_a_literal_token_in_notify_is_rejected_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "monitors.yaml"
    path.write_text(yaml.safe_dump({"notify": {"tracker": "github", "github": {"repository": "a/b", "token": "ghp_literal"}}}))
    with pytest.raises(ValueError) as exc:
        load_notify(path)
    assert str(exc.value) == (f"{path}: notify.github.token: expected a secret reference "
                              "`keyvault://<vault>/<name>[/<version>]` or `env://NAME`, not a literal value")
    assert "ghp_literal" not in str(exc.value)


def test_the_shipped_monitors_file_has_a_valid_notify_section() -> None:
    notify = load_notify(Path(__file__).resolve().parents[2] / "config" / "monitors.yaml")
    assert (notify.tracker, notify.nudge_days) == ("none", (3, 7))


def test_a_daily_sync_reads_each_summary_once_per_utc_day(warehouse: LocalWarehouse, github: FakeGitHub) -> None:
    store(warehouse, alert("a1", 10, 12))
    notify = gh_notify(github)
    tracker = tracker_for(notify)
    file_summaries(warehouse, notify, tracker, DAY0)
    checked = [sync(warehouse, notify, tracker, DAY0 + timedelta(hours=h), daily=True).checked for h in (1, 2, 17, 19)]
    assert checked == [1, 0, 0, 1]  # 07:00, 08:00, 23:00 on Dec 1; 01:00 on Dec 2


def test_both_scheduled_etl_pipelines_run_notify_then_the_daily_sync_after_retention() -> None:
    root = Path(__file__).resolve().parents[2] / "pipelines"
    for name in ("azure-pipelines/etl.yml", "github/etl.yml"):
        doc = yaml.safe_load((root / name).read_text(encoding="utf-8"))
        steps = doc["jobs"][0]["steps"] if isinstance(doc["jobs"], list) else doc["jobs"]["etl"]["steps"]
        scripts = [str(s.get("run") or (s.get("inputs") or {}).get("inlineScript") or "") for s in steps]
        retention = next(i for i, s in enumerate(scripts) if "retention apply" in s)
        workflow = [i for i, s in enumerate(scripts) if "alerts notify" in s]
        assert len(workflow) == 1 and workflow[0] > retention, name
        assert "ci-telemetry alerts sync --daily" in scripts[workflow[0]], name


def test_a_link_template_with_an_unknown_placeholder_is_rejected_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "monitors.yaml"
    path.write_text(yaml.safe_dump({"notify": {"compare_url": "https://x/{base}...{after}"}}))
    with pytest.raises(ValueError) as exc:
        load_notify(path)
    assert str(exc.value) == f"{path}: notify: compare_url: only {{before}}, {{after}} may be filled in"


def test_ci_text_in_a_github_issue_body_cannot_break_the_table_or_inject_html(warehouse: LocalWarehouse, github: FakeGitHub) -> None:
    row = alert("a1", 10, 12, definition="ci\\agent")
    row["Series"] = "web/<img src=x>|`x`"
    store(warehouse, row)
    notify = gh_notify(github)
    file_summaries(warehouse, notify, tracker_for(notify), DAY0)
    body = github.issues[1347]["body"]
    assert "definition ci\\\\agent" in body
    assert "| regression | web/&lt;img src=x>\\|'x' | 100 | 125 | +25.0% | 10..12 | a1 |" in body


def test_a_missing_credential_is_one_line_and_the_summaries_are_still_recorded(
    warehouse: LocalWarehouse, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALERTS_GH_TOKEN")
    store(warehouse, alert("a1", 10, 12))
    notify = gh_notify(github)
    outcome = file_summaries(warehouse, notify, tracker_for(notify), DAY0)
    assert outcome.errors == ["secret env://ALERTS_GH_TOKEN: environment variable ALERTS_GH_TOKEN is not set"]
    assert (outcome.recorded, github.issues, [s["TrackerId"] for s in read_summaries(warehouse)]) == (1, {}, [""])


def test_each_flaky_test_is_a_summary_and_an_issue_of_its_own(warehouse: LocalWarehouse, github: FakeGitHub) -> None:
    flaky = [{**alert(f"f{i}", 0, 0, kind="flaky", metric="flip_rate", pct=0.0), "Series": f"Tests.T{i}", "After": 0.14}
             for i in (1, 2)]
    store(warehouse, *flaky)
    notify = gh_notify(github)
    file_summaries(warehouse, notify, tracker_for(notify), DAY0)
    assert sorted(i["title"] for i in github.issues.values()) == [
        "Flaky test Tests.T1 in web/ci (flip rate 14.0%)", "Flaky test Tests.T2 in web/ci (flip rate 14.0%)"]
