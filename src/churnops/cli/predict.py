"""`churnops predict`: score a file or table in batch with the champion (pandas or Spark engine)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

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
from churnops.errors import DataLoadError

if TYPE_CHECKING:
    from churnops.settings import Settings

Advance = Callable[[int, int | None], None]


class Engine(StrEnum):
    pandas = "pandas"
    spark = "spark"


class OnErrorChoice(StrEnum):
    fail = "fail"
    skip = "skip"


class _RateColumn(ProgressColumn):
    """Rows per second since the first chunk (steadier than Rich's sampled speed)."""

    def __init__(self) -> None:
        super().__init__()
        self.started: float | None = None

    def render(self, task: Task) -> Text:
        if self.started is None or not task.completed:
            return Text("", style="cyan")
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


@contextmanager
def _progress(engine: Engine) -> Iterator[Advance | None]:
    """A live rows/s bar for the pandas engine (Spark reports no progress: a spinner)."""
    if engine is Engine.spark:
        with err_console.status("scoring with Spark"):
            yield None
        return
    rate = _RateColumn()
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        rate,
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    with bar:
        task = bar.add_task("scoring", total=None)

        def advance(done: int, total: int | None) -> None:
            if rate.started is None:
                rate.started = time.perf_counter()
            bar.update(task, completed=done, total=total)

        yield advance


def _checked_request(
    settings: Settings,
    source: str,
    output: str | None,
    *,
    model_uri: str | None,
    engine: Engine,
    on_error: OnErrorChoice,
    rejects: str | None,
) -> tuple[str, str]:
    """The model URI and output of a run that can succeed: the input exists, the output is not the
    input nor any sidecar, and every folder written is writable (no heavy import needed)."""
    from churnops.data.sources import is_sql_url, reader_kind
    from churnops.scoring.destinations import check_destinations, default_output

    destination = output or default_output(source)
    if engine is Engine.spark:  # Spark reads folders of part files too
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
    return model_uri or settings.champion_uri(), destination


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
    from churnops.settings import get_settings

    with cli_errors():
        settings = get_settings(config)
        uri, destination = _checked_request(
            settings,
            source,
            output,
            model_uri=model_uri,
            engine=engine,
            on_error=on_error,
            rejects=rejects,
        )
        from churnops.modeling.tracking import model_source

        # A registry or run URI reads the tracking store: never create an empty one for it.
        models = model_source(settings, must_exist=uri.startswith(("models:/", "runs:/")))
        from churnops.scoring.batch import BatchOptions  # heavy: after the cheap checks
        from churnops.scoring.runs import BatchRequest, score_table

        request = BatchRequest(
            source=source,
            output=destination,
            model_uri=uri,
            options=BatchOptions(
                reasons=reasons,
                on_error=on_error.value,
                chunk_rows=chunk_rows,
                keep=tuple(keep or ()),
            ),
            engine=engine.value,
            rejects=rejects,
            spark_master=spark_master,
        )
        with _progress(engine) as advance:
            result = score_table(
                request,
                source=models,
                database_url=settings.resolved_database_url(),
                progress=advance,
            )
    summary = result.summary.to_dict()
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        _print_summary(summary)
