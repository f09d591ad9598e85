"""Rich consoles and the one place CLI errors become a readable line and an exit code."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from churnops.errors import ChurnopsError
from churnops.logformat import LOG_FORMAT_ENV, JsonLinesWriter, LogFormat, json_handler

# Human output goes to stderr so that `--json` leaves stdout machine-readable.
err_console = Console(stderr=True)
out_console = Console()
EXIT_ERROR = 2
JSON_CONSOLE_WIDTH = 4096  # no wrapping of a message across several JSON lines


def setup_logging(verbose: bool, log_format: LogFormat = "text") -> None:
    """Rich lines on stderr, or one JSON object a line (`log_format="json"`, for log pipelines)."""
    os.environ[LOG_FORMAT_ENV] = log_format  # the API's workers and the store writer child too
    # Warnings become log records, and MLflow (imported later, by the commands) is told not to
    # install its own text handler: in JSON mode their lines must be JSON too.
    logging.captureWarnings(log_format == "json")
    if log_format == "json":
        os.environ["MLFLOW_CONFIGURE_LOGGING"] = "false"
        handler: logging.Handler = json_handler()
        # What commands print on stderr (banners, progress, `error: ...`) becomes JSON lines too,
        # unwrapped: a log pipeline gets one object per message.
        err_console.file = JsonLinesWriter()  # type: ignore[assignment]
        err_console.width = JSON_CONSOLE_WIDTH
    else:
        # Back to sys.stderr at the terminal's width (an earlier call in this process may have
        # switched to JSON): Rich treats None as "not set" for both.
        err_console.file = None  # type: ignore[assignment]
        err_console.width = None  # type: ignore[assignment]
        handler = RichHandler(console=err_console, show_path=False)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[handler],
        force=True,
    )
    # Our own events (model swaps, store recovery, replays, resolved alerts) are worth a line.
    logging.getLogger("churnops").setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        # MLflow's advice (type hints, integer columns) is for model authors, not our users.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow(\.|$)")
        warnings.filterwarnings("ignore", category=FutureWarning)
        for noisy in ("mlflow", "alembic", "optuna", "urllib3", "httpx"):
            logging.getLogger(noisy).setLevel(logging.ERROR)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn churnops errors into `error: ...` on stderr and exit code 2 (never a traceback)."""
    try:
        yield
    except ChurnopsError as exc:
        # soft_wrap: one line however narrow the terminal (the line is meant to be grepped).
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True
        )
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None


class RichReporter:
    """Training progress as a Rich progress bar with a line per stage."""

    def __init__(self, console: Console = err_console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("[dim]{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish()
        self.progress.stop()

    def _finish(self) -> None:
        if self.task is not None:
            task = self.progress.tasks[-1]
            self.progress.update(self.task, completed=task.total or 1, total=task.total or 1)

    def stage(self, description: str, total: int | None = None) -> None:
        self._finish()
        self.task = self.progress.add_task(description, total=total or 1, detail="")

    def advance(self, detail: str = "") -> None:
        if self.task is not None:
            self.progress.update(self.task, advance=1, detail=detail)
