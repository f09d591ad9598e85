"""PredictionStore on a SQLite file: the shared contract plus schema/migration checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from churnops.errors import StoreError
from churnops.store import PredictionStore, head_revision, upgrade_schema
from churnops.store.models import Base
from tests.unit.store.contract import StoreContract, make_prediction


class TestSqliteStore(StoreContract):
    """The backend contract on a migrated SQLite file (fixture `store` from conftest)."""


def test_migrations_match_models(store: PredictionStore) -> None:
    """The hand-written migrations and the ORM models describe the same schema."""
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_upgrade_schema_creates_directory_and_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'dir' / 'p.db'}"
    upgrade_schema(url)
    upgrade_schema(url)  # idempotent
    store = PredictionStore(url)
    tables = set(inspect(store.engine).get_table_names())
    assert {"predictions", "feedback", "batch_runs", "monitoring_results"} <= tables
    assert store.revision() == head_revision()
    store.close()


def test_upgrade_does_not_create_directories(tmp_path: Path) -> None:
    """Only create()/upgrade_schema() make directories; upgrade() reports the missing one."""
    store = PredictionStore(f"sqlite:///{tmp_path / 'missing' / 'p.db'}")
    assert store.ping() is False
    with pytest.raises(StoreError, match="cannot migrate"):
        store.upgrade()
    assert not (tmp_path / "missing").exists()
    store.create()
    assert store.ping() is True and store.schema_ready
    store.close()


def test_errors_are_store_errors(tmp_path: Path) -> None:
    store = PredictionStore(f"sqlite:///{tmp_path / 'never' / 'p.db'}")
    with pytest.raises(StoreError) as info:
        store.write_predictions([make_prediction(1)])
    assert info.value.__cause__ is not None
    with pytest.raises(StoreError):
        store.count_predictions()
    with pytest.raises(StoreError, match="invalid database URL"):
        PredictionStore("not a url")


def test_unmigrated_database_is_an_error(tmp_path: Path) -> None:
    store = PredictionStore(f"sqlite:///{tmp_path / 'empty.db'}")
    assert store.ping() is True
    assert store.revision() is None
    with pytest.raises(StoreError, match="write predictions"):
        store.write_predictions([make_prediction(1)])
    store.close()


def test_in_memory_database_is_shared_across_threads() -> None:
    import threading

    store = PredictionStore("sqlite://")
    store.create()
    thread = threading.Thread(target=lambda: store.write_predictions([make_prediction(1)]))
    thread.start()
    thread.join()
    assert store.count_predictions() == 1
    store.close()


def test_import_is_inert_and_upgrade_works_from_any_directory(tmp_path: Path) -> None:
    """Importing opens nothing, starts no thread, writes no file; migrations need no alembic.ini."""
    db = tmp_path / "sub" / "p.db"
    code = (
        "import os, threading\n"
        "import churnops.store, churnops.store.writer\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert os.listdir('.') == [], os.listdir('.')\n"
        "churnops.store.upgrade_schema(os.environ['DB_URL'])\n"
        "print(churnops.store.PredictionStore(os.environ['DB_URL']).revision())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "DB_URL": f"sqlite:///{db}"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == head_revision()
