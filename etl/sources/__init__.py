"""Sources the ETL reads, by the `kind` of their configuration: one registry line per source.

A factory takes the source's configuration and a `SourceEnv` and returns a context manager that
yields a `etl.sources.base.Source`. Built-in factories are named by import path so that a run
imports only the sources it uses; `register()` adds one at run time (a plug-in, a test).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from etl.sources.base import SourceContext


@dataclass(frozen=True)
class SourceEnv:
    """What a source may use from the run: the settings and a progress callback (kind, count)."""

    settings: Any
    progress: Callable[[str, int], None] = lambda _kind, _n: None


Factory = Callable[[Any, SourceEnv], SourceContext]

_REGISTRY: dict[str, Factory | str] = {
    "azure_devops": "etl.sources.azure_devops.source:open_azure_devops",
    "simulator": "etl.sources.simulated:open_simulator",
    "inbox": "etl.sources.inbox:open_inbox",
    "jenkins": "etl.sources.jenkins.source:open_jenkins",
    "jenkins_simulator": "etl.sources.jenkins.source:open_jenkins_simulator",
    "github_actions": "etl.sources.github_actions.source:open_github_actions",
    "github_simulator": "etl.sources.github_actions.simulated:open_github_simulator",
}


def register(kind: str, factory: Factory) -> None:
    """Make configurations of *kind* readable by *factory* (replaces an earlier registration)."""
    _REGISTRY[kind] = factory


def unregister(kind: str) -> None:
    """Forget *kind* (tests that registered a source clean up with this)."""
    _REGISTRY.pop(kind, None)


def factory_for(kind: str) -> Factory:
    """The factory of *kind*; KeyError naming the known kinds otherwise."""
    entry = _REGISTRY.get(kind)
    if entry is None:
        raise KeyError(f"no source registered for kind {kind!r} (known: {', '.join(sorted(_REGISTRY))})")
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        entry = _REGISTRY[kind] = getattr(importlib.import_module(module), name)
    return entry


def open_source(cfg: Any, env: SourceEnv) -> SourceContext:
    """The source for one configured `sources:` entry (dispatch on its `kind`)."""
    return factory_for(cfg.kind)(cfg, env)
