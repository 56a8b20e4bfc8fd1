"""Where the files the product ships are found: `kql/`, `config/`, `notebooks/` and the report templates.

A wheel carries the top-level folders inside the package as `etl/_data/<folder>` (setup.py maps them
there at build time), so an installed CLI finds its schema from any directory. A source checkout or
`pip install -e .` has no `etl/_data` and reads the folders where the layout keeps them. Every
reader asks this module, so no other module knows either layout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: The folders at the top of the repository that ship inside the package.
SHIPPED_FOLDERS = ("kql", "config", "notebooks")

# pip unpacks wheels onto the file system, so the package's Traversable is a real directory; papermill,
# nbconvert and Jinja's loaders need paths, not streams.
_PACKAGE = Path(str(files("etl")))
_PACKAGED = _PACKAGE / "_data"
_CHECKOUT = _PACKAGE.parent


def is_checkout() -> bool:
    """True when running from a source tree (also under `pip install -e .`), not from an installed wheel."""
    return not _PACKAGED.is_dir() and (_CHECKOUT / "pyproject.toml").is_file()


def folder(name: str) -> Path:
    """The shipped folder `name` (one of SHIPPED_FOLDERS) as a directory path."""
    if name not in SHIPPED_FOLDERS:
        raise KeyError(f"unknown shipped folder {name!r}; known: {', '.join(SHIPPED_FOLDERS)}")
    return _PACKAGED / name if _PACKAGED.is_dir() else _CHECKOUT / name


def package_folder(package: str, name: str) -> Path:
    """A folder of data files inside an `etl` subpackage, e.g. `package_folder("etl.reports", "templates")`."""
    return Path(str(files(package) / name))


def is_shipped(path: Path) -> bool:
    """True when path lies inside a folder the installed package carries (not the user's own copy)."""
    return _PACKAGED.is_dir() and path.resolve().is_relative_to(_PACKAGED.resolve())


def working_root() -> Path:
    """Where relative paths of the shipped config (data/, reports/) resolve: the checkout, else the current directory."""
    return _CHECKOUT if is_checkout() else Path.cwd()
