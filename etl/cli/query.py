"""`ci-telemetry query`: run KQL against the configured store."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from etl.cli.common import ConfigOption, fail, load_settings, user_errors


def _parse_params(values: list[str]) -> dict[str, str]:
    params = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(f"--param {item!r}: expected name=value")
        params[name.strip()] = value
    return params


def query(
    kql: Annotated[str, typer.Argument(help="The KQL query; '-' reads it from standard input.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="A query parameter, name=value; declare it in the query."),
    ] = None,
    output: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")] = "table",
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Run a KQL query; values are passed as query parameters, never spliced into the text.

    Example: ci-telemetry query "declare query_parameters(d:string); LatestTimelineBuilds | where Definition == d | count" --param d='ci\\main'
    """
    from etl.warehouse import connected
    from etl.warehouse.params import typed_parameters

    if output not in ("table", "csv", "json"):
        fail(f"--format {output!r}: expected table, csv or json")
    text = sys.stdin.read() if kql == "-" else kql
    settings = load_settings(config)
    with user_errors(), connected(settings) as warehouse:
        # Command-line values are text, as on Kusto's wire: type them by the query's declaration so
        # `--param n=5` binds a long on the local engine as it does on the cluster.
        parameters = typed_parameters(text, _parse_params(param or []))
        if output == "table":
            # A one-value answer (a count, a `print`) prints without pandas, which would cost more
            # start-up than the query itself.
            result = warehouse.query_result(text, parameters)
            single, frame = result.single_text(), result.frame
        else:
            single, frame = None, warehouse.query(text, parameters)
    if single is not None:
        typer.echo(single)
    elif output == "csv":
        typer.echo(frame.to_csv(index=False), nl=False)
    elif output == "json":
        typer.echo(frame.to_json(orient="records", date_format="iso"))
    else:
        typer.echo(frame.to_string(index=False) if len(frame) else "(no rows)")


def register(app: typer.Typer) -> None:
    app.command("query")(query)
