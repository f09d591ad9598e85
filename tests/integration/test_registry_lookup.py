"""Which version a `models:/` URI names, read from MLflow's own tables (SQLite and Postgres),
always agrees with MLflow's answer, follows alias moves at once, and gives way to MLflow for any
registry it cannot read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient

from churnops.modeling.registry_lookup import lookup_version, parse_model_uri, redact
from tests.support.services import postgres_base_url, require_postgres
from tests.support.stores import free_port

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Registry:
    uri: str
    client: MlflowClient
    model: str  # registered model name
    experiment: str


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One live `mlflow server` for the module (each start costs ~15 s); every test registers
    its own model and experiment in it."""
    with _mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as uri:
        yield uri


@pytest.fixture(params=["sqlite", "postgres", "server"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """A real MLflow registry (MLflow's own migrations) with a model: versions 1 and 2,
    `champion` on version 1; in SQLite, in Postgres, or behind a live `mlflow server` (REST)."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        yield _registry(uri, tmp_path)
        return
    if request.param == "server":
        uri = request.getfixturevalue("mlflow_server")
        suffix = uuid.uuid4().hex[:8]
        yield _registry(uri, tmp_path, model=f"m-{suffix}", experiment=f"e-{suffix}")
        return
    admin_url = postgres_base_url()
    require_postgres(admin_url)
    name = f"churnops_lookup_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    uri = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield _registry(uri, tmp_path)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _mlflow_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--default-artifact-root", str(tmp_path / "server-artifacts"),
    ]  # fmt: skip
    # As deploy/compose.yml runs it: no MLflow job runner (churnops runs no MLflow jobs).
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, "mlflow server exited"
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(0.5)
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _registry(uri: str, tmp_path: Path, *, model: str = "m", experiment: str = "e") -> Registry:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment(
        experiment, artifact_location=(tmp_path / "art").as_uri()
    )
    run_id = client.create_run(experiment_id).info.run_id
    client.create_registered_model(model)
    for index in (1, 2):
        client.create_model_version(model, source=f"runs:/{run_id}/model-{index}", run_id=run_id)
    client.set_registered_model_alias(model, "champion", "1")
    return Registry(uri, client, model, experiment)


def test_the_alias_is_read_as_mlflow_reads_it_and_moves_are_seen_at_once(
    registry: Registry,
) -> None:
    uri, client, m = registry.uri, registry.client, registry.model

    record = lookup_version(uri, f"models:/{m}@champion")

    theirs = client.get_model_version_by_alias(m, "champion")
    assert record is not None
    assert (record.name, record.version) == (m, "1")
    assert record.source == theirs.source and record.created_ms == theirs.creation_timestamp
    assert record.uri == f"models:/{m}/1"

    client.set_registered_model_alias(m, "champion", "2")
    moved = lookup_version(uri, f"models:/{m}@champion")
    assert moved is not None and moved.version == "2"
    assert moved.key(uri) != record.key(uri)

    pinned = lookup_version(uri, f"models:/{m}/1")
    assert pinned == record


def test_unknown_names_aliases_and_versions_are_left_to_mlflow(registry: Registry) -> None:
    uri, m = registry.uri, registry.model
    assert lookup_version(uri, f"models:/{m}@nobody") is None
    assert lookup_version(uri, "models:/other@champion") is None
    assert lookup_version(uri, f"models:/{m}/9") is None


def test_a_model_registered_again_under_the_same_name_gets_another_key(
    registry: Registry, tmp_path: Path
) -> None:
    """Deleting a model and registering it again restarts its versions at 1, with other files:
    the cache must not take the new version 1 for the old one."""
    uri, client, m = registry.uri, registry.client, registry.model
    before = lookup_version(uri, f"models:/{m}/1")
    client.delete_registered_model(m)
    client.create_registered_model(m)
    experiment = client.get_experiment_by_name(registry.experiment)
    assert experiment is not None
    run_id = client.create_run(experiment.experiment_id).info.run_id
    client.create_model_version(m, source=f"runs:/{run_id}/another-model", run_id=run_id)

    after = lookup_version(uri, f"models:/{m}/1")

    assert before is not None and after is not None
    assert after.version == before.version == "1"
    assert after.key(uri) != before.key(uri)


def test_other_registries_and_uris_are_left_to_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _registry(uri, tmp_path)
    assert lookup_version(uri, "models:/m@champion") is not None
    for other in ("file:///tmp/mlruns", "databricks", "databricks://profile"):
        assert lookup_version(other, "models:/m@champion") is None
    assert lookup_version(f"sqlite:///{tmp_path / 'missing.db'}", "models:/m@champion") is None
    assert not (tmp_path / "missing.db").exists()  # read-only: never creates a registry
    for not_registered in ("runs:/abc/model", str(tmp_path), "models:/m"):
        assert lookup_version(uri, not_registered) is None
    monkeypatch.setenv("MLFLOW_WORKSPACE", "team-a")  # another workspace: MLflow's business
    assert lookup_version(uri, "models:/m@champion") is None


def test_uri_parsing_and_redaction() -> None:
    assert parse_model_uri("models:/churn-model@champion") == ("churn-model", "champion", None)
    assert parse_model_uri("models:/churn-model/12") == ("churn-model", None, "12")
    assert parse_model_uri("runs:/x/model") is None
    assert (
        redact("postgresql+psycopg://root:S3cret@db:5432/x")
        == "postgresql+psycopg://root@db:5432/x"
    )
