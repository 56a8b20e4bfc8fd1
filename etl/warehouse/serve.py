"""Serve the local DuckDB store over the Kusto REST protocol, on loopback only.

duckdb-kql's server does the work; this module adds the project's stored functions
(`kql/functions/*.kql`) and works around one protocol mismatch (see `_Handler`). Any Kusto
client — Kusto Explorer, the Azure Data Explorer web UI, azure-kusto-data, or this project's own
`kusto` warehouse backend with `auth: none` — can then query the local store.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from duckdb_kql.engine import connect
from duckdb_kql.server import KustoRestServer
from duckdb_kql.server import _Handler as _BaseHandler

from etl.warehouse.kusto import typed_parameters
from etl.warehouse.local import parsed_functions


class _Handler(_BaseHandler):
    """duckdb-kql's request handler, accepting `properties` sent as a JSON *string*.

    azure-kusto-data (and the .NET SDK) put the request properties in the body as
    `"properties": "<json text>"` (`ClientRequestProperties.to_json()` returns a string), while
    duckdb-kql 1.1.2 reads `request.get("properties")` as an object. It then finds no
    `Parameters`, and every `declare query_parameters` query from an SDK fails with "declared
    query parameter with no value" — or, with a default, silently runs with the default. We
    decode the string before the base class reads the body, so parameters arrive as sent.
    """

    # The base class writes headers and body in two sends; with Nagle on, the body waits for the
    # client's delayed ACK of the headers (~40 ms per request on Linux), which dominated small queries.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # BaseHTTPRequestHandler's interface
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return super().do_POST()  # the base class answers the malformed request
        body = self.rfile.read(length) if length > 0 else b""
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = None
        if isinstance(request, dict) and isinstance(request.get("properties"), str):
            # Undecodable text is left as is: the base class then ignores it, as it did before.
            with contextlib.suppress(ValueError):
                request["properties"] = json.loads(request["properties"])
            body = json.dumps(request).encode("utf-8")
        if isinstance(request, dict) and isinstance(request.get("properties"), dict):
            params = request["properties"].get("Parameters")
            if isinstance(params, dict) and params:
                request["properties"]["Parameters"] = typed_parameters(str(request.get("csl") or ""), params)
                body = json.dumps(request).encode("utf-8")
        # Hand the (possibly rewritten) body to the base class as if it had just arrived, then
        # put the socket's reader back: the connection is kept alive for the client's next request.
        socket_reader = self.rfile
        self.rfile = io.BufferedReader(io.BytesIO(body))  # type: ignore[assignment]
        del self.headers["Content-Length"]
        self.headers["Content-Length"] = str(len(body))
        try:
            super().do_POST()
        finally:
            self.rfile = socket_reader


class StoreServer(KustoRestServer):
    """duckdb-kql's server that also releases the store when closed (DuckDB holds a file lock)."""

    def server_close(self) -> None:
        super().server_close()
        self._con.close()


def build_server(path: Path | str, port: int = 0, quiet: bool = True) -> StoreServer:
    """A read-only Kusto REST endpoint over the DuckDB file at *path*, on 127.0.0.1:*port*.

    Read-only so serving can never change the store; the database name clients use is the
    file's stem (e.g. `warehouse` for `data/warehouse.duckdb`).
    """
    con = connect(str(path), read_only=True)
    try:
        server = StoreServer(con, port=port, source=str(path), quiet=quiet, functions=parsed_functions())
    except BaseException:
        con.close()
        raise
    server.RequestHandlerClass = _Handler
    return server
