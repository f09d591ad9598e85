"""Pure figure and table builders of the Monitoring and Models pages: data in, Plotly figure out.

No Streamlit, no I/O: each takes what `monitoring.history`, `store.queries` or
`modeling.registry_history` returned, so it can be unit-tested on its data and annotations.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from churnops.monitoring.history import (
    DriftMatrix,
    FeatureDistribution,
    IncidentSpan,
    PerformanceSeries,
    PeriodActivity,
)
from churnops.monitoring.monitor import MonitoringReport
from churnops.store.queries import DailyVolume

if TYPE_CHECKING:  # the Monitoring page never needs MLflow: import it only for type checks
    from churnops.modeling.registry_history import VersionDetails

OK_COLOUR = "#2ca02c"
WARNING_COLOUR = "#ff7f0e"
DRIFT_COLOUR = "#d62728"
RESOLVED_COLOUR = "#7f7f7f"
REFERENCE_COLOUR = "#1f77b4"
CURRENT_COLOUR = "#ff7f0e"
HEIGHT = 320
# Metrics of a training run worth comparing, in display order (MLflow metric names).
COMPARED_METRICS = (
    "cv_roc_auc",
    "test_roc_auc",
    "test_pr_auc",
    "test_precision",
    "test_recall",
    "test_f1",
    "test_brier",
)


def _layout(fig: go.Figure, title: str, *, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def alerts_timeline(spans: Sequence[IncidentSpan], *, now: datetime) -> go.Figure:
    """One bar per incident from opening to resolution (open ones run to `now`, in red)."""
    fig = go.Figure()
    for state, colour in (("open", DRIFT_COLOUR), ("resolved", RESOLVED_COLOUR)):
        chosen = [s for s in spans if s.open == (state == "open")]
        if not chosen:
            continue
        xs: list[datetime | None] = []
        ys: list[str | None] = []
        text: list[str | None] = []
        for span in chosen:
            xs += [span.opened_at, span.resolved_at or now, None]
            ys += [span.kind, span.kind, None]
            text += [span.message, span.message, None]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                line={"color": colour, "width": 10},
                marker={"size": 8},
                name=state,
                text=text,
                hovertemplate="%{y}<br>%{x}<br>%{text}<extra></extra>",
                connectgaps=False,
            )
        )
    fig.add_vline(x=now, line={"dash": "dot", "color": "#444"})
    fig.update_yaxes(type="category")
    return _layout(fig, "Alerts: open and resolved incidents", height=240)


def drift_colourscale(psi_warning: float, psi_drift: float, zmax: float) -> list[list[object]]:
    """Green below the warning threshold, orange up to the drift threshold, red above it."""
    w, d = psi_warning / zmax, psi_drift / zmax
    return [
        [0.0, "#e8f5e9"],
        [w, "#a5d6a7"],
        [w, "#ffe0b2"],
        [d, WARNING_COLOUR],
        [d, "#ef9a9a"],
        [1.0, DRIFT_COLOUR],
    ]


def drift_heatmap(matrix: DriftMatrix) -> go.Figure:
    """Feature x period PSI; colour breaks at the thresholds, an x on each drifted cell."""
    values = [v for row in matrix.psi for v in row if v is not None]
    zmax = max([matrix.psi_drift * 2, *values])
    fig = go.Figure(
        go.Heatmap(
            z=matrix.psi,
            x=matrix.periods,
            y=matrix.features,
            zmin=0.0,
            zmax=zmax,
            colorscale=drift_colourscale(matrix.psi_warning, matrix.psi_drift, zmax),
            colorbar={
                "title": {"text": "PSI"},
                "tickvals": [0.0, matrix.psi_warning, matrix.psi_drift],
                "ticktext": [
                    "0",
                    f"warning {matrix.psi_warning:g}",
                    f"drift {matrix.psi_drift:g}",
                ],
            },
            hoverongaps=False,
            hovertemplate="%{y}<br>%{x}<br>PSI %{z:.3f}<extra></extra>",
        )
    )
    cells = [
        (period, feature)
        for feature, row in zip(matrix.features, matrix.drifted, strict=True)
        for period, drifted in zip(matrix.periods, row, strict=True)
        if drifted
    ]
    fig.add_trace(
        go.Scatter(
            x=[c[0] for c in cells],
            y=[c[1] for c in cells],
            mode="markers",
            marker={"symbol": "x-thin", "size": 7, "line": {"width": 1.5, "color": "black"}},
            name=f"drift (PSI >= {matrix.psi_drift:g} or JS rule)",
            hoverinfo="skip",
        )
    )
    height = max(HEIGHT, 22 * len(matrix.features) + 120)
    return _layout(fig, "Drift per feature and day (PSI)", height=height)


def volume_chart(volume: DailyVolume, activity: PeriodActivity) -> go.Figure:
    """Stored predictions per day (bars) and the mean churn probability the monitor saw (line)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(x=volume.days, y=volume.n, name="predictions", marker_color="#9ecae1"),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=activity.periods,
            y=activity.mean_score,
            name="mean churn probability",
            mode="lines",
            line={"color": DRIFT_COLOUR},
        ),
        secondary_y=True,
    )
    fig.update_yaxes(title_text="predictions", secondary_y=False)
    fig.update_yaxes(title_text="mean probability", range=[0, 1], secondary_y=True)
    return _layout(fig, "Volume and mean score per day")


