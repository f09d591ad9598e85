"""Exploratory data analysis of a churn table as one self-contained, offline HTML report.

Every chart is drawn from aggregates (bincounts, histograms, quantiles), never from raw rows, so a
million-row table gives the same small file as a thousand-row one. plotly.js is inlined once.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from churnops.data.schema import MISSING_CATEGORY, ColumnKind, ColumnSchema, Schema
from churnops.reporting import stats
from churnops.reporting.page import (
    Section,
    cards,
    fmt_int,
    fmt_pct,
    html_table,
    render_page,
    slug,
)

NEGATIVE_COLOR = "#7b9fc7"
POSITIVE_COLOR = "#e4572e"
NEUTRAL_COLOR = "#c5ccd6"
MAX_MATRIX = 30  # features in a correlation / association matrix
ANNOTATE_MATRIX = 16  # write the values into the cells up to this many rows
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
TEMPLATE = go.layout.Template(
    layout={
        "font": {
            "family": "-apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif",
            "size": 12,
        },
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": [NEGATIVE_COLOR, POSITIVE_COLOR, "#3e8e7e", "#8e6c8a"],
        "xaxis": {"gridcolor": "#eef0f3", "linecolor": "#c5ccd6", "zeroline": False},
        "yaxis": {
            "gridcolor": "#eef0f3",
            "linecolor": "#c5ccd6",
            "zeroline": False,
            "automargin": True,
        },
        "margin": {"l": 60, "r": 30, "t": 50, "b": 50},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        "hoverlabel": {"font": {"size": 12}},
    }
)


def build_eda_report(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    title: str = "Exploratory data analysis",
    fingerprint: str | None = None,
) -> str:
    """HTML of the EDA report of `frame` under `schema`; the frame is not modified."""
    target = stats.target_info(frame, schema)
    present = [c for c in schema.features if c.name in frame.columns]
    absent = [c.name for c in schema.features if c.name not in frame.columns]
    used: set[str] = {"overview"}
    counter = _FigureCounter()

    sections = [
        _target_section(frame, schema, target, counter),
        _missing_section(frame, counter),
        _association_section(frame, present, target, counter),
        _correlation_section(frame, schema, present, target, counter),
    ]
    feature_sections = [
        _feature_section(frame[c.name], c, schema, target, counter, slug(f"feature-{c.name}", used))
        for c in present
    ]
    sections.append(
        Section(
            id="features",
            title="Features",
            body=_p(
                f"{len(present)} features: distribution of each, and the "
                f"<b>{escape(schema.positive_label)}</b> rate along it."
            ),
            children=feature_sections,
        )
    )
    header = _header(frame, schema, target, title=title, fingerprint=fingerprint, absent=absent)
    from plotly.offline import get_plotlyjs

    return render_page(title=title, header=header, sections=sections, script=get_plotlyjs())


def write_eda_report(frame: pd.DataFrame, schema: Schema, path: Path, **kw: Any) -> Path:
    """Build the report and write it atomically (temporary file, then rename) to `path`.

    The file gets the permissions the umask gives any new file (0644 with the usual 022), not
    mkstemp's 0600: it holds aggregates only, and the MLflow server that shows it (logged as a
    run artifact, its mode copied along) often runs as another user. Who may read reports is set
    by the umask and the folder, as for every other report and output churnops writes.
    """
    path = Path(path)
    text = build_eda_report(frame, schema, **kw)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class _FigureCounter:
    """Gives each figure a stable div id, so two reports of the same data are identical."""

    def __init__(self) -> None:
        self.n = 0

    def html(self, fig: go.Figure) -> str:
        self.n += 1
        fig.update_layout(template=TEMPLATE)
        return str(
            fig.to_html(
                full_html=False,
                include_plotlyjs=False,
                config=PLOT_CONFIG,
                div_id=f"fig-{self.n}",
                default_width="100%",
            )
        )


def _p(text: str, cls: str = "note") -> str:
    return f'<p class="{cls}">{text}</p>'


def _header(
    frame: pd.DataFrame,
    schema: Schema,
    target: stats.TargetInfo,
    *,
    title: str,
    fingerprint: str | None,
    absent: list[str],
) -> str:
    n_numeric = sum(c.kind is ColumnKind.NUMERIC for c in schema.features if c.name in frame)
    n_features = sum(c.name in frame for c in schema.features)
    n_missing = int(frame.isna().to_numpy().sum())
    items = [
        ("rows", f"{len(frame):,}"),
        ("columns", f"{frame.shape[1]:,}"),
        (
            "features (numeric / categorical or binary)",
            f"{n_features} ({n_numeric} / {n_features - n_numeric})",
        ),
        (
            f"positive rate ({schema.target} = {schema.positive_label})",
            fmt_pct(target.positive_rate),
        ),
        ("positives", f"{target.n_positive:,}"),
        ("missing cells", f"{n_missing:,} ({fmt_pct(n_missing / max(frame.size, 1))})"),
    ]
    lines = [
        f"<h1>{escape(title)}</h1>",
        f'<div class="sub">Target <code>{escape(schema.target)}</code>, positive label '
        f"<code>{escape(schema.positive_label)}</code>, negative label "
        f"<code>{escape(schema.negative_label)}</code>"
        + (f", id column <code>{escape(schema.id_column)}</code>" if schema.id_column else "")
        + f" · generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</div>",
        cards(items),
    ]
    if fingerprint:
        lines.append(_p(f"Data fingerprint: <code>{escape(fingerprint)}</code>"))
    if schema.ignored:
        names = ", ".join(f"<code>{escape(c.name)}</code> ({c.kind.value})" for c in schema.ignored)
        lines.append(_p(f"Not used as features: {names}."))
    if absent:
        names = ", ".join(f"<code>{escape(n)}</code>" for n in absent)
        lines.append(_p(f"Schema features missing from this table: {names}.", "note warn"))
    return "".join(lines)


def _target_section(
    frame: pd.DataFrame, schema: Schema, target: stats.TargetInfo, counter: _FigureCounter
) -> Section:
    n_unknown = len(frame) - target.n_known
    labels = [schema.negative_label, schema.positive_label]
    counts = [target.n_known - target.n_positive, target.n_positive]
    colors = [NEGATIVE_COLOR, POSITIVE_COLOR]
    if n_unknown:
        labels.append("(missing)")
        counts.append(n_unknown)
        colors.append(NEUTRAL_COLOR)
    total = max(len(frame), 1)
    fig = go.Figure(
        go.Bar(
            x=counts,
            y=labels,
            orientation="h",
            marker_color=colors,
            text=[f"{c:,} ({100 * c / total:.1f}%)" for c in counts],
            textposition="auto",
            hovertemplate="%{y}: %{x:,}<extra></extra>",
        )
    )
    fig.update_layout(height=110 + 40 * len(labels), xaxis_title="rows", margin={"t": 20})
    fig.update_yaxes(type="category", autorange="reversed")
    table = pd.DataFrame({"label": labels, "rows": counts, "share": [c / total for c in counts]})
    body = (
        _p(
            f"Positive rate {fmt_pct(target.positive_rate)} "
            f"({target.n_positive:,} of {target.n_known:,} rows with a known target)."
        )
        + counter.html(fig)
        + html_table(table, {"rows": fmt_int, "share": fmt_pct})
    )
    return Section(id="target", title="Target balance", body=body)


def _missing_section(frame: pd.DataFrame, counter: _FigureCounter) -> Section:
    table = stats.missing_table(frame)
    with_missing = table[table["missing"] > 0]
    if with_missing.empty:
        body = _p(f"No missing values in any of the {frame.shape[1]} columns.")
        return Section(id="missing", title="Missing values", body=body)
    shown = with_missing.head(40)
    fig = go.Figure(
        go.Bar(
            x=shown["missing"],
            y=shown["column"],
            orientation="h",
            marker_color=POSITIVE_COLOR,
            text=[
                f"{m:,} ({100 * s:.1f}%)"
                for m, s in zip(shown["missing"], shown["share"], strict=True)
            ],
            textposition="auto",
            hovertemplate="%{y}: %{x:,} missing<extra></extra>",
        )
    )
    fig.update_layout(
        height=100 + 26 * len(shown),
        xaxis={"title": f"missing rows (of {len(frame):,})", "range": [0, len(frame)]},
    )
    fig.update_yaxes(type="category", autorange="reversed")
    complete = len(table) - len(with_missing)
    body = (
        _p(
            f"{len(with_missing)} of {len(table)} columns have missing values; "
            f"{complete} are complete."
        )
        + counter.html(fig)
        + html_table(with_missing, {"missing": fmt_int, "share": fmt_pct})
    )
    return Section(id="missing", title="Missing values", body=body)


def _is_numeric(column: ColumnSchema) -> bool:
    return column.kind is ColumnKind.NUMERIC


def _target_codes(target: stats.TargetInfo) -> np.ndarray:
    return target.positive.astype(np.int64)


def _association_section(
    frame: pd.DataFrame,
    features: list[ColumnSchema],
    target: stats.TargetInfo,
    counter: _FigureCounter,
) -> Section:
    known = target.known
    y = _target_codes(target)[known]
    rows = []
    for column in features:
        codes = stats.association_codes(frame[column.name], numeric=_is_numeric(column))[known]
        rows.append((column.name, column.kind.value, stats.cramers_v(codes, y)))
    table = pd.DataFrame(rows, columns=["feature", "kind", "cramers_v"])
    table = table.sort_values("cramers_v", ascending=False, kind="stable").reset_index(drop=True)
    if table.empty:
        return Section(id="association", title="Association with target", body=_p("No features."))
    fig = go.Figure(
        go.Bar(
            x=table["cramers_v"],
            y=table["feature"],
            orientation="h",
            marker_color=[NEGATIVE_COLOR if _k == "numeric" else "#3e8e7e" for _k in table["kind"]],
            text=[f"{v:.2f}" for v in table["cramers_v"]],
            textposition="outside",
            customdata=table["kind"],
            hovertemplate="%{y} (%{customdata}): V = %{x:.3f}<extra></extra>",
            cliponaxis=False,
        )
    )
    fig.update_layout(height=100 + 22 * len(table), xaxis_title="Cramér's V with the target")
    fig.update_yaxes(type="category", autorange="reversed")
    body = _p(
        "Cramér's V between each feature and the target (0: none, 1: determines it). "
        f"Numeric features are cut into {stats.RATE_BINS} quantile bins, missing values are "
        "their own category. Blue: numeric, green: categorical or binary."
    ) + counter.html(fig)
    return Section(id="association", title="Association with target", body=body)


def _correlation_section(
    frame: pd.DataFrame,
    schema: Schema,
    features: list[ColumnSchema],
    target: stats.TargetInfo,
    counter: _FigureCounter,
) -> Section:
    numeric = [c.name for c in features if c.is_numeric_encoded][:MAX_MATRIX]
    categorical = [c.name for c in features if not c.is_numeric_encoded][:MAX_MATRIX]
    target_name = f"{schema.target} = {schema.positive_label}"
    parts = []
    if len(numeric) >= 1:
        data = {n: stats.numeric_values(frame[n]) for n in numeric}
        y = np.where(target.known, target.positive.astype(float), np.nan)
        data[target_name] = y
        corr = pd.DataFrame(data).corr()
        parts.append(
            _p(
                "Pearson correlation of the numeric and 0/1 features, with the target as a 0/1 "
                "column in the last row (pairwise complete rows)."
            )
            + counter.html(_matrix_figure(corr, zmin=-1.0, colorscale="RdBu_r"))
        )
    else:
        parts.append(_p("No numeric features: no correlation matrix."))
    if len(categorical) >= 1:
        codes = [stats.category_codes(frame[n])[0] for n in categorical]
        names = [*categorical, target_name]
        known = target.known
        codes.append(_target_codes(target))
        k = len(names)
        values = np.eye(k)
        for i in range(k):
            for j in range(i + 1, k):
                values[i, j] = values[j, i] = stats.cramers_v(codes[i][known], codes[j][known])
        matrix = pd.DataFrame(values, index=names, columns=names)
        parts.append(
            _p("Cramér's V between categorical and text-valued binary features, and the target.")
            + counter.html(_matrix_figure(matrix, zmin=0.0, colorscale="Blues"))
        )
    else:
        parts.append(_p("No categorical features: no association matrix."))
    body = '<div class="row">' + "".join(f"<div>{p}</div>" for p in parts) + "</div>"
    return Section(id="correlation", title="Correlations", body=body)


def _matrix_figure(matrix: pd.DataFrame, *, zmin: float, colorscale: str) -> go.Figure:
    labels = [str(c) for c in matrix.columns]
    k = len(labels)
    heatmap: dict[str, Any] = {
        "z": matrix.to_numpy(),
        "x": labels,
        "y": labels,
        "zmin": zmin,
        "zmax": 1.0,
        "colorscale": colorscale,
        "hovertemplate": "%{y} × %{x}: %{z:.3f}<extra></extra>",
        "colorbar": {"thickness": 12},
    }
    if k <= ANNOTATE_MATRIX:
        heatmap["texttemplate"] = "%{z:.2f}"
        heatmap["textfont"] = {"size": 10}
    fig = go.Figure(go.Heatmap(**heatmap))
    side = min(max(360, 60 + 34 * k), 900)
    fig.update_layout(height=side + 100, margin={"l": 20, "b": 20, "t": 20, "r": 20})
    fig.update_xaxes(type="category", tickangle=-40, showgrid=False, automargin=True)
    fig.update_yaxes(type="category", autorange="reversed", showgrid=False)
    return fig


def _feature_section(
    series: pd.Series,
    column: ColumnSchema,
    schema: Schema,
    target: stats.TargetInfo,
    counter: _FigureCounter,
    section_id: str,
) -> Section:
    n_missing = int(series.isna().sum())
    facts = (
        f"dtype {column.dtype} · {series.nunique(dropna=True):,} distinct · "
        f"{n_missing:,} missing ({fmt_pct(n_missing / max(len(series), 1))})"
    )
    if _is_numeric(column):
        body = _numeric_body(series, schema, target, counter)
    else:
        body = _categorical_body(series, schema, target, counter)
    return Section(id=section_id, title=column.name, body=_p(facts) + body, tag=column.kind.value)


def _categorical_body(
    series: pd.Series, schema: Schema, target: stats.TargetInfo, counter: _FigureCounter
) -> str:
    table = stats.category_table(series, target)
    overall = target.positive_rate
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        column_widths=[0.45, 0.55],
        subplot_titles=(
            "Rows per category",
            f"{schema.positive_label} rate per category (dashed: overall)",
        ),
    )
    labels = table["category"].tolist()
    fig.add_trace(
        go.Bar(
            x=table["count"],
            y=labels,
            orientation="h",
            marker_color=NEGATIVE_COLOR,
            text=[
                f"{c:,} ({100 * s:.1f}%)"
                for c, s in zip(table["count"], table["share"], strict=True)
            ],
            textposition="auto",
            hovertemplate="%{y}: %{x:,} rows<extra></extra>",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=table["rate"],
            y=labels,
            orientation="h",
            marker_color=POSITIVE_COLOR,
            text=[fmt_pct(r) for r in table["rate"]],
            textposition="auto",
            customdata=np.stack([table["positives"], table["known"]], axis=1),
            hovertemplate="%{y}: %{x:.1%} (%{customdata[0]:,} of %{customdata[1]:,})"
            "<extra></extra>",
            showlegend=False,
        ),
        row=1,
        col=2,
    )
    _overall_line(fig, overall, horizontal=False)
    top = float(np.nanmax(table["rate"])) if table["rate"].notna().any() else 1.0
    fig.update_xaxes(
        range=[0, max(top, overall if overall == overall else 0.0) * 1.12 or 1],
        tickformat=".0%",
        row=1,
        col=2,
    )
    fig.update_yaxes(type="category", autorange="reversed", automargin=True)
    fig.update_layout(height=120 + 30 * len(table), bargap=0.25, margin={"t": 50})
    shown = table[["category", "count", "share", "positives", "rate"]].rename(
        columns={"rate": f"{schema.positive_label} rate", "positives": schema.positive_label}
    )
    return counter.html(fig) + _details(
        "Table",
        html_table(
            shown,
            {
                "count": fmt_int,
                "share": fmt_pct,
                schema.positive_label: fmt_int,
                f"{schema.positive_label} rate": fmt_pct,
            },
        ),
    )


def _numeric_body(
    series: pd.Series, schema: Schema, target: stats.TargetInfo, counter: _FigureCounter
) -> str:
    values = stats.numeric_values(series)
    if not np.isfinite(values).any():
        return _p("No numeric values to plot.", "note warn")
    edges, outside = stats.histogram_edges(values)
    neg, pos = stats.class_histograms(values, target, edges)
    centers = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0])
    rate = stats.rate_by_quantile(values, target)
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.1,
        subplot_titles=(
            "Distribution per class (share of class)",
            f"{schema.positive_label} rate by decile (dashed: overall)",
        ),
    )
    for name, counts, color in (
        (schema.negative_label, neg, NEGATIVE_COLOR),
        (schema.positive_label, pos, POSITIVE_COLOR),
    ):
        share = counts / max(int(counts.sum()), 1)
        fig.add_trace(
            go.Bar(
                x=centers,
                y=share,
                width=width,
                name=f"{schema.target} = {name}",
                marker={"color": color, "line": {"width": 0}},
                opacity=0.6,
                customdata=counts,
                hovertemplate="%{x:,.4g}: %{y:.1%} (%{customdata:,} rows)<extra>"
                + escape(name)
                + "</extra>",
            ),
            row=1,
            col=1,
        )
    is_missing = (rate["bin"] == MISSING_CATEGORY).to_numpy()
    for part, mode in ((rate[~is_missing], "lines+markers"), (rate[is_missing], "markers")):
        if part.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=part["bin"],
                y=part["rate"],
                mode=mode,
                line={"color": POSITIVE_COLOR},
                marker={"size": 9 if mode == "markers" else 6},
                customdata=np.stack([part["positives"], part["count"]], axis=1),
                hovertemplate="%{x}: %{y:.1%} (%{customdata[0]:,} of %{customdata[1]:,})"
                "<extra></extra>",
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    _overall_line(fig, target.positive_rate, horizontal=True)
    fig.update_layout(
        barmode="overlay",
        height=420,
        bargap=0,
        margin={"t": 80},
        legend={"y": 1.1, "x": 0, "yanchor": "bottom"},
    )
    fig.update_yaxes(tickformat=".0%", row=1, col=1)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", row=1, col=2)
    fig.update_xaxes(type="category", tickangle=-35, tickfont={"size": 10}, row=1, col=2)
    note = ""
    if outside:
        note = _p(
            f"Histogram range cut to the 1st–99th percentile: {outside:,} extreme values are "
            "not drawn (they are in the table and the deciles)."
        )
    summary = stats.numeric_summary(
        values,
        target,
        negative=f"{schema.target} = {schema.negative_label}",
        positive=f"{schema.target} = {schema.positive_label}",
    )
    summary = summary.T
    summary.index.name = "rows"
    formats = {"count": fmt_int, "missing": fmt_int}
    return counter.html(fig) + note + html_table(summary, formats, index=True)


def _overall_line(fig: go.Figure, rate: float, *, horizontal: bool) -> None:
    """Dashed reference line at the overall positive rate in the right-hand panel."""
    if rate != rate:  # NaN: no known target
        return
    line = {"dash": "dash", "color": "#3d4852", "width": 1}
    if horizontal:
        fig.add_hline(y=rate, line=line, row=1, col=2)
    else:
        fig.add_vline(x=rate, line=line, row=1, col=2)


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{escape(summary)}</summary>{body}</details>"
