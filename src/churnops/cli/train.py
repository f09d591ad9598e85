"""`churnops train`: validate, tune and compare candidates, register, gate, print the card."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from churnops.cli.console import RichReporter, cli_errors, err_console, out_console
from churnops.cli.options import (
    ConfigOption,
    DataOption,
    ExcludeOption,
    IdOption,
    PositiveOption,
    TargetOption,
    settings_for_data,
)

TRAIN_FLAGS = {
    "training.budget_minutes": "--budget-minutes",
    "training.allow_leakage": "--allow-leakage",
    "registry.model_name": "--model-name",
    "validation.allow": "--allow",
}

if TYPE_CHECKING:  # the heavy stack is imported when a command runs, so --help stays instant
    from mlflow.tracking import MlflowClient

    from churnops.modeling.train import TrainingOutcome


def comparison_table(outcome: TrainingOutcome) -> Table:
    table = Table(title="Candidates (CV on train, then held-out test)")
    for column in (
        "model",
        "cv roc-auc",
        "test roc-auc",
        "pr-auc",
        "f1",
        "brier",
        "calib.",
        "trials",
    ):
        table.add_column(column, justify="right" if column != "model" else "left")
    for r in sorted(outcome.candidates, key=lambda r: -r.cv["roc_auc"]):
        mark = " *" if r.name == outcome.winner.name else ""
        table.add_row(
            f"{r.name}{mark}",
            f"{r.cv['roc_auc']:.4f}",
            f"{r.test['roc_auc']:.4f}",
            f"{r.test['pr_auc']:.4f}",
            f"{r.test['f1']:.4f}",
            f"{r.test['brier']:.4f}",
            r.calibration,
            f"{r.n_trials}{'+' if r.truncated else ''}",
        )
    return table


def _print_markdown(text: str) -> None:
    """Render a model card on stdout."""
    # rich.markdown pulls in markdown_it and pygments (~50 ms): only `train` prints a card, and
    # every other command (a 10-row `churnops predict` among them) imports this module.
    from rich.markdown import Markdown

    out_console.print(Markdown(text))


def _show_existing_champion(client: MlflowClient, name: str) -> bool:
    """Print the current champion's card; False when there is none."""
    import mlflow

    from churnops.modeling.registry import CHAMPION, alias_version

    champion = alias_version(client, name, CHAMPION)
    if champion is None:
        return False
    card = f"# {name} v{champion.version} (existing champion)"
    if champion.run_id:
        with contextlib.suppress(Exception):  # a run without a card still has a champion
            card = mlflow.artifacts.load_text(f"runs:/{champion.run_id}/model_card.md")
    err_console.print(f"champion exists: {name} v{champion.version}; not retraining")
    _print_markdown(card)
    return True


def train_command(
    data: str | None = DataOption,
    config: Path | None = ConfigOption,
    target: str | None = TargetOption,
    positive_label: str | None = PositiveOption,
    id_column: str | None = IdOption,
    exclude: list[str] | None = ExcludeOption,
    budget_minutes: float | None = typer.Option(None, "--budget-minutes", help="Tuning time cap."),
    allow_leakage: bool = typer.Option(False, "--allow-leakage", help="Promote even if flagged."),
    model_name: str | None = typer.Option(None, "--model-name", help="Registered model name."),
    allow: list[str] | None = typer.Option(
        None,
        "--allow",
        help="Promote even if this validation check fails (repeatable; recorded), e.g. fairness.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary to stdout only."),
    if_no_champion: bool = typer.Option(
        False, "--if-no-champion", help="Only train when no champion exists; else show its card."
    ),
) -> None:
    """Train and compare candidates on a table, register the winner, promote it if it earns it."""
    with cli_errors():
        settings = settings_for_data(
            config,
            data=data,
            target=target,
            positive_label=positive_label,
            id_column=id_column,
            exclude=exclude,
            flags=TRAIN_FLAGS,
            **{
                "training.budget_minutes": budget_minutes,
                "training.allow_leakage": True if allow_leakage else None,
                "registry.model_name": model_name,
                "validation.allow": allow or None,
            },
        )
        from churnops.data.load import load_training_table  # heavy: after the cheap checks
        from churnops.modeling.tracking import configure_tracking, ensure_experiment
        from churnops.modeling.train import run_training
        from churnops.reporting.eda import write_eda_report

        client = configure_tracking(settings)
        if if_no_champion and _show_existing_champion(client, settings.registry.model_name):
            return
        frame, schema = load_training_table(settings.data)
        experiment_id = ensure_experiment(client, settings)
        with RichReporter() as reporter:
            outcome = run_training(
                frame,
                schema=schema,
                settings=settings,
                client=client,
                experiment_id=experiment_id,
                reporter=reporter,
                eda_writer=lambda frame, schema, path, digest: write_eda_report(
                    frame, schema, path, fingerprint=digest
                ),
            )
        if as_json:
            typer.echo(json.dumps(outcome.summary()))
            return
        out_console.print(comparison_table(outcome))
        if outcome.leakage_flags:
            err_console.print(
                "[bold red]LEAKAGE FLAGGED[/]: " + "; ".join(map(str, outcome.leakage_flags))
            )
        validation = outcome.validation
        if validation is not None and validation.blocking_failures():
            err_console.print(
                "[bold red]VALIDATION FAILED[/]: "
                + "; ".join(map(str, validation.blocking_failures()))
            )
        _print_markdown(outcome.card)
