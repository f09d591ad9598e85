"""`churnops app --with-api` (what `make run` starts): both come up, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from churnops.cli.main import app
from tests.support.api import wait_for
from tests.support.app import (
    alive,
    answers,
    churnops_app,
    processes_with_env,
)
from tests.support.models import TrainedModel
from tests.support.stores import descendants, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_api_and_app_start_together_and_sigint_stops_every_process(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    settings = trained_model.settings
    api_port, app_port = free_port(), free_port()
    env = {
        "CHURNOPS_HOME": settings.home,
        "CHURNOPS_TRACKING_URI": settings.resolved_tracking_uri(),
        "CHURNOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'predictions.db'}",
        "CHURNOPS_SERVING__SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "CHURNOPS_SERVING__KEYS_FILE": str(tmp_path / "keys.json"),
        "CHURNOPS_SERVING__PORT": str(api_port),
        "CHURNOPS_APP__PORT": str(app_port),
    }
    api = f"http://127.0.0.1:{api_port}"
    site = f"http://127.0.0.1:{app_port}"
    with churnops_app(
        ["--with-api"], env, health=[f"{api}/ready", f"{site}/_stcore/health"]
    ) as process:
        children = set(descendants(process.pid))
        assert children <= processes_with_env(f"CHURNOPS_APP__PORT={app_port}")
        assert len(children) >= 2  # the API (and its store writer) and Streamlit
        home = httpx.get(f"{api}/", timeout=5).json()
        assert home["links"]["app"] == site  # the API's front page points at this app
        assert home["model"]["alias"] == "champion"
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    assert wait_for(lambda: not any(alive(pid) for pid in children), timeout=10)
    assert not processes_with_env(f"CHURNOPS_APP__PORT={app_port}")
    assert not answers(f"{api}/health") and not answers(f"{site}/_stcore/health")


def test_app_child_that_cannot_start_stops_the_api_too(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """A port already taken: the app exits, the supervisor stops the API and exits non-zero."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        app_port = taken.getsockname()[1]
        settings = trained_model.settings
        env = {
            "CHURNOPS_HOME": settings.home,
            "CHURNOPS_TRACKING_URI": settings.resolved_tracking_uri(),
            "CHURNOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'predictions.db'}",
            "CHURNOPS_SERVING__SPOOL_PATH": str(tmp_path / "spool.jsonl"),
            "CHURNOPS_SERVING__PORT": str(free_port()),
            "CHURNOPS_APP__PORT": str(app_port),
        }
        process = subprocess.Popen(
            [sys.executable, "-c", "from churnops.cli.main import app; app()", "app", "--with-api"],
            env={**os.environ, **env},
            stderr=subprocess.PIPE,
        )
        _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert b"app exited" in stderr
    assert not processes_with_env(f"CHURNOPS_APP__PORT={app_port}")  # the API was stopped too


def test_bad_api_url_is_one_readable_line() -> None:
    result = CliRunner().invoke(app, ["app", "--api-url", "localhost:8000"])
    assert result.exit_code == 2
    assert "--api-url must start with http:// or https://" in result.output
    assert "Traceback" not in result.output


def test_port_out_of_range_is_refused() -> None:
    result = CliRunner().invoke(app, ["app", "--port", "70000"])
    assert result.exit_code == 2
