"""Prometheus metrics of the API, on a registry of its own (one per app, so tests never collide).

Requests and latency by route and status, predictions by risk level, the score histogram, the
loaded model, the prediction store's writer, out-of-training-range values per feature, and the
latest monitoring report's drift gauges. Hot-path updates are a dict lookup and an add.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from churnops.settings import RISK_LEVELS
from churnops.store import WriterState

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0
)  # fmt: skip
SCORE_BUCKETS = (*(round(0.05 * i, 2) for i in range(1, 20)), 1.0)


class PredictionCollector(Collector):
    """Predictions by risk level and the score histogram, one numpy update per request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._edges = np.asarray(SCORE_BUCKETS[:-1])
        self._buckets = np.zeros(len(SCORE_BUCKETS), dtype=np.int64)
        self._sum = 0.0
        self._levels = dict.fromkeys(RISK_LEVELS, 0)

    def observe(self, probability: np.ndarray, risk_level: np.ndarray) -> None:
        if len(probability) == 1:
            index = int(np.searchsorted(self._edges, probability[0], side="left"))
            with self._lock:
                self._buckets[index] += 1
                self._sum += float(probability[0])
                self._levels[str(risk_level[0])] = self._levels.get(str(risk_level[0]), 0) + 1
            return
        counts = np.bincount(
            np.searchsorted(self._edges, probability, side="left"), minlength=len(self._buckets)
        )
        levels, level_counts = np.unique(risk_level.astype(str), return_counts=True)
        with self._lock:
            self._buckets += counts
            self._sum += float(probability.sum())
            for level, count in zip(levels, level_counts, strict=True):
                self._levels[str(level)] = self._levels.get(str(level), 0) + int(count)

    def collect(self) -> Iterator[Any]:
        with self._lock:
            cumulative = np.cumsum(self._buckets).tolist()
            total = self._sum
            levels = dict(self._levels)
        by_level = CounterMetricFamily(
            "churnops_predictions", "Predictions served, by risk level", labels=["risk_level"]
        )
        for level, count in levels.items():
            by_level.add_metric([level], count)
        yield by_level
        buckets = [
            (f"{edge:g}", count)
            for edge, count in zip(SCORE_BUCKETS[:-1], cumulative[:-1], strict=True)
        ]
        buckets.append(("+Inf", cumulative[-1]))
        histogram = HistogramMetricFamily(
            "churnops_prediction_score", "Distribution of predicted churn probabilities"
        )
        histogram.add_metric([], buckets, total)
        yield histogram


class StoreCollector(Collector):
    """The prediction writer's queue, spool and error counters, read at scrape time."""

    def __init__(self, state: Callable[[], WriterState | None]) -> None:
        self._state = state

    def collect(self) -> Iterator[Any]:
        state = self._state()
        if state is None:
            return
        yield GaugeMetricFamily(
            "churnops_store_queue_depth",
            "Predictions waiting to be written",
            value=state.queue_depth,
        )
        yield GaugeMetricFamily(
            "churnops_store_spooled_records",
            "Predictions spooled locally while the database is unreachable",
            value=state.spooled_records,
        )
        yield GaugeMetricFamily(
            "churnops_store_degraded",
            "1 when the store is unreachable or the spool is full",
            value=float(state.degraded),
        )
        for name, doc, value in (
            ("churnops_store_write_errors", "Failed database writes", state.write_errors),
            ("churnops_store_written_records", "Predictions written", state.written_records),
            ("churnops_store_replayed_records", "Spool replays", state.replayed_records),
            ("churnops_store_dropped_records", "Lost: spool full", state.dropped_records),
            ("churnops_store_rejected_records", "Predictions refused by the database",
             state.rejected_records),
        ):  # fmt: skip
            yield CounterMetricFamily(name, doc, value=value)


class ApiMetrics:
    """All metrics of one app."""

    def __init__(self) -> None:
        disable_created_metrics()  # *_created series double the output and nobody graphs them
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "churnops_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "churnops_http_request_duration_seconds",
            "Request latency by route, method and status",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.out_of_range = Counter(
            "churnops_out_of_range_values",
            "Numeric inputs outside the training range, by feature and side",
            ["feature", "side"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "churnops_model_info",
            "The model being served (value 1)",
            ["name", "version", "uri", "candidate"],
            registry=self.registry,
        )
        self.model_loaded_at = Gauge(
            "churnops_model_loaded_timestamp_seconds",
            "When the served model was loaded",
            registry=self.registry,
        )
        self.reloads = Counter(
            "churnops_model_reloads",
            "Model reload attempts by result (swapped, unchanged, failed)",
            ["result"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "churnops_rate_limited_requests",
            "Requests refused with 429, by route",
            ["route"],
            registry=self.registry,
        )
        self.predictions = PredictionCollector()
        self.registry.register(self.predictions)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.monitoring: Any = None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:
            labels = (route, method, str(status))
            child = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = child
        child[0].inc()
        child[1].observe(seconds)

    def set_model(
        self, *, name: str, version: str, uri: str, candidate: str, loaded_at: float
    ) -> None:
        self.model_info.clear()
        self.model_info.labels(name, version, uri, candidate).set(1)
        self.model_loaded_at.set(loaded_at)

    def watch_store(self, state: Callable[[], WriterState | None]) -> None:
        self.registry.register(StoreCollector(state))

    def watch_monitoring(self) -> Any:
        """Register the monitoring gauges (drift of the latest report); returns their collector."""
        try:
            from churnops.monitoring.prometheus import export_gauges
        except ImportError:  # monitoring not installed in this build: no drift gauges
            return None
        self.monitoring = export_gauges(None, self.registry)
        return self.monitoring

    def render(self) -> bytes:
        return generate_latest(self.registry)
