"""`ci-telemetry config check|reference`: validate a configuration file, print the reference."""

from __future__ import annotations

import json

import typer

from etl.cli.common import ConfigOption, load_settings

config_app = typer.Typer(help="Validate configuration files and print the settings reference.", no_args_is_help=True)


@config_app.command("check")
def check(config: ConfigOption = None) -> None:  # type: ignore[assignment]
    """Validate a configuration file and print the effective settings (secret references, never values).

    Example: ci-telemetry config check --config config/example-production.yaml
    """
    settings = load_settings(config)
    typer.echo(json.dumps(settings.model_dump(mode="json"), indent=2))


@config_app.command("reference")
def reference() -> None:
    """Print every setting with its type, default and meaning, as Markdown.

    Example: ci-telemetry config reference > settings.md
    """
    from etl.config_reference import reference_markdown

    typer.echo(reference_markdown(), nl=False)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
