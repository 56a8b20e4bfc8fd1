"""Redaction and pseudonymization applied to every text before it is staged.

`Scrubber.redact` runs on every message of million-record runs, so each detector is compiled once
(google-re2: linear time whatever the input, no catastrophic backtracking) and one combined
"could anything here be sensitive?" search gates the per-detector substitutions: a clean message
costs one DFA scan.

`FIELD_POLICY` is the one source of truth for what happens to each collected field; the
normalizers consult it (`treatment(table, column)`) and `ci-telemetry privacy report` prints it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets as pysecrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import re2

from etl.secrets import revealed_values

EMAIL = "<email>"
USER = "<user>"
SECRET = "<secret>"
IP = "<ip>"

KEY_FILE_NAME = "pseudonymization.key"


def compile_re2(pattern: str) -> Any:
    """Compile with google-re2, quietly (re2 logs parse errors to stderr otherwise); raises re2.error."""
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


# --- detectors -------------------------------------------------------------------------------
# Each detector: a name (for the report), the config switch that enables it, a pattern and a
# replacement (a template or a function of the match). Order matters: private key blocks and
# connection strings first, so a later, narrower detector does not split them.


@dataclass(frozen=True)
class Detector:
    """One kind of sensitive text and how it is replaced."""

    name: str
    switch: str  # the Privacy setting that enables it
    pattern: str
    replace: str | Callable[[Any], str]


def _keep_prefix(marker: str) -> Callable[[Any], str]:
    def repl(m: Any) -> str:
        return m.group(1) + marker

    return repl


_NOT_SECRET_SUFFIXES = ("name", "id", "type", "path", "file", "url", "length", "count", "expiry", "expires", "ttl")


def _assignment(m: Any) -> str:
    # `name: value` with a colon is common prose ("token: expired"); only replace values that look
    # like credentials there. `name=value` is an assignment and always replaced.
    name, sep, value = m.group(1), m.group(2), m.group(3)
    if value.startswith("<") and value.endswith(">"):
        return m.group(0)  # already a marker
    if name.strip("\"'").lower().endswith(_NOT_SECRET_SUFFIXES):
        return m.group(0)  # SharedAccessKeyName=, token_type=, secret_path=: names of secrets, not values
    if ":" in sep and not (len(value) >= 8 and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return m.group(0)
    return f"{name}{sep}{SECRET}"


def _email(m: Any) -> str:
    local = m.group(1).lower()
    # git@github.com, git@ssh.dev.azure.com: protocol addresses, not people.
    if local == "git":
        return m.group(0)
    return EMAIL


_NOT_A_USER = frozenset({"public", "default", "all users", "default user", "<user>"})


def _home(m: Any) -> str:
    if m.group(2).lower() in _NOT_A_USER:
        return m.group(0)
    return m.group(1) + USER


def _ipv4(m: Any) -> str:
    prefix, addr = m.group(1) or "", m.group(2)
    parts = addr.split(".")
    # Four-part versions (`Version=4.0.0.0`, `v1.2.3.4`, `6.0.0.0`) are not addresses.
    if prefix or parts[0] == "0" or any(int(p) > 255 or (len(p) > 1 and p[0] == "0") for p in parts):
        return m.group(0)
    return IP


def _ipv6(m: Any) -> str:
    text = m.group(0)
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return text
    # `Foo::Bar` in C++ messages parses as an IPv6 address; real ones carry digits.
    if not any(c.isdigit() for c in text) or text.count(":") < 2:
        return text
    return IP


_SECRET_NAMES = (
    r"[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|client[_-]?secret|credential|auth[_-]?key|sas)[A-Za-z0-9_.-]*"
)

DETECTORS: tuple[Detector, ...] = (
    Detector(
        "private key block",
        "redact_secrets",
        r"(?s)-----BEGIN[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\z)",
        SECRET,
    ),
    Detector(
        "connection string key",
        "redact_secrets",
        r"(?i)\b((?:AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd|User ?Password|"
        r"ClientSecret|SharedSecret|ApiKey|Token)\s*=\s*)(\"[^\"]*\"|'[^']*'|[^;\s\"']+)",
        _keep_prefix(SECRET),
    ),
    Detector("SAS signature / secret URL parameter", "redact_secrets",
             r"(?i)([?&](?:sig|signature|key|api[_-]?key|token|access_token|auth|password|pwd|secret|client_secret)=)"
             r"[^&\s\"'<>]+",
             _keep_prefix(SECRET)),
    Detector("credentials in URL", "redact_secrets",
             r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@\"'<>]+:[^/\s@\"'<>]+@", _keep_prefix(f"{USER}:{SECRET}@")),
    Detector("bearer/basic authorization", "redact_secrets",
             r"(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9\-._~+/]{16,}=*", _keep_prefix(SECRET)),
    Detector("JWT", "redact_secrets", r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*", SECRET),
    Detector("AWS access key id", "redact_secrets", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA)[0-9A-Z]{16}\b", SECRET),
    Detector("GitHub token", "redact_secrets",
             r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b", SECRET),
    Detector("Azure DevOps PAT (84 chars)", "redact_secrets", r"\b[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4}\b", SECRET),
    Detector("Azure DevOps PAT (52 chars)", "redact_secrets", r"\b[a-z2-7]{52}\b", SECRET),
    Detector("Azure storage account key", "redact_secrets", r"(?:\b|^)[A-Za-z0-9+/]{86}==", SECRET),
    Detector("Slack token", "redact_secrets", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", SECRET),
    Detector("npm token", "redact_secrets", r"\bnpm_[A-Za-z0-9]{36}\b", SECRET),
    Detector("PyPI token", "redact_secrets", r"\bpypi-AgE[A-Za-z0-9_-]{50,}", SECRET),
    Detector("Google API key", "redact_secrets", r"\bAIza[0-9A-Za-z_-]{35}\b", SECRET),
    Detector("Stripe key", "redact_secrets", r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}\b", SECRET),
    Detector("command-line secret", "redact_secrets",
             r"(?i)(--?(?:password|passwd|token|secret|api-?key|pat|client-secret)(?:\s+|=))([^\s\"'-][^\s\"']*)",
             _keep_prefix(SECRET)),
    Detector("secret assignment", "redact_secrets",
             rf"(?i)\b({_SECRET_NAMES}[\"']?)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&\"'<>)]+)", _assignment),
    Detector("e-mail address", "redact_emails",
             r"\b([A-Za-z0-9._%+-]+)@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b", _email),
    Detector("home directory user", "redact_home_paths",
             r"(?i)((?:\b[A-Z]:)?(?:\\\\|\\|/)(?:Users|home|Documents and Settings)(?:\\\\|\\|/))"
             r"([^\\/\s\"'<>:;|*?]+(?: [^\\/\s\"'<>:;|*?]+)?)",
             _home),
    Detector("IPv4 address", "redact_ip_addresses",
             r"(?i)(version[=: ]|v|\d\.)?\b((?:\d{1,3}\.){3}\d{1,3})\b", _ipv4),
    Detector("IPv6 address", "redact_ip_addresses",
             r"(?i)(?:\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|(?:\b[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*\b)?)",
             _ipv6),
)


@cache
def _compiled(switches: frozenset[str]) -> tuple[Any, tuple[tuple[Any, Any], ...]]:
    active = [d for d in DETECTORS if d.switch in switches]
    if not active:
        return None, ()
    # The gate: the union of every active detector, searched once per message.
    gate = compile_re2("|".join(f"(?:{d.pattern})" for d in active))
    return gate, tuple((compile_re2(d.pattern), d.replace) for d in active)


# --- field policy --------------------------------------------------------------------------------

KEPT, REDACTED, PSEUDONYMIZED = "kept", "redacted", "pseudonymized"

#: What happens to each collected field that is not simply kept. `(table, column) -> (treatment, why)`.
#: Every column of `kql/tables` not listed here is stored as received (ids, times, counts, names
#: of pipelines, branches and tests).
FIELD_POLICY: dict[tuple[str, str], tuple[str, str]] = {
    ("TimelineBuilds", "RequestedFor"): (PSEUDONYMIZED, "the person who queued the build"),
    ("TimelineBuilds", "Url"): (REDACTED, "URLs can carry tokens"),
    ("TimelineRecords", "WorkerName"): (PSEUDONYMIZED, "agent machine name"),
    ("TimelineRecords", "Name"): (REDACTED, "display names can embed parameters"),
    ("TimelineRecords", "Identifier"): (REDACTED, "display identifiers can embed parameters"),
    ("TimelineRecords", "ResultCode"): (REDACTED, "free text from the agent"),
    ("TimelineRecords", "LogUrl"): (REDACTED, "URLs can carry SAS tokens"),
    ("TimelineIssues", "Message"): (REDACTED, "CI log text: paths, e-mails, tokens, addresses"),
    ("TimelineIssues", "Data"): (REDACTED, "log metadata: file paths with user names"),
    ("TimelineIssues", "RecordName"): (REDACTED, "display names can embed parameters"),
    ("TestRuns", "Name"): (REDACTED, "free text set by pipelines"),
    ("TestResults", "TestName"): (REDACTED, "parameterized test names can embed data"),
    ("TestResults", "ErrorMessage"): (REDACTED, "test output: paths, e-mails, tokens, addresses"),
    ("TestResults", "TestStorage"): (REDACTED, "assembly path on the agent"),
    ("BuildMetrics", "Hostname"): (PSEUDONYMIZED, "build machine name"),
    ("BuildMetrics", "OsInfo"): (REDACTED, "may carry the host name"),
    ("BuildMetrics", "FailureStage"): (REDACTED, "uploaded free text"),
    ("BuildMetrics", "FailureReason"): (REDACTED, "uploaded log text"),
    ("BuildMetrics", "RegressionsDetected"): (REDACTED, "uploaded free text"),
    ("BuildStages", "Stage"): (REDACTED, "uploaded free text"),
    ("BuildStages", "Message"): (REDACTED, "uploaded log text"),
    ("KnownIssueMatches", "SampleMessage"): (REDACTED, "copied from redacted messages"),
    ("FailureTriage", "TriagedBy"): (PSEUDONYMIZED, "the person who triaged"),
    ("FailureTriage", "Note"): (REDACTED, "free text"),
}


def treatment(table: str, column: str) -> str:
    """`kept`, `redacted` or `pseudonymized` for one column of one table."""
    return FIELD_POLICY.get((table, column), (KEPT, ""))[0]


#: Messages shown, before and after, by `privacy report` (every secret here is fake).
EXAMPLE_MESSAGES: tuple[str, ...] = (
    "error MSB3073: The command \"C:\\Users\\jdoe\\src\\build.cmd\" exited with code 1.",
    "npm ERR! 403 Forbidden - GET https://registry.npmjs.org/x - token=npm_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
    "git push failed for jane.doe@contoso.com: remote: Invalid username or password.",
    "Connecting to 10.1.2.3:443 failed; DefaultEndpointsProtocol=https;AccountName=st;AccountKey=bm90LWEta2V5;",
    "Downloading https://st.blob.core.windows.net/c/a.zip?sv=2021-08-06&se=2026-01-01&sig=AbCdEf%2Bg123%3D failed",
    "Error: /home/alice/work/1/s/tests/test_api.py:42: AssertionError: expected 200, got 500",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dGVzdHNpZ25hdHVyZQ",
    "error CS0246: The type or namespace name 'Foo' could not be found (are you missing a using directive?)",
)


# --- the scrubber --------------------------------------------------------------------------------


class Scrubber:
    """Redacts personal data and secrets from text; pseudonymizes names with a keyed hash."""

    def __init__(
        self,
        key: bytes,
        *,
        redact_emails: bool = True,
        redact_home_paths: bool = True,
        redact_secrets: bool = True,
        redact_ip_addresses: bool = True,
    ) -> None:
        self._key = key
        switches = {
            name
            for name, on in (
                ("redact_emails", redact_emails),
                ("redact_home_paths", redact_home_paths),
                ("redact_secrets", redact_secrets),
                ("redact_ip_addresses", redact_ip_addresses),
            )
            if on
        }
        self._gate, self._subs = _compiled(frozenset(switches))
        self._mask_revealed = redact_secrets
        self._pseudonyms: dict[str, str] = {}

    def redact(self, text: str | None) -> str | None:
        """Text with e-mails, home-directory user names, tokens/secrets and IP addresses replaced."""
        if not text:
            return text
        if self._mask_revealed:
            # Values this process resolved from Key Vault / the environment are secrets by definition.
            for value in revealed_values():
                if len(value) >= 4 and value in text:
                    text = text.replace(value, SECRET)
        if self._gate is None or not self._gate.search(text):
            return text
        for pattern, repl in self._subs:
            text = pattern.sub(repl, text)
        return text

    def pseudonymize(self, value: str | None) -> str | None:
        """A stable keyed hash of a host, agent or user name (same input, same output)."""
        if not value:
            return value
        cached = self._pseudonyms.get(value)
        if cached is None:
            digest = hmac.new(self._key, value.strip().lower().encode(), hashlib.sha256).hexdigest()
            cached = "anon-" + digest[:12]
            if len(self._pseudonyms) < 100_000:
                self._pseudonyms[value] = cached
        return cached

    def scrub_data(self, data: Any) -> Any:
        """Redact every string inside a JSON-like value (dicts, lists)."""
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, dict):
            return {k: self.scrub_data(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.scrub_data(v) for v in data]
        return data


def store_key(staging_dir: Path) -> bytes:
    """The per-store pseudonymization key in `<staging>/pseudonymization.key`, created (0600) once."""
    path = staging_dir / KEY_FILE_NAME
    if path.exists():
        return path.read_bytes().strip()
    staging_dir.mkdir(parents=True, exist_ok=True)
    key = pysecrets.token_hex(32).encode()
    # O_EXCL: two processes starting together must not both write a key; the loser reads the winner's.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def pseudonymization_key(settings: Any) -> bytes:
    """The configured key (a SecretRef), else the per-store key kept in the staging directory."""
    ref = settings.privacy.pseudonymization_key
    if ref is not None:
        return ref.reveal().encode()
    return store_key(settings.path(settings.staging.dir))


def scrubber_for(settings: Any) -> Scrubber:
    """The scrubber the configuration asks for."""
    p = settings.privacy
    return Scrubber(
        pseudonymization_key(settings),
        redact_emails=p.redact_emails,
        redact_home_paths=p.redact_home_paths,
        redact_secrets=p.redact_secrets,
        redact_ip_addresses=p.redact_ip_addresses,
    )


def opted_out(settings: Any, project: str | None, definition_id: int | None) -> bool:
    """True when the configuration excludes this project or pipeline definition from collection."""
    opt = settings.privacy.opt_out
    return (project is not None and project in opt.projects) or (
        definition_id is not None and definition_id in opt.definitions
    )
