"""The "check a window" use case: gather a window, decide, write the report, record it, alert.

`run_monitor` is what `churnops monitor`, the app's "Check now" button and the flows call; each
step is its own function so a flow can run them as separate tasks. Reading the files and the store
happens here; printing and exit codes stay with the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.errors import DataLoadError, StoreError
from churnops.monitoring.temporal import Period
from churnops.monitoring.window import EmptyWindowError, Window, WindowParts, resolve_window
from churnops.settings import MonitoringSettings, Settings

if TYPE_CHECKING:
    from churnops.modeling.scorer import Scorer
    from churnops.monitoring.alerts import AlertEvent
    from churnops.monitoring.monitor import MonitoringReport
    from churnops.monitoring.reference import MonitoringReference
    from churnops.monitoring.summary import WindowSummary
    from churnops.store.store import PredictionStore

EXIT_DRIFT = 1  # what a scheduler acts on: dataset drift, prediction drift or degradation
RESULT_KIND = "drift"  # monitoring_results.kind of a full report (the API's gauges read it)
ALERT_STATE_FILE = Path("monitoring") / "alerts.json"
MAX_BATCH_RUNS = 10_000

Status = Callable[[str], AbstractContextManager[Any]]  # e.g. a Rich console's `status`


def _no_status(message: str) -> AbstractContextManager[Any]:
    return nullcontext()


@dataclass(frozen=True)
class MonitoredModel:
    """The model a run compares against: the exact version loaded, and its scorer."""

    name: str
    version: str
    uri: str  # as asked for (an alias URI stays an alias here; the version says what it meant)
    scorer: Scorer


@dataclass(frozen=True)
class MonitorOutcome:
    """What one monitoring run found and where it went."""

    report: MonitoringReport
    html_path: Path
    json_path: Path
    result_id: int | None  # None with record=False
    alerts: list[AlertEvent]
    source: str
    window: Window | None  # None for a whole file without --since/--window
    rows: dict[str, int]  # rows per source: predictions, batch_runs, file
    skipped_runs: dict[int, str]  # batch run id -> why it was left out
    model: MonitoredModel

    @property
    def drift_found(self) -> bool:
        return self.report.drift_found

    @property
    def exit_code(self) -> int:
        return EXIT_DRIFT if self.drift_found else 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary of the run (`churnops monitor --json`)."""
        report = self.report
        window = self.window
        return {
            "drift_found": report.drift_found,
            "exit_code": self.exit_code,
            "source": self.source,
            "window": (
                {"start": window.start.isoformat(), "end": window.end.isoformat()}
                if window
                else None
            ),
            "rows": self.rows,
            "summary": report.headline() | {"drift_found": report.drift_found},
            "report_html": str(self.html_path),
            "report_json": str(self.json_path),
            "result_id": self.result_id,
            "alerts": [e.model_dump(mode="json") for e in self.alerts],
            "skipped_batch_runs": {str(k): v for k, v in self.skipped_runs.items()},
        }


def run_window(
    settings: Settings, *, since: str | None, window: str | None, current: str | None
) -> Window | None:
    """The time window: always for the store; for a file only when `since` or `window` is given."""
    if current is not None and since is None and window is None:
        return None
    return resolve_window(
        since=since, window=window, default_window=settings.monitoring.default_window
    )


def check_input_files(*, current: str | None, reference: str | None) -> None:
    """Missing files are named before the model is loaded (SQL URLs are checked when read)."""
    from churnops.data.sources import is_sql_url

    for flag, path in (("--current", current), ("--reference", reference)):
        if path is not None and not is_sql_url(path) and not Path(path).exists():
            raise DataLoadError(f"{flag} file not found: {path}")


