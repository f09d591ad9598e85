"""Stored predictions == served predictions, across a restart and across a database outage.

The outage is real: the API talks to PostgreSQL through a TCP proxy the test cuts and restores.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from churnops.api.app import create_app
from churnops.settings import Settings
from churnops.store import PredictionStore
from tests.conftest import TrainedModel
from tests.integration.test_api_support import (
    api_settings,
    example_record,
    free_port,
    postgres_database,
    wait_for,
)

pytestmark = pytest.mark.integration


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the blocked accept() on Linux
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


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
        proxy = TcpProxy(("127.0.0.1", 5432)).start()
        proxied = direct_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        settings = _settings(trained_model, tmp_path, proxied)
        direct = PredictionStore(direct_url)
        served: list[str] = []
        try:
            with TestClient(create_app(settings)) as client:
                served += _serve(client, record, 10)
                assert wait_for(lambda: direct.count_predictions() == 10)

                proxy.cut()  # the database goes away
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

                proxy.cut()  # a second outage, and the service restarts during it
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
            proxy.cut()
            direct.close()
        assert metrics_ok
