"""One webhook POST per incident, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from churnops.monitoring.alerts import AlertManager, AlertState
from churnops.monitoring.monitor import MonitoringReport, monitor_frame
from churnops.monitoring.reference import MonitoringReference
from churnops.settings import MonitoringSettings
from tests.unit.monitoring.synthetic import make_customers, with_predictions


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        self.server.received.append(json.loads(self.rfile.read(length)))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def _report(
    reference: MonitoringReference, settings: MonitoringSettings, *, drift: bool, seed: int
) -> MonitoringReport:
    frame = make_customers(
        3_000, seed=seed, charges_shift=18.0 if drift else 0.0, m2m_share=0.8 if drift else 0.55
    )
    report, _ = monitor_frame(with_predictions(frame), reference, settings=settings, period=None)
    return report


def test_webhook_fires_once_per_incident(
    webhook: tuple[str, list[dict[str, Any]]],
    reference: MonitoringReference,
    settings: MonitoringSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, received = webhook
    state = tmp_path / "alerts.json"
    manager = AlertManager(state, webhook_url=url, timeout=2.0)
    drifting = _report(reference, settings, drift=True, seed=50)
    calm = _report(reference, settings, drift=False, seed=51)
    assert drifting.drift.dataset_drift and not calm.drift_found

    first = manager.process(drifting)
    kinds = {"dataset_drift", "prediction_drift", "data_quality"}  # charges beyond training range
    assert {e.kind for e in first} == kinds
    assert all(e.action == "opened" and e.delivered for e in first)
    assert manager.process(drifting) == []  # the incidents continue: no second alert
    assert AlertManager(state, webhook_url=url).process(drifting) == []  # state survives restarts
    assert sorted(r["kind"] for r in received) == sorted(kinds)  # exactly one POST each
    posted = next(r for r in received if r["kind"] == "dataset_drift")
    assert set(posted["details"]["features"]) == {"monthly_charges", "contract"}
    assert "dataset drift" in caplog.text

    resolved = manager.process(calm)
    assert {(e.kind, e.action) for e in resolved} == {(k, "resolved") for k in kinds}
    assert len(received) == 3  # recovery closes the incidents; it is logged, not posted
    assert AlertState.load(state).open == {}

    manager.process(drifting)  # new incidents alert again
    assert len(received) == 6


def test_checks_at_the_same_time_announce_an_incident_once(
    reference: MonitoringReference, settings: MonitoringSettings, tmp_path: Path
) -> None:
    """Two monitor runs that overlap (each with its own manager, as two processes would) and a
    slow webhook: each incident is posted once, the second run sees the first one's state."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowReceiver)
    server.received = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        drifting = _report(reference, settings, drift=True, seed=52)
        state = tmp_path / "alerts.json"
        start = threading.Barrier(4)
        events: list[list[Any]] = []

        def check() -> None:
            manager = AlertManager(state, webhook_url=url, timeout=5.0)
            start.wait()
            events.append(manager.process(drifting))

        threads = [threading.Thread(target=check) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        opened = [e.kind for batch in events for e in batch if e.action == "opened"]
        posted = [r["kind"] for r in server.received]  # type: ignore[attr-defined]
        assert len(events) == 4 and opened
        assert sorted(opened) == sorted(set(opened)) == sorted(posted)
        assert set(AlertState.load(state).open) == set(opened)
    finally:
        server.shutdown()
        server.server_close()


class _SlowReceiver(_Receiver):
    def do_POST(self) -> None:
        time.sleep(0.2)  # holds a check inside its read-notify-save long enough to overlap
        super().do_POST()


def test_unreachable_webhook_is_logged_not_raised(
    reference: MonitoringReference,
    settings: MonitoringSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the POST: connection refused
    manager = AlertManager(tmp_path / "s.json", webhook_url=f"http://127.0.0.1:{port}/", timeout=1)
    events = manager.process(_report(reference, settings, drift=True, seed=52))
    assert events and events[0].delivered is False
    assert "webhook" in caplog.text


def test_undelivered_alert_is_posted_on_the_next_check(
    webhook: tuple[str, list[dict[str, Any]]],
    reference: MonitoringReference,
    settings: MonitoringSettings,
    tmp_path: Path,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state = tmp_path / "s.json"
    drifting = _report(reference, settings, drift=True, seed=53)
    failed = AlertManager(state, webhook_url=f"http://127.0.0.1:{port}/", timeout=1).process(
        drifting
    )
    assert failed and all(e.delivered is False for e in failed)
    url, received = webhook
    manager = AlertManager(state, webhook_url=url, timeout=5)
    retried = manager.process(drifting)
    assert {e.kind for e in retried} == {e.kind for e in failed}
    assert all(e.delivered for e in retried)
    assert len(received) == len(failed)
    assert manager.process(drifting) == []  # delivered now: the same incident is not re-sent
    assert len(received) == len(failed)


def test_no_webhook_still_logs(
    reference: MonitoringReference,
    settings: MonitoringSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = AlertManager(tmp_path / "s.json").process(
        _report(reference, settings, drift=True, seed=53)
    )
    assert events[0].delivered is None
    assert "churnops alert dataset_drift opened" in caplog.text
