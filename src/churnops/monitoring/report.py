"""Self-contained HTML report (plotly.js inlined once, no CDN) and the JSON summary beside it."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from churnops.data.schema import MISSING_CATEGORY
from churnops.monitoring.monitor import MonitoringReport
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.summary import NumericSummary, WindowSummary

STATUS_COLOURS = {"ok": "#2ca02c", "warning": "#ff7f0e", "drift": "#d62728", "no_data": "#7f7f7f"}
REFERENCE_COLOUR = "#1f77b4"
CURRENT_COLOUR = "#ff7f0e"
DISPLAY_BINS = 30
MAX_CATEGORIES_SHOWN = 20

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{margin-bottom:4px} .muted{color:#666} table{border-collapse:collapse;margin:8px 0 24px}
td,th{border:1px solid #ddd;padding:4px 8px;font-size:13px;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;color:#fff;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:8px}
"""


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#7f7f7f")
    return f'<span class="badge" style="background:{colour}">{html.escape(status)}</span>'


def _div(fig: go.Figure) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False}))


def _numeric_shares(
    name: str, current: NumericSummary, reference: MonitoringReference
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference and current shares on equal-width display bins, read off both CDFs."""
    grid = reference.grids[name]
    u = grid.points
    low = min(u[0], current.min if current.min is not None else u[0])
    high = max(u[-1], current.max if current.max is not None else u[-1])
    if high <= low:
        high = low + 1.0
    x = np.linspace(low, high, DISPLAY_BINS + 1)
    ref_cdf = np.interp(x, u, grid.cdf_at, left=0.0, right=1.0)
    n = max(current.grid.n, 1)
    cur_points = np.concatenate([[low], u, [high]])
    cur_values = np.concatenate(
        [[0.0], np.asarray(current.grid.le, float) / n, [1.0 if current.grid.n else 0.0]]
    )
    cur_cdf = np.interp(x, cur_points, cur_values)
    centres = (x[:-1] + x[1:]) / 2
    return centres, np.diff(ref_cdf), np.diff(cur_cdf)


def _feature_figure(name: str, summary: WindowSummary, reference: MonitoringReference) -> go.Figure:
    fig = go.Figure()
    if name in summary.numeric:
        centres, ref, cur = _numeric_shares(name, summary.numeric[name], reference)
        fig.add_bar(x=centres, y=ref, name="reference", marker_color=REFERENCE_COLOUR, opacity=0.6)
        fig.add_bar(x=centres, y=cur, name="current", marker_color=CURRENT_COLOUR, opacity=0.6)
        fig.update_layout(barmode="overlay", bargap=0.02)
    else:
        ref_counts = reference.profile.categorical[name].frequencies
        cur_counts = summary.categorical[name].counts
        ref_total = max(sum(ref_counts.values()), 1)
        cur_total = max(sum(cur_counts.values()), 1)
        names = sorted(
            set(ref_counts) | set(cur_counts),
            key=lambda k: -max(ref_counts.get(k, 0) / ref_total, cur_counts.get(k, 0) / cur_total),
        )[:MAX_CATEGORIES_SHOWN]
        labels = [k if k in ref_counts or k == MISSING_CATEGORY else f"{k} (unseen)" for k in names]
        fig.add_bar(
            x=labels,
            y=[ref_counts.get(k, 0) / ref_total for k in names],
            name="reference",
            marker_color=REFERENCE_COLOUR,
        )
        fig.add_bar(
            x=labels,
            y=[cur_counts.get(k, 0) / cur_total for k in names],
            name="current",
            marker_color=CURRENT_COLOUR,
        )
        fig.update_layout(barmode="group")
    fig.update_layout(
        title=name,
        height=300,
        margin={"l": 40, "r": 10, "t": 40, "b": 40},
        yaxis_tickformat=".0%",
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def _drift_chart(report: MonitoringReport) -> go.Figure:
    features = sorted(report.drift.features, key=lambda f: -f.js_distance)
    names = [f.feature for f in features]
    colours = [STATUS_COLOURS[f.status] for f in features]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Jensen-Shannon distance", "PSI"))
    fig.add_bar(x=names, y=[f.js_distance for f in features], marker_color=colours, row=1, col=1)
    fig.add_bar(x=names, y=[f.psi for f in features], marker_color=colours, row=1, col=2)
    thresholds = report.drift.thresholds
    fig.add_hline(y=thresholds.js_drift, line_dash="dash", line_color="#d62728", row=1, col=1)
    fig.add_hline(y=thresholds.psi_drift, line_dash="dash", line_color="#d62728", row=1, col=2)
    fig.add_hline(y=thresholds.psi_warning, line_dash="dot", line_color="#ff7f0e", row=1, col=2)
    fig.update_layout(height=380, showlegend=False, margin={"t": 40})
    return fig


def _series_chart(report: MonitoringReport) -> go.Figure:
    points = report.series
    periods = [p.period for p in points]
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("Share of drifted features", "Feature PSI", "ROC-AUC and score PSI"),
    )
    fig.add_scatter(
        x=periods,
        y=[p.share_drifted for p in points],
        name="share drifted",
        mode="lines+markers",
        row=1,
        col=1,
    )
    fig.add_hline(
        y=report.drift.thresholds.dataset_drift_share,
        line_dash="dash",
        line_color="#d62728",
        row=1,
        col=1,
    )
    for feature in report.drift.features:
        fig.add_scatter(
            x=periods,
            y=[p.feature_psi.get(feature.feature) for p in points],
            name=feature.feature,
            mode="lines",
            row=2,
            col=1,
            visible=True if feature.status != "ok" else "legendonly",
        )
    fig.add_scatter(
        x=periods,
        y=[p.estimated_roc_auc for p in points],
        name="estimated ROC-AUC",
        mode="lines+markers",
        row=3,
        col=1,
    )
    fig.add_scatter(
        x=periods,
        y=[p.realised_roc_auc for p in points],
        name="realised ROC-AUC",
        mode="lines+markers",
        row=3,
        col=1,
    )
    fig.add_scatter(
        x=periods,
        y=[p.prediction_psi for p in points],
        name="score PSI",
        mode="lines",
        line_dash="dot",
        row=3,
        col=1,
    )
    fig.update_layout(height=760, margin={"t": 40})
    return fig


def _prediction_section(
    report: MonitoringReport, summary: WindowSummary, reference: MonitoringReference
) -> str:
    pred = report.prediction
    ref_scores = reference.profile.scores
    if pred is None or ref_scores is None or summary.scores is None:
        return "<p class='muted'>No scores in this window or in the reference.</p>"
    edges = np.asarray(ref_scores.bin_edges)
    centres = (edges[:-1] + edges[1:]) / 2
    ref = np.asarray(ref_scores.bin_counts, float)
    cur = np.asarray(summary.scores.hist, float)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Score distribution", "Risk levels"))
    fig.add_bar(
        x=centres,
        y=ref / max(ref.sum(), 1),
        name="reference",
        marker_color=REFERENCE_COLOUR,
        row=1,
        col=1,
    )
    fig.add_bar(
        x=centres,
        y=cur / max(cur.sum(), 1),
        name="current",
        marker_color=CURRENT_COLOUR,
        row=1,
        col=1,
    )
    levels = list(pred.risk_shares_reference)
    fig.add_bar(
        x=levels,
        y=[pred.risk_shares_reference[lvl] for lvl in levels],
        marker_color=REFERENCE_COLOUR,
        showlegend=False,
        row=1,
        col=2,
    )
    fig.add_bar(
        x=levels,
        y=[pred.risk_shares_current.get(lvl, 0.0) for lvl in levels],
        marker_color=CURRENT_COLOUR,
        showlegend=False,
        row=1,
        col=2,
    )
    fig.update_layout(height=340, barmode="group", yaxis_tickformat=".0%", margin={"t": 40})
    table = (
        "<table><tr><th>status</th><th>PSI</th><th>JS</th><th>KS</th><th>KS p</th>"
        "<th>mean ref</th><th>mean cur</th><th>positive rate ref</th>"
        "<th>positive rate cur</th></tr>"
        f"<tr><td>{_badge(pred.status)}</td><td>{_fmt(pred.psi)}</td><td>{_fmt(pred.js_distance)}</td>"
        f"<td>{_fmt(pred.ks_statistic)}</td><td>{pred.ks_pvalue:.2g}</td>"
        f"<td>{_fmt(pred.reference_mean)}</td><td>{_fmt(pred.current_mean)}</td>"
        f"<td>{_fmt(pred.reference_positive_rate)}</td><td>{_fmt(pred.current_positive_rate)}</td>"
        "</tr></table>"
    )
    return table + _div(fig)


def _performance_section(report: MonitoringReport) -> str:
    perf = report.performance
    if perf is None:
        return "<p class='muted'>No scores in this window, so no performance figures.</p>"
    rows = []
    for metric in ("roc_auc", "precision", "recall", "f1", "brier"):
        realised = getattr(perf.realised, metric) if perf.realised else None
        estimated = getattr(perf.estimated, metric) if perf.estimated else None
        rows.append(
            f"<tr><td>{metric}</td><td>{_fmt(perf.training.get(metric))}</td>"
            f"<td>{_fmt(estimated)}</td><td>{_fmt(realised)}</td>"
            f"<td>{_fmt(perf.drops.get(metric))}</td></tr>"
        )
    status = "drift" if perf.degraded else ("warning" if perf.estimated_degraded else "ok")
    text = (
        f"<p>{_badge(status)} {perf.n_labelled:,} of {perf.n_scored:,} rows labelled; "
        f"degradation when ROC-AUC falls by more than {perf.performance_drop}. "
        f"{html.escape('; '.join(perf.reasons))}</p>"
        "<table><tr><th>metric</th><th>training</th><th>estimated (CBPE)</th><th>realised</th>"
        "<th>drop</th></tr>" + "".join(rows) + "</table>"
    )
    if perf.calibration:
        fig = go.Figure()
        fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line_dash="dot", name="perfect")
        fig.add_scatter(
            x=[b.mean_predicted for b in perf.calibration],
            y=[b.observed_rate for b in perf.calibration],
            mode="lines+markers",
            name="observed",
            text=[f"n={b.count}" for b in perf.calibration],
        )
        ece = perf.realised.ece if perf.realised else None
        fig.update_layout(
            title=f"Reliability (ECE {_fmt(ece)})",
            height=340,
            xaxis_title="mean predicted",
            yaxis_title="observed churn rate",
        )
        text += _div(fig)
    return text


def _feature_table(report: MonitoringReport) -> str:
    rows = []
    for f in sorted(report.drift.features, key=lambda f: (f.status != "drift", -f.js_distance)):
        p_value = f.ks_pvalue if f.kind == "numeric" else f.chi2_pvalue
        rows.append(
            f"<tr><td>{html.escape(f.feature)}</td><td>{f.kind}</td><td>{_badge(f.status)}</td>"
            f"<td>{_fmt(f.psi)}</td><td>{_fmt(f.js_distance)}</td><td>{_fmt(f.wasserstein_norm)}</td>"
            f"<td>{_fmt(f.ks_statistic)}</td>"
            f"<td>{'-' if p_value is None else f'{p_value:.2g}'}</td>"
            f"<td>{f.n_current:,}</td><td>{html.escape('; '.join(f.reasons))}</td></tr>"
        )
    return (
        "<table><tr><th>feature</th><th>kind</th><th>status</th><th>PSI</th><th>JS</th>"
        "<th>Wasserstein (normed)</th><th>KS</th><th>p-value (KS / chi2)</th><th>n</th>"
        "<th>why</th></tr>" + "".join(rows) + "</table>"
    )


def _quality_table(report: MonitoringReport) -> str:
    rows = [
        f"<tr><td>{html.escape(q.feature)}</td><td>{q.null_rate_reference:.2%}</td>"
        f"<td>{q.null_rate_current:.2%}</td><td>{q.out_of_range_share:.2%}</td>"
        f"<td>{q.unseen_share:.2%}</td><td>{html.escape(', '.join(q.unseen_examples))}</td>"
        f"<td>{html.escape('; '.join(q.issues))}</td></tr>"
        for q in report.quality.features
    ]
    return (
        "<table><tr><th>feature</th><th>nulls ref</th><th>nulls cur</th><th>out of range</th>"
        "<th>unseen</th><th>unseen examples</th><th>issues</th></tr>" + "".join(rows) + "</table>"
    )


def render_html(
    report: MonitoringReport, summary: WindowSummary, reference: MonitoringReference
) -> str:
    """The whole report as one HTML document that works offline."""
    drift = report.drift
    window = (
        f"{report.window_start:%Y-%m-%d %H:%M} to {report.window_end:%Y-%m-%d %H:%M} UTC"
        if report.window_start and report.window_end
        else "window without timestamps"
    )
    overall = "drift" if report.drift_found else ("warning" if report.quality.has_issues else "ok")
    feature_divs = "".join(
        _div(_feature_figure(f.feature, summary, reference))
        for f in sorted(drift.features, key=lambda f: (f.status != "drift", -f.js_distance))
    )
    series = (
        f"<h2>Over time (per {report.period})</h2>" + _div(_series_chart(report))
        if report.series
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>churnops monitoring report</title>
<style>{_CSS}</style><script type="text/javascript">{get_plotlyjs()}</script></head><body>
<h1>Monitoring report {_badge(overall)}</h1>
<p class="muted">{html.escape(window)} &middot; {report.n_rows:,} current rows vs
{report.reference_rows:,} reference rows &middot; made {report.created_at:%Y-%m-%d %H:%M} UTC</p>
<h2>Data drift</h2>
<p>{_badge("drift" if drift.dataset_drift else "ok")} {drift.n_drifted} of {drift.n_features}
features drifted ({drift.share_drifted:.0%}; dataset drift from
{drift.thresholds.dataset_drift_share:.0%}). Rule: {html.escape(drift.rule)}.
p-values are reported, not used to decide.</p>
{_div(_drift_chart(report))}
{_feature_table(report)}
<h2>Prediction drift</h2>
{_prediction_section(report, summary, reference)}
<h2>Performance</h2>
{_performance_section(report)}
{series}
<h2>Data quality</h2>
{_quality_table(report)}
<h2>Distributions: reference vs current</h2>
<div class="grid">{feature_divs}</div>
</body></html>
"""


def write_report(
    report: MonitoringReport,
    summary: WindowSummary,
    reference: MonitoringReference,
    directory: str | Path,
    *,
    stem: str | None = None,
) -> tuple[Path, Path]:
    """Write `<stem>.html` and `<stem>.json` into `directory`; returns both paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    stem = stem or f"monitoring-{report.created_at:%Y%m%dT%H%M%SZ}"
    html_path = out / f"{stem}.html"
    json_path = out / f"{stem}.json"
    html_path.write_text(render_html(report, summary, reference), encoding="utf-8")
    json_path.write_text(report.to_json(), encoding="utf-8")
    return html_path, json_path
