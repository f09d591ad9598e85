"""Prometheus metrics of the API, on a registry of its own (one per app, so tests never collide).

Requests and latency by route and status, predictions by risk level, the score histogram, the
loaded model, the prediction store's writer, out-of-training-range values per feature, and the
latest monitoring report's drift gauges. Hot-path updates are a bisect, a lock and a few adds.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
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
    """Predictions by risk level and the score histogram: a lock and three adds per prediction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._edges = list(SCORE_BUCKETS[:-1])
        self._buckets = [0] * len(SCORE_BUCKETS)
        self._sum = 0.0
        self._levels = dict.fromkeys(RISK_LEVELS, 0)

    def observe(self, probability: float, risk_level: str) -> None:
        index = bisect_left(self._edges, probability)  # Prometheus buckets are "less or equal"
        with self._lock:
            self._buckets[index] += 1
            self._sum += probability
            self._levels[risk_level] = self._levels.get(risk_level, 0) + 1

    def collect(self) -> Iterator[Any]:
        with self._lock:
            cumulative = list(accumulate(self._buckets))
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


class RequestCollector(Collector):
    """Requests and latency by route, method and status.

    prometheus_client's labelled Counter and Histogram took ~5 µs of Python per request (a lock
    per child, a linear bucket search); this keeps plain counts per label set and builds the
    families at scrape time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str, int], list[Any]] = {}  # [count, sum, buckets...]

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        index = bisect_left(LATENCY_BUCKETS, seconds)
        key = (route, method, status)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = [0, 0.0] + [0] * (len(LATENCY_BUCKETS) + 1)
            series[0] += 1
            series[1] += seconds
            series[2 + index] += 1

    def collect(self) -> Iterator[Any]:
        with self._lock:
            snapshot = {key: list(series) for key, series in self._series.items()}
        labels = ["route", "method", "status"]
        requests = CounterMetricFamily(
            "churnops_http_requests", "HTTP requests by route, method and status", labels=labels
        )
        latency = HistogramMetricFamily(
            "churnops_http_request_duration_seconds",
            "Request latency by route, method and status",
            labels=labels,
        )
        bounds = [f"{bound:g}" for bound in LATENCY_BUCKETS] + ["+Inf"]
        for (route, method, status), series in sorted(snapshot.items()):
            values = [route, method, str(status)]
            requests.add_metric(values, series[0])
            cumulative = accumulate(series[2:])
            latency.add_metric(values, list(zip(bounds, cumulative, strict=True)), series[1])
        yield requests
        yield latency


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
        self.requests = RequestCollector()
        self.registry.register(self.requests)
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
        self.monitoring: Any = None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.observe(route, method, status, seconds)

    def observe_prediction(
        self, probability: float, risk_level: str, out_of_range: list[tuple[str, str]]
    ) -> None:
        """One served prediction: its score and level, and any value outside the training range."""
        self.predictions.observe(probability, risk_level)
        for feature, side in out_of_range:
            self.out_of_range.labels(feature, side).inc()

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
