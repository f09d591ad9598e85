"""`churnops validate VERSION`: re-run validation for a registered version, print and write it.

Exit codes: 0 passed (or every failure allowed), 1 a blocking check failed, 2 cannot run (bad
input, unknown version, a table without the target or the model's features).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

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

if TYPE_CHECKING:
    from churnops.modeling.revalidate import VersionValidation
    from churnops.validation.result import ValidationResult

VALIDATE_FLAGS = {"registry.model_name": "--model-name", "validation.allow": "--allow"}
STATUS_STYLE = {"passed": "green", "overridden": "yellow", "failed": "bold red"}


def checks_table(result: ValidationResult, title: str) -> Table:
    """Every check but the passed segment comparisons (counted in the caption)."""
    table = Table(title=title)
    table.add_column("")
    table.add_column("check")
    table.add_column("subject")
    table.add_column("detail (value against limit)")
    quiet = [c for c in result.checks if c.check == "segment_regression" and c.passed]
    for c in result.checks:
        if c in quiet:
            continue
        blocking = c.check in result.blocking and c.check not in result.allow
        mark = (
            "[green]pass[/]"
            if c.passed
            else ("[bold red]FAIL[/]" if blocking else "[yellow]fail[/]")
        )
        table.add_row(mark, c.check, c.subject, c.detail)
    if quiet:
        table.caption = f"{len(quiet)} segments no worse than the champion (not listed)"
    return table


def validate_command(
    version: str = typer.Argument(..., help="Registered version to validate."),
    data: str | None = DataOption,
    config: Path | None = ConfigOption,
    target: str | None = TargetOption,
    positive_label: str | None = PositiveOption,
    id_column: str | None = IdOption,
    exclude: list[str] | None = ExcludeOption,
    model_name: str | None = typer.Option(None, "--model-name", help="Registered model name."),
    allow: list[str] | None = typer.Option(
        None, "--allow", help="A check allowed to fail (repeatable), e.g. fairness."
    ),
    output_dir: Path | None = typer.Option(
        None,
        "--output-dir",
        "-o",
        help="Where the HTML and JSON go (default: monitoring.reports_dir).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON document to stdout only."),
) -> None:
    """Validate VERSION (segments vs the champion, fairness, behaviour) on the configured table."""
    with cli_errors():
        settings = settings_for_data(
            config,
            data=data,
            target=target,
            positive_label=positive_label,
            id_column=id_column,
            exclude=exclude,
            flags=VALIDATE_FLAGS,
            **{"registry.model_name": model_name, "validation.allow": allow or None},
        )
        from churnops.data.ingest import read_table  # heavy: after the cheap checks
        from churnops.modeling.revalidate import validate_version
        from churnops.modeling.tracking import configure_tracking

        client = configure_tracking(settings, must_exist=True)
        table_name = settings.data.path or "table"
        outcome = validate_version(
            client,
            model_name=settings.registry.model_name,
            version=version,
            frame=read_table(table_name),
            table_name=Path(table_name).name,
            settings=settings.validation,
            output_dir=output_dir or Path(settings.monitoring.reports_dir),
        )
    _print(
        outcome, title=f"Validation of {settings.registry.model_name} v{version}", as_json=as_json
    )
    raise typer.Exit(outcome.exit_code)


def _print(outcome: VersionValidation, *, title: str, as_json: bool) -> None:
    """The JSON document alone, or the checks table, notes, verdict and where the report went."""
    result = outcome.result
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    out_console.print(checks_table(result, f"{title} ({result.evaluated_on})"))
    for note in result.notes:
        out_console.print(f"[dim]note: {note}[/]")
    style = STATUS_STYLE.get(result.status, "bold")
    out_console.print(f"[{style}]{result.status}[/]: {len(result.blocking_failures())} blocking")
    err_console.print(f"report: {outcome.html_path} and {outcome.json_path}")
