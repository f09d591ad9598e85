"""`churnops backup` / `churnops restore` round trips on SQLite and on the real PostgreSQL.

Every table of the prediction store and of the MLflow database is digested row by row (sha256 of
all rows in primary-key order) before the backup and after the restore; the digests must match.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from churnops.cli.main import app
from churnops.operations import BackupError, BackupSources, create_backup, restore_backup
from churnops.operations import databases as databases_module
from churnops.operations.manifest import MANIFEST_NAME, Manifest
from churnops.store import FeedbackRecord, PredictionStore
from tests.support.stores import postgres_base_url, postgres_schema, require_postgres
from tests.unit.store.contract import make_prediction

pytestmark = pytest.mark.integration
MODEL = "churn-model"


# -- what goes in, and how we compare ----------------------------------------------------------


def fill_store(url: str, rows: int = 40) -> None:
    store = PredictionStore(url)
    store.create()
    store.write_predictions(make_prediction(i) for i in range(rows))
    store.write_feedback(
        FeedbackRecord(label=i % 2, customer_id=f"cust-{i}") for i in range(0, rows, 3)
    )
    store.record_batch_run(
        started_at=datetime(2026, 1, 5, tzinfo=UTC),
        finished_at=datetime(2026, 1, 5, 0, 1, tzinfo=UTC),
        model_name=MODEL,
        model_version="3",
        rows_read=rows,
        rows_scored=rows - 1,
        rows_rejected=1,
    )
    store.close()


def fill_mlflow(tracking_uri: str, artifacts: Path, work: Path) -> None:
    """A run with a param, a metric and an artifact, and a registered version aliased champion."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.create_experiment("churnops", artifact_location=artifacts.as_uri())
    run = client.create_run(experiment)
    client.log_param(run.info.run_id, "max_depth", "4")
    client.log_metric(run.info.run_id, "test_roc_auc", 0.84)
    report = work / "report.html"
    report.write_text("<html>drift report</html>")
    client.log_artifact(run.info.run_id, str(report), artifact_path="reports")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(MODEL)
    version = client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias(MODEL, "champion", version.version)


def digests(url: str) -> dict[str, tuple[int, str]]:
    """(rows, sha256 of every row in key order) per table of the database at `url`."""
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        out: dict[str, tuple[int, str]] = {}
        with engine.connect() as conn:
            for name, table in sorted(metadata.tables.items()):
                order = list(table.primary_key.columns) or list(table.columns)
                rows = conn.execute(sa.select(table).order_by(*order)).all()
                digest = hashlib.sha256(repr([tuple(row) for row in rows]).encode())
                out[name] = (len(rows), digest.hexdigest())
        return out
    finally:
        engine.dispose()


