"""The hot-path collectors expose what Prometheus' own Counter and Histogram would."""

from __future__ import annotations

import math
import os
import subprocess
from functools import partial
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from churnops.api.metrics import ApiMetrics, WorkerShare, _process_start
from churnops.store import WriterState


def _samples(metrics: ApiMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_request_counts_and_latency_buckets() -> None:
    metrics = ApiMetrics()
    for seconds in (0.0004, 0.001, 0.3):  # 0.001 sits exactly on a bucket bound: "le" keeps it
        metrics.observe_request("/predict", "POST", 200, seconds)
    metrics.observe_request("/predict", "POST", 422, 0.002)
    samples = _samples(metrics)
    ok = (("method", "POST"), ("route", "/predict"), ("status", "200"))
    assert samples[("churnops_http_requests_total", ok)] == 3
    assert samples[("churnops_http_requests_total", (*ok[:2], ("status", "422")))] == 1

    def bucket(le: str) -> float:
        return samples[("churnops_http_request_duration_seconds_bucket", (("le", le), *ok))]

    assert bucket("0.0005") == 1
    assert bucket("0.001") == 2
    assert bucket("0.25") == 2
    assert bucket("0.5") == bucket("+Inf") == 3
    assert samples[("churnops_http_request_duration_seconds_count", ok)] == 3
    assert math.isclose(samples[("churnops_http_request_duration_seconds_sum", ok)], 0.3014)


def test_predictions_by_level_score_histogram_and_out_of_range() -> None:
    metrics = ApiMetrics()
    metrics.observe_predictions([0.05], ["low"])
    metrics.observe_predictions(
        [0.051, 0.97],
        ["low", "high"],
        [("tenure", "above"), ("tenure", "above"), ("charges", "below")],
    )
    samples = _samples(metrics)
    assert samples[("churnops_predictions_total", (("risk_level", "low"),))] == 2
    assert samples[("churnops_predictions_total", (("risk_level", "high"),))] == 1
    assert samples[("churnops_predictions_total", (("risk_level", "medium"),))] == 0
    assert samples[("churnops_prediction_score_bucket", (("le", "0.05"),))] == 1
    assert samples[("churnops_prediction_score_bucket", (("le", "0.1"),))] == 2
    assert samples[("churnops_prediction_score_bucket", (("le", "0.95"),))] == 2
    assert samples[("churnops_prediction_score_bucket", (("le", "+Inf"),))] == 3
    assert math.isclose(samples[("churnops_prediction_score_sum", ())], 1.071)
    side = (("feature", "tenure"), ("side", "above"))
    assert samples[("churnops_out_of_range_values_total", side)] == 2


def test_workers_add_up_counters_over_all_and_gauges_over_the_live(tmp_path: Path) -> None:
    """Three workers of one server: this one, a live sibling and one that has exited."""
    finished = subprocess.Popen(["true"])
    finished.wait()
    here = ApiMetrics(WorkerShare(tmp_path))
    sibling, gone, other_run = WorkerShare(tmp_path), WorkerShare(tmp_path), WorkerShare(tmp_path)
    sibling.pid, gone.pid, other_run.pid = os.getppid(), finished.pid, os.getppid() + 1
    sibling.started = _process_start(sibling.pid)  # alive: same pid, same start time
    other_run.run = "an earlier server in the same folder"
    for share, requests, depth in ((sibling, 2, 5), (gone, 3, 7), (other_run, 100, 100)):
        other = ApiMetrics(share)
        other.watch_store(partial(_state, queue_depth=depth, written_records=10))
        for _ in range(requests):
            other.observe_request("/predict", "POST", 200, 0.001)
        other.observe_predictions([0.5], ["medium"])
        other.set_model(name="m", version=str(requests), uri="u", candidate="x", loaded_at=1.0)
        other.publish()
    here.watch_store(lambda: _state(queue_depth=1, written_records=4))
    here.observe_request("/predict", "POST", 200, 0.001)
    samples = _samples(here)
    ok = (("method", "POST"), ("route", "/predict"), ("status", "200"))
    assert samples[("churnops_http_requests_total", ok)] == 1 + 2 + 3  # every worker of this run
    assert samples[("churnops_predictions_total", (("risk_level", "medium"),))] == 2
    assert samples[("churnops_store_written_records_total", ())] == 4 + 10 + 10
    assert samples[("churnops_store_queue_depth", ())] == 1 + 5  # live workers only
    versions = {dict(k[1])["version"] for k in samples if k[0] == "churnops_model_info"}
    assert versions == {"2"}  # the exited worker's model is no longer served


def _state(**values: int) -> WriterState:
    fields = dict.fromkeys(WriterState.__dataclass_fields__, 0) | {"running": True}
    fields |= {"degraded": False, "reason": None} | values
    return WriterState(**fields)
