"""`ci-telemetry collect -- COMMAND...`: run a build command and write its metrics document."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from etl.cli.common import ConfigOption, fail


def collect(
    command: Annotated[list[str], typer.Argument(help="The command to run, after `--`.", metavar="COMMAND")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the metrics document.")] = Path(
        "metrics.json"
    ),
    stage: Annotated[
        list[str] | None,
        typer.Option("--stage", help="A stage name, in order; repeat for each. The command starts a stage by "
                     "printing `##ci-telemetry[stage]NAME` on stdout."),
    ] = None,
    sample_interval: Annotated[
        float, typer.Option("--sample-interval", help="Seconds between memory samples.", min=0.01)
    ] = 1.0,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Run COMMAND, pass its output through, sample memory and network, write metrics.json; exit with its code.

    --config is accepted like on every command; collect itself needs no configuration.

    Example: ci-telemetry collect --output $(Build.ArtifactStagingDirectory)/telemetry/metrics.json --stage restore --stage build -- ./build.sh
    """
    from etl.collect import run_collect, write_document

    try:
        result = run_collect(command, stages=stage or [], sample_interval=sample_interval)
    except ValueError as exc:
        fail(str(exc))
    try:
        write_document(result.document, output)
    except OSError as exc:
        # The build's own outcome matters more than its telemetry: report, keep the command's code.
        typer.echo(f"error: cannot write metrics document {output}: {exc.strerror or exc}", err=True)
        raise typer.Exit(result.exit_code or 2) from None
    typer.echo(f"ci-telemetry: metrics written to {output} (exit code {result.exit_code})", err=True)
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    app.command("collect", context_settings={"allow_interspersed_args": False})(collect)
