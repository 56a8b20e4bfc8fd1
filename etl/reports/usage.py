"""The CI health report's "Pipeline usage" section: most used steps, inline-script shares, and the steps pinned
to deprecated versions or not pinned at all, per CI system.

The rows come from `kql/queries/pipeline_usage.kql`; the deprecated versions from `config/deprecated-steps.yaml`
(settings: `reports.deprecated_steps`), validated here. Every value reaches the page through a template with
autoescape on (step names and definitions are chosen by people).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from etl.yamlfile import read_yaml

SYSTEMS = ("azure_devops", "github_actions", "jenkins")
SYSTEM_LABELS = {"azure_devops": "Azure DevOps", "github_actions": "GitHub Actions", "jenkins": "Jenkins"}
#: How many steps "most used" shows per system.
TOP_STEPS = 10
#: How many definitions a finding names (the rest are counted).
NAMED_DEFINITIONS = 5


class DeprecatedStepsError(ValueError):
    """`deprecated-steps.yaml` is unreadable or invalid; str() names the file and the problem."""


class DeprecatedStep(BaseModel):
    """The versions of one step its publisher deprecated, why, and where the publisher says so."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    versions: list[str] = Field(min_length=1, description="StepVersion values to flag; `v2` also flags `v2.3.1`.")
    reason: str = Field(min_length=1, description="What the report says next to each finding.")
    link: str = Field(default="", description="The publisher's notice (http or https), shown as a link.")

    @field_validator("versions", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 1 as a number; the StepVersion it means is the text "1".
        return [str(v) for v in value] if isinstance(value, list) else value

    @field_validator("link")
    @classmethod
    def _http(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError(f"link must be an http(s) URL, not {value[:60]!r}")
        return value

    def matches(self, version: str) -> bool:
        """Whether *version* is one of the deprecated ones (exactly, or a release of it: `v2` ⊇ `v2.3.1`)."""
        return any(version == v or version.startswith(v + ".") for v in self.versions)


class DeprecatedSteps(BaseModel):
    """The whole file: per CI system, step name → its deprecated versions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    azure_devops: dict[str, DeprecatedStep] = Field(default_factory=dict)
    github_actions: dict[str, DeprecatedStep] = Field(default_factory=dict)
    jenkins: dict[str, DeprecatedStep] = Field(default_factory=dict)

    def find(self, system: str, step: str, version: str) -> DeprecatedStep | None:
        """The entry deprecating *step* at *version* on *system*, or None."""
        entry = getattr(self, system, {}).get(step) if system in SYSTEMS else None
        return entry if entry is not None and entry.matches(version) else None


def load_deprecated(path: Path) -> DeprecatedSteps:
    """The deprecated-steps file; DeprecatedStepsError naming the file and the first problem."""
    data = read_yaml(path, DeprecatedStepsError) or {}
    try:
        return DeprecatedSteps.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise DeprecatedStepsError(f"{path}: {where}: {err.get('msg')}") from None


def _names(value: Any) -> list[str]:
    """DefinitionNames as a list (the cluster returns a list, the local engine JSON text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return sorted(str(v) for v in value if v) if isinstance(value, list) else []


def _label(system: Any) -> str:
    return SYSTEM_LABELS.get(str(system), str(system))


def most_used(usage: pd.DataFrame, top: int = TOP_STEPS) -> pd.DataFrame:
    """The *top* steps of each system by uses (step records), with the builds and definitions that ran them."""
    columns = ["System", "Step", "Version", "Kind", "Builds", "Definitions", "Uses"]
    if usage.empty:
        return pd.DataFrame(columns=columns)
    frame = usage.assign(Uses=usage["Uses"].astype("int64"), System=usage["System"].map(_label),
                         Version=usage["StepVersion"].fillna(""), Kind=usage["StepKind"])
    frame = frame.sort_values(["System", "Uses", "Builds", "Step", "Version"], ascending=[True, False, False, True, True],
                              kind="stable")
    return frame.groupby("System", sort=False).head(top)[columns].reset_index(drop=True)


def inline_shares(usage: pd.DataFrame) -> pd.DataFrame:
    """Per system: builds, those running an inline script and their share; step uses, inline ones and their share."""
    columns = ["System", "Builds", "InlineBuilds", "InlineBuildShare", "StepUses", "InlineUses", "InlineUseShare"]
    if usage.empty:
        return pd.DataFrame(columns=columns)
    frame = usage.drop_duplicates("System")[["System", "SystemBuilds", "InlineBuilds", "InlineBuildShare", "SystemUses",
                                             "InlineUses", "InlineUseShare"]]
    frame = frame.rename(columns={"SystemBuilds": "Builds", "SystemUses": "StepUses"})
    frame = frame.assign(System=frame["System"].map(_label), StepUses=frame["StepUses"].astype("int64"),
                         InlineUses=frame["InlineUses"].astype("int64"))
    return frame.sort_values("System")[columns].reset_index(drop=True)


def findings(usage: pd.DataFrame, deprecated: DeprecatedSteps) -> list[dict[str, Any]]:
    """Steps pinned to a deprecated version, and GitHub actions pinned to a branch (unpinned), with the definitions
    that run them: deprecated first, then unpinned; by system, step and version."""
    out = []
    for row in usage.itertuples(index=False):
        system, step, version = str(row.System), str(row.Step), str(row.StepVersion or "")
        entry = deprecated.find(system, step, version)
        if entry is not None:
            kind, reason, link = "deprecated", entry.reason, entry.link
        elif system == "github_actions" and row.Pinning == "branch":
            kind, reason, link = "unpinned", f"pinned to the branch {version!r}, which can change under the build; " \
                                             "pin a release tag or a commit SHA", ""
        else:
            continue
        names = _names(row.DefinitionNames)
        out.append({"system": _label(system), "kind": kind, "step": step, "version": version, "reason": reason,
                    "link": link, "builds": int(row.Builds), "definitions": int(row.Definitions),
                    "named": names[:NAMED_DEFINITIONS], "more": max(int(row.Definitions) - NAMED_DEFINITIONS, 0)})
    return sorted(out, key=lambda f: (f["kind"] != "deprecated", f["system"], f["step"], f["version"]))


_SHARE_LABELS = {"System": "CI system", "Builds": "Builds (n)", "InlineBuilds": "Builds running an inline script",
                 "InlineBuildShare": "Share of builds", "StepUses": "Step uses", "InlineUses": "Inline-script uses",
                 "InlineUseShare": "Share of step uses"}


def section(usage: pd.DataFrame, deprecated: DeprecatedSteps, deprecated_file: str = "") -> str:
    """The section's HTML: most used steps, inline-script shares and the findings table."""
    from etl.reports import nbkit as R

    top = R.table(most_used(usage).rename(columns={"System": "CI system"}), max_rows=TOP_STEPS * len(SYSTEMS),
                  caption=f"Most used steps, top {TOP_STEPS} per CI system (uses = step records, every attempt)")
    shares = R.table(inline_shares(usage).rename(columns=_SHARE_LABELS),
                     {_SHARE_LABELS["InlineBuildShare"]: R.fmt_pct, _SHARE_LABELS["InlineUseShare"]: R.fmt_pct},
                     caption="Inline scripts per CI system (Azure DevOps CmdLine, Bash, PowerShell, BatchScript tasks; "
                             "GitHub run: steps; Jenkins sh, bat, powershell, pwsh, script steps)")
    return R.render("pipeline_usage.html.j2", top=Markup(top), shares=Markup(shares),
                    findings=findings(usage, deprecated), has_usage=not usage.empty, deprecated_file=deprecated_file)


def report_section(ctx: Any) -> str:
    """The section for a report context: reads pipeline_usage for its period and the configured deprecated steps."""
    path = ctx.settings.path(ctx.settings.reports.deprecated_steps)
    return section(ctx.load("pipeline_usage"), load_deprecated(path), path.name)
