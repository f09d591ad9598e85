"""The decisions table on SQLite and a real Postgres: recorded, read back, idempotent under races."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from churnops.store import PredictionStore
from churnops.store.decisions import Decision, read_decisions, record_decision
from tests.support.stores import postgres_schema

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PredictionStore]:
    if request.param == "sqlite":
        store = PredictionStore(f"sqlite:///{tmp_path / 'store.db'}")
        store.create()
        yield store
        store.close()
        return
    with postgres_schema("churnops_decisions") as url:
        store = PredictionStore(url)
        store.create()
        yield store
        store.close()


def test_decisions_round_trip_newest_first_with_filters(store: PredictionStore) -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    first = Decision(
        kind="retraining",
        outcome="started",
        model_name="churn",
        trigger="drift",
        evidence={"windows": 3, "psi": 0.31},
        created_at=t0,
    )
    second = Decision(
        kind="promotion",
        outcome="promoted",
        model_name="churn",
        from_version="1",
        to_version="2",
        mlflow_run_id="abc",
        actor="alice",
        created_at=t0 + timedelta(hours=1),
    )
    ids = [record_decision(store, first), record_decision(store, second)]
    assert all(isinstance(i, int) for i in ids)
    rows = read_decisions(store)
    assert [r.outcome for r in rows] == ["promoted", "started"]
    assert rows[1].evidence == {"windows": 3, "psi": 0.31}
    assert rows[0].created_at == t0 + timedelta(hours=1)
    assert [r.kind for r in read_decisions(store, kind="retraining")] == ["retraining"]
    assert read_decisions(store, since=t0 + timedelta(minutes=30))[0].actor == "alice"
    assert read_decisions(store, model_name="other") == []


def test_one_decision_per_idempotency_key_even_when_racing(store: PredictionStore) -> None:
    decision = Decision(
        kind="retraining",
        outcome="started",
        model_name="churn",
        trigger="drift",
        idempotency_key="drift:2026-11-30",
    )
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: record_decision(store, decision), range(8)))
    assert sum(r is not None for r in results) == 1
    assert len(read_decisions(store)) == 1
