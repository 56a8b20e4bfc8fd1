"""End to end: secrets, e-mail addresses, home paths and host names planted into every text field of every
source (timeline records and issues, test runs and results, metrics artifacts, inbox documents, their keys
and file names) never reach a staged file, a text column, a log line or a rendered report."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from etl.config import PROJECT_ROOT, load_config
from etl.simulator import start_server
from tests.conftest import text_cells

# Every value is fake; each has the shape a detector of etl.privacy must recognise.
PLANTED = {
    "aws": "AKIAQWERTYUIOPASDF12",
    "github": "ghp_" + "Zx9" * 12,
    "pat": "q" * 26 + "w7" * 13,
    "private_key": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCplanted",
    "email": "alice.planted@contoso.com",
    "linux_home": "/home/aliceplanted",
    "windows_home": "C:\\Users\\aliceplanted",
    "host": "buildhost-planted.corp.internal",
}
FRAGMENT = (f" key={PLANTED['aws']} {PLANTED['github']} {PLANTED['pat']} mail {PLANTED['email']} at "
            f"{PLANTED['linux_home']}/src and {PLANTED['windows_home']}\\src on {PLANTED['host']} "
            f"-----BEGIN RSA PRIVATE KEY-----{PLANTED['private_key']}-----END RSA PRIVATE KEY-----")

#: Values the ETL reads as machine data (ids, enumerations, times, links it follows): the real service
#: only ever sends its own values there, so planting would test a service that does not exist.
STRUCTURAL = {"id", "parentId", "type", "state", "result", "status", "reason", "outcome", "resultGroupType",
              "url", "href", "downloadUrl", "data", "source", "localpath", "artifactsize", "priority",
              "continuationToken", "parameters", "orchestrationType", "logFileLineNumber", "apiVersion"}
_MACHINE = re.compile(r"^(\d{4}-\d\d-\d\dT.*|[0-9a-fA-F-]{36}|\d+(\.\d+)*|https?://.*)$")


def plant(kind: str, body: Any, key: str = "") -> Any:
    """*body* with the planted fragment appended to every free-text string (and, in documents, every key)."""
    if kind in ("projects", "artifacts", "definitions"):
        return body  # names the ETL routes by; none of them is stored
    if isinstance(body, dict):
        out = {k: plant(kind, v, k) for k, v in body.items()}
        if kind == "artifact_file":
            out[f"planted {PLANTED['email']}"] = FRAGMENT
            if isinstance(out.get("telemetry"), dict):
                out["telemetry"][f"{PLANTED['aws']}_seconds"] = 1.5
        return out
    if isinstance(body, list):
        return [plant(kind, v, key) for v in body]
    if isinstance(body, str) and key not in STRUCTURAL and not _MACHINE.match(body):
        return body + FRAGMENT
    return body


def inbox_document() -> dict[str, Any]:
    """A metrics document whose every text value and every free key carries the planted fragment."""
    return {
        "key": "inbox/" + FRAGMENT, "project": "proj" + FRAGMENT, "organization": "org" + FRAGMENT,
        "source_version": "abc" + FRAGMENT, "build_id": 5,
        "build_session": {"start_time": "2026-11-01T06:00:00Z", "end_time": "2026-11-01T06:10:00Z",
                          "hostname": PLANTED["host"], "os_info": "Linux-6.1" + FRAGMENT,
                          "package": "pkg" + FRAGMENT, "version": "1.0" + FRAGMENT, "platform": "plat" + FRAGMENT},
        "network_metrics": {"interface": "eth0" + FRAGMENT, "bytes_downloaded": 10},
        "build_metrics": {"failure_category": "cat" + FRAGMENT, "failure_stage": "test" + FRAGMENT,
                          "failure_reason": "exit 1" + FRAGMENT,
                          "build_stages": [{"name": "compile" + FRAGMENT, "status": "ok" + FRAGMENT,
                                            "duration": 4, "message": "msg" + FRAGMENT}]},
        "performance_metrics": {"regressions_detected": [{PLANTED["email"]: FRAGMENT, "x" + FRAGMENT: 1}]},
        "telemetry": {PLANTED["aws"] + "_seconds": 2.0, "by " + PLANTED["email"]: 3},
    }


def needles() -> list[bytes]:
    """Each planted value as raw bytes and as it reads once JSON-escaped (backslashes doubled)."""
    out = set()
    for value in PLANTED.values():
        out.add(value.encode())
        out.add(json.dumps(value)[1:-1].encode())
    return sorted(out)


@pytest.mark.slow
def test_planted_secrets_and_personal_data_appear_nowhere(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.json").write_text(json.dumps(inbox_document()), encoding="utf-8")
    bad = {"key": "bad", "build_session": {"hostname": PLANTED["host"], "start_time": "not a time" + FRAGMENT}}
    (inbox / f"{PLANTED['email']}.json").write_text(json.dumps(bad), encoding="utf-8")
    reports = tmp_path / "reports"
    with start_server(seed=5, days=2, builds_per_day=3, payload_hook=plant) as srv:
        config = tmp_path / "config" / "test.yaml"
        config.parent.mkdir()
        shutil.copy(PROJECT_ROOT / "config" / "monitors.yaml", config.parent / "monitors.yaml")
        config.write_text(json.dumps({
            "sources": [{"kind": "azure_devops", "name": "sim", "organization_url": srv.url, "projects": srv.projects,
                         "auth": "none", "backoff_seconds": 0, "max_backoff_seconds": 0, "initial_lookback_days": 10},
                        {"kind": "inbox", "name": "inbox", "path": str(inbox)}],
            "warehouse": {"kind": "local", "path": str(tmp_path / "store.duckdb")},
            "staging": {"dir": str(tmp_path / "staging")},
            "classification": {"rules": str(PROJECT_ROOT / "config" / "failure-rules.yaml")}}), encoding="utf-8")
        cli = [sys.executable, "-c", "from etl.cli import main; main()"]
        env = {**os.environ, "COLUMNS": "200"}
        summary = tmp_path / "summary.md"
        runs = [subprocess.run([*cli, *args], cwd=PROJECT_ROOT, capture_output=True, timeout=600, env=env)
                for args in (["etl", "-c", str(config), "--summary-file", str(summary)],
                             ["report", "--days", "30", "--out", str(reports), "-c", str(config)],
                             ["privacy", "report", "-c", str(config)])]
    assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr.decode()[-1500:] for r in runs]
    settings = load_config(config)
    staged = b"\n".join(p.read_bytes() for p in settings.path(settings.staging.dir).rglob("*") if p.is_file())
    logs = b"\n".join(r.stdout + r.stderr for r in runs) + summary.read_bytes()
    rendered = b"\n".join(p.read_bytes() for p in reports.rglob("*") if p.is_file())
    cells = text_cells(tmp_path / "store.duckdb").encode()
    # The planted values were loaded and replaced, not dropped: the markers are there in every place.
    assert all(m in cells for m in (b"<secret>", b"<email>", b"<user>", b"<host>", b"anon-"))
    assert b"<secret>" in staged and list((tmp_path / "staging" / "quarantine").rglob("*.json"))
    found = {name: [n.decode() for n in needles() if n in blob]
             for name, blob in (("staging", staged), ("store", cells), ("logs", logs), ("reports", rendered))}
    assert found == {"staging": [], "store": [], "logs": [], "reports": []}
