"""PredictionStore against a real PostgreSQL, in a schema created for this test session.

URL: CHURNOPS_TEST_POSTGRES_URL or postgresql+psycopg://root@127.0.0.1:5432/test. Skipped when
Postgres is unreachable, except under CI=true where that is a failure.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from churnops.store import BatchWriter, PredictionStore, head_revision, upgrade_schema
from tests.support.stores import postgres_schema
from tests.unit.store.contract import StoreContract, make_prediction

pytestmark = pytest.mark.integration

TABLES = ("predictions", "feedback", "batch_runs", "monitoring_results")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A migrated, session-private Postgres schema."""
    with postgres_schema() as url:
        upgrade_schema(url)
        yield url


@pytest.fixture
def store(pg_url: str) -> Iterator[PredictionStore]:
    """A store on the shared schema, emptied before each test."""
    store = PredictionStore(pg_url)
    with store.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
    store.upgrade()
    yield store
    store.close()


class TestPostgresStore(StoreContract):
    """The backend contract on PostgreSQL."""


def test_tables_live_in_the_private_schema(store: PredictionStore) -> None:
    with store.engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    assert schema.startswith("churnops_test_")
    names = set(inspect(store.engine).get_table_names(schema=schema))
    assert {*TABLES, "alembic_version"} <= names
    assert store.revision() == head_revision()


def test_features_are_jsonb(store: PredictionStore) -> None:
    store.write_predictions([make_prediction(1, features={"tenure": 7})])
    with store.engine.connect() as conn:
        kind = conn.execute(text("SELECT jsonb_typeof(features->'tenure') FROM predictions"))
        assert kind.scalar_one() == "number"


def test_concurrent_upgrades_do_not_collide() -> None:
    """Several workers migrating an empty schema at once: the advisory lock serialises them."""
    with postgres_schema("churnops_race") as url:
        errors: list[BaseException] = []

        def migrate() -> None:
            try:
                upgrade_schema(url)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=migrate) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        store = PredictionStore(url)
        assert store.revision() == head_revision()
        store.close()


def test_writer_on_postgres(store: PredictionStore, tmp_path: Path) -> None:
    writer = BatchWriter(store, spool_path=tmp_path / "spool.jsonl", batch_size=100)
    writer.enqueue([make_prediction(i) for i in range(1_000)])
    assert writer.write_pending(max_batches=3) == 300
    writer.close()
    assert store.count_predictions() == 1_000 and writer.state.written_records == 1_000


def test_bad_row_in_a_postgres_batch_is_set_aside_and_the_rest_written(
    store: PredictionStore, tmp_path: Path
) -> None:
    """Errors from the COPY path are the store's errors: data errors reject one record only."""
    good = [make_prediction(i) for i in range(4)]
    bad = make_prediction(9, model_version="x" * 80)  # longer than the column allows
    writer = BatchWriter(store, spool_path=tmp_path / "spool.jsonl")
    writer.enqueue([*good[:2], bad, *good[2:]])
    writer.write_pending()
    state = writer.state
    assert state.written_records == 4 and state.rejected_records == 1
    assert state.spooled_records == 0 and not state.degraded
    assert set(store.read_predictions()["prediction_id"]) == {r.prediction_id for r in good}
    assert bad.prediction_id in (tmp_path / "spool.jsonl.rejected.jsonl").read_text()


def test_lost_connection_during_copy_spools_the_batch(
    store: PredictionStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the session mid-write: an outage, so the batch waits in the spool."""
    from churnops.store import bulk_insert

    original = bulk_insert.PredictionInsert.insert

    def cut_then_insert(self: Any, conn: Any, records: Any) -> None:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with store.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        original(self, conn, records)

    monkeypatch.setattr(bulk_insert.PredictionInsert, "insert", cut_then_insert)
    writer = BatchWriter(store, spool_path=tmp_path / "spool.jsonl", reconnect_interval=60)
    writer.enqueue([make_prediction(i) for i in range(5)])
    writer.write_pending()
    state = writer.state
    assert state.spooled_records == 5 and state.degraded and state.written_records == 0
    assert state.dropped_records == 0 and state.rejected_records == 0


def test_the_head_check_reads_the_schema_alembic_migrates(pg_url: str) -> None:
    """Without Alembic, the store tells an empty schema from one at head as Alembic does, while
    another schema of the database (pg_url's) is at head: only the URL's search_path counts."""
    from alembic.runtime.migration import MigrationContext

    from churnops.store.migrate import database_revisions, is_at_head, shipped_heads

    with postgres_schema("churnops_head") as url:
        store = PredictionStore(url)
        for expected in (False, True):
            with store.engine.connect() as conn:
                theirs = frozenset(MigrationContext.configure(conn).get_current_heads())
                assert database_revisions(conn) == theirs
                assert is_at_head(conn) is expected
                assert theirs == (shipped_heads() if expected else frozenset())
            store.upgrade()
        store.close()