def load_monitored_model(settings: Settings, model_uri: str | None) -> MonitoredModel:
    """The model behind `model_uri` (default: the champion), pinned to the version resolved now."""
    from churnops.modeling.pyfunc import load_scorer
    from churnops.modeling.registry import model_identity
    from churnops.modeling.tracking import configure_tracking

    uri = model_uri or settings.champion_uri()
    # A registry or run URI reads the tracking store: never create an empty one for it.
    client = configure_tracking(settings, must_exist=uri.startswith(("models:/", "runs:/")))
    identity = model_identity(uri, client)
    scorer, _ = load_scorer(identity.pinned_uri)  # the version recorded is the one used
    return MonitoredModel(name=identity.name, version=identity.version, uri=uri, scorer=scorer)


def load_reference(scorer: Scorer, reference: str | None) -> MonitoringReference:
    """The profile inside the model, or one built from a reference table."""
    from churnops.monitoring.model_reference import reference_from_file, reference_from_scorer

    if reference is None:
        return reference_from_scorer(scorer)
    return reference_from_file(reference, scorer.schema, scorer=scorer)


def read_file_window(
    current: str, scorer: Scorer, parts: WindowParts, window: Window | None
) -> None:
    """Rows of a file: scored when they carry no scores, labelled from the target column."""
    import pandas as pd

    from churnops.data.ingest import read_table
    from churnops.monitoring.model_reference import score_rows
    from churnops.monitoring.summary import PROBABILITY_COLUMN, TIME_COLUMN
    from churnops.monitoring.window import with_labels

    frame = read_table(current)
    if window is not None and TIME_COLUMN in frame.columns:
        times = pd.to_datetime(frame[TIME_COLUMN], errors="coerce", utc=True)
        frame = frame.loc[((times >= window.start) & (times < window.end)).to_numpy()]
    if PROBABILITY_COLUMN not in frame.columns:
        frame = score_rows(frame, scorer)
    parts.add_frame(with_labels(frame, scorer.schema), source="file")


def read_store_window(
    store: PredictionStore, parts: WindowParts, window: Window, *, model_name: str
) -> dict[int, str]:
    """Predictions of the store in the window, plus the batch-run summaries that fit the
    reference (a `--reference` table has another fingerprint: runs are then left out, with why).
    Returns the runs left out."""
    from churnops.monitoring.window import batch_run_summaries
    from churnops.monitoring.window import read_store_window as read_predictions

    read_predictions(store, parts, window, model_name=model_name)  # not other models' traffic
    runs = store.read_batch_runs(since=window.start, limit=MAX_BATCH_RUNS)
    found = batch_run_summaries(runs, parts.reference, window)
    for _, summary in found.summaries:
        parts.add_summary(summary, source="batch_runs")
    return found.skipped


def check_enough_rows(
    parts: WindowParts, settings: MonitoringSettings, *, window: Window | None, where: str
) -> None:
    """An empty or tiny window is an error, never a clean bill of health."""
    if parts.empty:
        span = f" from {window.describe()}" if window is not None else ""
        raise EmptyWindowError(
            f"no predictions in the window{span} in {where}: nothing to compare "
            "(an empty window is not 'no drift'; widen --window or check that predictions "
            "are being stored)"
        )
    if parts.n_rows < settings.min_rows:
        raise EmptyWindowError(
            f"only {parts.n_rows} prediction(s) in the window, fewer than "
            f"monitoring.min_rows={settings.min_rows}: too few to tell drift "
            "from noise (widen --window)"
        )


def record_result(
    store: PredictionStore,
    report: MonitoringReport,
    *,
    window: Window | None,
    run: dict[str, Any],
    html_path: Path,
) -> int:
    """Store the report as a monitoring result (what the API's gauges read); returns its id."""
    try:
        return store.record_monitoring_result(
            kind=RESULT_KIND,
            drift_detected=report.drift_found,
            summary=report.to_dict() | {"run": run},
            window_start=window.start if window else report.window_start,
            window_end=window.end if window else report.window_end,
            created_at=report.created_at,
        )
    except StoreError as exc:
        raise StoreError(
            f"report written to {html_path}, but the result was not stored: {exc}"
        ) from exc


def raise_alerts(
    settings: Settings, report: MonitoringReport, *, webhook: str | None
) -> list[AlertEvent]:
    """Open, keep or close incidents for this report (log + webhook, one alert per incident)."""
    from churnops.monitoring.alerts import AlertManager

    manager = AlertManager(
        Path(settings.home) / ALERT_STATE_FILE,
        webhook_url=webhook or settings.monitoring.webhook_url,
    )
    return manager.process(report)


