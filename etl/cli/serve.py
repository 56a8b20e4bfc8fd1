"""`ci-telemetry serve`: the local store as a Kusto endpoint on 127.0.0.1."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from etl.cli.common import ConfigOption, fail, load_settings


def serve(
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port on 127.0.0.1 (0: any free port).")] = 31415,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Serve the local DuckDB store over the Kusto REST protocol, read-only, on loopback only.

    Kusto Explorer, the Azure Data Explorer web UI (Add connection) or azure-kusto-data connect to
    the printed URL without authentication, with or without a database in the connection string; the
    stored functions (LatestTimelineBuilds, TopSignatures(...)) are available. Requests whose Host is
    not loopback, and browser requests from origins other than warehouse.serve_allowed_origins, get
    403. Stop the ETL first: DuckDB lets one process write a file or many read it.

    Example: ci-telemetry serve --port 31415
    """
    import duckdb

    from etl.warehouse.serve import build_server

    settings = load_settings(config)
    if settings.warehouse.kind != "local":
        fail("serve works on a local warehouse (warehouse.kind: local); query the cluster directly instead")
    path = settings.path(settings.warehouse.path)
    if not path.exists():
        fail(f"{path}: no local store yet; run `ci-telemetry schema apply` or `ci-telemetry etl` first")
    try:
        server = build_server(path, port=port, quiet=True,
                              allowed_origins=tuple(settings.warehouse.serve_allowed_origins))
    except duckdb.Error as exc:
        fail(f"cannot open {path} read-only: {str(exc).splitlines()[0]}")
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}")
    typer.echo(f"serving {path} as Kusto database {server.database!r}")
    typer.echo(f"  {server.url}")
    typer.echo("Connect with Kusto Explorer / dataexplorer.azure.com (Add connection) or azure-kusto-data. Ctrl-C stops.")
    # Stop cleanly on SIGTERM (service managers) and on SIGINT even when started in the background,
    # where the shell leaves SIGINT ignored: either way the store's lock is released on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        server.server_close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
