"""Stored predictions == served predictions, across a restart and across a database outage.

The outage is real: the API talks to PostgreSQL through a TCP proxy the test cuts and restores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from churnops.api.app import create_app
from churnops.settings import Settings
from churnops.store import PredictionStore
from tests.support.api import (
    api_settings,
    example_record,
    free_port,
    postgres_database,
    wait_for,
)
from tests.support.models import TrainedModel
from tests.support.stores import TcpProxy

pytestmark = pytest.mark.integration


def _serve(client: TestClient, record: dict[str, Any], n: int) -> list[str]:
    ids = []
    for i in range(n):
        response = client.post("/predict", json=record | {"customer_id": f"C{i}"})
        assert response.status_code == 200, response.text
        ids.append(response.json()["prediction_id"])
    return ids


def _batch(client: TestClient, record: dict[str, Any], n: int) -> list[str]:
    response = client.post("/predict/batch", json={"customers": [record] * n})
    assert response.status_code == 200, response.text
    return [p["prediction_id"] for p in response.json()["predictions"]]


def _settings(trained: TrainedModel, tmp_path: Path, url: str) -> Settings:
    settings = api_settings(trained, tmp_path)
    settings.database_url = url
    return settings


def test_stored_equals_served_across_restart_sqlite(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    settings = api_settings(trained_model, tmp_path)
    settings.serving.store_flush_interval_seconds = 30  # nothing written before shutdown
    record = example_record(trained_model)
    served: list[str] = []
    for _ in range(2):  # two runs of the service on the same store
        with TestClient(create_app(settings)) as client:
            served += _serve(client, record, 15) + _batch(client, record, 120)
    store = PredictionStore(settings.resolved_database_url())
    try:
        assert store.count_predictions() == len(served) == 270
        assert set(store.read_predictions()["prediction_id"]) == set(served)
    finally:
        store.close()


def test_stored_equals_served_across_restart_postgres(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    record = example_record(trained_model)
    with postgres_database() as url:
        settings = _settings(trained_model, tmp_path, url)
        served: list[str] = []
        for _ in range(2):
            with TestClient(create_app(settings)) as client:
                served += _serve(client, record, 10) + _batch(client, record, 50)
        store = PredictionStore(url)
        try:
            assert store.count_predictions() == len(served) == 120
        finally:
            store.close()


def test_stored_equals_served_across_database_outage(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    record = example_record(trained_model)
    with postgres_database() as direct_url:
        port = free_port()
        proxy = TcpProxy(port, ("127.0.0.1", 5432))
        proxy.start()
        proxied = direct_url.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
        settings = _settings(trained_model, tmp_path, proxied)
        direct = PredictionStore(direct_url)
        served: list[str] = []
        try:
            with TestClient(create_app(settings)) as client:
                served += _serve(client, record, 10)
                assert wait_for(lambda: direct.count_predictions() == 10)

                proxy.stop()  # the database goes away
                served += _serve(client, record, 20) + _batch(client, record, 30)
                # Labels sent meanwhile are spooled too: one for a stored prediction, one for a
                # prediction that is itself still spooled.
                for prediction_id in (served[0], served[15]):
                    answer = client.post(
                        "/feedback", json={"prediction_id": prediction_id, "label": 1}
                    )
                    assert answer.status_code == 202, answer.text
                    assert answer.json()["status"] == "queued"
                ready = client.get("/ready").json()
                assert ready["status"] == "degraded", ready
                assert "store_unreachable" in ready["degraded"]
                ok = wait_for(
                    lambda: client.get("/ready").json()["checks"]["store_spooled_records"] == "50"
                )
                assert ok, client.get("/ready").json()
                assert "store_spooling" in client.get("/ready").json()["degraded"]
                assert direct.count_predictions() == 10

                proxy.start()  # back: the spool is replayed
                assert wait_for(lambda: direct.count_predictions() == 60, timeout=30)
                assert wait_for(lambda: direct.count_feedback(attached_only=True) == 2, timeout=30)
                assert wait_for(lambda: client.get("/ready").json()["status"] == "ok")
                served += _serve(client, record, 5)
                assert wait_for(lambda: direct.count_predictions() == 65)

                proxy.stop()  # a second outage, and the service restarts during it
                served += _serve(client, record, 7)
            assert direct.count_predictions() == 65

            proxy.start()
            with TestClient(create_app(settings)) as client:
                assert wait_for(lambda: direct.count_predictions() == 72, timeout=30)
                served += _serve(client, record, 3)
            assert direct.count_predictions() == len(served) == 75
            assert set(direct.read_predictions()["prediction_id"]) == set(served)
            metrics_ok = True
        finally:
            proxy.stop()
            direct.close()
        assert metrics_ok
