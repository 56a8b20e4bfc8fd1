"""The pipeline YAML under `pipelines/`: it parses, it is scheduled as documented, and every
`ci-telemetry ...` command it runs exists in the real command line with exactly those flags."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from etl.cli import app

PIPELINES = Path(__file__).resolve().parent.parent / "pipelines"
YAML_FILES = sorted(PIPELINES.rglob("*.yml"))
#: Keys whose string values are shell scripts (Azure Pipelines and GitHub Actions).
SCRIPT_KEYS = {"script", "bash", "pwsh", "powershell", "inlineScript", "run"}
#: Pipeline and template expressions (`$(var)`, `${{ expr }}`) stand for values, never for flags.
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}|\$\([^)]*\)")
_INVOCATION = re.compile(r"(?:^|[\s;&|(])ci-telemetry\s+(.*)$")

#: The CLI contract of the brief for the commands the pipelines use: command path -> its flags.
CONTRACT: dict[str, set[str]] = {
    "etl": {"--since", "--dry-run", "--summary-file", "--config", "-c"},
    "report": {"--days", "--out", "--config", "-c"},
    "freshness": {"--max-age", "--config", "-c"},
    "doctor": {"--config", "-c", "--max-age", "--require-data"},
    "collect": {"--output", "--stage", "--sample-interval", "--config", "-c"},
    "retention apply": {"--config", "-c", "--dry-run"},
    "schema apply": {"--config", "-c"},
    "alerts detect": {"--days", "--config", "-c"},
    "alerts notify": {"--config", "-c"},
    "alerts sync": {"--daily", "--config", "-c"},
}


@dataclass(frozen=True)
class Invocation:
    """One `ci-telemetry ...` command line found in a pipeline file."""

    file: str
    tokens: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.file}: ci-telemetry {' '.join(self.tokens)}"


def scripts(node: Any, key: str | None = None) -> Iterator[str]:
    """Every shell script string in a parsed YAML document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from scripts(v, str(k))
    elif isinstance(node, list):
        for item in node:
            yield from scripts(item, key)
    elif isinstance(node, str) and key in SCRIPT_KEYS:
        yield node


def invocations_in(script: str) -> Iterator[tuple[str, ...]]:
    """The argument tokens of every `ci-telemetry` call in *script* (backslash continuations joined)."""
    text = re.sub(r"\\\n", " ", script)
    for line in text.splitlines():
        match = _INVOCATION.search(line)
        if not match:
            continue
        command = _EXPRESSION.sub("VALUE", match.group(1))
        command = re.split(r"\s(?:&&|\|\||;|\||#)\s?", command)[0]
        yield tuple(shlex.split(command))


def all_invocations() -> list[Invocation]:
    found = []
    for path in YAML_FILES:
        for script in scripts(yaml.safe_load(path.read_text(encoding="utf-8"))):
            found += [Invocation(str(path.relative_to(PIPELINES)), t) for t in invocations_in(script)]
    return found


