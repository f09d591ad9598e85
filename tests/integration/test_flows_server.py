"""End to end against a real `prefect server start` (loopback, free port, temporary
PREFECT_HOME, its state in a new Postgres database as in the compose flows profile):
`churnops flows serve` registers the three deployments with the schedules of params.yaml, and a
run of the retraining deployment asked through the server's API completes.

Postgres, not Prefect's default SQLite: with `flows serve`, the runner and the server's own
services all writing, SQLite answers "database is locked" as HTTP 500 (PrefectHQ/prefect#18934),
which once failed this test in CI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import postgres_database
from tests.support.flows import write_params
from tests.support.stores import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BIN = Path(sys.executable).parent


def started(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child in its own process group (so its own children stop with it), output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(check: Any, *, timeout: float, what: str, logs: list[Path]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CHURNOPS_"))} | {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    log = tmp_path / "server.log"
    api = env["PREFECT_API_URL"]
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
    with postgres_database() as database:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database.replace(
            "postgresql+psycopg://", "postgresql+asyncpg://"
        )
        server = started([*command, "--port", str(port), "--no-ui"], env, log)
        try:
            wait_for(
                lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200,
                timeout=120,
                what="prefect server",
                logs=[log],
            )
            yield api, env, log
        finally:
            stop(server)


def test_flows_serve_registers_scheduled_deployments_and_runs_one(
    prefect_server: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    api, env, server_log = prefect_server
    config = write_params(tmp_path)
    serve_log = tmp_path / "serve.log"
    serve = started(
        [str(BIN / "churnops"), "flows", "serve", "--config", str(config)], env, serve_log
    )
    logs = [server_log, serve_log]
    try:

        def deployments() -> list[dict[str, Any]] | None:
            found = httpx.post(f"{api}/deployments/filter", json={}, timeout=5).json()
            return found if len(found) == 3 else None

        by_name = {
            d["name"]: d
            for d in wait_for(deployments, timeout=120, what="3 deployments", logs=logs)
        }
        crons = {
            name: [s["schedule"].get("cron") for s in d["schedules"]] for name, d in by_name.items()
        }
        assert crons == {
            "churnops-monitoring": ["0 * * * *"],
            "churnops-retraining": ["30 3 * * *"],
            "churnops-training": [],
        }
        deployment = by_name["churnops-retraining"]
        assert deployment["parameters"] == {"config": str(config)}

        def created() -> dict[str, Any] | None:
            # A busy server may answer 5xx (CI once got an error body here, not a run): ask
            # again until it answers 201.
            answer = httpx.post(
                f"{api}/deployments/{deployment['id']}/create_flow_run", json={}, timeout=5
            )
            if answer.status_code >= 500:  # its traceback is in server.log, shown on time-out
                return None
            assert answer.status_code == 201, f"{answer.status_code} {answer.text[:1000]}"
            return dict(answer.json())

        run = wait_for(created, timeout=60, what="a flow run of the deployment", logs=logs)

        def finished() -> dict[str, Any] | None:
            state = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=5).json()["state"]
            return state if state["type"] in {"COMPLETED", "FAILED", "CRASHED"} else None

        state = wait_for(finished, timeout=180, what="the retraining run", logs=logs)
        assert state["type"] == "COMPLETED", serve_log.read_text()[-3000:]
    finally:
        stop(serve)
