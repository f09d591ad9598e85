"""`churnops models list|promote|rollback`: the registry, from the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from churnops.cli.console import cli_errors, err_console, out_console
from churnops.cli.options import ConfigOption
from churnops.settings import get_settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

app = typer.Typer(
    help="List, promote and roll back registered model versions.", no_args_is_help=True
)
NameOption = typer.Option(None, "--model-name", help="Registered model name (default from config).")


def _registry(config: Path | None, model_name: str | None) -> tuple[MlflowClient, str]:
    """The MLflow client of the configured store, and the model name to act on."""
    from churnops.modeling.tracking import configure_tracking

    settings = get_settings(
        config, flags={"registry.model_name": "--model-name"}, **{"registry.model_name": model_name}
    )
    return configure_tracking(settings, must_exist=True), settings.registry.model_name


@app.command("list")
def list_command(
    config: Path | None = ConfigOption,
    model_name: str | None = NameOption,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Versions with aliases and key metrics, newest first."""
    with cli_errors():
        client, name = _registry(config, model_name)
        from churnops.modeling import registry  # after the cheap checks: it imports MLflow

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
    with cli_errors():
        client, name = _registry(config, model_name)
        from churnops.retraining.by_hand import promote_by_hand  # imports MLflow

        settings = get_settings(config)
        moved = promote_by_hand(
            client, settings.resolved_database_url(), name=name, version=version, why=why
        )
        out_console.print(f"{name} v{moved.version} is now [bold]champion[/]")
        _warn_unrecorded(moved.not_recorded)


def _warn_unrecorded(problem: str | None) -> None:
    if problem is not None:
        err_console.print(f"[yellow]warning:[/] {problem}")


@app.command("rollback")
def rollback_command(
    why: str = typer.Option("manual rollback", "--why", help="Recorded with the rollback."),
    config: Path | None = ConfigOption,
    model_name: str | None = NameOption,
) -> None:
    """Give the champion alias back to the previous champion."""
    with cli_errors():
        client, name = _registry(config, model_name)
        from churnops.retraining.by_hand import rollback_by_hand  # imports MLflow

        settings = get_settings(config)
        moved = rollback_by_hand(client, settings.resolved_database_url(), name=name, why=why)
        out_console.print(f"{name} v{moved.version} is champion again")
        _warn_unrecorded(moved.not_recorded)