def tree_digest(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def error_message(stderr: str) -> str:
    """The one `error: ...` message (Rich wraps it at the console width; progress lines precede)."""
    assert stderr.count("error:") == 1, stderr
    return " ".join(stderr.split("error:", 1)[1].split())


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def sqlite_home(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A filled local installation (store, MLflow and artifacts under one home) and its env."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "CHURNOPS_HOME": str(home),
        "CHURNOPS_DATABASE_URL": f"sqlite:///{home / 'predictions.db'}",
        "CHURNOPS_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
    }
    fill_store(env["CHURNOPS_DATABASE_URL"])
    fill_mlflow(env["CHURNOPS_TRACKING_URI"], home / "mlruns", tmp_path)
    return home, env


# -- SQLite --------------------------------------------------------------------------------------


def test_sqlite_round_trip_through_the_cli(
    sqlite_home: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    home, env = sqlite_home
    before = {
        "store": digests(env["CHURNOPS_DATABASE_URL"]),
        "mlflow": digests(env["CHURNOPS_TRACKING_URI"]),
    }
    artifacts_before = tree_digest(home / "mlruns")
    assert before["store"]["predictions"][0] == 40 and before["mlflow"]["runs"][0] == 1
    assert artifacts_before, "the run's artifact must be on disk"

    result = cli("backup", "--output", str(tmp_path / "backups"), env=env)
    assert result.exit_code == 0, result.output
    archive = Path(result.stdout.strip().splitlines()[-1])
    assert archive.is_file() and archive.parent == tmp_path / "backups"
    assert archive.name.startswith("churnops-backup-") and archive.name.endswith(".tar.gz")
    # Nothing but the archive is left in the folder (no staging, no partial file).
    assert [p.name for p in archive.parent.iterdir()] == [archive.name]

    with tarfile.open(archive) as tar:
        manifest = Manifest.from_json(tar.extractfile(MANIFEST_NAME).read())
        names = set(tar.getnames())
    assert manifest.store.tables["predictions"] == 40
    assert manifest.store.tables["feedback"] == before["store"]["feedback"][0]
    assert manifest.mlflow is not None and manifest.mlflow.tables["registered_models"] == 1
    assert manifest.artifacts is not None and manifest.artifacts.files == len(artifacts_before)
    assert names == {MANIFEST_NAME, *manifest.members}

    fresh = tmp_path / "fresh"
    fresh_env = {
        "CHURNOPS_HOME": str(fresh),
        "CHURNOPS_DATABASE_URL": f"sqlite:///{fresh / 'predictions.db'}",
        "CHURNOPS_TRACKING_URI": f"sqlite:///{fresh / 'mlflow.db'}",
    }
    result = cli("restore", str(archive), env=fresh_env)
    assert result.exit_code == 0, result.output
    assert digests(fresh_env["CHURNOPS_DATABASE_URL"]) == before["store"]
    assert digests(fresh_env["CHURNOPS_TRACKING_URI"]) == before["mlflow"]
    assert tree_digest(fresh / "mlruns") == artifacts_before
    # The restored registry works: the alias resolves to the same version.
    client = MlflowClient(fresh_env["CHURNOPS_TRACKING_URI"], fresh_env["CHURNOPS_TRACKING_URI"])
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    # And the restored store opens and reads.
    with PredictionStore(fresh_env["CHURNOPS_DATABASE_URL"]) as store:
        assert store.count_predictions() == 40


def test_restore_refuses_a_target_with_data(
    sqlite_home: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = sqlite_home
    archive = Path(cli("backup", "--output", str(tmp_path / "b"), env=env).stdout.strip())
    before = digests(env["CHURNOPS_DATABASE_URL"])
    result = cli("restore", str(archive), env=env)  # into the very installation it came from
    assert result.exit_code == 2
    message = error_message(result.stderr)
    assert message.startswith("refusing to restore the prediction store")
    assert "already has tables" in message and "Traceback" not in result.output
    assert digests(env["CHURNOPS_DATABASE_URL"]) == before


def test_restore_refuses_a_non_empty_artifacts_folder_before_writing(
    sqlite_home: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = sqlite_home
    archive = Path(cli("backup", "--output", str(tmp_path / "b"), env=env).stdout.strip())
    fresh = tmp_path / "fresh"
    (fresh / "mlruns").mkdir(parents=True)
    (fresh / "mlruns" / "stray.txt").write_text("x")
    targets = BackupSources(
        store_url=f"sqlite:///{fresh / 'predictions.db'}",
        mlflow_url=f"sqlite:///{fresh / 'mlflow.db'}",
        artifacts=fresh / "mlruns",
    )
    with pytest.raises(BackupError, match="is not empty"):
        restore_backup(archive, targets)
    assert not (fresh / "predictions.db").exists() and not (fresh / "mlflow.db").exists()


def test_a_corrupted_archive_is_refused_before_anything_is_written(
    sqlite_home: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = sqlite_home
    archive = Path(cli("backup", "--output", str(tmp_path / "b"), env=env).stdout.strip())
    fresh = tmp_path / "fresh"
    targets = BackupSources(
        store_url=f"sqlite:///{fresh / 'predictions.db'}",
        mlflow_url=f"sqlite:///{fresh / 'mlflow.db'}",
        artifacts=fresh / "mlruns",
    )
    # 1. Bytes flipped in the compressed stream.
    broken = tmp_path / "broken.tar.gz"
    raw = bytearray(archive.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 16] = bytes(b ^ 0xFF for b in raw[middle : middle + 16])
    broken.write_bytes(bytes(raw))
    result = cli("restore", str(broken), env={"CHURNOPS_HOME": str(fresh)})
    assert result.exit_code == 2 and "Traceback" not in result.output
    message = error_message(result.stderr)
    assert "not a readable backup archive" in message or "corrupted" in message
    # 2. A well-formed archive whose store copy was altered after the manifest was written.
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name == "store.sqlite":
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(member, io.BytesIO(data))
    with pytest.raises(BackupError, match=r"checksum mismatch for store\.sqlite"):
        restore_backup(tampered, targets)
    # 3. Not an archive at all.
    junk = tmp_path / "junk.tar.gz"
    junk.write_text("hello")
    with pytest.raises(BackupError, match="not a readable backup archive"):
        restore_backup(junk, targets)
    assert not fresh.exists(), "nothing may be written for a refused archive"


def test_keep_prunes_the_oldest_archives(
    sqlite_home: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = sqlite_home
    out = tmp_path / "backups"
    made = [
        Path(cli("backup", "--output", str(out), "--keep", "2", env=env).stdout.strip())
        for _ in range(3)
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in made[1:])
    assert not made[0].exists()
    result = cli("backup", "--output", str(out), "--keep", "0", env=env)
    assert result.exit_code == 2 and "--keep" in result.output


def test_tracking_through_a_server_needs_the_backend_database(tmp_path: Path) -> None:
    env = {
        "CHURNOPS_HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": "http://admin:hunter2@mlflow:5000",
    }
    result = cli("backup", "--output", str(tmp_path / "b"), env=env)
    assert result.exit_code == 2
    assert "--mlflow-db" in result.stderr and "hunter2" not in result.output


# -- PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture
def restore_database() -> Iterator[str]:
    """A new, empty database on the local server (dropped afterwards): where a restore goes."""
    base = postgres_base_url()
    require_postgres(base)
    name = f"churnops_restore_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _with_password(url: str, password: str) -> str:
    # The local server trusts loopback, so any password connects: enough to prove where it goes.
    return sa.engine.make_url(url).set(password=password).render_as_string(hide_password=False)


def _schema_of(url: str) -> str:
    options = str(sa.engine.make_url(url).query["options"])
    return options.split("search_path=", 1)[1]


def test_postgres_round_trip_with_password_kept_off_argv_and_manifest(
    tmp_path: Path, restore_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    calls: list[tuple[list[str], dict[str, str]]] = []
    real_run = subprocess.run

    def recording_run(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        calls.append((list(argv), dict(kwargs.get("env") or {})))
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(databases_module.subprocess, "run", recording_run)
    with (
        postgres_schema("churnops_bk_store") as store_url,
        postgres_schema("churnops_bk_mlflow") as mlflow_url,
    ):
        store_url, mlflow_url = (
            _with_password(store_url, secret),
            _with_password(mlflow_url, secret),
        )
        fill_store(store_url, rows=60)
        fill_mlflow(mlflow_url, tmp_path / "artifacts", tmp_path)
        before = {"store": digests(store_url), "mlflow": digests(mlflow_url)}
        sources = BackupSources(store_url, mlflow_url, tmp_path / "artifacts")
        steps: list[str] = []
        result = create_backup(sources, tmp_path / "backups", step=steps.append)
        assert steps[:2] == ["prediction store", "MLflow tracking and registry"]

        manifest = result.manifest
        assert manifest.store.dialect == "postgresql" and manifest.store.member == "store.pgdump"
        assert manifest.store.schema == _schema_of(store_url)
        assert manifest.store.tables["predictions"] == 60
        assert manifest.mlflow is not None and manifest.mlflow.tables["model_versions"] == 1
        assert "***" in manifest.store.url and secret not in manifest.to_json().decode()
        with tarfile.open(result.path) as tar:
            assert secret.encode() not in tar.extractfile(MANIFEST_NAME).read()

        # Restore both schemas into a new database, under the same schema names.
        targets = BackupSources(
            store_url=_with_password(_in_database(restore_database, _schema_of(store_url)), secret),
            mlflow_url=_with_password(
                _in_database(restore_database, _schema_of(mlflow_url)), secret
            ),
            artifacts=tmp_path / "restored-artifacts",
        )
        restored = restore_backup(result.path, targets)
        assert digests(targets.store_url) == before["store"]
        assert digests(targets.mlflow_url) == before["mlflow"]
        assert restored.tables["prediction store"] == manifest.store.tables
        assert tree_digest(tmp_path / "restored-artifacts") == tree_digest(tmp_path / "artifacts")
        client = MlflowClient(targets.mlflow_url, targets.mlflow_url)
        assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"

        # A second restore into the now-filled schemas is refused.
        with pytest.raises(BackupError, match="already has relations"):
            restore_backup(result.path, targets)

    programs = {Path(argv[0]).name for argv, _ in calls}
    assert {"pg_dump", "pg_restore"} <= programs
    for argv, env in calls:
        assert not any(secret in part for part in argv), argv
        if Path(argv[0]).name in ("pg_dump",) or "--dbname" in " ".join(argv):
            assert env.get("PGPASSWORD") == secret  # it goes through the environment instead


def _in_database(database_url: str, schema: str) -> str:
    """`database_url` with search_path `schema` (created empty, as a DBA would prepare it)."""
    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    engine.dispose()
    url = sa.engine.make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def two_databases() -> Iterator[tuple[str, str]]:
    """Two new databases: one store per database in its `public` schema, as compose runs it."""
    base = postgres_base_url()
    require_postgres(base)
    names = [f"churnops_bk_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(base)
    yield tuple(url.set(database=n).render_as_string(hide_password=False) for n in names)  # type: ignore[misc]
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_postgres_public_schema_round_trip(two_databases: tuple[str, str], tmp_path: Path) -> None:
    source, target = two_databases
    fill_store(source, rows=25)
    before = digests(source)
    result = create_backup(BackupSources(source, None, None), tmp_path)
    assert result.manifest.store.schema == "public" and result.manifest.mlflow is None
    restore_backup(result.path, BackupSources(target, None, None))
    assert digests(target) == before
    with PredictionStore(target) as store:
        store.upgrade()  # the restored store is at the current migration: nothing to do
        assert store.count_predictions() == 25


def test_restore_refuses_another_schema_before_writing_anything(
    two_databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = two_databases
    fill_store(source, rows=5)
    mlflow_db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    fill_mlflow(mlflow_db, tmp_path / "artifacts", tmp_path)
    archive = create_backup(BackupSources(source, mlflow_db, None), tmp_path / "b").path
    fresh_mlflow = tmp_path / "fresh" / "mlflow.db"
    elsewhere = _in_database(target, "reporting")
    with pytest.raises(BackupError, match=r"holds schema 'public' but .* selects 'reporting'"):
        restore_backup(archive, BackupSources(elsewhere, f"sqlite:///{fresh_mlflow}", None))
    with pytest.raises(BackupError, match="holds a postgresql copy"):
        restore_backup(archive, BackupSources(mlflow_db, f"sqlite:///{fresh_mlflow}", None))
    assert not fresh_mlflow.exists()
    assert digests(target) == {}
