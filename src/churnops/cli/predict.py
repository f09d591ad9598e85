"""`churnops predict`: score a file or table in batch with the champion (pandas or Spark engine)."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from churnops.cli.console import cli_errors, err_console, out_console
from churnops.cli.options import ConfigOption
from churnops.errors import DataLoadError, StoreError

logger = logging.getLogger(__name__)


class Engine(StrEnum):
    pandas = "pandas"
    spark = "spark"


class OnErrorChoice(StrEnum):
    fail = "fail"
    skip = "skip"


class _RateColumn(ProgressColumn):
    """Rows per second since the start (steadier than Rich's sampled speed)."""

    def __init__(self, started: float) -> None:
        super().__init__()
        self.started = started

    def render(self, task: Task) -> Text:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        return Text(f"{task.completed / elapsed:,.0f} rows/s", style="cyan")


def _print_summary(summary: dict[str, object]) -> None:
    table = Table(title="Batch scoring", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key in ("rows_read", "rows_scored", "rows_rejected"):
        table.add_row(key.replace("_", " "), f"{summary[key]:,}")
    levels = summary["risk_levels"]
    assert isinstance(levels, dict)
    for level, value in levels.items():
        table.add_row(f"risk {level}", f"{value['count']:,} ({value['share']:.1%})")
    rate, mean = summary["predicted_churn_rate"], summary["mean_probability"]
    table.add_row("predicted churn rate", f"{rate:.2%}" if isinstance(rate, float) else "-")
    table.add_row("mean probability", f"{mean:.4f}" if isinstance(mean, float) else "-")
    table.add_row("model", f"{summary['model_name']} v{summary['model_version']}")
    table.add_row("duration", f"{summary['duration_seconds']:.2f} s")
    table.add_row("rows/s", f"{summary['rows_per_second']:,.0f}")
    table.add_row("output", str(summary["output"]))
    if summary.get("rejects"):
        table.add_row("rejects", str(summary["rejects"]))
    out_console.print(table)


def _record_failed_run(database_url: str, **failure: Any) -> None:
    """Record a failed run in the store; a store problem is logged, never hides the failure."""
    from churnops.scoring.batch import record_failure
    from churnops.store.store import PredictionStore

    try:
        store = PredictionStore(database_url)
        try:
            store.create()
            record_failure(store, **failure)
        finally:
            store.close()
    except Exception as exc:  # the run's own error is the one to report
        logger.warning("the failed run was not recorded in the store: %s", exc)


def _check_paths(
    source: str, destination: str, rejects: str | None, *, engine: Engine, on_error: OnErrorChoice
) -> None:
    """The input exists; the output is not the input, nor any sidecar; every folder is writable."""
    from churnops.data.sources import is_sql_url, reader_kind
    from churnops.scoring.destinations import check_destinations

    if engine is Engine.spark:  # Spark reads and writes folders of part files too
        if not is_sql_url(source) and not Path(source).exists():
            raise DataLoadError(f"input not found: {source}")
    else:
        reader_kind(source)
    check_destinations(
        source,
        destination,
        rejects=rejects,
        with_rejects=on_error is OnErrorChoice.skip,
        folder_output=engine is Engine.spark,
    )


def predict_command(
    source: str = typer.Argument(
        ...,
        metavar="INPUT",
        help="CSV, Parquet, XLSX, JSON lines or SQLAlchemy URL#table.",
    ),
    output: str | None = typer.Option(
        None, "--output", "-o", help="CSV, Parquet or JSONL file, or SQLAlchemy URL#table."
    ),
    model_uri: str | None = typer.Option(
        None, "--model-uri", help="MLflow model URI (default models:/<name>@champion)."
    ),
    engine: Engine = typer.Option(Engine.pandas, "--engine", help="pandas (one machine) or spark."),
    reasons: bool = typer.Option(False, "--reasons", help="Add the top reasons per customer."),
    on_error: OnErrorChoice = typer.Option(
        OnErrorChoice.fail,
        "--on-error",
        help="fail: stop at bad rows; skip: reject them.",
    ),
    chunk_rows: int = typer.Option(250_000, "--chunk-rows", min=1, help="Rows per chunk."),
    keep: list[str] | None = typer.Option(
        None, "--keep", help="Input column to copy to the output (repeatable)."
    ),
    rejects: str | None = typer.Option(
        None, "--rejects", help="Rejects CSV (default beside the output)."
    ),
    spark_master: str | None = typer.Option(
        None, "--spark-master", help="Spark master URL (default local[*] or spark-submit's)."
    ),
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Score every row of INPUT with the champion; writes OUTPUT, a summary and a rejects file."""
    from churnops.scoring.destinations import default_output
    from churnops.settings import get_settings

    with cli_errors():
        settings = get_settings(config)
        destination = output or default_output(source)
        # Cheap checks first: a run that cannot succeed fails before the heavy imports.
        _check_paths(source, destination, rejects, engine=engine, on_error=on_error)
        from churnops.modeling.tracking import configure_tracking

        uri = model_uri or settings.champion_uri()
        # A registry or run URI reads the tracking store: never create an empty one for it.
        client = configure_tracking(settings, must_exist=uri.startswith(("models:/", "runs:/")))
        from churnops.scoring.batch import BatchOptions, BatchScorer, model_identity, record_run
        from churnops.store.store import PredictionStore

        options = BatchOptions(
            reasons=reasons,
            on_error="skip" if on_error is OnErrorChoice.skip else "fail",
            chunk_rows=chunk_rows,
            keep=tuple(keep or ()),
        )
        identity = model_identity(uri, client)
        started_at = datetime.now(UTC)
        batch: BatchScorer | None = None
        try:
            if engine is Engine.spark:
                from churnops.scoring.spark import score_with_spark

                with err_console.status("scoring with Spark"):
                    result = score_with_spark(
                        source,
                        destination,
                        model_uri=identity.pinned_uri,
                        model=identity,
                        options=options,
                        rejects=rejects,
                        master=spark_master,
                    )
            else:
                from churnops.modeling.pyfunc import load_scorer

                scorer, _ = load_scorer(identity.pinned_uri)
                started = time.perf_counter()
                progress = Progress(
                    SpinnerColumn(),
                    TextColumn("[bold]scoring"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    _RateColumn(started),
                    TimeElapsedColumn(),
                    console=err_console,
                    transient=True,
                )
                with progress:
                    task = progress.add_task("scoring", total=None)

                    def advance(done: int, total: int | None) -> None:
                        progress.update(task, completed=done, total=total)

                    batch = BatchScorer(scorer, identity, options)
                    result = batch.run(source, destination, rejects=rejects, progress=advance)
        except BaseException as exc:
            _record_failed_run(
                settings.resolved_database_url(),
                model=identity,
                source=source,
                output=destination,
                engine_name=engine.value,
                started=started_at,
                error=exc,
                tally=batch.tally if batch is not None else None,
            )
            raise
        summary = result.summary.to_dict()
        try:
            store = PredictionStore(settings.resolved_database_url())
            try:
                store.create()
                record_run(store, result)
            finally:
                store.close()
        except StoreError as exc:
            raise StoreError(
                f"scored into {destination}, but the run was not recorded: {exc}"
            ) from exc
        if as_json:
            typer.echo(json.dumps(summary))
        else:
            _print_summary(summary)
