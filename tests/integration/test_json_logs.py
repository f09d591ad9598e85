"""`--log-format json`: every line a real command or a live server writes on stderr is JSON."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.api import api_settings, churnops_serve, example_record, free_port
from tests.support.models import TrainedModel

pytestmark = pytest.mark.integration
CHURNOPS = str(Path(sys.executable).parent / "churnops")
REQUIRED = ("time", "level", "logger", "event", "pid")


def json_lines(stderr: str) -> list[dict[str, Any]]:
    """Every non-empty stderr line parsed as JSON (fails on the first line that is not)."""
    lines = []
    for raw in stderr.splitlines():
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pytest.fail(f"not a JSON line: {raw!r}\n--- stderr ---\n{stderr}")
        assert all(key in line for key in REQUIRED), line
        lines.append(line)
    return lines


def test_a_command_logs_json_by_flag_and_by_environment(tmp_path: Path) -> None:
    env = os.environ | {"CHURNOPS_HOME": str(tmp_path / "home")}
    env.pop("CHURNOPS_LOG_FORMAT", None)
    # A command that fails: its one error line is a JSON object with level "error".
    failed = subprocess.run(
        [CHURNOPS, "--log-format", "json", "restore", str(tmp_path / "missing.tar.gz")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert failed.returncode == 2
    lines = json_lines(failed.stderr)
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 1 and "missing.tar.gz does not exist" in errors[0]["event"]
    # A command that works, with progress and a warning-level note, set by the environment.
    store = tmp_path / "home" / "predictions.db"
    store.parent.mkdir(parents=True)
    sqlite3.connect(store).execute("CREATE TABLE t (x)").connection.commit()
    done = subprocess.run(
        [CHURNOPS, "backup", "--output", str(tmp_path / "b"), "--mlflow-db", f"sqlite:///{store}"],
        env=env | {"CHURNOPS_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    events = " ".join(line["event"] for line in json_lines(done.stderr))
    assert "backed up the store (t 0)" in events and "no artifacts folder" in events
    assert Path(done.stdout.strip()).is_file()  # stdout stays the command's output
    # Text stays the default.
    text = subprocess.run(
        [CHURNOPS, "restore", str(tmp_path / "missing.tar.gz")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "error:" in text.stderr and "{" not in text.stderr


@pytest.mark.slow
def test_a_live_server_with_workers_logs_only_json(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    settings = api_settings(trained_model, tmp_path)
    dead_port = free_port()  # nothing listens: the store writer children report an outage
    env = os.environ | {
        "CHURNOPS_HOME": settings.home,
        "CHURNOPS_TRACKING_URI": settings.resolved_tracking_uri(),
        "CHURNOPS_DATABASE_URL": f"postgresql+psycopg://root:pw@127.0.0.1:{dead_port}/none",
        "CHURNOPS_SERVING__SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "CHURNOPS_SERVING__KEYS_FILE": str(tmp_path / "keys.json"),
        "CHURNOPS_SERVING__RATE_LIMIT_PER_MINUTE": "0",
        "CHURNOPS_SERVING__RELOAD_INTERVAL_SECONDS": "0",
        "CHURNOPS_SERVING__METRICS_DIR": str(tmp_path / "metrics"),
        "CHURNOPS_LOG_FORMAT": "json",
    }
    with churnops_serve(env, "--workers", "2", "--access-log") as server:
        record = example_record(trained_model)
        for i in range(6):
            response = httpx.post(
                server.url + "/predict",
                json=record,
                headers={"x-request-id": f"req-{i}"},
                timeout=10,
            )
            assert response.status_code == 200
            assert response.headers["x-request-id"] == f"req-{i}"
        refused = httpx.post(server.url + "/predict", json={"nope": 1}, timeout=10)
        assert refused.status_code == 422
        generated = refused.headers["x-request-id"]  # none sent: one made up and echoed
        batch = httpx.post(
            server.url + "/predict/batch",
            json={"customers": [record]},
            headers={"x-request-id": "batch-1"},
            timeout=10,
        )
        assert batch.status_code == 200
    lines = json_lines(server.stderr)
    # Each request's access line names the request and the model version that served it.
    version = str(trained_model.outcome.version)
    by_request = {
        line.get("request_id"): line for line in lines if line["logger"] == "uvicorn.access"
    }
    for request_id, path in [(f"req-{i}", "/predict") for i in range(6)] + [
        (generated, "/predict"),
        ("batch-1", "/predict/batch"),
    ]:
        assert by_request[request_id]["path"] == path, request_id
        assert by_request[request_id]["model_version"] == version, request_id
    assert by_request[generated]["status"] == 422 and len(generated) == 16
    # Lines outside any request carry the served version too (each worker's load line).
    loaded = [line for line in lines if "loaded in" in line["event"]]
    assert loaded and all(line["model_version"] == version for line in loaded), loaded
    loggers = {line["logger"] for line in lines}
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert {line["path"] for line in access} >= {"/ready", "/predict"}
    assert {line["status"] for line in access} >= {200, 422}
    assert any(line["event"].startswith("serving ") for line in lines)  # the CLI's banner
    assert any(name.startswith("churnops.store") for name in loggers), loggers
    assert len({line["pid"] for line in lines}) >= 3  # the CLI, its workers, writer children


def test_warnings_and_mlflow_lines_are_json_too() -> None:
    """Python warnings and MLflow's own logger (which installs a text handler on import unless
    told not to) go through the JSON handler."""
    script = (
        "import logging, warnings\n"
        "from churnops.cli.console import setup_logging\n"
        "setup_logging(False, 'json')\n"
        "warnings.warn('old parameter', RuntimeWarning)\n"
        "import mlflow\n"
        "logging.getLogger('mlflow.store').error('tracking store unreachable')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNOPS_", "MLFLOW_CONF"))}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = json_lines(done.stderr)
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("py.warnings", "warning"),
        ("mlflow.store", "error"),
    ]
    assert (
        "old parameter" in lines[0]["event"] and lines[1]["event"] == "tracking store unreachable"
    )
