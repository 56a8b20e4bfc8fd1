"""`ci-telemetry privacy report`: what is collected, what is redacted or pseudonymized, and proof by example."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from etl.cli.common import ConfigOption, load_settings

privacy_app = typer.Typer(help="Privacy: what is collected and how personal data and secrets are handled.\n\n"
                          "Example: ci-telemetry privacy report",
                          no_args_is_help=True, rich_markup_mode=None)

_SWITCH_LABELS = {
    "redact_emails": "e-mail addresses",
    "redact_home_paths": "user names in home-directory paths",
    "redact_secrets": "tokens, keys, passwords and connection-string secrets",
    "redact_ip_addresses": "IPv4/IPv6 addresses",
}


def build_report(settings, config_path: Path | None = None) -> str:  # type: ignore[no-untyped-def]
    """The privacy report as plain text (one source of truth: `etl.privacy.FIELD_POLICY` and `kql/tables`)."""
    from etl.privacy import (
        DETECTORS,
        EXAMPLE_MESSAGES,
        FIELD_POLICY,
        KEPT,
        KEY_FILE_NAME,
        PSEUDONYMIZED,
        REDACTED,
        TEXT_TYPES,
        Scrubber,
    )
    from etl.schema import load_tables

    p = settings.privacy
    lines: list[str] = ["# ci-telemetry privacy report", ""]
    if config_path:
        lines += [f"Configuration: {config_path}", ""]

    lines += ["## Redaction (applied to every text before it is staged)", ""]
    for switch, label in _SWITCH_LABELS.items():
        lines.append(f"- {label}: {'ON' if getattr(p, switch) else 'OFF (privacy.' + switch + ': false)'}")
    lines.append("")
    lines.append("Detectors (google-re2, linear time):")
    for d in DETECTORS:
        state = "on" if getattr(p, d.switch) else "off"
        lines.append(f"  - {d.name} [{state}]")
    lines.append("")

    lines += ["## Pseudonymization (HMAC-SHA256, stable per key)", ""]
    if p.pseudonymization_key is not None:
        lines.append(f"Key: secret reference {p.pseudonymization_key} (value never shown)")
    else:
        key_path = settings.path(settings.staging.dir) / KEY_FILE_NAME
        state = "exists" if key_path.exists() else "created on first run"
        lines.append(f"Key: per-store random key in {key_path} (mode 0600, {state})")
    lines.append("")

    lines += ["## Opt-outs (never collected)", ""]
    lines.append(f"- projects: {', '.join(p.opt_out.projects) if p.opt_out.projects else '(none)'}")
    lines.append(
        f"- pipeline definitions: {', '.join(str(d) for d in p.opt_out.definitions) if p.opt_out.definitions else '(none)'}"
    )
    lines.append("")

    lines += ["## Fields collected, per table (from etl.privacy.FIELD_POLICY, applied as rows are staged)", ""]
    tables = load_tables()
    for name in sorted(tables):
        table = tables[name]
        lines.append(f"### {name} — {table.docstring}")
        for treatment_kind in (PSEUDONYMIZED, REDACTED, KEPT):
            for c in table.columns:
                policy = FIELD_POLICY.get((name, c.name))
                if policy is not None and policy[0] == treatment_kind:
                    lines.append(f"- {c.name}: {treatment_kind} ({policy[1]})")
        others = [c.name for c in table.columns if c.kusto_type not in TEXT_TYPES]
        if others:
            lines.append(f"- numbers, times and flags, kept as received: {', '.join(others)}")
        lines.append("")

    lines += ["## Examples (fake data, redacted with the settings above)", ""]
    scrubber = Scrubber(
        b"report-example-key",
        redact_emails=p.redact_emails,
        redact_home_paths=p.redact_home_paths,
        redact_secrets=p.redact_secrets,
        redact_ip_addresses=p.redact_ip_addresses,
    )
    for message in EXAMPLE_MESSAGES:
        lines.append(f"  before: {message}")
        lines.append(f"  after:  {scrubber.redact(message)}")
        lines.append("")
    lines.append(f"  host name 'build-agent-17.contoso.local' -> {scrubber.pseudonymize('build-agent-17.contoso.local')}"
                 " (example key; the real key gives different, equally stable pseudonyms)")
    return "\n".join(lines) + "\n"


@privacy_app.command("report")
def report(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file.")] = None,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Print every field collected per table and whether it is kept, redacted or pseudonymized, the opt-outs
    in force, and redacted samples of built-in example messages — a page to show a security reviewer.

    Example: ci-telemetry privacy report --config config/example-production.yaml
    """
    settings = load_settings(config)
    text = build_report(settings, config)
    if output:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"Wrote {output}")
    else:
        typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    app.add_typer(privacy_app, name="privacy")
