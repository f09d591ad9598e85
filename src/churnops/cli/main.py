"""The `churnops` command: one Typer app, sub-commands delegate to the core."""

from __future__ import annotations

import os
from enum import StrEnum

import typer

from churnops import __version__
from churnops.cli import app as app_cli
from churnops.cli import (
    backup,
    data,
    deploy,
    eda,
    evaluate,
    export,
    flows,
    keys,
    lineage,
    models,
    monitor,
    predict,
    project,
    retrain,
    serve,
    train,
    validate,
    verify,
)
from churnops.cli.console import setup_logging
from churnops.logformat import LOG_FORMAT_ENV


class LogFormatChoice(StrEnum):
    text = "text"
    json = "json"


app = typer.Typer(
    name="churnops",
    help="Churn and customer-risk prediction, from raw table to monitored production model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"churnops {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    log_format: LogFormatChoice = typer.Option(
        LogFormatChoice.text,
        "--log-format",
        envvar=LOG_FORMAT_ENV,
        case_sensitive=False,
        help="Log lines as text, or as one JSON object a line (for log pipelines).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """churnops: train, register, serve, score and monitor churn models."""
    # MLflow's download bars and telemetry are noise in a CLI that draws its own progress.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    setup_logging(verbose, log_format.value)


app.command("train")(train.train_command)
app.command("eda")(eda.eda_command)
app.command("predict")(predict.predict_command)
app.command("monitor")(monitor.monitor_command)
app.command("validate")(validate.validate_command)
app.add_typer(models.app, name="models")
app.add_typer(deploy.app, name="deploy")
app.command("serve")(serve.serve_command)
app.add_typer(keys.app, name="keys")
app.command("backup")(backup.backup_command)
app.command("restore")(backup.restore_command)
app.command("app")(app_cli.app_command)
app.command("retrain")(retrain.retrain_command)
app.add_typer(flows.app, name="flows")
app.command("lineage")(lineage.lineage_command)
app.command("verify")(verify.verify_command)
app.add_typer(data.app, name="data")
app.command("evaluate")(evaluate.evaluate_command)
app.add_typer(export.app, name="export")
app.command(
    "project",
    hidden=True,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)(project.project_command)
