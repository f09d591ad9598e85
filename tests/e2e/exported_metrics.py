"""The metric names churnops really exports: what the API's /metrics renders, drift gauges of a
real monitoring report included. Alert rules and dashboards are checked against this set."""

from __future__ import annotations

import re
import time
from functools import cache

import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from churnops.api.metrics import ApiMetrics
from churnops.monitoring.monitor import monitor_frame
from churnops.settings import MonitoringSettings
from churnops.store import WriterState
from tests.unit.monitoring.synthetic import build_reference, make_customers, with_predictions

# Series Prometheus makes itself for every scrape target.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
METRIC_NAME = re.compile(r"\b(churnops_[a-z0-9_]+)\b")
# A selector's matchers: `name{label="x", other=~"y"}`.
SELECTOR = re.compile(r"\b(churnops_[a-z0-9_]+)\{([^}]*)\}")
TARGET_LABELS = frozenset({"job", "instance"})  # added by Prometheus to every scraped series


@cache
def exported_sample_names() -> frozenset[str]:
    """Every sample name (`_total`, `_bucket`... included) of a fully populated /metrics page."""
    return frozenset(exported_labels())


@cache
def exported_labels() -> dict[str, frozenset[str]]:
    """Sample name -> its label names, from a fully populated /metrics page."""
    metrics = ApiMetrics()
    state = WriterState(
        running=True,
        degraded=False,
        reason=None,
        queue_depth=3,
        spooled_records=0,
        spooled_feedback=0,
        spool_bytes=0,
        written_records=10,
        replayed_records=0,
        write_errors=0,
        dropped_records=0,
        rejected_records=0,
    )
    metrics.watch_store(lambda: state)
    metrics.set_model(
        name="churn-model", version="3", uri="models:/churn-model@champion", candidate="xgboost",
        loaded_at=time.time(),
    )  # fmt: skip
    metrics.observe_request("/predict", "POST", 200, 0.003)
    metrics.observe_request("/predict", "POST", 500, 0.003)
    metrics.observe_predictions([0.2, 0.7], ["low", "high"], [("tenure", "above")])
    metrics.count_rate_limited("/predict")
    metrics.count_reload("failed")
    collector = metrics.watch_monitoring()
    assert collector is not None, "monitoring gauges must be available in this build"
    reference = build_reference(make_customers(7_000, seed=1))
    window = with_predictions(make_customers(2_000, seed=60, charges_shift=18.0, m2m_share=0.8))
    window["created_at"] = pd.Timestamp("2026-04-01", tz="UTC")
    report, _ = monitor_frame(window, reference, settings=MonitoringSettings(), period=None)
    collector.set_report(report)
    text = metrics.render().decode()
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(keys) for name, keys in labels.items()}


def churnops_names(text: str) -> set[str]:
    """The churnops metric names mentioned in a PromQL expression (or any text)."""
    return set(METRIC_NAME.findall(text))


def unknown_references(expr: str) -> list[str]:
    """Metric names and selector labels in `expr` that churnops does not export."""
    labels = exported_labels()
    problems = [f"metric {name}" for name in sorted(churnops_names(expr)) if name not in labels]
    for name, matchers in SELECTOR.findall(expr):
        for label in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers):
            if name in labels and label not in labels[name] | TARGET_LABELS:
                problems.append(f"label {label} of {name}")
    return problems
