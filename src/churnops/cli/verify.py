"""`churnops verify VERSION`: rebuild a registered version from its manifest; exit 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from churnops.cli.console import cli_errors, err_console, out_console
from churnops.cli.options import ConfigOption, ModelNameOption

EXIT_NOT_REPRODUCED = 1


def verify_command(
    version: str = typer.Argument(
        ..., metavar="VERSION", help="Registered version number, or an alias (champion)."
    ),
    model_name: str | None = ModelNameOption,
    data: str | None = typer.Option(
        None,
        "--data",
        "-d",
        help="Read the recorded table from here (it moved, or its URL hides a password).",
    ),
    tolerance: float = typer.Option(
        1e-6, "--tolerance", min=0.0, help="Largest accepted difference of a metric."
    ),
    probability_tolerance: float = typer.Option(
        1e-9, "--probability-tolerance", min=0.0, help="Largest accepted probability difference."
    ),
    sample_rows: int = typer.Option(
        500, "--sample-rows", min=1, help="Held-out rows whose probabilities are compared."
    ),
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON result to stdout only."),
) -> None:
    """Rebuild VERSION from its lineage manifest and compare: exit 0 reproduced, 1 not, 2 when it
    cannot be tried (a source missing or changed, no manifest)."""
    from churnops.settings import get_settings

    with cli_errors():
        overrides: dict[str, object] = {"registry.model_name": model_name}
        settings = get_settings(config, flags={"registry.model_name": "--model-name"}, **overrides)
        if data is not None:
            from churnops.data.sources import reader_kind

            reader_kind(data, flag="--data")
        from churnops.modeling.tracking import configure_tracking  # heavy: after the checks

        client = configure_tracking(settings, must_exist=True)
        from churnops.modeling.pyfunc import load_scorer
        from churnops.modeling.rebuild import load_recorded_run
        from churnops.modeling.verify import verify_version

        name = settings.registry.model_name
        with err_console.status("reading the recorded sources") as status:
            recorded = load_recorded_run(client, name=name, version=version, data_path=data)
            scorer, _ = load_scorer(f"models:/{name}/{recorded.version}")
            outcome = verify_version(
                recorded,
                scorer.bundle,
                tolerance=tolerance,
                probability_tolerance=probability_tolerance,
                sample_rows=sample_rows,
                on_stage=lambda what: status.update(f"rebuilding: {what}"),
            )
    if as_json:
        typer.echo(json.dumps(outcome.to_dict()))
    else:
        table = Table(title=f"{name} v{outcome.version} rebuilt from run {outcome.run_id}")
        table.add_column("check")
        table.add_column("result")
        table.add_column("detail")
        for check in outcome.checks:
            table.add_row(check.name, "ok" if check.passed else "[red]DIFFERS[/]", check.detail)
        out_console.print(table)
        for note in outcome.notes:
            err_console.print(f"[yellow]note:[/] {note}")
        if outcome.reproduced:
            out_console.print(f"[green]reproduced[/] in {outcome.duration_seconds:.1f} s")
        else:
            err_console.print(f"[bold red]not reproduced[/]: {outcome.first_difference}")
    if not outcome.reproduced:
        raise typer.Exit(EXIT_NOT_REPRODUCED)
