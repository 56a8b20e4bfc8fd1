"""Secret-valued settings: `keyvault://<vault>/<name>[/<version>]` or `env://NAME`.

A `SecretRef` holds only the reference. Its value is resolved on first use, cached for the run,
and never shown: repr, str and every error name the reference, not the value. Every resolved value
is also registered with `etl.logs.mask` so a value that leaks into a log line is still masked.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

_KEYVAULT = re.compile(r"^keyvault://(?P<vault>[A-Za-z0-9-]{3,24})/(?P<name>[A-Za-z0-9-]{1,127})(?:/(?P<version>[0-9a-fA-F]{32}))?$")
_ENV = re.compile(r"^env://(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")

#: Every secret value resolved in this process; log handlers and reports mask these.
_REVEALED: set[str] = set()
_LOCK = threading.Lock()


class SecretError(RuntimeError):
    """A secret could not be resolved. The message names the reference, never a value."""


def revealed_values() -> frozenset[str]:
    """Secret values resolved so far in this process (for masking output)."""
    with _LOCK:
        return frozenset(_REVEALED)


def remember_revealed(values: frozenset[str]) -> None:
    """Count *values* as resolved in this process: what a staging worker is told its parent resolved, to mask them too."""
    with _LOCK:
        _REVEALED.update(values)


def mask(text: str) -> str:
    """Replace every resolved secret value inside *text* with `***`."""
    for value in sorted(revealed_values(), key=len, reverse=True):
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


@dataclass(frozen=True)
class KeyVaultSettings:
    """How `keyvault://` references reach Key Vault."""

    #: `{vault}` is replaced by the vault name; tests point it at a loopback server.
    url_template: str = "https://{vault}.vault.azure.net"
    #: A user-assigned managed identity's client id, or None for DefaultAzureCredential.
    managed_identity_client_id: str | None = None


_KEYVAULT_SETTINGS = KeyVaultSettings()
#: A credential override (tests use a stub; production leaves it None).
_CREDENTIAL: Any = None


def configure_keyvault(settings: KeyVaultSettings, credential: Any = None) -> None:
    """Set how Key Vault is reached for the rest of the run."""
    global _KEYVAULT_SETTINGS, _CREDENTIAL
    _KEYVAULT_SETTINGS = settings
    _CREDENTIAL = credential


def _credential() -> Any:
    if _CREDENTIAL is not None:
        return _CREDENTIAL
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    client_id = _KEYVAULT_SETTINGS.managed_identity_client_id
    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


@dataclass(eq=False)
class SecretRef:
    """A reference to a secret; `.reveal()` resolves it once and caches the value."""

    reference: str
    _value: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not (_KEYVAULT.match(self.reference) or _ENV.match(self.reference)):
            raise ValueError(
                "expected a secret reference `keyvault://<vault>/<name>[/<version>]` or `env://NAME`, "
                "not a literal value"
            )

    @property
    def scheme(self) -> str:
        return self.reference.split("://", 1)[0]

    def reveal(self) -> str:
        """The secret's value: resolved on first call, cached for the run."""
        with self._lock:
            if self._value is None:
                self._value = self._resolve()
                with _LOCK:
                    _REVEALED.add(self._value)
            return self._value

    def _resolve(self) -> str:
        env = _ENV.match(self.reference)
        if env:
            value = os.environ.get(env.group("name"))
            if not value:
                raise SecretError(f"secret {self.reference}: environment variable {env.group('name')} is not set")
            return value
        kv = _KEYVAULT.match(self.reference)
        assert kv is not None
        return _resolve_keyvault(self.reference, kv.group("vault"), kv.group("name"), kv.group("version"))

    def __repr__(self) -> str:
        return f"SecretRef({self.reference!r})"

    def __str__(self) -> str:
        return self.reference

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretRef) and other.reference == self.reference

    def __hash__(self) -> int:
        return hash(self.reference)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def build(value: Any) -> SecretRef:
            if isinstance(value, SecretRef):
                return value
            if not isinstance(value, str):
                raise ValueError("expected a secret reference string")
            return cls(value)

        return core_schema.no_info_plain_validator_function(
            build, serialization=core_schema.plain_serializer_function_ser_schema(lambda v: v.reference)
        )


def _resolve_keyvault(reference: str, vault: str, name: str, version: str | None) -> str:
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
    )
    from azure.keyvault.secrets import SecretClient

    url = _KEYVAULT_SETTINGS.url_template.format(vault=vault)
    try:
        client = SecretClient(vault_url=url, credential=_credential(), retry_total=2,
                              verify_challenge_resource=False)
        secret = client.get_secret(name, version)
    except ResourceNotFoundError:
        raise SecretError(f"secret {reference}: not found in Key Vault {vault}") from None
    except ClientAuthenticationError as exc:
        # The credential's own message lists every source DefaultAzureCredential tried, over many
        # lines; the user needs the one decision: which identity this process should run as.
        raise SecretError(
            f"secret {reference}: no Azure identity could get a token for Key Vault {vault} "
            f"({type(exc).__name__}); assign a managed identity (keyvault.managed_identity_client_id), "
            "set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or run `az login`"
        ) from None
    except HttpResponseError as exc:
        if exc.status_code == 403:
            raise SecretError(
                f"secret {reference}: access denied (403) by Key Vault {vault}; the identity needs the "
                "'Key Vault Secrets User' role"
            ) from None
        raise SecretError(f"secret {reference}: Key Vault {vault} answered HTTP {exc.status_code}") from None
    except AzureError as exc:
        raise SecretError(f"secret {reference}: Key Vault {vault} at {url} is unreachable ({type(exc).__name__})") from None
    if not secret.value:
        raise SecretError(f"secret {reference}: Key Vault {vault} returned an empty value")
    return secret.value
