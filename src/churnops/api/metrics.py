"""Prometheus metrics of the API, on a registry of its own (one per app, so tests never collide).

Requests and latency by route and status, predictions by risk level, the score histogram, the
loaded model, the prediction store's writer, out-of-training-range values per feature, rate
limits, reloads and the latest monitoring report's drift gauges.

Counts are kept as plain numbers in a `Tally` (a bisect, a lock and a few adds per request;
prometheus_client's labelled Counter and Histogram took ~5 µs of Python) and turned into
families at scrape time. With several workers (`churnops serve --workers N`) each worker
publishes its tally to a shared folder every second (`WorkerShare`) and whichever worker is
scraped adds up all of them: counters over every worker that ever ran, gauges over the live ones.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from churnops.settings import RISK_LEVELS
from churnops.store import WriterState

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0
)  # fmt: skip
SCORE_BOUNDS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 ... 0.95, then +Inf
PUBLISH_EVERY_SECONDS = 1.0
VARIANT_FOLD_EVERY = 256  # one-customer variant observations added to the tally at once
_LATENCY_BOUNDS = np.array(LATENCY_BUCKETS)

Labels = tuple[str, ...]


class Tally:
    """Labelled counts as lists of numbers: [value] for a counter, [count, sum, per-bucket...]
    for a histogram. Cheap to update, to copy, and to add up across processes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[str, dict[Labels, list[float]]] = {}

    def add(self, name: str, labels: Labels, value: float = 1.0) -> None:
        with self._lock:
            family = self._series.setdefault(name, {})
            series = family.get(labels)
            if series is None:
                family[labels] = [value]
            else:
                series[0] += value

    def add_each(self, name: str, labelled: Iterable[Labels]) -> None:
        """Count 1 for every label set in `labelled` (repeats add up), under one lock."""
        counts: dict[Labels, int] = {}  # a plain dict: a Counter cost more than one update
        for labels in labelled:
            counts[labels] = counts.get(labels, 0) + 1
        if not counts:
            return
        with self._lock:
            family = self._series.setdefault(name, {})
            for labels, count in counts.items():
                series = family.get(labels)
                if series is None:
                    family[labels] = [float(count)]
                else:
                    series[0] += count

    def observe(self, name: str, labels: Labels, value: float, bounds: tuple[float, ...]) -> None:
        self.observe_many(name, labels, (value,), bounds)

    def observe_many(
        self, name: str, labels: Labels, values: Iterable[float], bounds: tuple[float, ...]
    ) -> None:
        # Prometheus buckets are "less or equal": bisect_left finds each value's bucket.
        indexes = [(value, bisect_left(bounds, value)) for value in values]
        with self._lock:
            family = self._series.setdefault(name, {})
            series = family.get(labels)
            if series is None:
                series = family[labels] = [0.0, 0.0] + [0.0] * (len(bounds) + 1)
            for value, index in indexes:
                series[0] += 1
                series[1] += value
                series[2 + index] += 1

    def series(self, name: str, labels: Labels, size: int) -> list[float]:
        """The live list of one series (created at zeros): a hot path can keep it and add to
        it under `lock` without looking it up again. Series are never replaced or removed."""
        with self._lock:
            family = self._series.setdefault(name, {})
            found = family.get(labels)
            if found is None:
                found = family[labels] = [0.0] * size
            return found

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    def snapshot(self) -> dict[str, list[list[Any]]]:
        """JSON-ready copy: {name: [[labels, values], ...]}."""
        with self._lock:
            return {
                name: [[list(labels), list(values)] for labels, values in family.items()]
                for name, family in self._series.items()
            }

    @staticmethod
    def merged(
        snapshots: Iterable[dict[str, list[list[Any]]]],
    ) -> dict[str, dict[Labels, list[float]]]:
        """Element-wise sums of several snapshots."""
        out: dict[str, dict[Labels, list[float]]] = {}
        for snapshot in snapshots:
            for name, entries in snapshot.items():
                family = out.setdefault(name, {})
                for labels, values in entries:
                    key = tuple(labels)
                    total = family.get(key)
                    if total is None:
                        family[key] = [float(v) for v in values]
                    else:
                        for i, v in enumerate(values):
                            total[i] += v
        return out


