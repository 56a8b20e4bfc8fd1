"""The `notify:` section of `config/monitors.yaml`: which tracker alert summaries go to, and the digest webhook.

Credentials are secret references (`env://NAME`, `keyvault://vault/name`), never literal values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from etl.secret_refs import SecretRef
from etl.yamlfile import read_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AzureDevOpsTracker(_Strict):
    """Work items in one Azure DevOps project."""

    organization_url: str = Field(description="e.g. https://dev.azure.com/contoso")
    project: str
    token: SecretRef = Field(description="PAT with Work Items (Read & write) scope.")
    work_item_type: str = "Bug"
    area_path: str = ""
    tags: list[str] = Field(default_factory=lambda: ["ci-telemetry"])


class GitHubTracker(_Strict):
    """Issues in one GitHub repository."""

    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name")
    token: SecretRef = Field(description="Token with issues: write on the repository.")
    api_url: str = "https://api.github.com"
    labels: list[str] = Field(default_factory=lambda: ["ci-telemetry"])


class Webhook(_Strict):
    """Where the daily digest of monitor-mode changes is posted."""

    kind: Literal["teams", "slack", "json"] = "json"
    url: SecretRef = Field(description="Incoming-webhook URLs carry their own token, so they are secrets.")


class Notify(_Strict):
    """The whole `notify:` section."""

    tracker: Literal["none", "azure-devops", "github"] = "none"
    azure_devops: AzureDevOpsTracker | None = None
    github: GitHubTracker | None = None
    webhook: Webhook | None = None
    report_url: str = Field(default="", description="Link to the alert's report section; {metric}, {alert_id} and {summary_id} are filled in.")
    compare_url: str = Field(default="", description="Commit-range link; {before} and {after} are the commits.")
    nudge_days: tuple[int, ...] = Field(default=(3, 7), description="Comment once after each of these many days without activity.")
    timeout_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _tracker_configured(self) -> Notify:
        if self.tracker == "azure-devops" and self.azure_devops is None:
            raise ValueError("tracker is azure-devops but the azure_devops section is missing")
        if self.tracker == "github" and self.github is None:
            raise ValueError("tracker is github but the github section is missing")
        if list(self.nudge_days) != sorted(set(self.nudge_days)) or any(d < 1 for d in self.nudge_days):
            raise ValueError("nudge_days must be increasing whole days, e.g. [3, 7]")
        for name, template, fields in (("report_url", self.report_url, ("metric", "alert_id", "summary_id")),
                                       ("compare_url", self.compare_url, ("before", "after"))):
            try:
                template.format(**dict.fromkeys(fields, "x"))
            except (KeyError, IndexError, ValueError):
                raise ValueError(f"{name}: only {', '.join('{' + f + '}' for f in fields)} may be filled in") from None
        return self


def load_notify(path: Path | str) -> Notify:
    """The `notify:` section of monitors.yaml (defaults when absent); ValueError names the file and fields."""
    path = Path(path)
    raw = (read_yaml(path, ValueError) or {}).get("notify") or {}
    try:
        return Notify.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            "notify" + "".join(f".{p}" for p in e["loc"]) + ": "
            + ("unknown setting" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        )
        raise ValueError(f"{path}: {problems}") from None
