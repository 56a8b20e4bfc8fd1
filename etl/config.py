"""Typed settings read from YAML under `config/`.

Every model forbids unknown keys: a typo is an error naming the file and the field, never a
setting silently ignored. `load_config` turns pydantic's report into one line per problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from etl import resources
from etl.secret_refs import SecretRef
from etl.sources.github_actions.config import GitHubActionsSource, GitHubSimulatorSource
from etl.sources.jenkins.config import JenkinsSimulatorSource, JenkinsSource
from etl.yamlfile import read_yaml

#: Where relative paths of the shipped config resolve: the checkout, or the current directory of an installed CLI.
PROJECT_ROOT = resources.working_root()
DEFAULT_CONFIG = resources.folder("config") / "default.yaml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AzureDevOpsSource(Strict):
    """An Azure DevOps organization to pull from."""

    kind: Literal["azure_devops"] = Field(default="azure_devops", description="Selects this kind of source.")
    name: str = Field(description="Short name of this source, used in state and EtlRuns.")
    organization_url: str = Field(description="e.g. https://dev.azure.com/contoso (any URL, so tests can use loopback)")
    projects: list[str] = Field(min_length=1, description="Projects to pull (opted-out ones are skipped).")
    definitions: list[int] = Field(default_factory=list, description="Only these definition ids (empty: all).")
    branches: list[str] = Field(default_factory=list, description="Only these source branches (empty: all).")
    auth: Literal["pat", "entra", "none"] = Field(
        default="pat", description="PAT (Basic), an Entra ID token from azure-identity, or none (loopback only)."
    )
    token: SecretRef | None = Field(default=None, description="PAT reference when auth is pat.")
    max_parallel_requests: int = Field(default=8, ge=1, le=64, description="Requests in flight at once to this organization.")
    page_size: int = Field(default=200, ge=1, le=5000, description="Builds per page, and per ETL batch.")
    test_results: bool = Field(default=True, description="Pull test runs and every test result.")
    metrics_artifacts: list[str] = Field(
        default_factory=lambda: ["telemetry"], description="Build artifacts holding metrics.json / build-summary.json."
    )
    request_timeout_seconds: float = Field(default=60, gt=0, description="Timeout of one HTTP request.")
    max_retries: int = Field(default=6, ge=0, le=20, description="Retries of a 429, 5xx or connection error.")
    backoff_seconds: float = Field(default=1.0, ge=0, description="First back-off; doubles per retry, with jitter.")
    max_backoff_seconds: float = Field(default=60.0, ge=0, description="Longest single wait, Retry-After included.")
    max_total_wait_seconds: float = Field(default=300.0, ge=0, description="All retry waits of one request together.")
    initial_lookback_days: int = Field(default=30, ge=1, description="How far back the first run reads.")

    @field_validator("organization_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http(s) URL such as https://dev.azure.com/contoso")
        return value.rstrip("/")


class SimulatorSource(Strict):
    """The built-in simulated organization, served on loopback for the run (the embedded default)."""

    kind: Literal["simulator"] = Field(default="simulator", description="Selects this kind of source.")
    name: str = Field(default="simulated", description="Short name of this source, used in state and EtlRuns.")
    seed: int = Field(default=7, description="Same seed, same organization.")
    days: int = Field(default=28, ge=1, le=365, description="Days of simulated history, ending today 00:00 UTC.")
    builds_per_day: int = Field(default=12, ge=1, le=1000, description="Completed builds per day.")
    max_parallel_requests: int = Field(default=8, ge=1, le=64, description="Requests in flight at once.")
    page_size: int = Field(default=100, ge=1, le=5000, description="Builds per page, and per ETL batch.")
    test_results: bool = Field(default=True, description="Pull test runs and every test result.")
    metrics_artifacts: list[str] = Field(
        default_factory=lambda: ["telemetry"], description="Build artifacts holding metrics documents."
    )


class InboxSource(Strict):
    """A directory of metrics documents and JUnit reports uploaded outside Azure DevOps."""

    kind: Literal["inbox"] = Field(default="inbox", description="Selects this kind of source.")
    name: str = Field(default="inbox", description="Short name of this source; the Source column of its rows.")
    path: Path = Field(description="Directory of JSON documents (metrics.json schema plus `key`) and JUnit XML reports.")
    max_document_bytes: int = Field(default=5_000_000, ge=1, description="Larger documents are quarantined unread.")
    junit_organization: str = Field(default="", description="Organization of the builds the inbox's JUnit files (`<project>--<build id>--<report>.xml`) belong to, as TimelineBuilds.Organization holds it; empty: this source's name.")
    max_junit_bytes: int = Field(default=64 * 1024 * 1024, ge=1, description="Larger JUnit XML files are quarantined unread.")


Source = Annotated[AzureDevOpsSource | SimulatorSource | InboxSource | JenkinsSource | JenkinsSimulatorSource
                   | GitHubActionsSource | GitHubSimulatorSource,
                   Field(discriminator="kind")]


#: A DuckDB memory size, e.g. `256MB` or `1.5GiB`.
MEMORY_SIZE = r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"
#: DuckDB's cap for queries and every other command on the local store (DuckDB's own default is 80% of RAM).
DEFAULT_MEMORY_LIMIT = "1GB"
#: DuckDB's cap while `etl` loads: each upsert is one staged row group (at most 20,000 rows).
DEFAULT_LOAD_MEMORY_LIMIT = "64MB"


class LocalWarehouse(Strict):
    """The embedded store: one DuckDB file queried in KQL through duckdb-kql."""

    kind: Literal["local"] = Field(default="local", description="The embedded DuckDB store.")
    path: Path = Field(default=Path("data/warehouse.duckdb"), description="The DuckDB file; relative to the project root.")
    # DuckDB's own default is 80% of RAM, and it keeps the table pages it read cached until that much
    # is used: on a shared build agent a process would grow with the store's history.
    memory_limit: str | None = Field(
        default=DEFAULT_MEMORY_LIMIT,
        pattern=MEMORY_SIZE,
        description="Cap on DuckDB's memory (its page cache and query intermediates; a larger query spills "
                    "to disk), e.g. `2GB`; null: DuckDB's own default, 80% of RAM.",
    )
    # The ETL's load needs little, and a smaller cap gave a lower peak RSS (docs/benchmarks.md, "DuckDB's
    # memory capped").
    load_memory_limit: str | None = Field(
        default=DEFAULT_LOAD_MEMORY_LIMIT,
        pattern=MEMORY_SIZE,
        description="Cap on DuckDB's memory while `etl` loads staged batches (each upsert is one staged row "
                    "group), so the run's resident memory is bounded by a batch; null: `memory_limit`.",
    )
    serve_allowed_origins: list[str] = Field(
        default_factory=lambda: ["https://dataexplorer.azure.com"],
        description="Browser origins `serve` answers (the Azure Data Explorer web UI); other origins get 403.",
    )


class KustoWarehouse(Strict):
    """Azure Data Explorer."""

    kind: Literal["kusto"] = Field(default="kusto", description="Azure Data Explorer.")
    cluster_url: str = Field(description="https://<cluster>.<region>.kusto.windows.net")
    ingest_url: str | None = Field(default=None, description="Defaults to the cluster URL with `ingest-` prefixed.")
    database: str = Field(description="The database the tables live in.")
    auth: Literal["default", "managed_identity", "app_key", "none"] = Field(
        default="default", description="DefaultAzureCredential, a managed identity, an app key, or none (loopback)."
    )
    client_id: str | None = Field(default=None, description="Managed identity or application (client) id.")
    tenant_id: str | None = Field(default=None, description="Tenant of the application, for app_key.")
    client_secret: SecretRef | None = Field(default=None, description="Application secret reference, for app_key.")
    ingestion: Literal["queued", "streaming"] = Field(default="queued", description="Queued (idempotent by tag) or streaming.")
    ingestion_timeout_seconds: float = Field(
        default=600, gt=0, description="Wait this long for the cluster's success or failure report."
    )

    @property
    def resolved_ingest_url(self) -> str:
        if self.ingest_url:
            return self.ingest_url
        scheme, rest = self.cluster_url.split("://", 1)
        return f"{scheme}://ingest-{rest}"


Warehouse = Annotated[LocalWarehouse | KustoWarehouse, Field(discriminator="kind")]


class Limits(Strict):
    """Bounds on uploaded documents and artifacts: input past one is quarantined with its reason, never parsed."""

    max_document_bytes: int = Field(default=5_000_000, ge=1, description="Largest metrics document read (artifact entry or inbox file).")
    max_depth: int = Field(default=32, ge=1, le=512, description="Deepest nesting of objects and arrays in a document.")
    max_archive_bytes: int = Field(default=50_000_000, ge=1, description="Largest artifact zip read.")
    max_archive_entries: int = Field(default=1_000, ge=1, description="Most entries an artifact zip may list.")


class Staging(Strict):
    """Where batches are staged before loading (the outbox) and where bad payloads are kept."""

    dir: Path = Field(default=Path("data/staging"), description="Outbox, quarantine and state files; relative to the project root.")
    hold_loads: bool = Field(default=False, description="Stage batches but do not load them until `outbox release`.")
    keep_loaded_batches: int = Field(default=50, ge=0, description="Loaded batches kept in the outbox for review; older ones are pruned.")
    max_load_attempts: int = Field(default=3, ge=1, le=100, description="Failed load attempts (one per run) before a batch moves to outbox/dead/.")
    load_beside_staging: bool = Field(default=True, description="Load each batch on a thread while the scope's next batch stages (the loads keep their order); false loads each batch before the next one stages.")
    workers: int = Field(default=0, ge=0, le=64, description="Processes that normalize, scrub and type builds beside the main one, for backfills (each holds about 100 MB; `etl --workers` overrides); 0 stages in the main process, on one core.")


class OptOut(Strict):
    projects: list[str] = Field(default_factory=list, description="Project names never fetched.")
    definitions: list[int] = Field(default_factory=list, description="Definition ids never fetched.")


class Privacy(Strict):
    """Redaction and pseudonymization applied before anything is staged."""

    pseudonymization_key: SecretRef | None = Field(
        default=None, description="Keyed-hash key for host, agent and user names; a secret reference."
    )
    redact_emails: bool = Field(default=True, description="Replace e-mail addresses with <email>.")
    redact_home_paths: bool = Field(default=True, description="Replace the user in /home/x, /Users/x, C:\\Users\\x paths.")
    redact_secrets: bool = Field(default=True, description="Replace tokens, keys, passwords and connection strings.")
    redact_ip_addresses: bool = Field(default=True, description="Replace IPv4 and IPv6 addresses.")
    opt_out: OptOut = Field(default_factory=OptOut, description="Projects and definition ids never fetched.")


class Classification(Strict):
    rules: Path = Field(default=Path("config/failure-rules.yaml"), description="Ordered failure-classification rules.")
    known_issues: Path = Field(default=Path("config/known-issues.yaml"), description="Known-issue matchers and their scope.")
    bucket_pattern: str = Field(default=r"\(NETCORE_ENGINEERING_TELEMETRY=([^)]*)\)", description="RE2 pattern whose first group is the in-band category (Bucket).")


class Reports(Strict):
    out_dir: Path = Field(default=Path("reports"), description="Where `report` writes index.html, the HTML reports and executed notebooks.")
    days: int = Field(default=28, ge=1, le=730, description="Report period in days (`report --days` overrides).")
    main_branches: list[str] = Field(default_factory=lambda: ["refs/heads/main", "refs/heads/master"], description="Branches whose time to green is reported; `*` globs allowed.")
    monitors: Path = Field(default=Path("config/monitors.yaml"), description="Regression monitors: metric, direction, technique, alerting.")
    deprecated_steps: Path = Field(default=Path("config/deprecated-steps.yaml"), description="Step versions their publishers deprecated, per CI system, with the reason; the Pipeline usage section lists the definitions still running them.")
    publish_dir: Path | None = Field(default=None, description="Optional directory the rendered bundle is also copied to.")
    flaky_min_results: int = Field(default=30, ge=1, description="A test needs this many results in the period to be flagged flaky.")
    flaky_min_commits: int = Field(default=2, ge=1, description="... and this many commits on which it both passed and failed (or passed on rerun).")
    flaky_min_rate: float = Field(default=0.01, ge=0, le=1, description="... and at least this flake rate.")


class Retention(Strict):
    builds_days: int = Field(default=730, ge=1, description="Days builds, metrics documents, alerts and run logs are kept.")
    details_days: int = Field(default=90, ge=1, description="Days timeline records, issues, test results and samples are kept.")


class KeyVault(Strict):
    url_template: str = Field(default="https://{vault}.vault.azure.net", description="Key Vault URL; `{vault}` is the name in keyvault://<vault>/<secret>.")
    managed_identity_client_id: str | None = Field(default=None, description="User-assigned managed identity for Key Vault; null: DefaultAzureCredential.")


class Settings(Strict):
    """The whole configuration file."""

    sources: list[Source] = Field(min_length=1)
    warehouse: Warehouse = Field(default_factory=LocalWarehouse)
    staging: Staging = Field(default_factory=Staging)
    limits: Limits = Field(default_factory=Limits)
    privacy: Privacy = Field(default_factory=Privacy)
    classification: Classification = Field(default_factory=Classification)
    reports: Reports = Field(default_factory=Reports)
    retention: Retention = Field(default_factory=Retention)
    keyvault: KeyVault = Field(default_factory=KeyVault)
    #: Directory relative paths in this file are resolved against (the project root by default).
    base_dir: Path = Field(default=PROJECT_ROOT, exclude=True)

    def path(self, p: Path) -> Path:
        """A configured path, resolved against base_dir when relative.

        A relative `config/...` path that base_dir lacks is the copy the package ships, so an installed
        CLI run from any directory finds its default rules and monitors.
        """
        if p.is_absolute():
            return p
        full = self.base_dir / p
        if not full.exists() and p.parts[:1] == ("config",):
            shipped = resources.folder("config").joinpath(*p.parts[1:])
            if shipped.exists():
                return shipped
        return full


class ConfigError(ValueError):
    """A configuration file is unreadable or invalid; str() is one line per problem."""


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("azure_devops", "simulator", "inbox", "jenkins", "jenkins_simulator", "github_actions",
                      "github_simulator", "local", "kusto"):
            continue  # discriminator tags pydantic inserts; not the user's field names
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def load_config(path: Path | str | None = None) -> Settings:
    """Read and validate a config file; ConfigError names the file, the field and what was expected."""
    path = Path(path) if path else DEFAULT_CONFIG
    raw = read_yaml(path, ConfigError)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    base = path.resolve().parent.parent if path.resolve().parent.name == "config" else path.resolve().parent
    if resources.is_shipped(path):
        base = PROJECT_ROOT
    try:
        return Settings.model_validate({**raw, "base_dir": base})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = _location(err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown setting (check the spelling; see docs/configuration.md)"
            msg = msg.removeprefix("Value error, ")
            lines.append(f"{path}: {field}: {msg}")
        raise ConfigError("\n".join(lines)) from None
