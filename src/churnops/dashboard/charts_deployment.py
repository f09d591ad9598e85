"""Pure builders of the Deployment page: the per-variant table, the score histograms, the
decisions log. Plain data in, a frame or a Plotly figure out (testable without Streamlit)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from churnops.deployment.compare import SCORE_BINS, Comparison, Estimate
from churnops.store.decisions import Decision

ROWS: tuple[tuple[str, str, str], ...] = (
    ("version", "model_version", "s"),
    ("requests", "requests", ",d"),
    ("error rate", "error_rate", ".2%"),
    ("p50 latency (ms)", "p50_ms", ".3f"),
    ("p99 latency (ms)", "p99_ms", ".3f"),
    ("mean score", "mean_probability", ".4f"),
    ("predicted churn rate", "churn_rate", ".2%"),
    ("labels", "labels", ",d"),
    ("ROC-AUC", "roc_auc", ".3f"),
    ("PR-AUC", "pr_auc", ".3f"),
    ("Brier", "brier", ".4f"),
    ("expected profit / customer", "profit", ".2f"),
)


def _cell(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, Estimate):
        return f"{value.value:{spec}} ({value.low:{spec}} to {value.high:{spec}})"
    return format(value, spec)


def variants_table(comparison: Comparison) -> pd.DataFrame:
    """One row per figure, one column per variant; quality figures with their 95% interval."""
    return pd.DataFrame(
        {
            "figure": [label for label, _, _ in ROWS],
            **{
                variant: [_cell(getattr(stats, key), spec) for _, key, spec in ROWS]
                for variant, stats in comparison.variants.items()
            },
        }
    )


def score_histogram(comparison: Comparison) -> go.Figure:
    """Share of each variant's scores per tenth of the probability range."""
    figure = go.Figure()
    labels = [f"{a:.1f}-{b:.1f}" for a, b in pairwise(SCORE_BINS)]
    for variant, counts in comparison.score_counts.items():
        total = sum(counts) or 1
        figure.add_bar(x=labels, y=[c / total for c in counts], name=variant)
    figure.update_layout(
        barmode="group",
        xaxis_title="churn probability",
        yaxis_title="share of scores",
        yaxis_tickformat=".0%",
        height=320,
        margin={"t": 30, "b": 10},
    )
    return figure


def decisions_table(decisions: list[Decision]) -> pd.DataFrame:
    """The deployment's steps and rollbacks, newest first, with who and why."""
    return pd.DataFrame(
        [
            {
                "when": d.created_at,
                "outcome": d.outcome,
                "mode": d.evidence.get("mode"),
                "weight": d.evidence.get("weight"),
                "challenger": d.to_version,
                "champion": d.from_version,
                "by": d.actor,
                "reason": d.evidence.get("reason"),
            }
            for d in decisions
        ],
        columns=["when", "outcome", "mode", "weight", "challenger", "champion", "by", "reason"],
    )
