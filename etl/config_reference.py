"""The configuration reference, generated from the settings models so docs/configuration.md cannot drift."""

from __future__ import annotations

import types
import typing
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from etl.config import AzureDevOpsSource, InboxSource, Settings, SimulatorSource
from etl.sources.github_actions.config import GitHubActionsSource, GitHubSimulatorSource
from etl.sources.jenkins.config import JenkinsSimulatorSource, JenkinsSource


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(repr(a).replace("'", "`") for a in get_args(annotation))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in get_args(annotation) if a is not type(None)) + " (optional)"
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is typing.Annotated:
        return _type_name(get_args(annotation)[0])
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
        if isinstance(value, BaseModel):
            return "(section)"
        return "`null`" if value is None else f"`{value}`"
    if field.default_factory is not None:
        value = field.default_factory()
        return "(section)" if isinstance(value, BaseModel) else f"`{value}`"
    return "required"


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        annotation = field.annotation
        inner = get_args(annotation)[0] if get_origin(annotation) is typing.Annotated else annotation
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            rows.extend(_rows(inner, f"{prefix}{name}."))
            continue
        doc = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{prefix}{name}` | {_type_name(annotation)} | {_default(field)} | {doc} |")
    return rows


def reference_markdown() -> str:
    """Markdown tables of every setting: name, type, default, meaning."""
    out = ["| setting | type | default | meaning |", "|---|---|---|---|"]
    out += [r for r in _rows(Settings, "") if not r.startswith(("| `sources`", "| `warehouse`"))]
    from etl.config import KustoWarehouse, LocalWarehouse

    for title, model, prefix in [
        ("`sources[]` with `kind: azure_devops`", AzureDevOpsSource, "sources[]."),
        ("`sources[]` with `kind: simulator`", SimulatorSource, "sources[]."),
        ("`sources[]` with `kind: inbox`", InboxSource, "sources[]."),
        ("`sources[]` with `kind: jenkins`", JenkinsSource, "sources[]."),
        ("`sources[]` with `kind: jenkins_simulator`", JenkinsSimulatorSource, "sources[]."),
        ("`sources[]` with `kind: github_actions`", GitHubActionsSource, "sources[]."),
        ("`sources[]` with `kind: github_simulator`", GitHubSimulatorSource, "sources[]."),
        ("`warehouse` with `kind: local`", LocalWarehouse, "warehouse."),
        ("`warehouse` with `kind: kusto`", KustoWarehouse, "warehouse."),
    ]:
        out += ["", title, "", "| setting | type | default | meaning |", "|---|---|---|---|"]
        out += _rows(model, prefix)
    return "\n".join(out) + "\n"
