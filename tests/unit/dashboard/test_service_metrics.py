"""/metrics text -> requests, errors, latency, store gauges; rates from two readings."""

from __future__ import annotations

import pytest

from churnops.dashboard.service_metrics import parse_metrics, rates

TEXT = """\
# HELP churnops_http_requests_total HTTP requests by route, method and status
# TYPE churnops_http_requests_total counter
churnops_http_requests_total{route="/predict",method="POST",status="200"} 90.0
churnops_http_requests_total{route="/predict",method="POST",status="422"} 8.0
churnops_http_requests_total{route="/predict",method="POST",status="500"} 2.0
churnops_http_requests_total{route="/health",method="GET",status="200"} 5.0
# HELP churnops_http_request_duration_seconds Request latency
# TYPE churnops_http_request_duration_seconds histogram
churnops_http_request_duration_seconds_bucket{route="/predict",method="POST",status="200",le="0.005"} 50.0
churnops_http_request_duration_seconds_bucket{route="/predict",method="POST",status="200",le="0.01"} 88.0
churnops_http_request_duration_seconds_bucket{route="/predict",method="POST",status="200",le="+Inf"} 90.0
churnops_http_request_duration_seconds_sum{route="/predict",method="POST",status="200"} 0.45
churnops_http_request_duration_seconds_count{route="/predict",method="POST",status="200"} 90.0
# HELP churnops_store_queue_depth Predictions waiting to be written
# TYPE churnops_store_queue_depth gauge
churnops_store_queue_depth 12.0
# HELP churnops_store_spooled_records Spooled
# TYPE churnops_store_spooled_records gauge
churnops_store_spooled_records 3.0
# HELP churnops_predictions_total Predictions served, by risk level
# TYPE churnops_predictions_total counter
churnops_predictions_total{risk_level="high"} 10.0
churnops_predictions_total{risk_level="low"} 80.0
"""


def test_routes_errors_latency_and_store() -> None:
    snap = parse_metrics(TEXT, taken_at=100.0)
    predict = snap.routes["/predict"]
    assert (predict.requests, predict.rejected, predict.errors) == (100.0, 8.0, 2.0)
    assert predict.mean_latency == pytest.approx(0.005)
    assert predict.quantile(0.5) == 0.005  # the 45th of 90 is within the first 50
    assert predict.quantile(0.95) == 0.01  # the 85.5th is within the first 88
    assert predict.quantile(0.99) == float("inf")
    assert snap.total_requests == 105.0
    assert snap.store == {"queue_depth": 12.0, "spooled_records": 3.0}
    assert snap.predictions == {"high": 10.0, "low": 80.0}


def test_rates_need_two_readings() -> None:
    first = parse_metrics(TEXT, taken_at=100.0)
    ok_line = 'churnops_http_requests_total{route="/predict",method="POST",status="200"} '
    later = parse_metrics(TEXT.replace(ok_line + "90.0", ok_line + "110.0"), taken_at=110.0)
    assert rates(None, first) is None
    assert rates(first, first) is None
    assert rates(first, later) == {"/predict": pytest.approx(2.0), "/health": 0.0}
