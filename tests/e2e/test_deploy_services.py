"""Each shipped service's own command, run outside a container the way its container runs it.

No Docker engine runs here, so the containers' conditions are rebuilt around the real command
line from deploy/compose.yml and deploy/Dockerfile: uid 1000, a working directory and home it
cannot write (read_only: true), the image's and the service's environment with the container's
volumes and secrets mapped onto folders, loopback only. Each waits until the service's own
healthcheck answers, then checks what stopped the shipped stack:
- MLflow refused every call made as http://mlflow:5000 (Host header not allowed: 403);
- `churnops serve` wrote its spool under the read-only working directory and died at start-up
  (and numba, needing a writable cache folder, could not load the tree walk);
and that the flows profile's Prefect server starts on Postgres writing only to its volume.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from churnops.apikeys import add_key
from tests.support.api import REDIS_URL, example_record, postgres_database
from tests.support.deploy import (
    Container,
    compose,
    image_cmd,
    run_as_container,
)
from tests.support.models import TrainedModel
from tests.support.services import needs, require_redis
from tests.support.stores import command_lines, descendants, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def container() -> Iterator[Container]:
    """Host folders for one container, where uid 1000 can reach them (not under pytest's 0700
    temporary root)."""
    if os.geteuid() != 0:
        needs("root", "running a service as uid 1000 takes root")
    root = Path(tempfile.mkdtemp(prefix="churnops-container-"))
    root.chmod(0o755)
    try:
        yield Container.make(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_healthy(process, url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            pytest.fail(
                f"the service exited ({process.returncode}) before it was healthy:\n{stderr[-3000:]}"
            )
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {timeout:g} s")


def _healthcheck_url(service: str, port: int) -> str:
    test = compose()["services"][service]["healthcheck"]["test"]
    url = next(part for part in test if part.startswith("http://127.0.0.1:"))
    return re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", url)


def _loopback(command: list[str], port: int) -> list[str]:
    """The service's command bound to loopback on a free port instead of 0.0.0.0:<its port>."""
    out: list[str] = []
    skip = False
    for i, part in enumerate(command):
        if skip:
            skip = False
            continue
        if part.startswith("--host="):
            out.append("--host=127.0.0.1")
        elif part.startswith("--port="):
            out.append(f"--port={port}")
        elif part in ("--host", "--port") and i + 1 < len(command):
            out += [part, "127.0.0.1" if part == "--host" else str(port)]
            skip = True
        else:
            out.append(part)
    return out