def score_distribution_chart(activity: PeriodActivity) -> go.Figure:
    """Share of each day's predictions in each equal-width probability bin (columns sum to 1)."""
    bins = max((len(h) for h in activity.score_hist), default=0)
    labels = [f"{i / bins:.2f}-{(i + 1) / bins:.2f}" for i in range(bins)]
    shares: list[list[float | None]] = [
        [
            hist[b] / total if len(hist) == bins and (total := sum(hist)) else None
            for hist in activity.score_hist
        ]
        for b in range(bins)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=shares,
            x=activity.periods,
            y=labels,
            colorscale="Blues",
            zmin=0.0,
            colorbar={"title": {"text": "share"}},
            hovertemplate="%{x}<br>p %{y}<br>%{z:.1%}<extra></extra>",
        )
    )
    fig.update_yaxes(title_text="churn probability")
    return _layout(fig, "Score distribution per day")


def performance_chart(series: PerformanceSeries) -> go.Figure:
    """Estimated (CBPE, all rows) and realised (feedback labels) ROC-AUC per day, against the
    training figure and the drop that counts as degradation."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=series.periods,
            y=series.estimated_roc_auc,
            name="estimated ROC-AUC",
            mode="lines+markers",
            line={"color": REFERENCE_COLOUR, "dash": "dash"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=series.periods,
            y=series.realised_roc_auc,
            name="realised ROC-AUC (feedback)",
            mode="lines+markers",
            line={"color": CURRENT_COLOUR},
            customdata=series.n_labelled,
            hovertemplate="%{x}<br>%{y:.3f} on %{customdata} labels<extra></extra>",
        )
    )
    if series.training_roc_auc is not None:
        fig.add_hline(
            y=series.training_roc_auc,
            line={"color": OK_COLOUR},
            annotation_text=f"training {series.training_roc_auc:.3f}",
        )
        if series.drop_limit is not None:
            floor = series.training_roc_auc - series.drop_limit
            fig.add_hline(
                y=floor,
                line={"color": DRIFT_COLOUR, "dash": "dot"},
                annotation_text=f"degraded below {floor:.3f}",
                annotation_position="bottom right",
            )
    fig.update_yaxes(title_text="ROC-AUC")
    return _layout(fig, "Performance: estimated vs realised")


def churn_rate_chart(activity: PeriodActivity) -> go.Figure:
    """Predicted churn (mean probability, share flagged) against the churn the labels show."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=activity.periods,
            y=activity.mean_score,
            name="predicted churn rate (mean probability)",
            mode="lines",
            line={"color": REFERENCE_COLOUR},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=activity.periods,
            y=activity.flagged_rate,
            name="flagged at the threshold",
            mode="lines",
            line={"color": REFERENCE_COLOUR, "dash": "dot"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=activity.periods,
            y=activity.realised_rate,
            name="realised churn rate (feedback)",
            mode="lines+markers",
            line={"color": CURRENT_COLOUR},
            customdata=activity.n_labelled,
            hovertemplate="%{x}<br>%{y:.1%} of %{customdata} labelled<extra></extra>",
        )
    )
    fig.update_yaxes(title_text="churn rate", tickformat=".0%", rangemode="tozero")
    return _layout(fig, "Predicted vs realised churn rate")


def feature_distribution_chart(dist: FeatureDistribution, *, psi: float | None) -> go.Figure:
    """Reference against current shares on the reference's own bins (or categories)."""
    fig = go.Figure()
    fig.add_bar(x=dist.labels, y=dist.reference, name="reference", marker_color=REFERENCE_COLOUR)
    fig.add_bar(
        x=dist.labels,
        y=dist.current,
        name=f"current ({dist.n_current:,} values)",
        marker_color=CURRENT_COLOUR,
    )
    title = f"{dist.feature}: reference vs current"
    if psi is not None:
        title += f" (PSI {psi:.3f})"
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="share", tickformat=".0%")
    return _layout(fig, title)


def drift_table(report: MonitoringReport) -> pd.DataFrame:
    """The latest check's per-feature decisions, drifted first."""
    rows = [
        {
            "feature": f.feature,
            "status": f.status,
            "PSI": round(f.psi, 4),
            "JS": round(f.js_distance, 4),
            "why": "; ".join(f.reasons),
        }
        for f in report.drift.features
    ]
    order = {"drift": 0, "warning": 1, "ok": 2, "no_data": 3}
    frame = pd.DataFrame(rows, columns=["feature", "status", "PSI", "JS", "why"])
    return frame.sort_values(
        ["status", "PSI"], key=lambda c: c.map(order) if c.name == "status" else -c
    )


