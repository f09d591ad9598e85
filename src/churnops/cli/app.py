"""`churnops app`: the Streamlit app (and, with --with-api, the prediction API beside it).

Both run as child processes, each in its own process group, under a small supervisor: Ctrl-C or
SIGTERM stops every child's whole group (uvicorn workers, Streamlit's threads) and waits for them,
and when one child dies the other is stopped too, so nothing is ever left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import typer

from churnops.cli.console import cli_errors, err_console
from churnops.cli.options import ConfigOption
from churnops.errors import ConfigError
from churnops.settings import Settings, get_settings

ENTRY = Path(__file__).resolve().parents[1] / "dashboard" / "entry" / "streamlit_app.py"
STOP_GRACE_SECONDS = 30.0  # the API flushes its prediction queue on SIGTERM
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str  # answers 200 once the child serves
    address: str  # what people open


def local_address(host: str) -> str:
    """A host to connect to: a wildcard bind is reached on loopback."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def streamlit_child(settings: Settings, *, config: Path | None) -> Child:
    """`streamlit run` of the app's entry script, headless, settings handed over by environment."""
    app = settings.app
    argv = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ENTRY),
        "--server.headless=true",
        f"--server.address={app.host}",
        f"--server.port={app.port}",
        f"--server.maxUploadSize={app.max_upload_mb}",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=viewer",
    ]
    env = dict(os.environ)
    env["CHURNOPS_APP__API_URL"] = app.api_url
    env["CHURNOPS_APP__MAX_UPLOAD_MB"] = str(app.max_upload_mb)
    if config is not None:
        env["CHURNOPS_CONFIG"] = str(config.resolve())
    url = f"http://{local_address(app.host)}:{app.port}"
    return Child("app", argv, env, f"{url}/_stcore/health", url)


def api_child(settings: Settings, *, config: Path | None) -> Child:
    """`churnops serve` on the configured host and port."""
    serving = settings.serving
    argv = [
        sys.executable,
        "-c",
        "from churnops.cli.main import app; app()",
        "serve",
        "--host",
        serving.host,
        "--port",
        str(serving.port),
    ]
    if config is not None:
        argv += ["--config", str(config)]
    scheme = "https" if serving.ssl_certfile else "http"
    url = f"{scheme}://{local_address(serving.host)}:{serving.port}"
    return Child("API", argv, dict(os.environ), f"{url}/health", url)


def _answers(url: str) -> bool:
    import httpx  # ~20 ms, and every command imports this module: only here, where it is used

    try:
        return httpx.get(url, timeout=1.0, verify=False).status_code == 200
    except httpx.HTTPError:
        return False


class Supervisor:
    """Runs children in their own process groups; stops all of them when asked or when one dies."""

    def __init__(self, children: Sequence[Child], *, grace_seconds: float = STOP_GRACE_SECONDS):
        self.children = list(children)
        self.grace_seconds = grace_seconds
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._stop_signal: int | None = None

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        self._stop_signal = signum

    def start(self) -> None:
        for child in self.children:
            self.processes[child.name] = subprocess.Popen(
                child.argv, env=child.env, start_new_session=True
            )

    def stop(self) -> None:
        """SIGTERM every child's group, wait, then SIGKILL whatever is still there."""
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(deadline - time.monotonic(), 0.1))
        for process in self.processes.values():
            _signal_group(process, signal.SIGKILL)  # the group may outlive its leader
            if process.poll() is None:
                process.wait()

    def run(self) -> int:
        """Start, announce the addresses once they answer, wait; the exit code to return."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.start()
            pending = {child.name: child for child in self.children}
            while self._stop_signal is None:
                for name, process in self.processes.items():
                    code = process.poll()
                    if code is not None:
                        err_console.print(
                            f"[bold red]{name} exited (code {code})[/]; stopping the rest"
                        )
                        return code or 1
                for name, child in list(pending.items()):
                    if _answers(child.health_url):
                        err_console.print(f"[bold green]{child.name}[/] on {child.address}")
                        del pending[name]
                time.sleep(POLL_SECONDS)
            err_console.print("stopping...")
            return 0
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def app_command(
    api_url: str | None = typer.Option(
        None, "--api-url", help="Prediction API the app scores through (default from config)."
    ),
    host: str | None = typer.Option(None, "--host", help="Interface to bind (default loopback)."),
    port: int | None = typer.Option(
        None, "--port", "-p", min=1, max=65535, help="Port of the app (default 8501)."
    ),
    with_api: bool = typer.Option(
        False,
        "--with-api",
        help="Also start the prediction API (`churnops serve`) and stop both together.",
    ),
    config: Path | None = ConfigOption,
) -> None:
    """The churnops app in the browser: score customers and files, watch production, manage models."""
    with cli_errors():
        if api_url is not None and not api_url.startswith(("http://", "https://")):
            raise ConfigError(f"--api-url must start with http:// or https://, got {api_url!r}")
        overrides: dict[str, Any] = {"app.api_url": api_url, "app.host": host, "app.port": port}
        flags = {"app.api_url": "--api-url", "app.host": "--host", "app.port": "--port"}
        settings = get_settings(config, flags=flags, **overrides)
        children = [streamlit_child(settings, config=config)]
        if with_api:
            api = api_child(settings, config=config)
            api.env["CHURNOPS_SERVING__APP_URL"] = children[0].address  # the API's GET / links it
            if api_url is None:  # the app talks to the API this command starts
                children[0].env["CHURNOPS_APP__API_URL"] = api.address
            children.insert(0, api)
        code = Supervisor(children).run()
    if code:
        raise typer.Exit(code)
