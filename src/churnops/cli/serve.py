"""`churnops serve`: the prediction API on uvicorn (one process, or N workers via a factory)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from churnops.cli.console import cli_errors, err_console
from churnops.cli.options import ConfigOption
from churnops.logformat import requested_format, uvicorn_log_config
from churnops.settings import get_settings

if TYPE_CHECKING:
    from churnops.settings import ServingSettings


def serve_command(
    host: str | None = typer.Option(
        None, "--host", help="Interface to bind (default from config)."
    ),
    port: int | None = typer.Option(None, "--port", "-p", help="Port (default from config)."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Worker processes."),
    model_uri: str | None = typer.Option(
        None, "--model-uri", help="Model to serve (default models:/<name>@champion)."
    ),
    ssl_certfile: str | None = typer.Option(None, "--ssl-certfile", help="TLS certificate (PEM)."),
    ssl_keyfile: str | None = typer.Option(None, "--ssl-keyfile", help="TLS private key (PEM)."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
    config: Path | None = ConfigOption,
) -> None:
    """Serve the champion over HTTP(S): /predict, /predict/batch, /feedback, /metrics, /docs."""
    # One request is one row: OpenMP thread teams (xgboost's DMatrix for the reasons) cost 10x
    # more than they save and fight the event loop for the cores. Must be set before xgboost loads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with cli_errors():
        overrides: dict[str, Any] = {
            "serving.host": host,
            "serving.port": port,
            "serving.workers": workers,
            "serving.model_uri": model_uri,
            "serving.ssl_certfile": ssl_certfile,
            "serving.ssl_keyfile": ssl_keyfile,
        }
        flags = {dotted: "--" + dotted.split(".")[1].replace("_", "-") for dotted in overrides}
        settings = get_settings(config, flags=flags, **overrides)
        serving = settings.serving
        # Fails fast (e.g. production without keys) before binding. With several workers this
        # process only becomes their supervisor: it checks without importing the web stack.
        app: Any = None
        if serving.workers > 1:
            from churnops.api.preflight import preflight

            warning = preflight(settings)
        else:
            from churnops.api.app import create_app

            app = create_app(settings)
            warning = app.state.limits_warning
        if warning:  # several workers, no Redis: said once, not per worker
            err_console.print(f"warning: {warning}")
        options: dict[str, Any] = {
            "host": serving.host,
            "port": serving.port,
            "access_log": access_log,
            "log_level": "info" if access_log else "warning",
            "ssl_certfile": serving.ssl_certfile,
            "ssl_keyfile": serving.ssl_keyfile,
            "timeout_graceful_shutdown": 30,
        }
        if requested_format() == "json":  # uvicorn applies it in every worker
            options["log_config"] = uvicorn_log_config(access_log=access_log)
        scheme = "https" if serving.ssl_certfile else "http"
        err_console.print(
            f"serving {settings.champion_uri()} on {scheme}://{serving.host}:{serving.port} "
            f"with {serving.workers} worker(s)"
        )
        if serving.workers > 1:
            _run_workers(serving, overrides, config=config, options=options)
        else:
            import uvicorn

            uvicorn.run(app, **options)


def _run_workers(
    serving: ServingSettings,
    overrides: dict[str, Any],
    *,
    config: Path | None,
    options: dict[str, Any],
) -> None:
    """uvicorn with N workers, each building its own app from the environment.

    This process becomes the lean supervisor (`churnops.api.supervisor`, by exec: same pid), so
    the parent of the workers does not keep what validating the app imported.
    """
    import sys

    from churnops.api.supervisor import REMOVE_ON_EXIT, command

    # Each worker builds its own app from the environment: hand the CLI overrides on.
    for dotted, value in overrides.items():
        if value is not None:
            os.environ["CHURNOPS_" + dotted.upper().replace(".", "__")] = str(value)
    if config is not None:
        os.environ["CHURNOPS_CONFIG"] = str(config)
    # The workers add up each other's counts in /metrics through this folder.
    if serving.metrics_dir is None:
        shared = tempfile.mkdtemp(prefix="churnops-metrics-")
        os.environ["CHURNOPS_SERVING__METRICS_DIR"] = shared
        options = {**options, REMOVE_ON_EXIT: shared}
    sys.stdout.flush()
    sys.stderr.flush()
    argv = command(sys.executable, {**options, "workers": serving.workers})
    os.execv(argv[0], argv)