class WorkerShare:
    """One file per worker process in a folder the workers of a server share.

    `publish` replaces this worker's file atomically; `peers` reads its siblings' (a worker that
    has exited keeps its file, so its counts stay in the totals). Siblings are the files of the
    same run (same parent process), so a folder reused across restarts never mixes runs; a worker
    is alive while a process with its pid *and start time* exists (pids get reused).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.pid = os.getpid()
        self.started = _process_start(self.pid)
        parent = os.getppid()
        self.run = f"{parent}-{_process_start(parent)}"

    def publish(self, snapshot: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"worker-{self.pid}.json"
        tmp = path.with_name(path.name + ".tmp")
        identity = {"pid": self.pid, "started": self.started, "run": self.run}
        tmp.write_bytes(orjson.dumps({**snapshot, **identity, "time": time.time()}))
        tmp.replace(path)

    def peers(self) -> list[tuple[dict[str, Any], bool]]:
        """(snapshot, alive) of every other worker of this run that has published."""
        found = []
        for path in self.directory.glob("worker-*.json"):
            try:
                data = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue  # being replaced, or gone
            pid = int(data.get("pid", 0))
            if pid == self.pid or data.get("run") != self.run:
                continue
            started = data.get("started")
            found.append((data, started is not None and _process_start(pid) == started))
        return found


def _process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), or None if there is none.

    Without /proc (not Linux), a process that exists is taken to be the one that published.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]  # field 22 of proc(5), counted after "comm)"
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None  # /proc works: no such process
    except (OSError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "unknown"


@dataclass(frozen=True)
class _Family:
    name: str
    doc: str
    labels: tuple[str, ...]
    bounds: tuple[float, ...] | None = None  # histograms


HTTP = _Family(
    "churnops_http_request_duration_seconds",
    "Request latency by route, method and status",
    ("route", "method", "status"),
    LATENCY_BUCKETS,
)
VARIANT_LATENCY = _Family(
    "churnops_variant_scoring_seconds",
    "Scoring time per call by deployment variant (champion, challenger, shadow)",
    ("variant",),
    LATENCY_BUCKETS,
)
SCORES = _Family(
    "churnops_prediction_score", "Distribution of predicted churn probabilities", (), SCORE_BOUNDS
)
COUNTERS = (
    _Family("churnops_predictions", "Predictions served, by risk level", ("risk_level",)),
    _Family(
        "churnops_out_of_range_values",
        "Numeric inputs outside the training range, by feature and side",
        ("feature", "side"),
    ),
    _Family(
        "churnops_variant_predictions",
        "Predictions by deployment variant (champion, challenger, shadow) and risk level",
        ("variant", "risk_level"),
    ),
    _Family(
        "churnops_variant_errors",
        "Challenger records that raised or ran out of time, by variant",
        ("variant",),
    ),
    _Family("churnops_rate_limited_requests", "Requests refused with 429, by route", ("route",)),
    _Family(
        "churnops_model_reloads",
        "Model reload attempts by result (swapped, unchanged, failed)",
        ("result",),
    ),
)
STORE_COUNTERS = (
    ("write_errors", "churnops_store_write_errors", "Failed database writes"),
    ("written_records", "churnops_store_written_records", "Predictions written"),
    ("replayed_records", "churnops_store_replayed_records", "Spool replays"),
    ("dropped_records", "churnops_store_dropped_records", "Lost: spool full"),
    ("rejected_records", "churnops_store_rejected_records", "Predictions refused by the database"),
    ("refused_records", "churnops_store_refused_records", "Predictions answered 503: spool full"),
    (
        "unmatched_feedback",
        "churnops_store_unmatched_feedback",
        "Labels set aside: their prediction_id is not in the store",
    ),
)
STORE_GAUGES = (
    ("queue_depth", "churnops_store_queue_depth", "Predictions waiting to be written"),
    (
        "spooled_records",
        "churnops_store_spooled_records",
        "Predictions spooled locally (database unreachable, or behind)",
    ),
    ("degraded", "churnops_store_degraded", "1 when the store is unreachable or the spool is full"),
)


class ApiMetrics:
    """All metrics of one app (one worker process), and the totals over its sibling workers."""

    def __init__(self, share: WorkerShare | None = None) -> None:
        disable_created_metrics()  # *_created series double the output and nobody graphs them
        self.tally = Tally()
        self.share = share
        self.model: dict[str, Any] | None = None
        self.deployment: dict[str, Any] | None = None
        self._variant_pending: dict[tuple[str, str], deque[float]] = {}
        self._fold_lock = threading.Lock()
        self._store_state: Callable[[], WriterState | None] = lambda: None
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_TallyCollector(self))
        for level in RISK_LEVELS:  # every level shows from the start, at 0
            self.tally.add("churnops_predictions", (level,), 0.0)
        self.monitoring: Any = None

    # -- updates (hot path) ------------------------------------------------------------------

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.tally.observe(HTTP.name, (route, method, str(status)), seconds, LATENCY_BUCKETS)

    def observe_predictions(
        self,
        probabilities: Iterable[float],
        risk_levels: Iterable[str],
        out_of_range: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Served predictions: their scores and levels, and every (feature, side) value outside
        the training range among their inputs."""
        self.tally.observe_many(SCORES.name, (), probabilities, SCORE_BOUNDS)
        self.tally.add_each("churnops_predictions", ((level,) for level in risk_levels))
        self.tally.add_each("churnops_out_of_range_values", out_of_range)

    def observe_variant(
        self, variant: str, risk_levels: Iterable[str], seconds: float, *, errors: int = 0
    ) -> None:
        """One scoring call of a deployment variant: its records' levels, its time, its errors."""
        if errors:
            self.tally.add("churnops_variant_errors", (variant,), float(errors))
            return
        self.tally.observe(VARIANT_LATENCY.name, (variant,), seconds, LATENCY_BUCKETS)
        self.tally.add_each("churnops_variant_predictions", ((variant, lv) for lv in risk_levels))

    def observe_variant_one(self, variant: str, risk_level: str, seconds: float) -> None:
        """`observe_variant` for one customer (the canary's hot path): the time is only appended
        here (one dict lookup, ~0.15 µs with the lock and bisect it took ~0.5); the tally gets
        them in bulk every VARIANT_FOLD_EVERY and whenever the figures are read (`snapshot`)."""
        pending = self._variant_pending.get((variant, risk_level))
        if pending is None:
            pending = self._variant_pending.setdefault((variant, risk_level), deque())
        pending.append(seconds)
        if len(pending) >= VARIANT_FOLD_EVERY:
            self.fold_variants()

    def fold_variants(self) -> None:
        """Add the pending one-customer variant observations to the tally."""
        with self._fold_lock:  # one taker at a time; appends go on meanwhile
            for (variant, risk_level), pending in list(self._variant_pending.items()):
                n = len(pending)
                if not n:
                    continue
                seconds = [pending.popleft() for _ in range(n)]
                buckets = np.bincount(
                    np.searchsorted(_LATENCY_BOUNDS, seconds, side="left"),
                    minlength=len(LATENCY_BUCKETS) + 1,
                ).tolist()
                total = sum(seconds)
                histogram = self.tally.series(
                    VARIANT_LATENCY.name, (variant,), len(LATENCY_BUCKETS) + 3
                )
                counter = self.tally.series(
                    "churnops_variant_predictions", (variant, risk_level), 1
                )
                with self.tally.lock:
                    histogram[0] += n
                    histogram[1] += total
                    for index, count in enumerate(buckets):
                        histogram[2 + index] += count
                    counter[0] += n

    def set_deployment(self, policy: Any) -> None:
        """The policy in force (None or mode none: no deployment)."""
        if policy is None or not policy.active:
            self.deployment = None
            return
        self.deployment = {
            "mode": policy.mode,
            "champion_version": str(policy.champion_version),
            "challenger_version": str(policy.challenger_version),
            "weight": float(policy.weight),
            "live": policy.live,
        }

    def count_rate_limited(self, route: str) -> None:
        self.tally.add("churnops_rate_limited_requests", (route,))

    def count_reload(self, result: str) -> None:
        self.tally.add("churnops_model_reloads", (result,))

    def set_model(
        self, *, name: str, version: str, uri: str, candidate: str, loaded_at: float
    ) -> None:
        self.model = {
            "name": name,
            "version": version,
            "uri": uri,
            "candidate": candidate,
            "loaded_at": loaded_at,
        }

    def watch_store(self, state: Callable[[], WriterState | None]) -> None:
        self._store_state = state

    def watch_monitoring(self) -> Any:
        """Register the monitoring gauges (drift of the latest report); returns their collector."""
        try:
            from churnops.monitoring.prometheus import export_gauges
        except ImportError:  # monitoring not installed in this build: no drift gauges
            return None
        self.monitoring = export_gauges(None, self.registry)
        return self.monitoring

    # -- across workers ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        self.fold_variants()
        state = self._store_state()
        return {
            "tally": self.tally.snapshot(),
            "model": self.model,
            "deployment": self.deployment,
            "store": None if state is None else _store_numbers(state),
        }

    def publish(self) -> None:
        """Write this worker's figures for its siblings (no-op with a single worker)."""
        if self.share is not None:
            with contextlib.suppress(OSError):
                self.share.publish(self.snapshot())

    def views(self) -> list[tuple[dict[str, Any], bool]]:
        """(snapshot, alive) of this worker (live figures) and of its siblings."""
        own = (self.snapshot(), True)
        return [own, *(self.share.peers() if self.share is not None else [])]

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _store_numbers(state: WriterState) -> dict[str, float]:
    numbers = {key: float(getattr(state, key)) for key, _, _ in STORE_COUNTERS}
    numbers |= {key: float(getattr(state, key)) for key, _, _ in STORE_GAUGES}
    return numbers


