"""`churnops eda`: one self-contained HTML report on a table."""

from __future__ import annotations

from pathlib import Path

import typer

from churnops.cli.console import cli_errors, out_console
from churnops.cli.options import (
    ConfigOption,
    DataOption,
    ExcludeOption,
    IdOption,
    PositiveOption,
    TargetOption,
    settings_for_data,
)


def eda_command(
    data: str | None = DataOption,
    config: Path | None = ConfigOption,
    target: str | None = TargetOption,
    positive_label: str | None = PositiveOption,
    id_column: str | None = IdOption,
    exclude: list[str] | None = ExcludeOption,
    output: Path = typer.Option(Path("reports/eda.html"), "--output", "-o", help="HTML file."),
) -> None:
    """Write an exploratory HTML report (distributions, churn rates, correlations, missing values)."""
    with cli_errors():
        settings = settings_for_data(
            config,
            data=data,
            target=target,
            positive_label=positive_label,
            id_column=id_column,
            exclude=exclude,
        )
        from churnops.data.fingerprint import fingerprint  # heavy: after the cheap checks
        from churnops.data.load import load_training_table
        from churnops.reporting.eda import write_eda_report

        frame, schema = load_training_table(settings.data)
        path = write_eda_report(frame, schema, output, fingerprint=fingerprint(frame))
        out_console.print(f"EDA report written to [bold]{path}[/]")
