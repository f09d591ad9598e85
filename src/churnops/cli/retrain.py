"""`churnops retrain`: the continuous-training loop for cron users (no Prefect needed).

Without options: one pass (rollback watch, policy, retraining when it fires, production gate,
decision). `--check` only says what the policy sees; `--force` retrains whatever the policy says;
`--backtest --since DATE` replays the policy over the stored monitoring checks.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from churnops.cli.console import cli_errors, err_console, out_console
from churnops.cli.options import ConfigOption, settings_for_data
from churnops.errors import ChurnopsError, ConfigError

if TYPE_CHECKING:
    from churnops.retraining.backtest import ReplayedDecision

CheckOption = typer.Option(False, "--check", help="Show what the policy sees; change nothing.")
ForceOption = typer.Option(
    False, "--force", help="Retrain now, whatever the triggers and guards say."
)
BacktestOption = typer.Option(
    False, "--backtest", help="Replay the policy over stored checks (no training)."
)
SinceOption = typer.Option(None, "--since", help="With --backtest: first day to replay (ISO date).")
JsonOption = typer.Option(False, "--json", help="Print the result as JSON.")


def _since(text: str | None) -> datetime:
    from churnops.monitoring.window import parse_since

    if text is None:
        raise ConfigError("--backtest needs --since DATE (e.g. --since 2026-09-01)")
    try:
        return parse_since(text)
    except ChurnopsError as exc:
        raise ConfigError(f"invalid --since: {exc}") from None


def retrain_command(
    check: bool = CheckOption,
    force: bool = ForceOption,
    backtest: bool = BacktestOption,
    since: str | None = SinceOption,
    as_json: bool = JsonOption,
    config: Path | None = ConfigOption,
) -> None:
    """Evaluate the retraining policy and, when it fires, retrain, gate and promote or hold."""
    with cli_errors():
        if sum((check, force, backtest)) > 1:
            raise ConfigError("choose one of --check, --force and --backtest")
        if since is not None and not backtest:
            raise ConfigError("--since goes with --backtest")
        start = _since(since) if backtest else None
        settings = settings_for_data(
            config, data=None, target=None, positive_label=None, id_column=None, exclude=None
        )
        from churnops.retraining import run

        if start is not None:
            _print_backtest(run.backtest(settings, since=start), as_json)
        elif check:
            _print(run.check(settings).to_dict(), as_json, "Retraining policy")
        else:
            with err_console.status("retraining loop"):
                report = run.retrain(settings, force=force)
            _print(report.to_dict(), as_json, "Retraining")


def _print(result: dict[str, object], as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value")
    for key, value in result.items():
        if key == "decisions":
            for d in value:  # type: ignore[attr-defined]
                table.add_row(
                    "decision",
                    f"{d['outcome']} {d.get('trigger') or ''} v{d.get('to_version') or '-'}",
                )
        elif key == "triggers":
            for t in value:  # type: ignore[attr-defined]
                table.add_row("trigger", f"{t['name']} @ {t['window']}: {t['reason']}")
        else:
            table.add_row(key, str(value))
    out_console.print(table)


def _print_backtest(rows: list[ReplayedDecision], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows]))
        return
    retrains = sum(r.action == "retrain" for r in rows)
    table = Table(title=f"Backtest: {retrains} retraining(s) would have started")
    for column in ("at", "window", "action", "trigger", "reason"):
        table.add_column(column)
    for r in rows:
        d = r.to_dict()
        table.add_row(d["at"], d["window"], d["action"], d["trigger"], d["reason"])
    out_console.print(table)
