"""The hot-path collectors expose what Prometheus' own Counter and Histogram would."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from churnops.api.metrics import ApiMetrics


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
    metrics.observe_prediction(0.05, "low", [])
    metrics.observe_prediction(0.051, "low", [("tenure", "above")])
    metrics.observe_prediction(0.97, "high", [("tenure", "above"), ("charges", "below")])
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
