"""Deployment test helpers: a policy started a little in the past, and labelled traffic."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np

from churnops.deployment import controller
from churnops.settings import DeploymentSettings
from churnops.store import FeedbackRecord, PredictionRecord, PredictionStore
from churnops.store.deployment import Policy, save_policy, write_shadow_predictions
from churnops.store.records import utcnow


def start_policy(store: PredictionStore, mode: str, **options: Any) -> Policy:
    settings = DeploymentSettings(min_requests=100, bootstrap_samples=50)
    policy = controller.new_policy(
        model_name="m", mode=mode, champion_version="1", challenger_version="2",
        settings=settings, **options,
    )  # fmt: skip
    saved = controller.start(store, policy)
    # predictions written below are "since the start": back-date the start a little
    earlier = saved.changed(
        started_at=saved.started_at - timedelta(seconds=5),
        step_started_at=saved.step_started_at - timedelta(seconds=5),
    )
    moved = save_policy(store, earlier, expected_revision=saved.revision)
    assert moved is not None
    return moved


def seed_traffic(
    store: PredictionStore, *, n: int, challenger_skill: float, shadow: bool, seed: int = 1
) -> dict[str, np.ndarray]:
    """n answered requests with labels; in shadow each also gets a challenger score, else half
    of them are answered by the challenger."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    champion = 1 / (1 + np.exp(-(2.0 * (2 * y - 1) + rng.normal(0, 1.5, n))))
    challenger = 1 / (1 + np.exp(-(challenger_skill * (2 * y - 1) + rng.normal(0, 1.5, n))))
    records, shadows, labels = [], [], []
    now = utcnow()
    for i in range(n):
        on_challenger = not shadow and i % 2 == 1
        p = float(challenger[i] if on_challenger else champion[i])
        record = PredictionRecord(
            features={"x": i}, churn_probability=p, will_churn=p >= 0.5, risk_level="low",
            model_name="m", model_version="2" if on_challenger else "1",
            variant="challenger" if on_challenger else "champion", latency_us=100 + i % 7,
            created_at=now,
        )  # fmt: skip
        records.append(record)
        labels.append(FeedbackRecord(label=int(y[i]), prediction_id=record.prediction_id))
        if shadow:
            shadows.append(
                {
                    "prediction_id": record.prediction_id, "created_at": now.isoformat(),
                    "model_name": "m", "model_version": "2",
                    "churn_probability": float(challenger[i]),
                    "will_churn": bool(challenger[i] >= 0.5), "risk_level": "low",
                    "latency_us": 150,
                }
            )  # fmt: skip
    store.write_predictions(records)
    store.write_feedback(labels)
    write_shadow_predictions(store, shadows)
    return {"y": y, "champion": champion, "challenger": challenger}


class WebhookReceiver:
    """A local HTTP server recording every JSON body POSTed to it (the alert webhook)."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
