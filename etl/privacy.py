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
import json
import os
import re
import secrets as pysecrets
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from etl.columns import Columns
from etl.secret_refs import revealed_values

EMAIL = "<email>"
USER = "<user>"
SECRET = "<secret>"
IP = "<ip>"
HOST = "<host>"

KEY_FILE_NAME = "pseudonymization.key"


def well_formed(text: str) -> str:
    """*text*, with each lone surrogate as U+FFFD: RE2, Arrow and orjson read only well-formed UTF-8.

    The standard library's JSON decoder (the fallback for bodies orjson refuses) turns a `\\ud800`
    escape into a lone surrogate; redacted text is stored, so it is made storable here.
    """
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def spanned(starts: list[int], spans: list[tuple[int, int]]) -> set[int]:
    """Indices of the pieces of a joined string (piece i starts at `starts[i]`) that any of *spans* touches."""
    touched: set[int] = set()
    for start, end in spans:
        first = bisect_right(starts, start) - 1
        last = bisect_right(starts, max(start, end - 1)) - 1
        touched.update(range(first, last + 1))
    return touched


def compile_re2(pattern: str) -> Any:
    """Compile with google-re2, quietly (re2 logs parse errors to stderr otherwise); raises re2.error."""
    import re2  # imported here so the light install (collect) never needs google-re2

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
    #: For the joined scan of `Scrubber.redact_many`: matches wherever this detector *changes* a text (it may
    #: match more). None: the pattern itself, its anchors relaxed by `batch_pattern`.
    batch: str | None = None


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
    # Loopback addresses name no machine and no person; they stay readable in error lines.
    if prefix or parts[0] in ("0", "127") or any(int(p) > 255 or (len(p) > 1 and p[0] == "0") for p in parts):
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
    # No word boundaries: `_` is a word character, and keys such as `AKIA..._seconds` must not hide a key.
    Detector("AWS access key id", "redact_secrets", r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA)[0-9A-Z]{16}", SECRET),
    Detector("GitHub token", "redact_secrets",
             r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})", SECRET),
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
    Detector("internal host name", "redact_home_paths",
             r"(?i)\b[a-z0-9](?:[a-z0-9-]{0,62}\.)+(?:local|localdomain|internal|intranet|corp|lan|home\.arpa)\b",
             HOST),
    Detector("IPv4 address", "redact_ip_addresses",
             r"(?i)(version[=: ]|v|\d\.)?\b((?:\d{1,3}\.){3}\d{1,3})\b", _ipv4,
             # `_ipv4` keeps loopback and 0.x addresses, the most common match in log URLs: the joined scan
             # looks only for a first part it could replace (1-255 but 127, no leading zero).
             batch=r"\b(?:[1-9]\d?|1[01]\d|12[0-68-9]|1[3-9]\d|2\d\d)(?:\.\d{1,3}){3}\b"),
    Detector("IPv6 address", "redact_ip_addresses",
             r"(?i)(?:\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|(?:\b[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*\b)?)",
             _ipv6),
)


def batch_pattern(detector: Detector) -> str:
    """The detector's pattern for a scan of texts joined by newlines (`Scrubber.redact_many`).

    Inside one text of the joined string, `\\b` sees what it sees in the text alone (a newline is no word
    character, as the start and end of a text are not), so only the anchors of the whole text differ:
    the start (`^`) and end (`\\z`) of a text become those of a line. The relaxed pattern matches wherever
    the original matches inside a text, and perhaps more; a test keeps the detectors to these anchors.
    """
    if detector.batch is not None:
        return detector.batch
    return detector.pattern.replace("(?:\\b|^)", "(?:\\b|(?m:^))").replace("\\z", "(?m:$)")


@cache
def _batch_gate(switches: frozenset[str]) -> Any:
    active = [d for d in DETECTORS if d.switch in switches]
    if not active:
        return None
    import re2  # see compile_re2

    options = re2.Options()
    options.log_errors = False
    options.max_mem = 64 << 20  # as the detector set's; 8 MB and 256 MB scanned the simulator's payloads as fast
    return re2.compile("|".join(f"(?:{batch_pattern(d)})" for d in active), options)


@cache
def _compiled(switches: frozenset[str]) -> tuple[Any, Any, tuple[tuple[Any, Any], ...]]:
    active = [d for d in DETECTORS if d.switch in switches]
    if not active:
        return None, None, ()
    # The gate: the union of every active detector (a search falls back to the NFA when the DFA runs out
    # of memory, so its answer is always right); used only when the detector set below gives up.
    gate = compile_re2("|".join(f"(?:{d.pattern})" for d in active))
    # Which detectors match, in one DFA scan (`Set.Match`), so a text runs only their substitutions. A set
    # has no NFA fallback: when its DFA gives up it answers "none". The last pattern, empty, matches every
    # text, so an empty answer can only mean the set gave up (see _detect).
    import re2  # see compile_re2

    options = re2.Options()
    options.log_errors = False
    options.max_mem = 64 << 20
    detectors = re2.Set.SearchSet(options)
    for d in active:
        detectors.Add(d.pattern)
    detectors.Add("")
    detectors.Compile()
    return gate, detectors, tuple((compile_re2(d.pattern), d.replace) for d in active)


