"""Serve the local DuckDB store over the Kusto REST protocol, on loopback only, read-only.

duckdb-kql's server does the work; this module adds the project's stored functions
(`kql/functions/*.kql`), the schema commands Kusto tools send on connect, the client default
database `NetDefaultDB` for cluster-level commands, and works around one protocol mismatch (see
`_Handler`). Any Kusto client — Kusto Explorer, the Azure Data Explorer web UI, azure-kusto-data,
or this project's own `kusto` warehouse backend with `auth: none` — can then query the local store.

Binding to 127.0.0.1 keeps other machines out, not other web pages: a page can point a name of
its own at 127.0.0.1 (DNS rebinding) and have the browser send it here. So a request is refused
(403) unless its Host is a loopback name or address, and a browser request (one with an Origin)
unless its origin is allowed (`warehouse.serve_allowed_origins`, the web UI by default).
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
from pathlib import Path
from typing import Any

from duckdb_kql.engine import connect
from duckdb_kql.server import ADX_ORIGINS, KustoRestServer, RestColumn, Result, error_response, v1_response
from duckdb_kql.server import _Handler as _BaseHandler

from etl.warehouse.function_cache import cache_path
from etl.warehouse.kusto import typed_parameters
from etl.warehouse.local import parsed_functions
from etl.warehouse.serve_schema import cslschema_rows, parse_schema_command, schema_json

#: The database azure-kusto-data and Kusto.Data send when the connection string names none.
CLIENT_DEFAULT_DATABASE = "NetDefaultDB"
#: The Azure Data Explorer web UI, the one browser origin allowed by default.
WEB_UI_ORIGIN = "https://dataexplorer.azure.com"
assert WEB_UI_ORIGIN in ADX_ORIGINS


def is_loopback_host(header: str | None) -> bool:
    """Whether a Host header names this machine's loopback: `localhost`, 127.0.0.0/8 or [::1], any port."""
    if not header:
        return False
    host = header.strip()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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

    def _refused(self) -> bool:
        """Answer 403 and return True when the Host or the Origin is not one we serve."""
        if not is_loopback_host(self.headers.get("Host")):
            self._send(403, error_response("Host is not a loopback name or address: refused", code="Forbidden"))
            return True
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.kusto.allowed_origins:
            self._send(403, error_response("cross-origin request from an origin not allowed: refused", code="Forbidden"))
            return True
        return False

    def do_GET(self) -> None:  # BaseHTTPRequestHandler's interface
        if not self._refused():
            super().do_GET()

    def do_OPTIONS(self) -> None:  # BaseHTTPRequestHandler's interface
        if not is_loopback_host(self.headers.get("Host")):
            self._send(403, error_response("Host is not a loopback name or address: refused", code="Forbidden"))
            return
        super().do_OPTIONS()

    def _answer_schema_command(self, request: dict[str, Any]) -> bool:
        """Answer `.show database <db> schema as json|cslschema` from `kql/`; False for other requests."""
        command = parse_schema_command(str(request.get("csl") or ""))
        if command is None or not self.path.split("?", 1)[0].rstrip("/").endswith("/mgmt"):
            return False
        database = command.database or str(request.get("db") or self.kusto.database)
        if database in (CLIENT_DEFAULT_DATABASE, "default"):
            database = self.kusto.database
        if not self.kusto.serves(database):
            # 400, as Kusto answers an unknown entity (the SDKs read a 404 as a wrong endpoint URL).
            self._send(400, error_response(f"database {database!r} is not served here; serving {self.kusto.database!r}",
                                           code="General_DatabaseNotFound"))
            return True
        if command.form == "json":
            result = Result([RestColumn("DatabaseSchema", "string", "String", "string")], [[schema_json(database)]])
        else:
            names = ("TableName", "Schema", "DatabaseName", "Folder", "DocString")
            result = Result([RestColumn(n, "string", "String", "string") for n in names], cslschema_rows(database))
        self._send(200, v1_response(result))
        return True

    def do_POST(self) -> None:  # BaseHTTPRequestHandler's interface
        if self._refused():
            # Drain the body so a kept-alive connection stays in step.
            with contextlib.suppress(ValueError):
                self.rfile.read(max(0, int(self.headers.get("Content-Length", "0"))))
            return
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
        if isinstance(request, dict) and request.get("db") == CLIENT_DEFAULT_DATABASE and \
                self.path.split("?", 1)[0].rstrip("/").endswith("/mgmt"):
            # A client whose connection string names no database sends its cluster-level commands
            # (`.show databases`, `.show version`) to NetDefaultDB; this endpoint serves one.
            request["db"] = self.kusto.database
            body = json.dumps(request).encode("utf-8")
        if isinstance(request, dict) and self._answer_schema_command(request):
            return
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


def build_server(
    path: Path | str, port: int = 0, quiet: bool = True, allowed_origins: tuple[str, ...] = (WEB_UI_ORIGIN,)
) -> StoreServer:
    """A read-only Kusto REST endpoint over the DuckDB file at *path*, on 127.0.0.1:*port*.

    Read-only twice over (the file is opened read-only and duckdb-kql's writes stay disabled), so
    serving can never change the store; the database name clients use is the file's stem (e.g.
    `warehouse` for `data/warehouse.duckdb`). Browser requests are answered only from
    *allowed_origins*.
    """
    con = connect(str(path), read_only=True)
    try:
        server = StoreServer(con, port=port, source=str(path), quiet=quiet, functions=parsed_functions(cache_path(Path(path))),
                             allowed_origins=tuple(allowed_origins), allow_write=False)
    except BaseException:
        con.close()
        raise
    server.RequestHandlerClass = _Handler
    return server
