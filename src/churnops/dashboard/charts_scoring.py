"""Pure Plotly figure builders for scoring: values in, figure out; no Streamlit, no I/O.

The bands and the threshold always come from the served model (`GET /model`), so a model trained
with other risk bands or another decision threshold draws its own gauge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

RISK_ORDER = ("low", "medium", "high")
RISK_COLOURS = {"low": "#2e7d32", "medium": "#f9a825", "high": "#c62828"}
BAND_COLOURS = {"low": "#c8e6c9", "medium": "#ffe082", "high": "#ef9a9a"}
RAISES, LOWERS = "#c62828", "#1565c0"


def risk_bands(medium: float, high: float) -> list[tuple[str, float, float]]:
    """[(level, from, to)] covering 0..1 in band order."""
    return [("low", 0.0, medium), ("medium", medium, high), ("high", high, 1.0)]


def probability_gauge(
    probability: float,
    *,
    threshold: float,
    bands: Mapping[str, float],
    baseline: float | None = None,
) -> go.Figure:
    """Churn probability as a gauge: coloured risk bands, the decision threshold as the marker.

    `baseline` (the first answer of a what-if session) turns the number into a change against it.
    """
    steps = [
        {"range": [low * 100, high * 100], "color": BAND_COLOURS[level], "name": level}
        for level, low, high in risk_bands(bands["medium"], bands["high"])
    ]
    indicator = go.Indicator(
        mode="gauge+number" + ("+delta" if baseline is not None else ""),
        value=round(probability * 100, 1),
        number={"suffix": "%"},
        delta=(
            {
                "reference": round(baseline * 100, 1),
                "increasing": {"color": RAISES},
                "decreasing": {"color": LOWERS},
                "suffix": " pts",
            }
            if baseline is not None
            else None
        ),
        gauge={
            "axis": {"range": [0, 100], "ticksuffix": "%"},
            "bar": {"color": "#263238", "thickness": 0.25},
            "steps": steps,
            "threshold": {
                "line": {"color": "#000000", "width": 4},
                "thickness": 0.9,
                "value": threshold * 100,
            },
        },
        title={"text": f"Churn probability (decision threshold {threshold:.0%})"},
    )
    figure = go.Figure(indicator)
    figure.update_layout(height=280, margin={"l": 30, "r": 30, "t": 60, "b": 10})
    return figure


def reason_label(feature: str, value: Any) -> str:
    """'Contract = Month-to-month'; numbers shortened so the label stays readable."""
    if value is None:
        shown = "missing"
    elif isinstance(value, bool):
        shown = "yes" if value else "no"
    elif isinstance(value, float):
        shown = f"{value:,.4g}"
    else:
        shown = str(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{feature} = {shown}"


def reasons_chart(reasons: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Top reasons as horizontal bars: red raises the risk, blue lowers it; biggest on top."""
    ordered = sorted(reasons, key=lambda r: abs(float(r["contribution"])))
    labels = [reason_label(str(r["feature"]), r.get("value")) for r in ordered]
    values = [float(r["contribution"]) for r in ordered]
    figure = go.Figure(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            marker_color=[RAISES if v > 0 else LOWERS for v in values],
            text=[("raises risk" if v > 0 else "lowers risk") for v in values],
            textposition="auto",
            hovertemplate="%{y}<br>contribution %{x:.3f}<extra></extra>",
        )
    )
    figure.update_layout(
        title="Why: the features that moved this score most",
        xaxis_title="contribution to churn risk",
        height=max(200, 60 + 40 * len(labels)),
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
        yaxis={"automargin": True},
    )
    return figure


def probability_histogram(
    probabilities: Sequence[float], *, threshold: float, bands: Mapping[str, float]
) -> go.Figure:
    """How the scored customers' probabilities spread, with the bands shaded and the threshold."""
    figure = go.Figure(
        go.Histogram(
            x=list(probabilities),
            xbins={"start": 0.0, "end": 1.0, "size": 0.05},
            marker_color="#455a64",
            name="customers",
        )
    )
    for level, low, high in risk_bands(bands["medium"], bands["high"]):
        figure.add_vrect(
            x0=low,
            x1=high,
            fillcolor=BAND_COLOURS[level],
            opacity=0.35,
            line_width=0,
            layer="below",
        )
    figure.add_vline(
        x=threshold,
        line={"color": "#000000", "width": 2, "dash": "dash"},
        annotation_text=f"threshold {threshold:.0%}",
    )
    figure.update_layout(
        title="Churn probability of the scored customers",
        xaxis={"title": "churn probability", "range": [0, 1], "tickformat": ".0%"},
        yaxis_title="customers",
        height=320,
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
        bargap=0.05,
    )
    return figure


def risk_summary_bar(counts: Mapping[str, int]) -> go.Figure:
    """Customers per risk level, low to high, in the levels' colours."""
    levels = [level for level in RISK_ORDER if level in counts] + sorted(
        level for level in counts if level not in RISK_ORDER
    )
    total = sum(counts.values()) or 1
    figure = go.Figure(
        go.Bar(
            x=levels,
            y=[counts[level] for level in levels],
            marker_color=[RISK_COLOURS.get(level, "#607d8b") for level in levels],
            text=[f"{counts[level]:,} ({counts[level] / total:.0%})" for level in levels],
            textposition="auto",
        )
    )
    figure.update_layout(
        title="Customers by risk level",
        yaxis_title="customers",
        height=300,
        margin={"l": 10, "r": 10, "t": 50, "b": 30},
    )
    return figure
