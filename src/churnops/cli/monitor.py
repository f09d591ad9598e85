"""`churnops monitor`: drift, data quality and performance of a window against the model's reference.

Exit codes, for schedulers: 0 no drift, 1 drift found (dataset drift, prediction drift or realised
performance degradation), 2 bad input or nothing to monitor (an empty window is not "no drift").
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from churnops.cli.console import cli_errors, err_console, out_console
from churnops.cli.options import ConfigOption

if TYPE_CHECKING:
    from churnops.monitoring.monitor import MonitoringReport
    from churnops.monitoring.run import MonitorOutcome


class PeriodChoice(StrEnum):
    day = "day"
    week = "week"


def _verdict_rows(report: MonitoringReport) -> list[tuple[str, str]]:
    """Dataset drift, prediction drift and performance, one table row each."""
    drift = report.drift
    verdict = "[bold red]drift[/]" if drift.dataset_drift else "[green]none[/]"
    rows = [
        (
            "dataset drift",
            f"{verdict}: {drift.n_drifted}/{drift.n_features} features"
            + (f" ({', '.join(drift.drifted_features)})" if drift.drifted_features else ""),
        )
    ]
    if report.prediction is not None:
        pred = report.prediction
        flag = "[bold red]drift[/]" if pred.drifted else "[green]none[/]"
        rows.append(
            (
                "prediction drift",
                f"{flag}: PSI {pred.psi:.3f}, mean score {pred.reference_mean:.3f} -> "
                f"{pred.current_mean:.3f}",
            )
        )
    perf = report.performance
    if perf is not None:
        realised = perf.realised.roc_auc if perf.realised else None
        estimated = perf.estimated.roc_auc if perf.estimated else None
        flag = "[bold red]degraded[/]" if perf.degraded else "[green]ok[/]"
        rows.append(
            (
                "performance",
                f"{flag}: ROC-AUC realised {_num(realised)} ({perf.n_labelled:,} labelled), "
                f"estimated {_num(estimated)}, training {_num(perf.training.get('roc_auc'))}",
            )
        )
    return rows


def _outcome_table(outcome: MonitorOutcome) -> Table:
    report = outcome.report
    table = Table(title="Monitoring", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("source", outcome.source)
    if outcome.window is not None:
        table.add_row("window", outcome.window.describe())
    table.add_row(
        "rows",
        f"{report.n_rows:,} (" + ", ".join(f"{k}: {v:,}" for k, v in outcome.rows.items()) + ")",
    )
    for what, value in _verdict_rows(report):
        table.add_row(what, value)
    issues = report.quality.issues
    table.add_row("data quality", f"{len(issues)} issue(s)" if issues else "ok")
    for event in outcome.alerts:
        table.add_row(f"alert {event.action}", event.message)
    if outcome.result_id is not None:
        table.add_row("stored as", f"monitoring result #{outcome.result_id}")
    return table


def _print_outcome(outcome: MonitorOutcome) -> None:
    report = outcome.report
    out_console.print(_outcome_table(outcome))
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
        err_console.print(
            f"[bold red]drift found[/]: {', '.join(why)} (exit code {outcome.exit_code})"
        )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


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
    from churnops.data.sources import reader_kind
    from churnops.modeling.tracking import require_tracking_store
    from churnops.settings import get_settings

    with cli_errors():
        settings = get_settings(config)
        # Cheap checks before the heavy imports; a missing store is reported, never created.
        for flag, path in (("--current", current), ("--reference", reference)):
            if path is not None:
                reader_kind(path, flag=flag)
        require_tracking_store(settings)
        from churnops.monitoring.run import run_monitor  # heavy: after the cheap checks

        outcome = run_monitor(
            settings,
            since=since,
            window=window,
            current=current,
            reference=reference,
            model_uri=model_uri,
            period=period.value,
            output_dir=output_dir,
            webhook=webhook,
            record=record,
            status=err_console.status,
        )
    if as_json:
        typer.echo(json.dumps(outcome.to_dict()))
    else:
        _print_outcome(outcome)
    if outcome.drift_found:
        raise typer.Exit(outcome.exit_code)