class _TallyCollector(Collector):
    """Builds every family from the tallies of this worker and its siblings at scrape time."""

    def __init__(self, metrics: ApiMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        views = self.metrics.views()
        tally = Tally.merged(view["tally"] for view, _ in views)
        yield from _http_families(tally.get(HTTP.name, {}))
        for family in COUNTERS:
            counter = CounterMetricFamily(family.name, family.doc, labels=list(family.labels))
            for labels, values in sorted(tally.get(family.name, {}).items()):
                counter.add_metric(list(labels), values[0])
            yield counter
        empty: dict[Labels, list[float]] = {(): [0.0, 0.0] + [0.0] * (len(SCORE_BOUNDS) + 1)}
        yield _histogram(SCORES, tally.get(SCORES.name, empty))
        yield _histogram(VARIANT_LATENCY, tally.get(VARIANT_LATENCY.name, {}))
        yield from _deployment_families([view for view, alive in views if alive])
        yield from _model_families([view for view, alive in views if alive])
        yield from _store_families(views)


def _http_families(series: dict[Labels, list[float]]) -> Iterator[Any]:
    requests = CounterMetricFamily(
        "churnops_http_requests",
        "HTTP requests by route, method and status",
        labels=list(HTTP.labels),
    )
    for labels, values in sorted(series.items()):
        requests.add_metric(list(labels), values[0])
    yield requests
    yield _histogram(HTTP, series)


def _histogram(family: _Family, series: dict[Labels, list[float]]) -> HistogramMetricFamily:
    assert family.bounds is not None
    histogram = HistogramMetricFamily(family.name, family.doc, labels=list(family.labels))
    bounds = [f"{bound:g}" for bound in family.bounds] + ["+Inf"]
    for labels, values in sorted(series.items()):
        cumulative = accumulate(values[2:])
        histogram.add_metric(list(labels), list(zip(bounds, cumulative, strict=True)), values[1])
    return histogram


def _model_families(live: list[dict[str, Any]]) -> Iterator[Any]:
    models = [view["model"] for view in live if view.get("model")]
    info = GaugeMetricFamily(
        "churnops_model_info",
        "The model being served (value 1; two series while workers swap versions)",
        labels=["name", "version", "uri", "candidate"],
    )
    for key in sorted({(m["name"], m["version"], m["uri"], m["candidate"]) for m in models}):
        info.add_metric(list(key), 1)
    yield info
    loaded = GaugeMetricFamily(
        "churnops_model_loaded_timestamp_seconds", "When the served model was loaded"
    )
    loaded.add_metric([], max((float(m["loaded_at"]) for m in models), default=0.0))
    yield loaded


def _deployment_families(live: list[dict[str, Any]]) -> Iterator[Any]:
    info = GaugeMetricFamily(
        "churnops_deployment_info",
        "The deployment in force (value 1), by mode and versions",
        labels=["mode", "champion_version", "challenger_version", "live"],
    )
    weight = GaugeMetricFamily(
        "churnops_deployment_canary_weight", "Percent of customers the challenger answers"
    )
    found = [view["deployment"] for view in live if view.get("deployment")]
    for key in sorted(
        {(d["mode"], d["champion_version"], d["challenger_version"], d["live"]) for d in found}
    ):
        info.add_metric(list(key), 1)
    weight.add_metric([], max((float(d["weight"]) for d in found), default=0.0))
    yield info
    yield weight


def _store_families(views: list[tuple[dict[str, Any], bool]]) -> Iterator[Any]:
    stores = [(view["store"], alive) for view, alive in views if view.get("store")]
    if not stores:
        return
    for key, name, doc in STORE_GAUGES:
        values = [store.get(key, 0.0) for store, alive in stores if alive]
        value = max(values, default=0.0) if key == "degraded" else sum(values)
        yield GaugeMetricFamily(name, doc, value=value)
    for key, name, doc in STORE_COUNTERS:
        yield CounterMetricFamily(name, doc, value=sum(store.get(key, 0.0) for store, _ in stores))
