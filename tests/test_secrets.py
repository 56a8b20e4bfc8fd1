"""Secret references: `env://NAME` and `keyvault://vault/name[/version]`.

Key Vault is a loopback HTTPS server speaking its REST protocol, including the challenge
(an unauthenticated request answered 401 with `WWW-Authenticate`) that azure-keyvault-secrets'
auth policy starts with. HTTPS because azure-core refuses to send a bearer token over http; the
self-signed certificate is trusted through REQUESTS_CA_BUNDLE, the switch requests honours for
azure-core's default transport. Azure AD is a credential stub returning an AccessToken.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from etl.secret_refs import KeyVaultSettings, SecretError, SecretRef, configure_keyvault, mask

SECRET_VALUE = "s3cr3t-V4lue-never-printed"
VERSION = "0123456789abcdef0123456789abcdef"


class StubCredential:
    """Azure AD stand-in: hands out a token for whatever scope is asked."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken("stub-token", int(time.time()) + 3600)


@dataclass
class FakeVault:
    url: str = ""
    secrets: dict[str, str] = field(default_factory=lambda: {"ado-pat": SECRET_VALUE})
    forbidden: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    challenges: int = 0


def _vault_handler(vault: FakeVault) -> Callable[[Request], Response]:
    def send(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(body), status, headers, content_type="application/json; charset=utf-8")

    def handle(request: Request) -> Response:
        if request.headers.get("Authorization") != "Bearer stub-token":
            # Key Vault's challenge: the client learns the tenant and resource from it.
            vault.challenges += 1
            return send(401, {"error": {"code": "Unauthorized", "message": "AKV10000"}}, {
                "WWW-Authenticate": 'Bearer authorization="https://login.microsoftonline.com/tenant-id", '
                                    'resource="https://vault.azure.net"'})
        parts = [p for p in request.path.split("/") if p]
        vault.requests.append(request.path)
        if len(parts) < 2 or parts[0] != "secrets":
            return send(404, {"error": {"code": "NotFound", "message": "no route"}})
        name = parts[1]
        if name in vault.forbidden:
            return send(403, {"error": {"code": "Forbidden", "message": "Caller is not authorized",
                                        "innererror": {"code": "ForbiddenByRbac"}}})
        if name not in vault.secrets:
            return send(404, {"error": {"code": "SecretNotFound",
                                        "message": f"A secret with (name/id) {name} was not found"}})
        version = parts[2] if len(parts) > 2 else VERSION
        return send(200, {"value": vault.secrets[name], "id": f"{vault.url}/secrets/{name}/{version}",
                          "attributes": {"enabled": True, "created": 1700000000, "updated": 1700000000}})

    return handle


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "vault.pem", tmp / "vault.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@contextmanager
def fake_key_vault(tmp: Path) -> Iterator[tuple[FakeVault, Path]]:
    """A loopback HTTPS Key Vault; yields its state and the certificate to trust."""
    cert, key = _self_signed(tmp)
    vault = FakeVault()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer("127.0.0.1", 0, ssl_context=context)
    server.expect_request(re.compile(".*")).respond_with_handler(_vault_handler(vault))
    server.start()
    vault.url = server.url_for("").rstrip("/")
    try:
        yield vault, cert
    finally:
        server.clear()
        server.stop()


@pytest.fixture(scope="module")
def vault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeVault, Path]]:
    with fake_key_vault(tmp_path_factory.mktemp("vault")) as served:
        yield served


