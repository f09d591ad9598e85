"""`churnops data check`: is this table fit to train on? (the DVC pipeline's `validate` stage)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from churnops.cli.console import cli_errors, err_console, out_console
from churnops.cli.options import (
    ConfigOption,
    DataOption,
    ExcludeOption,
    IdOption,
    PositiveOption,
    TargetOption,
    settings_for_data,
)

EXIT_PROBLEMS = 1

app = typer.Typer(help="Check training tables.", no_args_is_help=True)


@app.command("check")
def check_command(
    data: str | None = DataOption,
    config: Path | None = ConfigOption,
    target: str | None = TargetOption,
    positive_label: str | None = PositiveOption,
    id_column: str | None = IdOption,
    exclude: list[str] | None = ExcludeOption,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Also write the result as JSON here."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Read the table, infer its schema and list every problem for training; exit 1 when there
    is one (the JSON result is written either way), 2 when it cannot be read."""
    with cli_errors():
        settings = settings_for_data(
            config,
            data=data,
            target=target,
            positive_label=positive_label,
            id_column=id_column,
            exclude=exclude,
        )
        from churnops.data.check import check_table  # heavy: after the cheap checks

        result = check_table(settings.data)
    document = json.dumps(result.to_dict(), indent=2)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(document + "\n")
    if as_json:
        typer.echo(document)
    elif result.ok:
        out_console.print(
            f"[green]ok[/]: {result.rows:,} rows, {len(result.features)} features, target "
            f"{result.target!r} ({result.positive_rate:.1%} {result.positive_label!r})"
        )
    if not result.ok:
        for problem in result.problems:
            err_console.print(f"[red]problem:[/] {problem}", highlight=False)
        raise typer.Exit(EXIT_PROBLEMS)
