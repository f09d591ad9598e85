"""Read the API's `/metrics` text into the few numbers the Service page shows.

Parsing uses prometheus_client's own text parser. Rates need two readings: the page keeps the
previous `Snapshot` and `rates()` divides the difference by the time between them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "churnops_http_requests"
LATENCY = "churnops_http_request_duration_seconds"
STORE_GAUGES = (
    "churnops_store_queue_depth",
    "churnops_store_spooled_records",
    "churnops_store_degraded",
)


@dataclass
class RouteStats:
    requests: float = 0.0
    errors: float = 0.0  # 5xx answers
    rejected: float = 0.0  # 4xx answers
    latency_sum: float = 0.0
    latency_count: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound -> cumulative count

    @property
    def mean_latency(self) -> float | None:
        return self.latency_sum / self.latency_count if self.latency_count else None

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the q-quantile (what Prometheus can tell)."""
        if not self.latency_count:
            return None
        wanted = q * self.latency_count
        for bound in sorted(self.buckets):
            if self.buckets[bound] >= wanted:
                return bound
        return None


@dataclass
class Snapshot:
    taken_at: float
    routes: dict[str, RouteStats]
    store: dict[str, float]
    predictions: dict[str, float]  # by risk level

    @property
    def total_requests(self) -> float:
        return sum(r.requests for r in self.routes.values())


def parse_metrics(text: str, *, taken_at: float) -> Snapshot:
    """Requests, errors and latency per route, store gauges and predictions per risk level."""
    routes: dict[str, RouteStats] = defaultdict(RouteStats)
    store: dict[str, float] = {}
    predictions: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if family.name == REQUESTS and sample.name.endswith("_total"):
                stats = routes[labels.get("route", "?")]
                stats.requests += sample.value
                status = labels.get("status", "")
                if status.startswith("5"):
                    stats.errors += sample.value
                elif status.startswith("4"):
                    stats.rejected += sample.value
            elif family.name == LATENCY:
                stats = routes[labels.get("route", "?")]
                if sample.name.endswith("_sum"):
                    stats.latency_sum += sample.value
                elif sample.name.endswith("_count"):
                    stats.latency_count += sample.value
                elif sample.name.endswith("_bucket"):
                    bound = float(labels["le"])
                    stats.buckets[bound] = stats.buckets.get(bound, 0.0) + sample.value
            elif family.name in STORE_GAUGES:
                store[family.name.removeprefix("churnops_store_")] = (
                    store.get(family.name.removeprefix("churnops_store_"), 0.0) + sample.value
                )
            elif family.name == "churnops_predictions" and sample.name.endswith("_total"):
                level = labels.get("risk_level", "?")
                predictions[level] = predictions.get(level, 0.0) + sample.value
    return Snapshot(taken_at, dict(routes), store, predictions)


def rates(previous: Snapshot | None, current: Snapshot) -> dict[str, float] | None:
    """Requests per second by route between two readings; None without a usable earlier one."""
    if previous is None:
        return None
    elapsed = current.taken_at - previous.taken_at
    if elapsed <= 0:
        return None
    out: dict[str, float] = {}
    for route, stats in current.routes.items():
        before = previous.routes.get(route, RouteStats()).requests
        out[route] = max(stats.requests - before, 0.0) / elapsed
    return out
