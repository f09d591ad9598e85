"""The scoring chart builders: bands, threshold and values come from their arguments."""

from __future__ import annotations

import pytest

from churnops.dashboard.charts_scoring import (
    BAND_COLOURS,
    LOWERS,
    RAISES,
    RISK_COLOURS,
    probability_gauge,
    probability_histogram,
    reason_label,
    reasons_chart,
    risk_summary_bar,
)


def test_gauge_bands_and_marker_are_the_models() -> None:
    figure = probability_gauge(0.42, threshold=0.37, bands={"medium": 0.25, "high": 0.7})
    gauge = figure.data[0].gauge
    ranges = [tuple(step.range) for step in gauge.steps]
    assert ranges == [(0.0, 25.0), (25.0, 70.0), (70.0, 100.0)]
    assert [step.color for step in gauge.steps] == [
        BAND_COLOURS["low"],
        BAND_COLOURS["medium"],
        BAND_COLOURS["high"],
    ]
    assert gauge.threshold.value == pytest.approx(37.0)
    assert figure.data[0].value == pytest.approx(42.0)
    assert "37%" in figure.data[0].title.text
    assert figure.data[0].mode == "gauge+number"


def test_gauge_with_a_baseline_shows_the_change() -> None:
    figure = probability_gauge(
        0.61, threshold=0.5, bands={"medium": 0.3, "high": 0.6}, baseline=0.4
    )
    assert figure.data[0].mode == "gauge+number+delta"
    assert figure.data[0].delta.reference == pytest.approx(40.0)


def test_reasons_chart_orders_by_size_and_colours_by_direction() -> None:
    reasons = [
        {"feature": "tenure", "value": 2, "contribution": 0.9},
        {"feature": "plan", "value": "basic", "contribution": -0.2},
        {"feature": "charges", "value": 70.123456, "contribution": 0.5},
    ]
    bar = reasons_chart(reasons).data[0]
    # Plotly draws the first y at the bottom: the biggest reason ends up on top.
    assert list(bar.y) == ["plan = basic", "charges = 70.12", "tenure = 2"]
    assert list(bar.x) == [-0.2, 0.5, 0.9]
    assert list(bar.marker.color) == [LOWERS, RAISES, RAISES]
    assert list(bar.text) == ["lowers risk", "raises risk", "raises risk"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "x = missing"),
        (True, "x = yes"),
        (1234567.0, "x = 1.235e+06"),
        ("a" * 50, "x = " + "a" * 37 + "..."),
    ],
)
def test_reason_labels_stay_readable(value: object, shown: str) -> None:
    assert reason_label("x", value) == shown


def test_histogram_marks_threshold_and_bands() -> None:
    figure = probability_histogram(
        [0.1, 0.2, 0.8], threshold=0.45, bands={"medium": 0.3, "high": 0.6}
    )
    assert list(figure.data[0].x) == [0.1, 0.2, 0.8]
    shapes = figure.layout.shapes
    rects = [(s.x0, s.x1, s.fillcolor) for s in shapes if s.type == "rect"]
    assert rects == [
        (0.0, 0.3, BAND_COLOURS["low"]),
        (0.3, 0.6, BAND_COLOURS["medium"]),
        (0.6, 1.0, BAND_COLOURS["high"]),
    ]
    lines = [s.x0 for s in shapes if s.type == "line"]
    assert lines == [0.45]


def test_risk_summary_in_level_order_with_shares() -> None:
    bar = risk_summary_bar({"high": 1, "low": 6, "medium": 3}).data[0]
    assert list(bar.x) == ["low", "medium", "high"]
    assert list(bar.y) == [6, 3, 1]
    assert list(bar.marker.color) == [
        RISK_COLOURS["low"],
        RISK_COLOURS["medium"],
        RISK_COLOURS["high"],
    ]
    assert list(bar.text) == ["6 (60%)", "3 (30%)", "1 (10%)"]
