"""Stored predictions == served predictions, across a restart and across a database outage.

The outage is real: the API talks to PostgreSQL through a TCP proxy the test cuts and restores.
"""

from __future__ import annotations

import os
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
from tests.support.stores import TcpProxy, command_lines, descendants

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


def _metric(client: TestClient, name: str) -> float:
    """A counter's value in /metrics (0 when it is absent)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name}_total "):
            return float(line.split()[1])
    return 0.0


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
                # A label for a prediction never served: the same answer as with the database up.
                unknown = client.post(
                    "/feedback", json={"prediction_id": "never-served", "label": 1}
                )
                assert (unknown.status_code, unknown.json()["status"]) == (202, "queued")
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
                assert wait_for(lambda: _metric(client, "churnops_store_unmatched_feedback") == 1)
                assert direct.count_feedback() == 2  # the unknown one was set aside, not stored
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


def test_feedback_for_an_unknown_prediction_with_the_database_up(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """202 queued, as during an outage; checked on replay, set aside and counted, never stored."""
    settings = api_settings(trained_model, tmp_path)
    record = example_record(trained_model)
    with TestClient(create_app(settings)) as client:
        (served,) = _serve(client, record, 1)
        known = client.post("/feedback", json={"prediction_id": served, "label": 1})
        assert (known.status_code, known.json()["status"]) == (200, "recorded")
        unknown = client.post("/feedback", json={"prediction_id": "never-served", "label": 0})
        assert (unknown.status_code, unknown.json()["status"]) == (202, "queued"), unknown.text
        assert wait_for(lambda: _metric(client, "churnops_store_unmatched_feedback") == 1)
        assert client.get("/ready").json()["status"] == "ok"
    set_aside = Path(settings.resolved_spool_path() + ".feedback.unmatched.jsonl")
    assert "never-served" in set_aside.read_text()
    store = PredictionStore(settings.resolved_database_url())
    try:
        assert store.count_feedback() == store.count_feedback(attached_only=True) == 1
    finally:
        store.close()


def test_a_full_spool_refuses_and_every_answered_prediction_is_stored(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """`serving.on_spool_full: refuse` during a real outage with a tiny spool: 503 with
    Retry-After once the spool cannot take more; every 200 is stored after the outage."""
    record = example_record(trained_model)
    with postgres_database() as direct_url:
        port = free_port()
        proxy = TcpProxy(port, ("127.0.0.1", 5432))
        proxy.start()
        settings = _settings(
            trained_model, tmp_path, direct_url.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
        )
        settings.serving.on_spool_full = "refuse"
        settings.serving.spool_max_bytes = 40_000  # a few dozen predictions
        direct = PredictionStore(direct_url)
        answered: list[str] = []
        refused = []
        try:
            with TestClient(create_app(settings)) as client:
                answered += _serve(client, record, 5)
                proxy.stop()  # the database goes away
                for i in range(150):
                    if i % 10 == 0:
                        response = client.post("/predict/batch", json={"customers": [record] * 3})
                        ids = [p["prediction_id"] for p in response.json().get("predictions", [])]
                    else:
                        response = client.post("/predict", json=record)
                        ids = [response.json().get("prediction_id")]
                    if response.status_code == 200:
                        answered += ids
                    else:
                        refused.append(response)
                assert len(answered) > 5 + 10, "nothing was spooled during the outage"
                assert refused, "the spool never filled"
                assert {r.status_code for r in refused} == {503}
                assert all(int(r.headers["Retry-After"]) > 0 for r in refused)
                assert all(r.json()["error"] == "store_unavailable" for r in refused)
                assert _metric(client, "churnops_store_refused_records") >= len(refused)
                proxy.start()  # back: the spool is replayed
                assert wait_for(lambda: direct.count_predictions() == len(answered), timeout=60)

                def served_again() -> bool:  # the spool has room again once it is replayed
                    response = client.post("/predict", json=record)
                    if response.status_code == 200:
                        answered.append(response.json()["prediction_id"])
                    return response.status_code == 200

                assert wait_for(served_again)
                assert wait_for(lambda: direct.count_predictions() == len(answered))
                assert _metric(client, "churnops_store_dropped_records") == 0
            assert set(direct.read_predictions()["prediction_id"]) == set(answered)
            assert direct.count_predictions() == len(answered)
        finally:
            proxy.stop()
            direct.close()


def test_the_database_password_is_on_no_command_line_of_the_service(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """The running service's children (the writer process) never carry the URL in argv."""
    secret = "S3cret-" + os.urandom(6).hex()
    record = example_record(trained_model)
    with postgres_database() as url:
        settings = _settings(trained_model, tmp_path, url.replace("root@", f"root:{secret}@"))
        with TestClient(create_app(settings)) as client:
            served = _serve(client, record, 3)
            lines = command_lines(descendants(os.getpid()))
        assert any(b"churnops.store.writer_process" in line for line in lines), lines
        assert not [line for line in lines if secret.encode() in line]
        store = PredictionStore(url)
        try:
            assert set(store.read_predictions()["prediction_id"]) == set(served)
        finally:
            store.close()
