"""Monitoring references from a loaded model (the profile it carries) or from a reference table.

The model's own reference is the default: its profile was made on the training split and its score
profile on the held-out split, so the API, the batch scorer and the monitor compare against the same
thing. A reference table (`--reference FILE`) is profiled with the model's schema, and scored by the
model when it holds no scores, so prediction drift still works against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from churnops.data.ingest import read_table
from churnops.data.profile import ScoreProfile, profile_frame, profile_scores
from churnops.data.schema import Schema
from churnops.data.validate import find_row_errors
from churnops.errors import DataValidationError, Problem
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.summary import PROBABILITY_COLUMN, RISK_COLUMN

if TYPE_CHECKING:
    from churnops.modeling.scorer import ModelBundle, Scorer


def training_metrics_of(bundle: ModelBundle) -> dict[str, float]:
    """The model's held-out test metrics: what a window's performance is compared against."""
    test = bundle.metrics.get("test", {})
    return {str(k): float(v) for k, v in test.items() if isinstance(v, int | float)}


def reference_from_bundle(bundle: ModelBundle) -> MonitoringReference:
    """The reference the model carries: the monitor and every batch run's summary use this one."""
    return MonitoringReference(
        profile=bundle.profile,
        schema=bundle.schema,
        threshold=float(bundle.threshold),
        training_metrics=training_metrics_of(bundle),
    )


def reference_from_scorer(scorer: Scorer) -> MonitoringReference:
    return reference_from_bundle(scorer.bundle)


def score_rows(frame: pd.DataFrame, scorer: Scorer) -> pd.DataFrame:
    """A copy of `frame` with churn_probability, will_churn and risk_level from `scorer`.

    Rows the model cannot score (unseen category, not a number, ...) keep NaN scores: their features
    still count for drift and data quality, they are only left out of the score figures.
    """
    errors = find_row_errors(frame, scorer.schema)
    good = (errors == "").to_numpy()
    probability = np.full(len(frame), np.nan)
    risk = np.full(len(frame), None, dtype=object)
    if good.any():
        scores = scorer.score_frame(frame.loc[good])
        probability[good] = scores.probability
        risk[good] = scores.risk_level
    out = frame.copy()
    out[PROBABILITY_COLUMN] = probability
    out["will_churn"] = probability >= scorer.threshold
    out[RISK_COLUMN] = risk
    return out


def _score_profile_from(
    frame: pd.DataFrame, scorer: Scorer | None, threshold: float
) -> ScoreProfile | None:
    if PROBABILITY_COLUMN not in frame.columns:
        if scorer is None:
            return None
        frame = score_rows(frame, scorer)
    probability = pd.to_numeric(frame[PROBABILITY_COLUMN], errors="coerce")
    known = probability.notna().to_numpy()
    if not known.any():
        return None
    p = probability.to_numpy(dtype=float, na_value=np.nan)[known]
    if RISK_COLUMN in frame.columns:
        levels = frame[RISK_COLUMN].astype(str).to_numpy()[known]
    elif scorer is not None:
        levels = scorer.risk_levels(p)
    else:
        levels = np.full(p.size, "unknown", dtype=object)
    return profile_scores(p, levels, threshold=threshold)


def reference_from_frame(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    scorer: Scorer | None = None,
    source: str = "the reference table",
) -> MonitoringReference:
    """Profile a reference frame with `schema`; scores from its own column or from `scorer`."""
    missing = [c.name for c in schema.features if c.name not in frame.columns]
    if missing:
        raise DataValidationError(
            [Problem(name, f"feature of the model is missing from {source}") for name in missing]
        )
    if frame.empty:
        raise DataValidationError([Problem(None, f"{source} has no rows")])
    threshold = float(scorer.threshold) if scorer is not None else 0.5
    profile = profile_frame(frame, schema)
    profile.scores = _score_profile_from(frame, scorer, threshold)
    return MonitoringReference(
        profile=profile,
        schema=schema,
        threshold=threshold,
        training_metrics=training_metrics_of(scorer.bundle) if scorer is not None else {},
    )


def reference_from_file(
    path: str | Path, schema: Schema, *, scorer: Scorer | None = None
) -> MonitoringReference:
    """Reference from a table any `read_table` reader understands, profiled with `schema`."""
    frame = read_table(path)
    return reference_from_frame(frame, schema, scorer=scorer, source=str(path))
