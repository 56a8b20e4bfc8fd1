"""Privacy: redaction of personal data and secrets, keyed pseudonyms, the per-store key, the report."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from etl.cli import app
from etl.columns import Columns
from etl.config import load_config
from etl.privacy import (
    EXAMPLE_MESSAGES,
    FIELD_POLICY,
    KEY_FILE_NAME,
    Scrubber,
    apply_policy,
    opted_out,
    scrub_payload,
    scrubber_for,
    store_key,
    treatment,
    unpolicied_text_columns,
)
from etl.schema import load_tables
from etl.secret_refs import SecretRef
from etl.stage.quarantine import Quarantine

DATA = Path(__file__).parent / "data"
PII = yaml.safe_load((DATA / "pii-corpus.yaml").read_text(encoding="utf-8"))["entries"]


@pytest.fixture
def scrubber() -> Scrubber:
    return Scrubber(b"test-key")


@pytest.mark.parametrize("entry", PII, ids=[e["message"][:40] for e in PII])
def test_no_planted_secret_or_personal_data_survives_redaction(scrubber: Scrubber, entry: dict) -> None:
    out = scrubber.redact(entry["message"])
    assert [p for p in entry["planted"] if p in out] == []


def test_pii_corpus_plants_at_least_thirty_values() -> None:
    assert sum(len(e["planted"]) for e in PII) >= 30


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("error CS0246: The type or namespace name 'Foo' could not be found",
         "error CS0246: The type or namespace name 'Foo' could not be found"),
        ("Could not load file or assembly 'System.Runtime, Version=4.2.2.0, Culture=neutral'",
         "Could not load file or assembly 'System.Runtime, Version=4.2.2.0, Culture=neutral'"),
        ("std::vector<int>::iterator failed at 12:34:56", "std::vector<int>::iterator failed at 12:34:56"),
        ("Failed to get token: the server returned 401", "Failed to get token: the server returned 401"),
        ("git@github.com: Permission denied (publickey).", "git@github.com: Permission denied (publickey)."),
        ("/home/vsts/work/1/s/src/app.py:42: AssertionError", "/home/<user>/work/1/s/src/app.py:42: AssertionError"),
        ("C:\\Users\\Public\\Documents\\x.txt not found", "C:\\Users\\Public\\Documents\\x.txt not found"),
        ("mail from ops@contoso.com bounced", "mail from <email> bounced"),
        ("connect 172.16.0.5:443 timed out", "connect <ip>:443 timed out"),
        ("SharedAccessKeyName=Root;SharedAccessKey=abc123def456==", "SharedAccessKeyName=Root;SharedAccessKey=<secret>"),
    ],
)
def test_redaction_keeps_the_meaning_of_messages(scrubber: Scrubber, message: str, expected: str) -> None:
    assert scrubber.redact(message) == expected


def test_redact_passes_none_and_empty_through(scrubber: Scrubber) -> None:
    assert scrubber.redact(None) is None
    assert scrubber.redact("") == ""


def test_switches_turn_individual_detectors_off() -> None:
    only_secrets = Scrubber(b"k", redact_emails=False, redact_home_paths=False, redact_ip_addresses=False)
    assert only_secrets.redact("a@b.com /home/x/y 10.0.0.1 password=hunter22") == "a@b.com /home/x/y 10.0.0.1 password=<secret>"


def test_nothing_is_redacted_when_every_switch_is_off() -> None:
    none = Scrubber(b"k", redact_emails=False, redact_home_paths=False, redact_secrets=False, redact_ip_addresses=False)
    assert none.redact("a@b.com password=x") == "a@b.com password=x"


def test_values_resolved_from_secret_references_are_always_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIV_TEST_SECRET", "plainwordvalue")
    SecretRef("env://PRIV_TEST_SECRET").reveal()
    assert Scrubber(b"k").redact("connecting with plainwordvalue now") == "connecting with <secret> now"


def test_scrub_data_redacts_strings_inside_nested_values(scrubber: Scrubber) -> None:
    data = {"file": "/home/eve/a.cs", "lines": [1, "x@y.org"], "n": 3}
    assert scrubber.scrub_data(data) == {"file": "/home/<user>/a.cs", "lines": [1, "<email>"], "n": 3}


def test_pseudonyms_are_stable_case_insensitive_and_keyed() -> None:
    a, b = Scrubber(b"key-a"), Scrubber(b"key-b")
    assert a.pseudonymize("Agent-01") == a.pseudonymize("agent-01")
    assert a.pseudonymize("agent-01") != b.pseudonymize("agent-01")
    assert a.pseudonymize("agent-01").startswith("anon-")
    assert len(a.pseudonymize("agent-01")) == len("anon-") + 12
    assert a.pseudonymize(None) is None


def test_store_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = store_key(tmp_path / "staging")
    second = store_key(tmp_path / "staging")
    path = tmp_path / "staging" / KEY_FILE_NAME
    assert first == second
    assert len(first) == 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_scrubber_for_uses_the_per_store_key_when_none_is_configured(write_config) -> None:
    settings = load_config(write_config({"sources": [{"kind": "simulator"}], "staging": {"dir": "data/staging"}}))
    first = scrubber_for(settings).pseudonymize("host-1")
    again = scrubber_for(settings).pseudonymize("host-1")
    assert first == again
    assert (settings.path(Path("data/staging")) / KEY_FILE_NAME).exists()


def test_scrubber_for_uses_the_configured_secret_key(write_config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSEUDO_KEY_TEST", "configured-key")
    settings = load_config(write_config({"sources": [{"kind": "simulator"}],
                                         "privacy": {"pseudonymization_key": "env://PSEUDO_KEY_TEST"}}))
    assert scrubber_for(settings).pseudonymize("host-1") == Scrubber(b"configured-key").pseudonymize("host-1")


def test_opt_outs_match_projects_and_definitions(write_config) -> None:
    settings = load_config(write_config({"sources": [{"kind": "simulator"}],
                                         "privacy": {"opt_out": {"projects": ["secret-proj"], "definitions": [7]}}}))
    assert opted_out(settings, "secret-proj", 1) is True
    assert opted_out(settings, "app", 7) is True
    assert opted_out(settings, "app", 8) is False


def test_field_policy_names_only_existing_columns() -> None:
    tables = load_tables()
    missing = [(t, c) for t, c in FIELD_POLICY if t not in tables or c not in tables[t].column_names]
    assert missing == []


def test_treatment_defaults_to_kept() -> None:
    assert treatment("TimelineBuilds", "RequestedFor") == "pseudonymized"
    assert treatment("TimelineIssues", "Message") == "redacted"
    assert treatment("TimelineBuilds", "BuildId") == "kept"


def test_redacting_a_100kb_line_of_near_misses_completes(scrubber: Scrubber) -> None:
    line = ("a" * 51 + " ") * 2000 + "user@" * 1000 + "1.2.3." * 1000
    assert scrubber.redact(line) == line


def test_privacy_report_lists_fields_opt_outs_and_redacted_samples(write_config) -> None:
    path = write_config({"sources": [{"kind": "simulator"}],
                         "privacy": {"opt_out": {"projects": ["hr-internal"], "definitions": [42]}}})
    result = CliRunner().invoke(app, ["privacy", "report", "--config", str(path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "- RequestedFor: pseudonymized (the person who queued the build)" in out
    assert "- Message: redacted (log or tool output: paths, e-mails, tokens, addresses)" in out
    assert "- Status: kept (an enumeration of the service or a value the ETL computes; never free text)" in out
    assert "- projects: hr-internal" in out
    assert "- pipeline definitions: 42" in out
    assert "after:  git push failed for <email>: remote: Invalid username or password." in out
    assert "AccountKey=<secret>;" in out


def test_privacy_report_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["privacy", "report", "--help"])
    assert result.exit_code == 0
    assert "Example: ci-telemetry privacy report" in result.output


def test_every_text_column_of_every_table_has_a_policy() -> None:
    assert unpolicied_text_columns(load_tables()) == []


def test_every_policy_is_a_known_treatment_with_a_reason() -> None:
    assert [k for k, (kind, why) in FIELD_POLICY.items()
            if kind not in ("kept", "redacted", "pseudonymized") or not why] == []


def test_apply_policy_redacts_pseudonymizes_and_keeps_as_the_table_says(scrubber: Scrubber) -> None:
    row = {"Organization": "org", "Project": "p", "RecordId": "r1", "Type": "Task", "Result": "failed",
           "Name": "deploy as ops@contoso.com", "WorkerName": "agent-7", "ResultCode": "agent-7 exited 1"}
    assert apply_policy(scrubber, "TimelineRecords", [row]) == [{
        "Organization": "org", "Project": "p", "RecordId": "r1", "Type": "Task", "Result": "failed",
        "Name": "deploy as <email>", "WorkerName": scrubber.pseudonymize("agent-7"),
        "ResultCode": f"{scrubber.pseudonymize('agent-7')} exited 1"}]


def test_apply_policy_scrubs_dynamic_columns_in_keys_and_values(scrubber: Scrubber) -> None:
    row = {"Source": "inbox", "Key": "k", "RegressionsDetected": json.dumps({"ops@contoso.com": "/home/bob/x"})}
    out = apply_policy(scrubber, "BuildMetrics", [row])[0]
    assert json.loads(out["RegressionsDetected"]) == {"<email>": "/home/<user>/x"}


def test_columns_get_the_treatment_row_dicts_get_whatever_their_values(scrubber: Scrubber) -> None:
    class Text(str):
        pass

    names = ["ops@contoso.com", None, Text("/home/bob/x"), {"to": "ops@contoso.com"}, 7, "ops@contoso.com"]
    workers = ["agent-01", None, 12, "agent-01", "agent-02", "agent-01"]
    tasks = ["ops@contoso.com", None, "CmdLine", "CmdLine", "/home/bob/y", None]  # texts only: looked up in C
    agents = ["agent-01", None, "agent-02", "agent-01", "agent-01", None]
    rows = [{"RecordId": str(i), "Name": n, "WorkerName": w, "TaskName": t, "Identifier": a}
            for i, (n, w, t, a) in enumerate(zip(names, workers, tasks, agents, strict=True))]
    columns = Columns({c: [r[c] for r in rows] for c in rows[0]}, len(rows))
    treated = apply_policy(scrubber, "TimelineRecords", columns)
    expected = apply_policy(Scrubber(b"test-key"), "TimelineRecords", [dict(r) for r in rows])
    assert [dict(r) for r in treated.rows()] == expected
    assert treated.values("Name")[:3] == ["<email>", None, "/home/<user>/x"]
    assert treated.values("TaskName") == ["<email>", None, "CmdLine", "CmdLine", "/home/<user>/y", None]


def test_applying_the_policy_twice_changes_nothing(scrubber: Scrubber) -> None:
    once = apply_policy(scrubber, "TimelineBuilds", [{"RequestedFor": "ops@contoso.com", "Url": EXAMPLE_MESSAGES[4],
                                                       "Tags": json.dumps(list(EXAMPLE_MESSAGES))}])
    twice = apply_policy(Scrubber(b"another-key"), "TimelineBuilds", [dict(once[0])])
    assert twice == once


def test_scrub_payload_redacts_keys_and_pseudonymizes_host_names_everywhere(scrubber: Scrubber) -> None:
    payload = {"build_session": {"hostname": "build-01"}, "ops@contoso.com": "log of build-01: done"}
    pseudonym = scrubber.pseudonymize("build-01")
    assert scrub_payload(scrubber, payload) == {"build_session": {"hostname": pseudonym},
                                                "<email>": f"log of {pseudonym}: done"}


def test_internal_host_names_are_replaced_and_public_ones_kept(scrubber: Scrubber) -> None:
    assert scrubber.redact("ssh ci-7.corp.internal then dev.azure.com") == "ssh <host> then dev.azure.com"


def test_secrets_inside_identifiers_are_found(scrubber: Scrubber) -> None:
    assert scrubber.redact("summary:AKIAQWERTYUIOPASDF12_seconds") == "summary:<secret>_seconds"


def test_quarantine_writes_payload_object_and_reason_scrubbed(tmp_path: Path, scrubber: Scrubber) -> None:
    quarantine = Quarantine(tmp_path, scrub=lambda v: scrub_payload(scrubber, v))
    path = quarantine.add("inbox", "inbox file ops@contoso.com.json", "start_time", "bad 'ops@contoso.com'",
                          {"hostname": "build-01", "start_time": "x"})
    body = json.loads(path.read_text())
    assert (body["object"], body["reason"], body["payload"]) == (
        "inbox file <email>", "bad '<email>'", {"hostname": scrubber.pseudonymize("build-01"), "start_time": "x"})
