"""The configuration reference in docs/configuration.md is generated from the settings models and kept in sync."""

from __future__ import annotations

from pathlib import Path

from etl.config_reference import reference_markdown

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_docs_hold_the_current_configuration_reference() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    start = text.index("<!-- config-reference:start -->") + len("<!-- config-reference:start -->\n")
    end = text.index("<!-- config-reference:end -->")
    assert text[start:end] == reference_markdown(), "regenerate with: ci-telemetry config reference"


def test_every_setting_has_a_description() -> None:
    undocumented = [row for row in reference_markdown().splitlines() if row.endswith("|  |")]
    assert undocumented == []