def quality_table(report: MonitoringReport) -> pd.DataFrame:
    """Nulls, unseen categories and out-of-range values per feature, issues first."""
    rows = [
        {
            "feature": q.feature,
            "nulls (training)": q.null_rate_reference,
            "nulls (now)": q.null_rate_current,
            "unseen categories": q.unseen_share,
            "out of range": q.out_of_range_share,
            "issues": "; ".join(q.issues),
        }
        for q in report.quality.features
    ]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values("issues", ascending=False, key=lambda c: c.str.len())


def performance_table(report: MonitoringReport) -> pd.DataFrame:
    """Realised next to estimated next to training metrics of the latest check."""
    perf = report.performance
    if perf is None:
        return pd.DataFrame()
    names = ("roc_auc", "precision", "recall", "f1", "brier")
    return pd.DataFrame(
        {
            "metric": list(names),
            "realised": [getattr(perf.realised, n) if perf.realised else None for n in names],
            "estimated": [getattr(perf.estimated, n) if perf.estimated else None for n in names],
            "training": [perf.training.get(n) for n in names],
        }
    )


# -- models ----------------------------------------------------------------------------------


def versions_table(versions: Sequence[VersionDetails]) -> pd.DataFrame:
    """One row per version: aliases, model, key metrics, leakage and the last alias move."""
    rows = []
    for v in versions:
        s = v.summary
        last = max((e for e in v.events if e.at), key=lambda e: e.at or "", default=None)
        rows.append(
            {
                "version": s.version,
                "aliases": ", ".join(s.aliases),
                "model": s.candidate,
                "cv ROC-AUC": s.cv_roc_auc,
                "test ROC-AUC": s.test_roc_auc,
                "threshold": s.threshold,
                "leakage": "; ".join(v.leakage_flags) or ("yes" if s.leakage else "no"),
                "created": s.created_at,
                "last change": f"{last.action} by {last.by} at {last.at}: {last.why}"
                if last
                else "",
            }
        )
    return pd.DataFrame(rows)


def history_table(versions: Sequence[VersionDetails]) -> pd.DataFrame:
    """Who moved which alias when and why, newest first (gate decisions at the end)."""
    rows = [
        {"version": e.version, "action": e.action, "when": e.at, "who": e.by, "why": e.why}
        for v in versions
        for e in v.events
    ]
    frame = pd.DataFrame(rows, columns=["version", "action", "when", "who", "why"])
    return frame.sort_values("when", ascending=False, na_position="last", ignore_index=True)


def _text(value: object) -> str:
    if value is None or value == "":
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def comparison_table(a: VersionDetails, b: VersionDetails) -> pd.DataFrame:
    """Metrics and settings of two versions side by side, with the difference (b - a), as text
    (one column mixes numbers and names)."""
    left, right = f"v{a.version}", f"v{b.version}"
    rows = []
    for name in (m for m in COMPARED_METRICS if m in a.metrics or m in b.metrics):
        x, y = a.metrics.get(name), b.metrics.get(name)
        diff = f"{y - x:+.4f}" if x is not None and y is not None else "-"
        rows.append({"metric": name, left: _text(x), right: _text(y), "b - a": diff})
    for label, x_text, y_text in (
        ("model", a.summary.candidate, b.summary.candidate),
        ("threshold", a.summary.threshold, b.summary.threshold),
        ("calibration", a.params.get("calibration"), b.params.get("calibration")),
        (
            "data fingerprint",
            a.tags.get("churnops.data_fingerprint", "")[:12],
            b.tags.get("churnops.data_fingerprint", "")[:12],
        ),
    ):
        rows.append({"metric": label, left: _text(x_text), right: _text(y_text), "b - a": ""})
    return pd.DataFrame(rows, columns=["metric", left, right, "b - a"])


def metrics_comparison_chart(a: VersionDetails, b: VersionDetails) -> go.Figure:
    """Grouped bars of the compared metrics of two versions."""
    names = [m for m in COMPARED_METRICS if m in a.metrics and m in b.metrics]
    fig = go.Figure()
    for details, colour in ((a, REFERENCE_COLOUR), (b, CURRENT_COLOUR)):
        fig.add_bar(
            x=names,
            y=[details.metrics[m] for m in names],
            name=f"v{details.version} ({details.summary.candidate})",
            marker_color=colour,
            text=[f"{details.metrics[m]:.3f}" for m in names],
            textposition="outside",
        )
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 1.1])
    return _layout(fig, f"v{a.version} vs v{b.version}")
