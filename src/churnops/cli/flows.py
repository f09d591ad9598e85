"""`churnops flows serve`: the Prefect deployments (training, monitoring, retraining) on the
schedules of params.yaml. Needs the `flows` extra; nothing else in churnops imports Prefect."""

from __future__ import annotations

from pathlib import Path

import typer

from churnops.cli.console import cli_errors, err_console
from churnops.cli.options import ConfigOption
from churnops.errors import ConfigError
from churnops.settings import get_settings

app = typer.Typer(
    help="Prefect flows: training, monitoring and the retraining loop.", no_args_is_help=True
)
LimitOption = typer.Option(None, "--limit", min=1, help="At most this many flow runs at once.")


@app.command("serve")
def serve_command(config: Path | None = ConfigOption, limit: int | None = LimitOption) -> None:
    """Serve the flows as deployments until stopped (PREFECT_API_URL picks the Prefect server)."""
    with cli_errors():
        settings = get_settings(config)
        try:
            import prefect  # noqa: F401
        except ImportError:
            raise ConfigError("Prefect is not installed: pip install 'churnops[flows]'") from None
        from churnops.flows.serve import serve_flows

        schedules = settings.retraining.schedules
        err_console.print(
            f"serving churnops flows (monitoring: {schedules.monitoring}, retraining: {schedules.retraining})"
        )
        serve_flows(schedules, config=str(config.resolve()) if config else None, limit=limit)