def test_mlflow_answers_the_host_name_compose_gives_it_and_the_trainer_trains(
    container: Container,
) -> None:
    service = compose()["services"]["mlflow"]
    port = free_port()
    command = _loopback(list(service["command"]), port)
    volume = container.mounts["/mlartifacts"]
    command = [
        f"--backend-store-uri=sqlite:///{volume / 'mlflow.db'}"
        if part.startswith("--backend-store-uri=")
        else container.host_path(part)
        for part in command
    ]
    env = container.env("api", "mlflow")
    with run_as_container(command, container, env) as process:
        _wait_healthy(process, _healthcheck_url("mlflow", port), timeout=180)
        # MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no job runner or huey consumer beside it.
        children = command_lines(descendants(process.pid))
        assert children and not [c for c in children if b"huey" in c or b"_job_runner" in c]
        search = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1"
        # What the trainer, the API and the app send: MLFLOW_TRACKING_URI=http://mlflow:5000.
        assert compose()["x-churnops-env"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        answer = httpx.get(search, headers={"Host": "mlflow:5000"}, timeout=30)
        assert answer.status_code == 200, answer.text[:300]
        assert "experiments" in answer.json()
        # The protection stays on for any other name (DNS rebinding).
        other = httpx.get(search, headers={"Host": "rebound.example:5000"}, timeout=30)
        assert other.status_code == 403
        _train_like_the_trainer(container, f"http://127.0.0.1:{port}")
    assert container.unexpected_files() == []


def _train_like_the_trainer(container: Container, mlflow_url: str) -> None:
    """The one-off trainer's command (uid 1000, read-only root) against that MLflow server,
    artifacts uploaded through it; a second run finds the champion and does nothing."""
    import subprocess

    command = compose()["services"]["trainer"]["command"]
    env = container.env(
        "api",
        "trainer",
        MLFLOW_TRACKING_URI=mlflow_url,
        CHURNOPS_TRAINING__CANDIDATES='["logistic_regression"]',
        CHURNOPS_TRAINING__BUDGET_MINUTES="0.01",
    )
    for _ in range(2):
        with run_as_container(command, container, env) as process:
            try:
                process.wait(240)
            except subprocess.TimeoutExpired:
                pytest.fail("the trainer did not finish in 240 s")
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            assert process.returncode == 0, stderr[-3000:]
    aliases = httpx.get(
        f"{mlflow_url}/api/2.0/mlflow/registered-models/alias",
        params={"name": "churn-model", "alias": "champion"},
        timeout=30,
    )
    assert aliases.status_code == 200 and aliases.json()["model_version"]["version"] == "1"


def test_api_starts_as_uid_1000_with_a_read_only_root(
    trained_model: TrainedModel, container: Container
) -> None:
    """The API's image command with the compose environment: keys from the secret, the spool
    on the churnops-home volume, nothing written to the working directory or the home."""
    import mlflow

    from churnops.modeling.tracking import configure_tracking

    require_redis(REDIS_URL)
    configure_tracking(trained_model.settings)
    model_dir = container.root / "model"  # what the registry would hand over
    mlflow.artifacts.download_artifacts(
        artifact_uri=trained_model.champion_uri, dst_path=str(model_dir)
    )
    keys = container.mounts["/run/secrets"] / "api_keys.json"
    key, _ = add_key(keys, name="deploy-test")
    os.chown(keys, 1000, 1000)  # docs/operations.md: the keys secret belongs to uid 1000, 0600
    assert keys.stat().st_mode & 0o077 == 0
    port = free_port()
    shipped = compose()["services"]["api"].get("command") or image_cmd("api")
    command = [*_loopback(shipped, port), "--model-uri", str(model_dir)]
    assert command[:2] == ["churnops", "serve"]
    volume = container.mounts["/var/lib/churnops"]
    with postgres_database() as database_url:
        env = container.env(
            "api",
            "api",
            CHURNOPS_DATABASE_URL=database_url,
            CHURNOPS_REDIS_URL=REDIS_URL,
            MLFLOW_TRACKING_URI=f"sqlite:///{volume / 'unused-mlflow.db'}",
        )
        assert env["CHURNOPS_ENV"] == "production"
        assert env["CHURNOPS_SERVING__KEYS_FILE"] == str(keys)
        with run_as_container(command, container, env) as process:
            _wait_healthy(process, _healthcheck_url("api", port).replace("/health", "/ready"))
            record = example_record(trained_model)
            url = f"http://127.0.0.1:{port}"
            assert httpx.post(url + "/predict", json=record, timeout=10).status_code == 401
            answer = httpx.post(
                url + "/predict",
                json=record,
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
    written = [p for p in volume.rglob("*") if p.is_file()]
    assert any(p.name.startswith("spool") for p in written), written
    assert all(p.stat().st_uid == 1000 for p in written)
    assert container.unexpected_files() == []


def test_prefect_server_of_the_flows_profile_starts_on_postgres(container: Container) -> None:
    """The flows profile's Prefect server: its command, state in Postgres (asyncpg), files only
    in its PREFECT_HOME volume."""
    import subprocess
    import sys

    imported = subprocess.run(
        [sys.executable, "-c", "import prefect.server.api.server"],
        capture_output=True,
        text=True,
        check=False,
    )
    if imported.returncode != 0:  # Prefect 3.8's server needs FastAPI < 0.151 (the flows extra)
        needs("prefect server", f"it does not import here: {imported.stderr.strip()[-200:]}")
    service = compose()["services"]["prefect-server"]
    port = free_port()
    command = _loopback(list(service["command"]), port)
    with postgres_database() as database_url:
        asyncpg_url = database_url.replace("postgresql+psycopg://", "postgresql+asyncpg://")
        env = container.env(
            "flows",
            "prefect-server",
            PREFECT_API_DATABASE_CONNECTION_URL=asyncpg_url,
            PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",
        )
        assert env["PREFECT_HOME"] == str(container.mounts["/var/lib/prefect"])
        with run_as_container(command, container, env) as process:
            _wait_healthy(process, _healthcheck_url("prefect-server", port), timeout=180)
            flows = httpx.post(f"http://127.0.0.1:{port}/api/flows/filter", json={}, timeout=30)
            assert flows.status_code == 200 and flows.json() == []
    assert container.unexpected_files() == []
