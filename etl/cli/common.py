"""What every command shares: the --config option, loading settings, and one-line errors.

Imported by every command module when the CLI starts, so it imports nothing heavier than typer: the
settings models (pydantic) and the secret resolver load when a command runs, not for `--help`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from etl import resources

if TYPE_CHECKING:
    from etl.config import Settings

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", help="Configuration file.", show_default="config/default.yaml"),
]
#: etl.config.DEFAULT_CONFIG, found without importing the settings models.
DEFAULT_CONFIG_PATH = resources.folder("config") / "default.yaml"


class MaskingFilter(logging.Filter):
    """Masks every resolved secret value in log records, whatever the message formatting did."""

    def filter(self, record: logging.LogRecord) -> bool:
        from etl.secret_refs import mask

        record.msg = mask(record.getMessage())
        record.args = None
        return True


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr with secrets masked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MaskingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    for noisy in ("azure", "urllib3", "papermill", "traitlets", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one masked error line to stderr and exit non-zero."""
    from etl.secret_refs import mask

    typer.echo(f"error: {mask(message)}", err=True)
    raise typer.Exit(code)


def load_settings(config: Path | None) -> Settings:
    """Load the config file or exit with one line per problem."""
    from etl.config import ConfigError, load_config
    from etl.secret_refs import KeyVaultSettings, configure_keyvault

    setup_logging()
    try:
        settings = load_config(config or DEFAULT_CONFIG_PATH)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None
    configure_keyvault(
        KeyVaultSettings(settings.keyvault.url_template, settings.keyvault.managed_identity_client_id)
    )
    return settings


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can act on into one clear line and a non-zero exit."""
    from etl.config import ConfigError
    from etl.secret_refs import SecretError
    from etl.warehouse.base import WarehouseError

    try:
        yield
    except (SecretError, ConfigError, WarehouseError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
