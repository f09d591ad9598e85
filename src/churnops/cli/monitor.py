"""`churnops monitor`: drift, data quality and performance of a window against the model's reference.

Exit codes, for schedulers: 0 no drift, 1 drift found (dataset drift, prediction drift or realised
performance degradation), 2 bad input or nothing to monitor (an empty window is not "no drift").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from churnops.cli.console import cli_errors, err_console, out_console
from churnops.cli.options import ConfigOption
from churnops.errors import DataLoadError, StoreError

if TYPE_CHECKING:
    from churnops.modeling.scorer import Scorer
    from churnops.monitoring.alerts import AlertEvent
    from churnops.monitoring.monitor import MonitoringReport
    from churnops.monitoring.reference import MonitoringReference
    from churnops.monitoring.window import Window, WindowParts
    from churnops.settings import Settings
    from churnops.store.store import PredictionStore

EXIT_DRIFT = 1
RESULT_KIND = "drift"  # monitoring_results.kind of a full report (the API's gauges read it)
ALERT_STATE_FILE = Path("monitoring") / "alerts.json"
MAX_BATCH_RUNS = 10_000


class PeriodChoice(StrEnum):
    day = "day"
    week = "week"


@dataclass
class _Outcome:
    report: MonitoringReport
    html_path: Path
    json_path: Path
    result_id: int | None
    alerts: list[AlertEvent]
    source: str
    window: Window | None
    sources: dict[str, int]
    skipped_runs: dict[int, str]


def _reference(scorer: Scorer, reference_file: str | None) -> MonitoringReference:
    from churnops.monitoring.model_reference import reference_from_file, reference_from_scorer

    if reference_file is None:
        return reference_from_scorer(scorer)
    return reference_from_file(reference_file, scorer.schema, scorer=scorer)


def _file_window(current: str, scorer: Scorer, parts: WindowParts, window: Window | None) -> None:
    """Rows of a file: scored when they carry no scores, labelled from the target column."""
    from churnops.data.ingest import read_table
    from churnops.monitoring.model_reference import score_rows
    from churnops.monitoring.summary import PROBABILITY_COLUMN, TIME_COLUMN
    from churnops.monitoring.window import with_labels

    frame = read_table(current)
    if window is not None and TIME_COLUMN in frame.columns:
        import pandas as pd

        times = pd.to_datetime(frame[TIME_COLUMN], errors="coerce", utc=True)
        frame = frame.loc[((times >= window.start) & (times < window.end)).to_numpy()]
    if PROBABILITY_COLUMN not in frame.columns:
        frame = score_rows(frame, scorer)
    parts.add_frame(with_labels(frame, scorer.schema), source="file")


def _store_window(
    store: PredictionStore, parts: WindowParts, window: Window, *, model_name: str
) -> dict[int, str]:
    """Predictions of the store in the window, plus the batch-run summaries that fit the
    reference (a `--reference` table has another fingerprint: runs are then left out, with why)."""
    from churnops.monitoring.window import batch_run_summaries, read_store_window

    read_store_window(store, parts, window, model_name=model_name)  # not other models' traffic
    runs = store.read_batch_runs(since=window.start, limit=MAX_BATCH_RUNS)
    found = batch_run_summaries(runs, parts.reference, window)
    for _, summary in found.summaries:
        parts.add_summary(summary, source="batch_runs")
    return found.skipped


def _record(
    store: PredictionStore,
    report: MonitoringReport,
    *,
    window: Window | None,
    extra: dict[str, Any],
) -> int:
    summary = report.to_dict() | {"run": extra}
    return store.record_monitoring_result(
        kind=RESULT_KIND,
        drift_detected=report.drift_found,
        summary=summary,
        window_start=window.start if window else report.window_start,
        window_end=window.end if window else report.window_end,
        created_at=report.created_at,
    )


def _print_outcome(outcome: _Outcome) -> None:
    report = outcome.report
    drift = report.drift
    table = Table(title="Monitoring", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("source", outcome.source)
    if outcome.window is not None:
        table.add_row("window", outcome.window.describe())
    table.add_row(
        "rows",
        f"{report.n_rows:,} (" + ", ".join(f"{k}: {v:,}" for k, v in outcome.sources.items()) + ")",
    )
    verdict = "[bold red]drift[/]" if drift.dataset_drift else "[green]none[/]"
    table.add_row(
        "dataset drift",
        f"{verdict}: {drift.n_drifted}/{drift.n_features} features"
        + (f" ({', '.join(drift.drifted_features)})" if drift.drifted_features else ""),
    )
    if report.prediction is not None:
        pred = report.prediction
        flag = "[bold red]drift[/]" if pred.drifted else "[green]none[/]"
        table.add_row(
            "prediction drift",
            f"{flag}: PSI {pred.psi:.3f}, mean score {pred.reference_mean:.3f} -> "
            f"{pred.current_mean:.3f}",
        )
    perf = report.performance
    if perf is not None:
        realised = perf.realised.roc_auc if perf.realised else None
        estimated = perf.estimated.roc_auc if perf.estimated else None
        flag = "[bold red]degraded[/]" if perf.degraded else "[green]ok[/]"
        table.add_row(
            "performance",
            f"{flag}: ROC-AUC realised {_num(realised)} ({perf.n_labelled:,} labelled), "
            f"estimated {_num(estimated)}, training {_num(perf.training.get('roc_auc'))}",
        )
    issues = report.quality.issues
    table.add_row("data quality", f"{len(issues)} issue(s)" if issues else "ok")
    for event in outcome.alerts:
        table.add_row(f"alert {event.action}", event.message)
    if outcome.result_id is not None:
        table.add_row("stored as", f"monitoring result #{outcome.result_id}")
    out_console.print(table)
    # Paths on lines of their own, never wrapped, so they can be copied or parsed.
    out_console.print(f"report: {outcome.html_path}", soft_wrap=True, highlight=False)
    out_console.print(f"summary: {outcome.json_path}", soft_wrap=True, highlight=False)
    if outcome.skipped_runs:
        err_console.print(
            f"[yellow]note:[/] {len(outcome.skipped_runs)} batch run(s) in the window left out: "
            + "; ".join(f"#{k}: {v}" for k, v in sorted(outcome.skipped_runs.items())[:5])
        )
    if report.drift_found:
        why = [
            name
            for name, found in (
                ("dataset drift", report.drift.dataset_drift),
                ("prediction drift", report.prediction_drift),
                ("performance degradation", report.performance_degraded),
            )
            if found
        ]
        err_console.print(f"[bold red]drift found[/]: {', '.join(why)} (exit code 1)")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _json_outcome(outcome: _Outcome) -> dict[str, Any]:
    report = outcome.report
    return {
        "drift_found": report.drift_found,
        "exit_code": EXIT_DRIFT if report.drift_found else 0,
        "source": outcome.source,
        "window": (
            {"start": outcome.window.start.isoformat(), "end": outcome.window.end.isoformat()}
            if outcome.window
            else None
        ),
        "rows": outcome.sources,
        "summary": report.headline() | {"drift_found": report.drift_found},
        "report_html": str(outcome.html_path),
        "report_json": str(outcome.json_path),
        "result_id": outcome.result_id,
        "alerts": [e.model_dump(mode="json") for e in outcome.alerts],
        "skipped_batch_runs": {str(k): v for k, v in outcome.skipped_runs.items()},
    }


def run_monitor(
    settings: Settings,
    *,
    since: str | None,
    window_text: str | None,
    current: str | None,
    reference_file: str | None,
    model_uri: str | None,
    period: PeriodChoice,
    output_dir: Path | None,
    webhook: str | None,
    record: bool,
) -> _Outcome:
    """One monitoring run: gather the window, decide, write the report, record it, alert."""
    from churnops.data.ingest import is_sql_url
    from churnops.modeling.pyfunc import load_scorer
    from churnops.modeling.tracking import configure_tracking
    from churnops.monitoring.alerts import AlertManager
    from churnops.monitoring.report import write_report
    from churnops.monitoring.window import EmptyWindowError, WindowParts, resolve_window
    from churnops.scoring.batch import model_identity
    from churnops.store.engine import safe_url
    from churnops.store.store import PredictionStore

    window: Window | None = None
    if current is None or since is not None or window_text is not None:
        window = resolve_window(
            since=since, window=window_text, default_window=settings.monitoring.default_window
        )
    for flag, path in (("--current", current), ("--reference", reference_file)):
        if path is not None and not is_sql_url(path) and not Path(path).exists():
            raise DataLoadError(f"{flag} file not found: {path}")
    client = configure_tracking(settings)
    uri = model_uri or settings.champion_uri()
    identity = model_identity(uri, client)
    with err_console.status("loading the model"):
        scorer, _ = load_scorer(identity.pinned_uri)  # the version recorded is the one used
    reference = _reference(scorer, reference_file)
    parts = WindowParts(reference=reference, period=period.value)

    store: PredictionStore | None = None
    needs_store = current is None or record
    skipped: dict[int, str] = {}
    source = f"file {current}" if current is not None else "prediction store"
    try:
        if needs_store:
            store = PredictionStore(settings.resolved_database_url())
            store.create()
        if current is not None:
            _file_window(current, scorer, parts, window)
        elif store is not None and window is not None:  # always so without --current
            source = f"prediction store {safe_url(store.url)}"
            with err_console.status("reading the window"):
                skipped = _store_window(store, parts, window, model_name=identity.name)
        if parts.empty:
            where = (
                current
                if current is not None
                else f"the store {safe_url(settings.resolved_database_url())}"
            )
            where = f"in {where}"
            span = f" from {window.describe()}" if window is not None else ""
            raise EmptyWindowError(
                f"no predictions in the window{span} {where}: nothing to compare "
                "(an empty window is not 'no drift'; widen --window or check that predictions "
                "are being stored)"
            )
        if parts.n_rows < settings.monitoring.min_rows:
            raise EmptyWindowError(
                f"only {parts.n_rows} prediction(s) in the window, fewer than "
                f"monitoring.min_rows={settings.monitoring.min_rows}: too few to tell drift "
                "from noise (widen --window)"
            )
        report, summary = parts.report(settings.monitoring)
        directory = output_dir or Path(settings.monitoring.reports_dir)
        html_path, json_path = write_report(report, summary, reference, directory)
        result_id: int | None = None
        alerts: list[AlertEvent] = []
        if record and store is not None:  # --record always opened the store
            try:
                result_id = _record(
                    store,
                    report,
                    window=window,
                    extra={
                        "source": source,
                        "rows": parts.sources,
                        "model_name": identity.name,
                        "model_version": identity.version,
                        "model_uri": uri,
                        "reference": reference_file or "model",
                        "report_html": str(html_path),
                        "report_json": str(json_path),
                    },
                )
            except StoreError as exc:
                raise StoreError(
                    f"report written to {html_path}, but the result was not stored: {exc}"
                ) from exc
            manager = AlertManager(
                Path(settings.home) / ALERT_STATE_FILE,
                webhook_url=webhook or settings.monitoring.webhook_url,
            )
            alerts = manager.process(report)
    finally:
        if store is not None:
            store.close()
    return _Outcome(
        report=report,
        html_path=html_path,
        json_path=json_path,
        result_id=result_id,
        alerts=alerts,
        source=source,
        window=window,
        sources=dict(parts.sources),
        skipped_runs=skipped,
    )


def monitor_command(
    since: str | None = typer.Option(
        None, "--since", help="Window start: ISO date or date-time (UTC unless an offset is given)."
    ),
    window: str | None = typer.Option(
        None,
        "--window",
        help="Window length back from now, e.g. 7d, 12h, 2w (default from config).",
    ),
    current: str | None = typer.Option(
        None,
        "--current",
        help="Monitor this table instead of the store (CSV/XLSX/Parquet/JSONL or URL#table); "
        "scored with the model when it has no churn_probability; its target column is the label.",
    ),
    reference: str | None = typer.Option(
        None, "--reference", help="Reference table to compare against (default: the model's own)."
    ),
    model_uri: str | None = typer.Option(
        None, "--model-uri", help="MLflow model URI (default models:/<name>@champion)."
    ),
    period: PeriodChoice = typer.Option(
        PeriodChoice.day, "--period", help="Time series granularity: day or week."
    ),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", "-o", help="Where the HTML report and JSON go (default reports_dir)."
    ),
    webhook: str | None = typer.Option(
        None, "--webhook", help="Alert webhook URL (default monitoring.webhook_url)."
    ),
    record: bool = typer.Option(
        True, "--record/--no-record", help="Store the result and raise alerts (default yes)."
    ),
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary to stdout only."),
) -> None:
    """Compare a window of predictions with the model's reference; exit 1 when drift is found."""
    from churnops.settings import get_settings

    with cli_errors():
        settings = get_settings(config)
        outcome = run_monitor(
            settings,
            since=since,
            window_text=window,
            current=current,
            reference_file=reference,
            model_uri=model_uri,
            period=period,
            output_dir=output_dir,
            webhook=webhook,
            record=record,
        )
    if as_json:
        typer.echo(json.dumps(_json_outcome(outcome)))
    else:
        _print_outcome(outcome)
    if outcome.report.drift_found:
        raise typer.Exit(EXIT_DRIFT)
