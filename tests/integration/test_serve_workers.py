"""`churnops serve --workers 2`: whichever worker is scraped, /metrics counts every worker's
requests, and every prediction of both workers reaches the store by shutdown."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from churnops.store import PredictionStore
from tests.support.api import (
    api_settings,
    churnops_serve,
    example_record,
    serve_env,
    wait_for,
)
from tests.support.models import TrainedModel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREDICT_OK = re.compile(
    r'^churnops_http_requests_total\{method="POST",route="/predict",status="200"\} (\S+)$', re.M
)


def _predict_count(text: str) -> float:
    found = PREDICT_OK.search(text)
    return float(found.group(1)) if found else 0.0


def _per_worker(shared: Path) -> dict[int, float]:
    counts = {}
    for path in shared.glob("worker-*.json"):
        data = orjson.loads(path.read_bytes())
        series = data["tally"].get("churnops_http_request_duration_seconds", [])
        counts[data["pid"]] = sum(
            values[0] for labels, values in series if labels[:2] == ["/predict", "POST"]
        )
    return counts


def test_two_workers_one_set_of_metrics_and_one_store(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    settings = api_settings(trained_model, tmp_path)
    shared = tmp_path / "metrics"
    env = serve_env(settings, tmp_path, CHURNOPS_SERVING__METRICS_DIR=str(shared))
    record = example_record(trained_model)
    sent = 0
    with churnops_serve(env, "--workers", "2") as server:
        base = server.url
        # A new connection per request lets the kernel hand them to either worker.
        while sent < 400 and (sent < 40 or len([c for c in _per_worker(shared).values() if c]) < 2):
            assert httpx.post(base + "/predict", json=record, timeout=10).status_code == 200
            sent += 1
        assert wait_for(lambda: len([c for c in _per_worker(shared).values() if c]) == 2)
        # Every scrape, whichever worker answers it, shows the requests of both.
        for _ in range(6):
            assert wait_for(
                lambda: _predict_count(httpx.get(base + "/metrics", timeout=5).text) == sent,
                timeout=10,
            )
    assert server.process.returncode == 0, server.stderr[-2000:]
    store = PredictionStore(settings.resolved_database_url())
    try:
        assert store.count_predictions() == sent
    finally:
        store.close()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _private_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    found = re.findall(r"^Private_(?:Clean|Dirty):\s+(\d+)", text, re.M)
    assert len(found) == 2
    return sum(int(kb) for kb in found) / 1024


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


def test_the_workers_parent_is_a_lean_supervisor_that_cleans_up(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """The CLI validates the app, then execs into uvicorn's process manager alone (same pid):
    the parent of the workers keeps none of the ~180 MB the check imported, and still removes
    the metrics folder it made for the workers when it stops."""
    settings = api_settings(trained_model, tmp_path)
    env = serve_env(settings, tmp_path, TMPDIR=str(tmp_path))  # TMPDIR: its metrics folder
    env.pop("CHURNOPS_SERVING__METRICS_DIR", None)
    with churnops_serve(env, "--workers", "2") as server:
        pid = server.process.pid
        assert "churnops.api.supervisor" in _cmdline(pid)
        assert len(_workers(pid)) == 2
        # What it imported for the workers is shared with them: its own memory is small.
        assert _private_mb(pid) < 60, f"supervisor holds {_private_mb(pid):.0f} MB of its own"
        [metrics_dir] = tmp_path.glob("churnops-metrics-*")
        assert any(metrics_dir.glob("worker-*.json")) or wait_for(
            lambda: any(metrics_dir.glob("worker-*.json"))
        )
        answer = httpx.post(server.url + "/predict", json=example_record(trained_model), timeout=10)
        assert answer.status_code == 200
    assert server.process.returncode == 0, server.stderr[-2000:]
    assert not list(tmp_path.glob("churnops-metrics-*"))


def _workers(supervisor: int) -> list[int]:
    """The workers: forks of the supervisor, so its command line (spawned ones ran
    multiprocessing.spawn), not the writer children they start."""
    return [c for c in _children(supervisor) if "churnops.api.supervisor" in _cmdline(c)]


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_workers_are_forks_of_a_supervisor_that_imported_the_api_once(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """uvicorn's spawn made every worker import the API from scratch (1.3 s of CPU each, all at
    once on the same cores). The workers are forks of the supervisor, which imported it once:
    pydantic's and numpy's compiled modules are mapped there, each worker carries no spawn
    command line, and a killed worker is forked again and answers."""
    settings = api_settings(trained_model, tmp_path)
    env = serve_env(settings, tmp_path)
    record = example_record(trained_model)
    with churnops_serve(env, "--workers", "2") as server:
        supervisor = server.process.pid
        workers = _workers(supervisor)
        assert len(workers) == 2
        assert not [c for c in _children(supervisor) if "multiprocessing" in _cmdline(c)]
        for native in ("_pydantic_core", "_multiarray_umath"):
            assert native in _maps(supervisor), native
        os.kill(workers[0], signal.SIGKILL)

        def replaced() -> bool:
            now = _workers(supervisor)
            return len(now) == 2 and workers[0] not in now

        assert wait_for(replaced, timeout=30), "the killed worker was not forked again"
        [new] = set(_workers(supervisor)) - set(workers)
        pids: set[int] = set()
        # New connections (the kernel hands them to either worker) until the new one answered.
        for _ in range(400):
            assert httpx.post(server.url + "/predict", json=record, timeout=10).status_code == 200
            pids.add(httpx.get(server.url + "/deployment", timeout=10).json()["worker"]["pid"])
            if new in pids:
                break
        assert new in pids, "the forked-again worker never answered"
        assert pids <= set(_workers(supervisor))
    assert server.process.returncode == 0, server.stderr[-2000:]


# Runs `churnops serve --workers 2` up to its exec into the supervisor, which prints what the
# process had imported by then instead of replacing it.
_UP_TO_EXEC = """
import os, sys
def execv(path, argv):
    heavy = ("fastapi", "starlette", "uvicorn", "prometheus_client", "pandas", "numpy", "mlflow")
    print("EXEC", argv[1:3], sorted(m for m in heavy if m in sys.modules), flush=True)
    os._exit(0)
os.execv = execv
from churnops.cli.main import app
sys.argv = ["churnops", "serve", "--workers", "2", "--port", "1"]
app()
"""


def test_the_cli_checks_and_execs_into_the_supervisor_without_the_web_stack(
    tmp_path: Path,
) -> None:
    """The supervisor's parent used to build the app to check the settings: 1.3 s of imports
    (FastAPI, the model stack, Prometheus) before any worker started. `api.preflight` makes the
    same checks (a refusal is tested in test_api_security) without them."""
    env = {**os.environ, "CHURNOPS_HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    env.pop("CHURNOPS_ENV", None)
    done = subprocess.run(
        [sys.executable, "-c", _UP_TO_EXEC], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "EXEC ['-m', 'churnops.api.supervisor'] []" in done.stdout, done.stdout