@pytest.fixture
def vault(vault_server: tuple[FakeVault, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVault]:
    state, cert = vault_server
    state.requests.clear()
    state.challenges = 0
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    configure_keyvault(KeyVaultSettings(url_template=state.url), credential=StubCredential())
    yield state
    configure_keyvault(KeyVaultSettings())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- env:// -----------------------------------------------------------------


def test_env_reference_resolves_to_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_TELEMETRY_TEST_TOKEN", SECRET_VALUE)
    assert SecretRef("env://CI_TELEMETRY_TEST_TOKEN").reveal() == SECRET_VALUE


def test_missing_env_variable_is_one_line_naming_reference_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI_TELEMETRY_NOT_SET", raising=False)
    with pytest.raises(SecretError) as info:
        SecretRef("env://CI_TELEMETRY_NOT_SET").reveal()
    assert str(info.value) == "secret env://CI_TELEMETRY_NOT_SET: environment variable CI_TELEMETRY_NOT_SET is not set"


def test_a_literal_value_is_not_accepted_as_a_reference() -> None:
    with pytest.raises(ValueError, match="not a literal value"):
        SecretRef(SECRET_VALUE)


def test_repr_and_str_show_the_reference_never_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_TELEMETRY_TEST_TOKEN", SECRET_VALUE)
    ref = SecretRef("env://CI_TELEMETRY_TEST_TOKEN")
    ref.reveal()
    assert repr(ref) == "SecretRef('env://CI_TELEMETRY_TEST_TOKEN')"
    assert str(ref) == "env://CI_TELEMETRY_TEST_TOKEN"
    assert mask(f"Authorization: Basic {SECRET_VALUE}") == "Authorization: Basic ***"


# -- keyvault:// --------------------------------------------------------------


def test_keyvault_secret_is_fetched_once_and_cached(vault: FakeVault) -> None:
    ref = SecretRef("keyvault://contoso-kv/ado-pat")
    assert ref.reveal() == SECRET_VALUE
    assert ref.reveal() == SECRET_VALUE
    assert vault.requests == ["/secrets/ado-pat/"]
    assert vault.challenges == 1  # the unauthenticated first request, answered 401
    assert SECRET_VALUE not in repr(ref) + str(ref)


def test_keyvault_reference_with_version_asks_for_that_version(vault: FakeVault) -> None:
    assert SecretRef(f"keyvault://contoso-kv/ado-pat/{VERSION}").reveal() == SECRET_VALUE
    assert vault.requests == [f"/secrets/ado-pat/{VERSION}"]


def test_missing_secret_names_the_reference_and_vault(vault: FakeVault) -> None:
    with pytest.raises(SecretError) as info:
        SecretRef("keyvault://contoso-kv/no-such-secret").reveal()
    assert str(info.value) == "secret keyvault://contoso-kv/no-such-secret: not found in Key Vault contoso-kv"


def test_forbidden_secret_names_the_role_the_identity_needs(vault: FakeVault) -> None:
    vault.forbidden.add("locked")
    vault.secrets["locked"] = SECRET_VALUE
    with pytest.raises(SecretError) as info:
        SecretRef("keyvault://contoso-kv/locked").reveal()
    assert str(info.value) == (
        "secret keyvault://contoso-kv/locked: access denied (403) by Key Vault contoso-kv; "
        "the identity needs the 'Key Vault Secrets User' role"
    )
    assert SECRET_VALUE not in str(info.value)


def test_unreachable_vault_is_one_line(vault: FakeVault) -> None:
    configure_keyvault(KeyVaultSettings(url_template=f"https://127.0.0.1:{_closed_port()}"), credential=StubCredential())
    with pytest.raises(SecretError) as info:
        SecretRef("keyvault://contoso-kv/ado-pat").reveal()
    message = str(info.value)
    assert message.startswith("secret keyvault://contoso-kv/ado-pat: Key Vault contoso-kv at https://127.0.0.1:")
    assert message.endswith("is unreachable (ServiceRequestError)")
    assert "\n" not in message


class NoIdentity:
    """A credential with no identity to offer, as DefaultAzureCredential is on a bare machine."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token.\nAttempted: ...")


def test_no_azure_identity_is_one_line_saying_how_to_provide_one(vault: FakeVault) -> None:
    configure_keyvault(KeyVaultSettings(url_template=vault.url), credential=NoIdentity())
    with pytest.raises(SecretError) as info:
        SecretRef("keyvault://contoso-kv/ado-pat").reveal()
    assert str(info.value) == (
        "secret keyvault://contoso-kv/ado-pat: no Azure identity could get a token for Key Vault contoso-kv "
        "(ClientAuthenticationError); assign a managed identity (keyvault.managed_identity_client_id), "
        "set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or run `az login`"
    )


def test_the_token_is_asked_for_key_vaults_scope(vault: FakeVault) -> None:
    credential = StubCredential()
    configure_keyvault(KeyVaultSettings(url_template=vault.url), credential=credential)
    SecretRef("keyvault://contoso-kv/ado-pat").reveal()
    assert credential.scopes == ["https://vault.azure.net/.default"]
