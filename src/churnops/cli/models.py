"""`churnops models list|promote|rollback`: the registry, from the terminal."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from churnops.cli.console import cli_errors, out_console
from churnops.cli.options import ConfigOption
from churnops.settings import get_settings

app = typer.Typer(
    help="List, promote and roll back registered model versions.", no_args_is_help=True
)
NameOption = typer.Option(None, "--model-name", help="Registered model name (default from config).")


@app.command("list")
def list_command(
    config: Path | None = ConfigOption,
    model_name: str | None = NameOption,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Versions with aliases and key metrics, newest first."""
    from churnops.modeling import registry
    from churnops.modeling.tracking import configure_tracking

    with cli_errors():
        settings = get_settings(config)
        name = model_name or settings.registry.model_name
        client = configure_tracking(settings)
        versions = registry.list_versions(client, name=name)
        if as_json:
            typer.echo(json.dumps([v.__dict__ for v in versions]))
            return
        table = Table(title=f"Registered model {name}")
        for column in (
            "version",
            "aliases",
            "model",
            "cv roc-auc",
            "test roc-auc",
            "threshold",
            "leakage",
            "created",
        ):
            table.add_column(column)
        for v in versions:
            table.add_row(
                v.version,
                ", ".join(v.aliases),
                v.candidate,
                f"{v.cv_roc_auc:.4f}" if v.cv_roc_auc is not None else "-",
                f"{v.test_roc_auc:.4f}" if v.test_roc_auc is not None else "-",
                f"{v.threshold:.4f}" if v.threshold is not None else "-",
                "yes" if v.leakage else "",
                v.created_at,
            )
        out_console.print(table)


@app.command("promote")
def promote_command(
    version: str = typer.Argument(..., help="Version to make champion."),
    why: str = typer.Option("manual promotion", "--why", help="Recorded with the promotion."),
    config: Path | None = ConfigOption,
    model_name: str | None = NameOption,
) -> None:
    """Make VERSION the champion (the previous champion is remembered for rollback)."""
    from churnops.modeling import registry
    from churnops.modeling.tracking import configure_tracking

    with cli_errors():
        settings = get_settings(config)
        name = model_name or settings.registry.model_name
        client = configure_tracking(settings)
        promoted = registry.promote(client, name=name, version=version, why=why)
        out_console.print(f"{name} v{promoted.version} is now [bold]champion[/]")


@app.command("rollback")
def rollback_command(
    why: str = typer.Option("manual rollback", "--why", help="Recorded with the rollback."),
    config: Path | None = ConfigOption,
    model_name: str | None = NameOption,
) -> None:
    """Give the champion alias back to the previous champion."""
    from churnops.modeling import registry
    from churnops.modeling.tracking import configure_tracking

    with cli_errors():
        settings = get_settings(config)
        name = model_name or settings.registry.model_name
        client = configure_tracking(settings)
        restored = registry.rollback(client, name=name, why=why)
        out_console.print(f"{name} v{restored.version} is champion again")