def split(tokens: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(command path, flags used) of an invocation: words up to the first option, then every `-x` before `--`."""
    path: list[str] = []
    index = 0
    while index < len(tokens) and not tokens[index].startswith(("-", "$")) and tokens[index] != "VALUE":
        path.append(tokens[index])
        index += 1
    flags = []
    for token in tokens[index:]:
        if token == "--":
            break  # the wrapped build command's own arguments follow
        if token.startswith("-"):
            flags.append(token.split("=", 1)[0])
    return path, flags


def is_group(command: Any) -> bool:
    # typer vendors click, so test by shape rather than by click's classes.
    return isinstance(getattr(command, "commands", None), dict)


def walk(path: list[str]) -> Any:
    """The click command at *path* in the real CLI, or None when its first word is not registered."""
    command = typer.main.get_command(app)
    for depth, word in enumerate(path):
        assert is_group(command), f"`{' '.join(path[:depth])}` takes no subcommand {word!r}"
        sub = command.commands.get(word)
        if sub is None:
            return None
        command = sub
    return command


INVOCATIONS = all_invocations()


def test_every_pipeline_file_is_valid_yaml() -> None:
    assert [p.relative_to(PIPELINES).as_posix() for p in YAML_FILES] == [
        "azure-pipelines/etl.yml", "azure-pipelines/reports.yml", "github/etl.yml", "github/publish-telemetry/action.yml",
        "github/reports.yml", "templates/publish-telemetry.yml", "templates/setup-ci-telemetry.yml",
    ]
    for path in YAML_FILES:
        assert isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict), path


def test_the_extractor_joins_continuations_and_ignores_expressions() -> None:
    script = ("set -e\nci-telemetry etl --config $(configPath) \\\n  --summary-file ${{ parameters.out }}/s.md && echo ok\n"
              "echo ci-telemetry-is-not-a-call\n")
    assert list(invocations_in(script)) == [("etl", "--config", "VALUE", "--summary-file", "VALUE/s.md")]


def test_the_pipelines_run_the_commands_of_the_operations_contract() -> None:
    used = {" ".join(split(i.tokens)[0]) for i in INVOCATIONS}
    assert used == {"etl", "freshness", "retention apply", "doctor", "report", "collect", "alerts detect",
                    "alerts notify", "alerts sync"}


@pytest.mark.parametrize("file", ["azure-pipelines/etl.yml", "github/etl.yml"])
def test_each_scheduled_etl_runs_alerts_detect_after_the_etl_and_its_watchdog(file: str) -> None:
    names = [" ".join(split(tokens)[0]) for script in scripts(load(file)) for tokens in invocations_in(script)]
    assert list(dict.fromkeys(names)) == ["etl", "freshness", "alerts detect", "retention apply", "alerts notify",
                                          "alerts sync", "doctor"]


@pytest.mark.parametrize("invocation", INVOCATIONS, ids=str)
def test_each_invocation_uses_only_contract_commands_and_flags(invocation: Invocation) -> None:
    path, flags = split(invocation.tokens)
    command = " ".join(path)
    assert command in CONTRACT, f"{invocation}: {command!r} is not a command of the CLI contract"
    assert set(flags) <= CONTRACT[command], f"{invocation}: unknown flag(s) {sorted(set(flags) - CONTRACT[command])}"


@pytest.mark.parametrize("invocation", INVOCATIONS, ids=str)
def test_each_invocation_exists_in_the_real_command_line(invocation: Invocation) -> None:
    path, flags = split(invocation.tokens)
    command = walk(path)
    if command is None:
        pytest.skip(f"`{' '.join(path)}` is not registered yet (another helper adds it); checked against the contract")
    assert not is_group(command), f"{invocation}: `{' '.join(path)}` needs a subcommand"
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    assert set(flags) <= options, f"{invocation}: not options of `{' '.join(path)}`: {sorted(set(flags) - options)}"


def load(relative: str) -> dict[str, Any]:
    return yaml.safe_load((PIPELINES / relative).read_text(encoding="utf-8"))


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if "jobs" in doc and isinstance(doc["jobs"], list):
        return [s for job in doc["jobs"] for s in job["steps"]]
    if "jobs" in doc:
        return [s for job in doc["jobs"].values() for s in job["steps"]]
    return doc["steps"]


def tasks(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [s for s in steps(doc) if s.get("task") == name]


@pytest.mark.parametrize(("file", "cron"), [("azure-pipelines/etl.yml", "7 * * * *"),
                                            ("azure-pipelines/reports.yml", "0 6 * * 1")])
def test_azure_pipelines_run_on_schedule_from_main_even_without_changes(file: str, cron: str) -> None:
    doc = load(file)
    assert (doc["trigger"], doc["pr"]) == ("none", "none")
    assert doc["schedules"] == [{**doc["schedules"][0], "cron": cron, "always": True, "branches": {"include": ["main"]}}]


def test_etl_pipeline_uses_workload_identity_key_vault_and_the_watchdog() -> None:
    doc = load("azure-pipelines/etl.yml")
    cli = tasks(doc, "AzureCLI@2")
    assert {(t["inputs"]["azureSubscription"], t["inputs"]["addSpnToEnvironment"]) for t in cli} == {
        ("$(azureServiceConnection)", True)}
    assert tasks(doc, "AzureKeyVault@2")[0]["inputs"]["SecretsFilter"] == "ado-telemetry-pat,telemetry-pseudonym-key"
    etl = next(t for t in cli if "ci-telemetry etl" in t["inputs"]["inlineScript"])
    assert etl["env"]["CI_TELEMETRY_ADO_PAT"] == "$(ado-telemetry-pat)"
    watchdog = next(t for t in cli if "freshness" in t["inputs"]["inlineScript"])
    assert watchdog["inputs"]["inlineScript"] == "ci-telemetry freshness --max-age $(freshnessMaxAge) --config $(configPath)"
    assert {v["name"]: v["value"] for v in doc["variables"]}["freshnessMaxAge"] == "2h"
    summary = next(s for s in steps(doc) if "task.uploadsummary" in s.get("script", ""))
    assert summary["condition"] == "always()"


def test_the_virtual_environment_cache_is_keyed_on_the_constraints() -> None:
    cache = tasks(load("templates/setup-ci-telemetry.yml"), "Cache@2")[0]["inputs"]
    assert "constraints.txt" in cache["key"].split(" | ")
    assert cache["path"] == "$(Pipeline.Workspace)/.venv"


def test_each_pipeline_installs_the_extra_it_needs_and_caches_it_apart() -> None:
    setup = load("templates/setup-ci-telemetry.yml")
    assert {p["name"]: p.get("default") for p in setup["parameters"]}["extras"] == "etl"
    install = next(s["script"] for s in steps(setup) if "constraints.txt" in s.get("script", ""))
    assert 'install --quiet -c constraints.txt ".[${{ parameters.extras }}]"' in install
    assert '"${{ parameters.extras }}"' in tasks(setup, "Cache@2")[0]["inputs"]["key"].split(" | ")
    uses = {file: next(s for s in steps(load(file)) if "setup-ci-telemetry" in s.get("template", ""))
            for file in ("azure-pipelines/etl.yml", "azure-pipelines/reports.yml")}
    assert uses["azure-pipelines/etl.yml"].get("parameters") is None
    assert uses["azure-pipelines/reports.yml"]["parameters"] == {"extras": "reports"}
    for file, extra in (("github/etl.yml", "etl"), ("github/reports.yml", "reports")):
        text = (PIPELINES / file).read_text()
        assert f"install --quiet -c constraints.txt '.[{extra}]'" in text
        assert f"key: venv-{extra}-" in text


def test_reports_pipeline_publishes_the_bundle_and_copies_it_only_when_asked() -> None:
    doc = load("azure-pipelines/reports.yml")
    assert tasks(doc, "PublishPipelineArtifact@1")[0]["inputs"]["targetPath"] == "$(Build.ArtifactStagingDirectory)/reports"
    copy = next(t for t in tasks(doc, "AzureCLI@2") if "upload-batch" in t["inputs"]["inlineScript"])
    assert copy["condition"] == "and(succeeded(), eq(variables['publishToStaticSite'], 'true'))"
    assert "--destination '$web'" in copy["inputs"]["inlineScript"]


def test_publish_telemetry_template_publishes_the_telemetry_artifact_always() -> None:
    doc = load("templates/publish-telemetry.yml")
    params = {p["name"]: p for p in doc["parameters"]}
    assert (params["artifactName"]["default"], params["stages"]["default"]) == ("telemetry", [])
    publish = tasks(doc, "PublishPipelineArtifact@1")[0]
    assert (publish["condition"], publish["inputs"]["artifact"]) == ("always()", "${{ parameters.artifactName }}")
    collect = next(s for s in doc["steps"] if "ci-telemetry collect" in s.get("bash", ""))
    assert "--output $(Build.ArtifactStagingDirectory)/telemetry/metrics.json" in collect["bash"]
    assert publish["inputs"]["targetPath"] == "$(Build.ArtifactStagingDirectory)/telemetry"


def test_github_etl_runs_hourly_with_oidc_login() -> None:
    doc = load("github/etl.yml")
    triggers = doc[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["schedule"] == [{"cron": "7 * * * *"}]
    assert doc["permissions"] == {"id-token": "write", "contents": "read"}
    login = next(s for s in steps(doc) if s.get("uses") == "azure/login@v2")
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}


def test_github_publish_telemetry_action_uploads_even_when_the_build_fails() -> None:
    doc = load("github/publish-telemetry/action.yml")
    assert doc["runs"]["using"] == "composite"
    upload = next(s for s in doc["runs"]["steps"] if s.get("uses") == "actions/upload-artifact@v4")
    assert (upload["if"], doc["inputs"]["artifact-name"]["default"]) == ("always()", "telemetry")