#: Characters at least one of which every detector's match contains, except for a few whose match can be
#: a plain run of letters and digits (AWS, Azure DevOps and Google keys, bearer tokens): see `might_match`.
_TRIGGER_CHARS = frozenset("-=:@/\\._~+")
#: A run of 16 characters any detector can match without a trigger character. RE2's case-insensitive
#: classes also take the Kelvin sign and the long s for k and s; they are in the run's class too.
_LONG_RUN = re.compile("[A-Za-z0-9\u017f\u212a]{16}")


def might_match(text: str) -> bool:
    """False only when no detector can match *text*: it has none of their punctuation and no long token.

    A literal pre-check, far cheaper than the DFA scan, for the short names, enumerations and words
    that make up most texts of a payload; a property test checks it never skips a text that is redacted.
    """
    return not _TRIGGER_CHARS.isdisjoint(text) or _LONG_RUN.search(text) is not None


# --- field policy --------------------------------------------------------------------------------

KEPT, REDACTED, PSEUDONYMIZED = "kept", "redacted", "pseudonymized"

_ENUM = (KEPT, "an enumeration of the service or a value the ETL computes; never free text")
_ID = (KEPT, "an identifier the service or the ETL generates (GUID, hash, run id)")
_CONFIG = (KEPT, "a name from this ETL's own configuration")
_TEXT = (REDACTED, "free text a person or a build can choose")
_LOG = (REDACTED, "log or tool output: paths, e-mails, tokens, addresses")
_URL = (REDACTED, "URLs can carry tokens or SAS signatures")
_JSON = (REDACTED, "JSON: keys and values redacted")
_DERIVED = (REDACTED, "derived from stored text; redacted again so no path can bypass it")
_UPLOAD = (REDACTED, "uploaded by a build: anyone who can run a pipeline chooses it")

#: The filter columns every fact table denormalizes from its build.
_BUILD_FILTERS = {
    "Organization": (REDACTED, "organization name from the source's URL or an uploaded document"),
    "Project": (REDACTED, "project names are chosen by people"),
    "Definition": (REDACTED, "pipeline names and folders are chosen by people"),
    "SourceBranch": (REDACTED, "branch names often carry user names (users/alice/fix)"),
    "TargetBranch": (REDACTED, "branch names often carry user names"),
    "SourceVersion": (REDACTED, "a commit id from the service, or uploaded text"),
    "BuildKind": _ENUM,
}


def _table(name: str, filters: tuple[str, ...] = (), **columns: tuple[str, str]) -> dict[tuple[str, str], tuple[str, str]]:
    out = {(name, c): _BUILD_FILTERS[c] for c in filters}
    out.update({(name, c): policy for c, policy in columns.items()})
    return out


_ALL_FILTERS = tuple(_BUILD_FILTERS)
_NO_COMMIT = tuple(c for c in _BUILD_FILTERS if c != "SourceVersion")