def run_monitor(
    settings: Settings,
    *,
    since: str | None = None,
    window: str | None = None,
    current: str | None = None,
    reference: str | None = None,
    model_uri: str | None = None,
    period: Period = "day",
    output_dir: Path | None = None,
    webhook: str | None = None,
    record: bool = True,
    status: Status = _no_status,
) -> MonitorOutcome:
    """Compare a window (the store's, or the file `current`) with the model's reference.

    `since`/`window` as `churnops monitor` takes them (ISO date, `7d`); `record` stores the result
    and raises alerts. Bad input, an empty window or a failed write raise `ChurnopsError`s.
    """
    span = run_window(settings, since=since, window=window, current=current)
    check_input_files(current=current, reference=reference)
    with status("loading the model"):
        model = load_monitored_model(settings, model_uri)
    parts = WindowParts(reference=load_reference(model.scorer, reference), period=period)
    # A window is read from an existing store only; recording a file's result may start one.
    store = _open_store(settings, create=current is not None) if current is None or record else None
    try:
        source, skipped = _gather(settings, store, parts, span, current, model, status)
        report, summary = parts.report(settings.monitoring)
        html_path, json_path = _write_report(settings, report, summary, parts, output_dir)
        result_id: int | None = None
        alerts: list[AlertEvent] = []
        if record and store is not None:
            run = _run_record(source, parts, model, reference, html_path, json_path)
            result_id = record_result(store, report, window=span, run=run, html_path=html_path)
            alerts = raise_alerts(settings, report, webhook=webhook)
    finally:
        if store is not None:
            store.close()
    return MonitorOutcome(
        report=report,
        html_path=html_path,
        json_path=json_path,
        result_id=result_id,
        alerts=alerts,
        source=source,
        window=span,
        rows=dict(parts.sources),
        skipped_runs=skipped,
        model=model,
    )


def _open_store(settings: Settings, *, create: bool) -> PredictionStore:
    from churnops.store.store import PredictionStore

    store = PredictionStore(settings.resolved_database_url())
    try:
        store.open(create=create)
    except BaseException:
        store.close()
        raise
    return store


def _gather(
    settings: Settings,
    store: PredictionStore | None,
    parts: WindowParts,
    window: Window | None,
    current: str | None,
    model: MonitoredModel,
    status: Status,
) -> tuple[str, dict[int, str]]:
    """Fill `parts` from the file or the store; returns the source's name and skipped runs."""
    from churnops.store.engine import safe_url

    if current is not None:
        read_file_window(current, model.scorer, parts, window)
        check_enough_rows(parts, settings.monitoring, window=window, where=current)
        return f"file {current}", {}
    assert store is not None and window is not None  # always so without a file
    with status("reading the window"):
        skipped = read_store_window(store, parts, window, model_name=model.name)
    where = f"the store {safe_url(settings.resolved_database_url())}"
    check_enough_rows(parts, settings.monitoring, window=window, where=where)
    return f"prediction store {safe_url(store.url)}", skipped


def _write_report(
    settings: Settings,
    report: MonitoringReport,
    summary: WindowSummary,
    parts: WindowParts,
    output_dir: Path | None,
) -> tuple[Path, Path]:
    from churnops.monitoring.report import write_report

    directory = output_dir or Path(settings.monitoring.reports_dir)
    return write_report(report, summary, parts.reference, directory)


def _run_record(
    source: str,
    parts: WindowParts,
    model: MonitoredModel,
    reference: str | None,
    html_path: Path,
    json_path: Path,
) -> dict[str, Any]:
    """What the stored result says about the run itself (beside the report)."""
    return {
        "source": source,
        "rows": parts.sources,
        "model_name": model.name,
        "model_version": model.version,
        "model_uri": model.uri,
        "reference": reference or "model",
        "report_html": str(html_path),
        "report_json": str(json_path),
    }
