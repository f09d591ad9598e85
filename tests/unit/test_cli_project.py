"""`churnops project`: the MLproject entry points' way into the CLI."""

from __future__ import annotations

from churnops.cli.project import without_empty_options


def test_project_drops_only_empty_flag_values() -> None:
    args = ["predict", "in.csv", "--output", "", "--model-uri", "m", "--config", ""]
    assert without_empty_options(args) == ["predict", "in.csv", "--model-uri", "m"]