#: What happens to every text (string or dynamic) column of every table in `kql/tables`:
#: `(table, column) -> (treatment, why)`. `apply_policy` applies it to every row as it is staged,
#: `ci-telemetry privacy report` prints it, and a test fails when a text column is missing here.
#: Columns of other types (numbers, times, booleans) cannot carry text and are stored as received.
FIELD_POLICY: dict[tuple[str, str], tuple[str, str]] = {
    **_table("TimelineBuilds", _ALL_FILTERS,
             System=_ENUM,
             BuildNumber=(REDACTED, "the number format can embed variables such as the requester"),
             Repository=_TEXT, Reason=_ENUM, Status=_ENUM, Result=_ENUM,
             RequestedFor=(PSEUDONYMIZED, "the person who queued the build"),
             QueueName=(REDACTED, "agent pool names are chosen by people"),
             Tags=(REDACTED, "build tags are free text (JSON list)"), Url=_URL),
    **_table("TimelineRecords", _NO_COMMIT, RecordId=_ID, TimelineId=_ID, ParentId=_ID, Type=_ENUM,
             Name=(REDACTED, "display names can embed parameters"),
             Identifier=(REDACTED, "display identifiers can embed parameters"),
             Path=(KEPT, "dotted record order computed by the ETL (0001.0002)"), State=_ENUM, Result=_ENUM,
             ResultCode=(REDACTED, "free text from the agent"),
             WorkerName=(PSEUDONYMIZED, "agent machine name"), TaskId=_ID,
             TaskName=(REDACTED, "task names of custom tasks are chosen by people"),
             TaskVersion=(REDACTED, "a version string of a task, possibly custom"),
             LogUrl=_URL, FailureCategory=_ENUM, FailureOrigin=_ENUM,
             Signature=(REDACTED, "normalized failure text")),
    **_table("TimelineIssues", _NO_COMMIT, RecordId=_ID, TimelineId=_ID,
             Path=(KEPT, "dotted record order computed by the ETL (0001.0002)"),
             RecordName=(REDACTED, "display names can embed parameters"), RecordType=_ENUM,
             TaskName=(REDACTED, "task names of custom tasks are chosen by people"), Type=_ENUM,
             Category=(REDACTED, "issue category: set by tasks and logging commands"), Message=_LOG,
             Data=(REDACTED, "log metadata (JSON): file paths with user names"), Bucket=_ENUM,
             FailureCategory=_ENUM, FailureOrigin=_ENUM, RuleId=(KEPT, "a rule id from failure-rules.yaml"),
             Signature=(REDACTED, "normalized failure text")),
    **_table("TestRuns", _ALL_FILTERS, Name=(REDACTED, "free text set by pipelines"),
             StageName=_TEXT, PhaseName=_TEXT, JobName=_TEXT, State=_ENUM),
    **_table("TestResults", _ALL_FILTERS,
             TestName=(REDACTED, "parameterized test names can embed data"),
             TestStorage=(REDACTED, "assembly path on the agent"), Outcome=_ENUM, ResultGroupType=_ENUM,
             ErrorMessage=(REDACTED, "test output: paths, e-mails, tokens, addresses"), FailureCategory=_ENUM,
             FailureOrigin=_ENUM, Signature=(REDACTED, "normalized failure text"), JobName=_TEXT),
    **_table("BuildMetrics", _ALL_FILTERS, Source=_CONFIG,
             Key=(REDACTED, "document key: uploaded, or built from the project and a file name"),
             Package=_UPLOAD, Version=_UPLOAD,
             Hostname=(PSEUDONYMIZED, "build machine name"),
             OsInfo=(REDACTED, "may carry the host name"), Platform=_UPLOAD, NetworkInterface=_UPLOAD,
             FailureCategory=_UPLOAD, FailureStage=_UPLOAD,
             FailureReason=(REDACTED, "uploaded log text"), FailureOrigin=_ENUM,
             Signature=(REDACTED, "normalized failure text"),
             RegressionsDetected=(REDACTED, "uploaded JSON: keys and values redacted")),
    **_table("BuildStages", _ALL_FILTERS, Source=_CONFIG,
             Key=(REDACTED, "document key: uploaded, or built from the project and a file name"),
             Stage=_UPLOAD, Status=_UPLOAD, Message=(REDACTED, "uploaded log text"), Platform=_UPLOAD),
    **_table("MetricSamples", _ALL_FILTERS, Source=_CONFIG,
             Key=(REDACTED, "document key: uploaded, or built from the project and a file name"),
             Metric=(REDACTED, "metric names include uploaded stage names and telemetry keys"),
             Unit=_ENUM, Platform=_UPLOAD, Dimensions=_JSON),
    **_table("KnownIssueMatches", _NO_COMMIT, RuleId=(KEPT, "a rule id from known-issues.yaml"),
             RuleVersion=_ID, Mode=_ENUM, SampleMessage=(REDACTED, "copied from redacted messages")),
    **_table("FailureTriage", ("Organization", "Project"), RecordId=_ID, FailureCategory=_ENUM,
             FailureOrigin=_ENUM, KnownIssue=(REDACTED, "free text typed by a person"),
             TriagedBy=(PSEUDONYMIZED, "the person who triaged"), Note=(REDACTED, "free text")),
    **_table("Alerts", ("Organization", "Project", "Definition"), AlertId=_ID, Kind=_ENUM,
             Metric=_DERIVED, Series=_DERIVED, Platform=_DERIVED, Technique=_ENUM, CommitBefore=_DERIVED,
             CommitAfter=_DERIVED, Direction=_ENUM, Status=_ENUM, Resolution=(REDACTED, "free text"),
             Url=_URL, Details=_JSON),
    **_table("AlertSummaries", ("Organization", "Project", "Definition"), SummaryId=_ID, Metric=_DERIVED,
             AlertIds=(KEPT, "alert ids the ETL computes (JSON list)"), Tracker=_CONFIG, TrackerId=_ID,
             TrackerUrl=_URL, TrackerState=(REDACTED, "work-item states are chosen by each process template"),
             Status=_ENUM, Resolution=_ENUM),
    **_table("AlertDigests", Channel=_CONFIG, AlertIds=(KEPT, "alert ids the ETL computes (JSON list)")),
    **_table("PipelineSteps", ("Organization", "Project", "Definition"), System=_ENUM,
             Step=(REDACTED, "task, action and step names of custom steps are chosen by people"),
             StepVersion=(REDACTED, "a version or ref of a step, possibly custom"), StepKind=_ENUM, Pinning=_ENUM),
    **_table("DailyBuildSummary", ("Organization", "Project", "Definition")),
    **_table("EtlRuns", RunId=_ID, Source=_CONFIG, Organization=_CONFIG, Project=_CONFIG,
             RowCounts=(KEPT, "table names and counts the ETL computes"),
             Errors=(REDACTED, "error lines can quote values from payloads"), Status=_ENUM),
    **_table("EtlWatermarks", Source=_CONFIG, Organization=_CONFIG, Project=_CONFIG, RunId=_ID),
    **_table("EtlInboxFiles", Source=_CONFIG, ContentHash=_ID, BatchId=_ID,
             FileName=(REDACTED, "file names are chosen by whoever uploads")),
}

TEXT_TYPES = ("string", "dynamic", "guid")


def treatment(table: str, column: str) -> str:
    """`kept`, `redacted` or `pseudonymized` for one column of one table (non-text columns: kept)."""
    return FIELD_POLICY.get((table, column), (KEPT, ""))[0]


