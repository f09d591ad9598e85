"""`churnops lineage PREDICTION_ID | --customer ID`: where one prediction came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from churnops.cli.console import cli_errors, out_console
from churnops.cli.options import ConfigOption
from churnops.errors import ConfigError

if TYPE_CHECKING:
    from churnops.operations.trace import PredictionLineage


def _section(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in rows.items():
        if value not in (None, "", [], {}):
            table.add_row(key, escape(value if isinstance(value, str) else json.dumps(value)))
    return table


def print_lineage(lineage: PredictionLineage) -> None:
    out_console.print(_section("Prediction", lineage.prediction))
    out_console.print(_section("Model version", lineage.model))
    if lineage.training_run:
        out_console.print(_section("Training run", lineage.training_run))
    for source in lineage.data.get("sources", []):
        out_console.print(_section(f"Data source: {source['role']}", source))
    data = {k: v for k, v in lineage.data.items() if k != "sources"}
    out_console.print(_section("Training data", data))
    if lineage.code:
        out_console.print(_section("Code and environment", lineage.code))
    for event in lineage.registry_events:
        out_console.print(_section(f"Registry: {event['action']}", event))
    for decision in lineage.decisions:
        out_console.print(_section(f"Decision {decision['id']}", decision))
    for note in lineage.notes:
        out_console.print(f"[yellow]note:[/] {escape(note)}")


def lineage_command(
    prediction_id: str | None = typer.Argument(
        None, metavar="[PREDICTION_ID]", help="A stored prediction's id."
    ),
    customer: str | None = typer.Option(
        None, "--customer", help="Trace this customer's latest prediction instead."
    ),
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object to stdout only."),
) -> None:
    """The prediction, its model version and the alias it had then, the training run, the data
    sources and their fingerprints, and the promotion decisions behind that version."""
    from churnops.settings import get_settings

    with cli_errors():
        if (prediction_id is None) == (customer is None):
            raise ConfigError("give either a PREDICTION_ID or --customer ID")
        settings = get_settings(config)
        from churnops.modeling.tracking import configure_tracking

        client = configure_tracking(settings, must_exist=True)  # a missing store: one line
        from churnops.operations.trace import prediction_lineage  # heavy: after the checks
        from churnops.store.store import PredictionStore

        with PredictionStore(settings.resolved_database_url()) as store:
            store.open(create=False)
            lineage = prediction_lineage(
                store, client, prediction_id=prediction_id, customer_id=customer
            )
    if as_json:
        typer.echo(json.dumps(lineage.to_dict(), default=str))
    else:
        print_lineage(lineage)