def unpolicied_text_columns(tables: dict[str, Any]) -> list[tuple[str, str]]:
    """(table, column) of every text column that FIELD_POLICY does not decide (must be empty)."""
    return [(name, c.name) for name, t in sorted(tables.items()) for c in t.columns
            if c.kusto_type in TEXT_TYPES and (name, c.name) not in FIELD_POLICY]


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
        self._switches = frozenset(switches)
        self._gate, self._detectors, self._subs = _compiled(frozenset(switches))
        self._batch_gate = _batch_gate(frozenset(switches))
        self._mask_revealed = redact_secrets
        self._revealed: frozenset[str] = frozenset()
        self._pseudonyms: dict[str, str] = {}
        #: text -> its redaction with the names known now; cleared when a name is learned.
        self._memo: dict[str, str] = {}
        #: Texts `redact_many` found clean with the names known now (most of a payload: ids, URLs, times).
        self._clean: set[str] = set()
        #: text (names already masked) -> what the detectors make of it: depends on nothing learned, so it
        #: survives new names, and a batch's texts are scanned by the detectors once.
        self._detected: dict[str, str] = {}
        self._names: set[str] = set()
        self._name_pattern: Any = None
        #: The learned names case-folded, for the literal pre-check of `_mask_names` (None: too many to check).
        self._folded_names: tuple[str, ...] | None = ()

    #: Distinct texts remembered per scrubber (each memo); cleared when full (a batch's texts repeat a lot).
    MEMO_SIZE = 200_000
    #: Clean texts remembered: a build's texts, staged raw and then as rows (cleared when full or a name is learned).
    CLEAN_SIZE = 50_000

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy for a staging worker (etl/stage/workers.py): the key and switches, none of the memos; the names
        # learned so far travel with each task instead (`known_names`), since they grow while a batch stages.
        return (_rebuilt_scrubber, (self._key, self._switches))

    def known_names(self) -> frozenset[str]:
        """The names learned so far (`learn_names`), whose occurrences in texts are masked."""
        return frozenset(self._names)

    def learn_names(self, names: Any) -> None:
        """Host, agent or user names whose every occurrence inside a text is replaced by its pseudonym."""
        fresh = {well_formed(n) for n in names if isinstance(n, str) and len(n) >= 3 and not _PSEUDONYM.fullmatch(n)}
        fresh -= self._names
        if not fresh or len(self._names) >= 5_000:
            return
        self._names |= fresh
        import re2  # see compile_re2: the light install never needs google-re2

        known = sorted(self._names, key=len, reverse=True)
        self._name_pattern = compile_re2("(?i)" + "|".join(re2.escape(n) for n in known))
        # google-re2 keeps its last 128 compiled patterns, each with its DFA's memory: every name learned would leave
        # one more (15 MB in 600 names, one at a time; see docs/benchmarks.md). What this module compiled and keeps
        # is referenced here and in its caches, so emptying re2's costs nothing.
        re2.purge()
        # Full case folding equates at least what RE2's (?i) does (K and the Kelvin sign, s and the long s...),
        # so a text holding no folded name cannot match the pattern; past a few hundred names the scan is cheaper.
        self._folded_names = tuple({n.casefold() for n in known}) if len(known) <= 300 else None
        self._memo.clear()  # texts redacted before may hold a name learned now
        self._clean.clear()

    def redact(self, text: str | None) -> str | None:
        """Text with e-mails, home-directory user names, tokens/secrets and IP addresses replaced."""
        if not text:
            return text
        done = self._memo.get(text)
        if done is not None:
            return done
        return self._remember(text)

    def redact_many(self, texts: Iterable[str]) -> dict[str, str]:
        """Each distinct text of *texts* mapped to `redact(text)` (other values are left out), the new ones scanned together.

        The texts not memoised yet are joined by newlines and searched once (in C, by RE2) for anything a
        detector, a learned name or a revealed secret could match. Only the texts a match touches are redacted
        one by one; every other text is its own redaction. A match inside a text is also a match of the
        joined string (see `batch_pattern`), and any match that starts earlier and overlaps it touches the
        text, so no text that `redact` would change is skipped; a property test checks it against
        `redact_uncached`. Clean texts are remembered apart (`CLEAN_SIZE`): a build's ids repeat in its rows.
        """
        memo, clean = self._memo, self._clean
        out: dict[str, str] = {}
        fresh: list[str] = []
        for text in texts:
            done = memo.get(text)
            if done is not None:
                out[text] = done
            elif text in clean:
                out[text] = text
            elif type(text) is not str:
                continue  # a key that is no text (the payload walk gathers every key)
            elif text:
                fresh.append(text)
            else:
                out[text] = text
        if not fresh:
            return out
        touched = self._touched(fresh)
        if len(clean) + len(fresh) > self.CLEAN_SIZE:
            clean.clear()
        for index, text in enumerate(fresh):
            if index in touched:
                out[text] = self.redact(text)  # type: ignore[assignment]  # a non-empty text stays a text
            else:
                out[text] = text
                clean.add(text)
        return out

    def touched_spans(self, joined: bytes) -> list[tuple[int, int]]:
        """Spans of *joined* (UTF-8 texts, each on its own line) that a detector, a learned name or a revealed
        secret may match: a text no span touches is its own redaction (see `redact_many`)."""
        # Two scans, not one of their union: the union would be compiled anew, with the gate's DFA, for every name
        # learned. Tried while google-re2 still kept its last 128 patterns (see learn_names): 523 MB peak at 400k
        # records, not 337 (docs/benchmarks.md).
        spans: list[tuple[int, int]] = []
        for pattern in (self._batch_gate, self._name_pattern):
            if pattern is not None:
                spans.extend(m.span() for m in pattern.finditer(joined))
        if self._mask_revealed:
            for value in revealed_values():
                if len(value) >= 4:
                    needle = value.encode()
                    at = joined.find(needle)
                    while at >= 0:
                        spans.append((at, at + len(needle)))
                        at = joined.find(needle, at + 1)
        return spans

    def _touched(self, texts: list[str]) -> set[int]:
        """Indices of the *texts* that a detector, a learned name or a revealed secret may match."""
        encoded, broken = [], set()
        for index, text in enumerate(texts):
            try:
                encoded.append(text.encode())
            except UnicodeEncodeError:  # a lone surrogate: `redact` makes the text well formed first
                encoded.append(b"")
                broken.add(index)
        joined = b"\n".join(encoded)
        starts = list(accumulate((len(e) + 1 for e in encoded), initial=0))
        return broken | spanned(starts, self.touched_spans(joined))

    def _remember(self, text: str) -> str:
        if self._mask_revealed:
            revealed = revealed_values()
            if revealed != self._revealed:  # a secret resolved since: earlier answers may hold it
                self._revealed = revealed
                self._memo.clear()
                self._clean.clear()
                self._detected.clear()
        out = self._redact(well_formed(text))
        memo = self._memo
        if len(memo) >= self.MEMO_SIZE:
            memo.clear()
        memo[text] = out
        memo[out] = out  # redaction is idempotent: the redacted text is its own redaction
        return out

    def redact_uncached(self, text: str | None) -> str | None:
        """`redact` without the memos and the pre-check: every detector run over *text* in order (the reference)."""
        if not text:
            return text
        text = well_formed(text)
        if self._mask_revealed:
            for value in revealed_values():
                if len(value) >= 4 and value in text:
                    text = text.replace(value, SECRET)
        if self._name_pattern is not None:
            text = self._name_pattern.sub(lambda m: self.pseudonymize(m.group(0)) or "", text)
        return self._substitute(text, 0)

    def _mask_names(self, text: str) -> str:
        if self._mask_revealed:
            # Values this process resolved from Key Vault / the environment are secrets by definition.
            for value in revealed_values():
                if len(value) >= 4 and value in text:
                    text = text.replace(value, SECRET)
        if self._name_pattern is not None and self._may_hold_a_name(text):
            text = self._name_pattern.sub(lambda m: self.pseudonymize(m.group(0)) or "", text)
        return text

    def _may_hold_a_name(self, text: str) -> bool:
        names = self._folded_names
        if names is None:
            return True
        folded = text.casefold()
        return any(n in folded for n in names)

    def _redact(self, text: str) -> str:
        text = self._mask_names(text)
        detected = self._detected
        done = detected.get(text)
        if done is None:
            done = self._detect(text)
            if len(detected) >= self.MEMO_SIZE:
                detected.clear()
            detected[text] = done
        return done

    def _detect(self, text: str) -> str:
        if self._detectors is None or not might_match(text):
            return text
        matching = self._matching(text, -1)
        if matching is None:
            return self._substitute(text, 0) if self._gate.search(text) else text
        # Exactly the detectors in order over the text, skipping those with no match (their substitution
        # would leave the text as it is); after a replacement the text is scanned again for the rest.
        subs = self._subs
        while matching:
            index = matching[0]
            pattern, repl = subs[index]
            replaced = pattern.sub(repl, text)
            if replaced == text:
                matching = matching[1:]
                continue
            text = replaced
            matching = self._matching(text, index)
            if matching is None:
                return self._substitute(text, index + 1) if self._gate.search(text) else text
        return text

    def _matching(self, text: str, after: int) -> list[int] | None:
        """Indices above *after* of the detectors matching *text*, in order; None when the set gave up."""
        found = self._detectors.Match(text)
        if not found:
            return None
        sentinel = len(self._subs)
        return sorted(i for i in found if after < i < sentinel)

    def _substitute(self, text: str, start: int) -> str:
        for pattern, repl in self._subs[start:]:
            text = pattern.sub(repl, text)
        return text

    def pseudonymize(self, value: str | None) -> str | None:
        """A stable keyed hash of a host, agent or user name (same input, same output; pseudonyms stay)."""
        if not value:
            return value
        cached = self._pseudonyms.get(value)
        if cached is None:
            if _PSEUDONYM.fullmatch(value):
                return value  # already a pseudonym: applying the policy twice changes nothing
            # Well formed, as the texts it is masked in are: one name, one pseudonym.
            digest = hmac.new(self._key, well_formed(value).strip().lower().encode(), hashlib.sha256).hexdigest()
            cached = "anon-" + digest[:12]
            if len(self._pseudonyms) < 100_000:
                self._pseudonyms[value] = cached
        return cached

    def scrub_data(self, data: Any) -> Any:
        """Redact every string inside a JSON-like value (dicts, lists), keys included."""
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, dict):
            return {self.redact(k) if isinstance(k, str) else k: self.scrub_data(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.scrub_data(v) for v in data]
        return data

    def scrub_json_text(self, value: Any) -> Any:
        """A dynamic column's value (JSON text or data) with its keys and values redacted, as JSON text."""
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return json.dumps(self.redact(value))
        return json.dumps(self.scrub_data(value), sort_keys=True, default=str)


# A fixed, anchored pattern with no repetition to backtrack over: the standard library is safe here, and
# importing it keeps google-re2 out of the light install.
_PSEUDONYM = re.compile(r"anon-[0-9a-f]{12}")


def apply_policy(scrubber: Scrubber, table: str, rows: list[dict[str, Any]] | Columns) -> list[dict[str, Any]] | Columns:
    """Rows of *table* (dicts, or `Columns`) with every text column treated as FIELD_POLICY says (changed in place).

    The one place where stored values get their treatment: the outbox calls it for every row it
    stages. Pseudonymized columns go first so that their names are then masked inside the texts.
    """
    if not rows:
        return rows
    if isinstance(rows, Columns):
        return _apply_policy_columns(scrubber, table, rows)
    columns = _columns_of(table)
    pseudonymized = [c for c, (kind, _) in columns if kind == PSEUDONYMIZED]
    if pseudonymized:
        scrubber.learn_names({row.get(c) for row in rows for c in pseudonymized})
    # The distinct texts of every redacted column, redacted together (one scan for the rows).
    plain = [c for c, (kind, dynamic) in columns if kind == REDACTED and not dynamic]
    done = scrubber.redact_many({v for row in rows for c in plain if type(v := row.get(c)) is str})
    for row in rows:
        for column, (kind, dynamic) in columns:
            value = row.get(column)
            if value is None or kind == KEPT:
                continue
            if kind == PSEUDONYMIZED:
                row[column] = scrubber.pseudonymize(str(value))
            elif dynamic:
                row[column] = scrubber.scrub_json_text(value)
            elif type(value) is str:
                row[column] = done[value]
            elif isinstance(value, str):
                row[column] = scrubber.redact(value)
            else:
                row[column] = scrubber.scrub_data(value)
    return rows


def _apply_policy_columns(scrubber: Scrubber, table: str, rows: Columns) -> Columns:
    """`apply_policy` of rows held as columns: the same treatment, value for value, a column at a time."""
    columns = [(c, treated) for c, treated in _columns_of(table) if c in rows.data]
    # A column of texts (and nulls) is treated by its distinct values, looked up in C: a build's 2,000 records
    # hold a few hundred distinct texts, and several columns hold one value throughout.
    read = {c: rows.values(c) for c, _ in columns}  # once: a column held as Arrow is converted by each call
    distinct = {c: _distinct_texts(values) for c, values in read.items()}
    seen = {c: read[c] if texts is None else texts for c, texts in distinct.items()}
    pseudonymized = [c for c, (kind, _) in columns if kind == PSEUDONYMIZED]
    if pseudonymized:
        scrubber.learn_names({v for c in pseudonymized for v in seen[c]})
    plain = [c for c, (kind, dynamic) in columns if kind == REDACTED and not dynamic]
    done = scrubber.redact_many({v for c in plain for v in seen[c] if type(v) is str})
    for column, (kind, dynamic) in columns:
        values, texts = read[column], distinct[column]
        if kind == PSEUDONYMIZED:
            if texts is not None:
                lookup = {v: None if v is None else scrubber.pseudonymize(v) for v in texts}
                treated = list(map(lookup.__getitem__, values))
            else:
                treated = [None if v is None else scrubber.pseudonymize(str(v)) for v in values]
        elif dynamic:
            treated = [None if v is None else scrubber.scrub_json_text(v) for v in values]
        elif texts is not None:
            lookup = {v: None if v is None else done[v] for v in texts}
            treated = list(map(lookup.__getitem__, values))
        else:
            treated = [None if v is None else done[v] if type(v) is str
                       else scrubber.redact(v) if isinstance(v, str) else scrubber.scrub_data(v) for v in values]
        rows.data[column] = treated
    return rows


_TEXT_OR_NONE = frozenset({str, type(None)})


def _distinct_texts(values: list[Any]) -> set[str | None] | None:
    """The distinct values of a column holding only texts and nulls; None when it holds anything else."""
    try:
        distinct = set(values)
    except TypeError:  # an unhashable value (a dict where a text belongs): treated value by value
        return None
    return distinct if set(map(type, distinct)) <= _TEXT_OR_NONE else None


@cache
def _columns_of(table: str) -> tuple[tuple[str, tuple[str, bool]], ...]:
    from etl.schema import load_tables

    schema = load_tables()[table]
    return tuple((c.name, (treatment(table, c.name), c.kusto_type == "dynamic")) for c in schema.columns
                 if c.kusto_type in TEXT_TYPES and treatment(table, c.name) != KEPT)


def scrub_payload(scrubber: Scrubber, value: Any) -> Any:
    """A raw payload or quarantined value fit for disk: machine and person names pseudonymized (and masked
    wherever else they appear), identities reduced to a pseudonym, every other key and string redacted.

    Two walks: the first gathers the payload's names and texts, so its names are learned and its distinct
    texts redacted together (`Scrubber.redact_many`, one scan for the payload); the second builds the copy.
    """
    names, texts = _names_and_texts(value)
    scrubber.learn_names(names)
    return _scrub_payload(scrubber, value, scrubber.redact_many(texts))


def scrub_payload_in_place(scrubber: Scrubber, value: Any) -> Any:
    """`scrub_payload` of a payload nothing reads afterwards, done in place; the payload, scrubbed.

    For raw staging, the largest walk of a run: a copy of every record cost twice this. One walk
    pseudonymizes the names, reduces identities and gathers the texts; the texts are redacted together
    (`Scrubber.redact_many`); a second walk, only when some text changed, puts in the redactions.
    Anything but plain dicts, lists and strings (a tuple, a subclass) is replaced by its `scrub_payload`.
    """
    if (type(value) is not dict and type(value) is not list) or (type(value) is dict and _is_identity(value)):
        return scrub_payload(scrubber, value)
    changed = _reduced(scrubber, value)
    if changed:
        replace_in_place(value, changed)
    return value


def scrub_payload_serialized(scrubber: Scrubber, value: Any, serialize: Callable[[Any], bytes]) -> bytes:
    """`serialize(scrub_payload_in_place(scrubber, value))`, with the redactions put into the bytes.

    The payload is reduced in place as `scrub_payload_in_place` does, then serialized; the few texts a
    redaction changes are replaced in the serialized JSON (`_replace_strings`, one scan in C) instead of
    by a second walk of every record. Where that replacement could be inexact, the second walk runs.
    *serialize* must write compact JSON with orjson (as `etl.json_line.json_line` does).
    """
    if (type(value) is not dict and type(value) is not list) or (type(value) is dict and _is_identity(value)):
        return serialize(scrub_payload(scrubber, value))
    return serialized_with(value, _reduced(scrubber, value), serialize)


def serialized_with(value: Any, changed: dict[str, str], serialize: Callable[[Any], bytes]) -> bytes:
    """`serialize(value)` with each key and string of *value* found in *changed* replaced by its redaction:
    in the bytes where that is exact (`_replace_strings`), else in *value*, which is then serialized again."""
    try:
        data: bytes | None = serialize(value)
    except TypeError:  # orjson refuses a lone surrogate, which only its redaction makes writable
        data = None
    if data is not None:
        replaced = _replace_strings(data, changed) if changed else data
        if replaced is not None:
            return replaced
    if changed:
        replace_in_place(value, changed)
    return serialize(value)


def _reduced(scrubber: Scrubber, value: Any) -> dict[str, str]:
    """*value* reduced in place (names, identities, odd nodes scrubbed); each text a redaction changes -> its redaction."""
    names, texts, odd = reduce_in_place(scrubber, value)
    scrubber.learn_names(names)
    done = scrubber.redact_many(texts)
    for parent, key, child in odd:
        parent[key] = scrub_payload(scrubber, child)
    return {t: r for t, r in done.items() if r != t}


#: What compact JSON holds between two strings: `,` `:` brackets, numbers, true, false, null. A text with
#: any other character cannot be found, quoted, across two strings of a document; only in one string.
_BETWEEN_STRINGS = frozenset(",:[]{}0123456789-+.eEtrufalsn")
#: Past this many changed texts, one scan for all of them is no cheaper than the walk.
_REPLACED_STRINGS_MAX = 64


def _replace_strings(data: bytes, changed: dict[str, str]) -> bytes | None:
    """Compact JSON *data* with every string value in *changed* replaced by its redaction; None when not exact.

    Quotes inside a JSON string are escaped, so `"text"` found in the document is either that whole
    string, or starts at an escaped quote (a backslash before it), or at the closing quote of another
    string, which needs the text to be made of what lies between strings (`_BETWEEN_STRINGS`). Both are
    refused, and so is a key (a colon after it): a redacted key changes the sorted order of its object.
    """
    import orjson

    if len(changed) > _REPLACED_STRINGS_MAX:
        return None
    quoted: dict[bytes, bytes] = {}
    for text, redacted in changed.items():
        if type(text) is not str or _BETWEEN_STRINGS.issuperset(text):
            return None
        try:
            quoted[orjson.dumps(text)] = orjson.dumps(redacted)
        except TypeError:  # a lone surrogate: orjson wrote no such text into *data* either
            continue
    if not quoted:
        return data
    # Literals only (no repetition to backtrack over): the standard library's scan is the fastest here.
    pattern = re.compile(b"|".join(re.escape(q) for q in quoted))
    exact = True

    def substitute(m: re.Match[bytes]) -> bytes:
        nonlocal exact
        start, end = m.span()
        if data[start - 1:start] == b"\\" or data[end:end + 1] == b":":
            exact = False
        return quoted[m.group(0)]

    out = pattern.sub(substitute, data)
    return out if exact else None


def _identity_pseudonym(scrubber: Scrubber, node: dict[Any, Any]) -> dict[str, Any]:
    return {"id": scrubber.pseudonymize(str(node.get("uniqueName") or node.get("displayName")))}


def reduce_in_place(scrubber: Scrubber, value: Any) -> tuple[set[str], set[Any], list[tuple[Any, Any, Any]]]:
    """Names pseudonymized and identities reduced in place; (names, keys and strings, odd nodes)."""
    names: set[str] = set()
    texts: set[Any] = set()
    odd: list[tuple[Any, Any, Any]] = []
    add = texts.add
    pseudonymize = scrubber.pseudonymize
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        if type(node) is dict:
            texts.update(node)
            if not NAME_KEYS.isdisjoint(node):
                for k in NAME_KEYS.intersection(node):
                    v = node[k]
                    if isinstance(v, str):
                        if k not in _NOT_NAMES:
                            names.add(v)
                        node[k] = pseudonymize(v)
            entries: Any = node.items()
        else:
            entries = enumerate(node)
        for k, v in entries:
            kind = type(v)
            if kind is str:
                add(v)
            elif kind is dict:
                if _is_identity(v):
                    names |= _names_and_texts(v)[0]  # its names are masked wherever else they appear
                    node[k] = _identity_pseudonym(scrubber, v)
                else:
                    push(v)
            elif kind is list:
                push(v)
            elif not (v is None or kind is int or kind is float or kind is bool):
                odd.append((node, k, v))
    return names, texts, odd


def replace_in_place(value: Any, changed: dict[str, str]) -> None:
    """Every key and string of *value* found in *changed* replaced by its redaction, in place."""
    stack = [value]
    pop, push = stack.pop, stack.append
    get = changed.get
    while stack:
        node = pop()
        if type(node) is dict:
            if not changed.keys().isdisjoint(node):  # a key itself redacted: the dict is rebuilt, in order
                items = [(get(k, k) if type(k) is str else k, v) for k, v in node.items()]
                node.clear()
                node.update(items)
            entries: Any = node.items()
        else:
            entries = enumerate(node)
        for k, v in entries:
            kind = type(v)
            if kind is str:
                r = get(v)
                if r is not None:
                    node[k] = r
            elif kind is dict or kind is list:
                push(v)


NAME_KEYS = frozenset({"workerName", "hostname", "host", "requestedFor", "uniqueName", "displayName",
                       "imageUrl", "descriptor", "machine", "machineName", "computerName", "agentName"})
_NOT_NAMES = frozenset({"imageUrl", "descriptor"})


def _is_identity(node: dict[Any, Any]) -> bool:
    # An identity reference (requestedFor, lastChangedBy, owner...): staged as a pseudonym alone.
    return "uniqueName" in node or ("displayName" in node and ("imageUrl" in node or "descriptor" in node))


def _names_and_texts(value: Any) -> tuple[set[str], set[Any]]:
    """(names to pseudonymize, every key and string) of a JSON-like value, iteratively (any depth).

    The texts may hold more than the copy redacts (names, an identity's fields, non-string keys): a text
    too many costs a little of the joined scan, one missing would be redacted on its own.
    """
    names: set[str] = set()
    texts: set[Any] = set()
    add = texts.add
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        if isinstance(node, dict):
            texts.update(node)
            if not NAME_KEYS.isdisjoint(node):
                names.update(v for k, v in node.items() if k in NAME_KEYS and k not in _NOT_NAMES
                             and isinstance(v, str))
            items: Any = node.values()
        elif isinstance(node, list | tuple):
            items = node
        else:
            if isinstance(node, str):
                add(node)
            continue
        for v in items:
            kind = type(v)
            if kind is str:
                add(v)
            elif kind is dict or kind is list or isinstance(v, str | dict | list | tuple):
                push(v)
    return names, texts


_SCALARS = frozenset({int, float, bool, type(None)})


def _scrub_payload(scrubber: Scrubber, value: Any, done: dict[str, str]) -> Any:
    # The copy (quarantine, GitHub and Jenkins raw payloads; Azure DevOps bundles are scrubbed in place):
    # *done* holds the redaction of each of the payload's texts (`_names_and_texts` gathered them);
    # anything else takes the slow path.
    if type(value) is dict:
        if _is_identity(value):
            return _identity_pseudonym(scrubber, value)
        try:
            out = {done[k]: done[v] if type(v) is str else v if type(v) in _SCALARS else _scrub_payload(scrubber, v, done)
                   for k, v in value.items()}
        except (KeyError, TypeError):  # a key that is no string, or a str subclass: one by one
            return _scrub_mapping(scrubber, value, done)
        if not NAME_KEYS.isdisjoint(value):
            for k in NAME_KEYS.intersection(value):
                v = value[k]
                if isinstance(v, str):
                    out[done[k]] = scrubber.pseudonymize(v)
        return out
    if type(value) is list:
        return [done[v] if type(v) is str else v if type(v) in _SCALARS else _scrub_payload(scrubber, v, done)
                for v in value]
    if isinstance(value, dict):
        return _scrub_mapping(scrubber, value, done)
    if isinstance(value, list | tuple):
        return [_scrub_payload(scrubber, v, done) for v in value]
    if isinstance(value, str):
        return scrubber.redact(value)
    return value


def _scrub_mapping(scrubber: Scrubber, value: dict[Any, Any], done: dict[str, str]) -> dict[Any, Any]:
    if _is_identity(value):
        return _identity_pseudonym(scrubber, value)
    out = {}
    for k, v in value.items():
        key = scrubber.redact(k) if isinstance(k, str) else k
        if isinstance(v, str) and k in NAME_KEYS:
            out[key] = scrubber.pseudonymize(v)
        else:
            out[key] = _scrub_payload(scrubber, v, done)
    return out


def _rebuilt_scrubber(key: bytes, switches: frozenset[str]) -> Scrubber:
    return Scrubber(key, **{name: name in switches for name in
                            ("redact_emails", "redact_home_paths", "redact_secrets", "redact_ip_addresses")})


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
