"""Segments: the rank ROC-AUC, who is a segment, the weakest, and regressions against the champion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnops.data.schema import infer_schema
from churnops.settings import DataSettings
from churnops.validation.segments import (
    compare_with_champion,
    numeric_bins,
    paired_auc_drop_z,
    roc_auc,
    segment_labels,
    segment_rows,
    weakest_segments,
)


def test_roc_auc_equals_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    score = np.round(rng.random(500), 1)  # many ties
    assert roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_numeric_bins_cover_every_row_and_label_missing() -> None:
    values = pd.Series([1.0, 2.0, 3.0, 4.0, None, 6.0, 7.0, 8.0])
    labels = numeric_bins(values, 2)
    assert labels[4] == "(missing)" and labels.nunique() == 3


def _table(n: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "plan": rng.choice(["basic", "plus", "tiny"], n, p=[0.5, 0.47, 0.03]),
            "usage": rng.normal(10, 3, n),
            "churn": rng.choice(["Yes", "No"], n),
        }
    )
    y = (frame["churn"] == "Yes").to_numpy().astype(int)
    return frame, y


def test_segment_rows_respect_the_minimum_size_and_measure_each_segment() -> None:
    frame, y = _table()
    schema = infer_schema(frame, DataSettings(target="churn", positive_label="Yes"))
    labels = segment_labels(frame, schema, bins=4)
    probability = np.where(y == 1, 0.8, 0.2)  # perfect ranking, calibrated at 0.5 threshold
    rows = segment_rows(labels, y, probability, threshold=0.5, min_size=100, min_class_rows=10)
    names = {(r.column, r.segment) for r in rows}
    assert ("plan", "basic") in names and ("plan", "tiny") not in names  # ~60 rows: too small
    assert sum(1 for r in rows if r.column == "usage") == 4
    assert all(r.roc_auc == 1.0 and r.recall == 1.0 for r in rows)
    basic = next(r for r in rows if r.segment == "basic")
    assert basic.calibration_gap == pytest.approx(
        abs(probability[frame.plan == "basic"].mean() - y[frame.plan == "basic"].mean())
    )


def test_a_segment_made_worse_is_reported_against_the_champion() -> None:
    frame, y = _table()
    schema = infer_schema(frame, DataSettings(target="churn", positive_label="Yes"))
    labels = segment_labels(frame, schema, bins=4)
    rng = np.random.default_rng(1)
    champion = np.clip(y * 0.5 + rng.random(len(y)) * 0.6, 0, 1)
    candidate = champion.copy()
    worse = (frame["plan"] == "plus").to_numpy()
    candidate[worse] = rng.random(worse.sum())  # ranking destroyed in one segment only
    sizes = {"threshold": 0.5, "min_size": 100, "min_class_rows": 10}
    ours = segment_rows(labels, y, candidate, **sizes)
    theirs = segment_rows(labels, y, champion, **sizes)
    merged, checks = compare_with_champion(
        labels, y, ours, theirs, (candidate, champion), margin=0.05
    )
    failed = {c.subject: c.value for c in checks if not c.passed}
    assert "plan = plus" in failed and "plan = basic" not in failed
    # Every usage bin holds about half "plus" rows: worse too, by less.
    assert max(failed, key=lambda k: failed[k] or 0) == "plan = plus"
    plus = next(r for r in merged if r.segment == "plus")
    assert plus.champion_roc_auc is not None and plus.champion_roc_auc - plus.roc_auc > 0.3
    assert weakest_segments(merged, 1)[0].segment == "plus"


def test_paired_delong_z_against_a_hand_computed_example() -> None:
    # 2 churners, 2 stayers. before: perfect (AUC 1); after: one pair swapped (AUC 0.75).
    y = np.array([1, 1, 0, 0])
    before = np.array([0.9, 0.8, 0.2, 0.1])
    after = np.array([0.9, 0.15, 0.2, 0.1])
    # Placements, before: V10 = [1, 1], V01 = [0, 0]; after: V10 = [1, 0.5], V01 = [0.5, 0].
    # Var = var(V10 diff)/2 + var(V01 diff)/2 with diffs [0, 0.5] and [-0.5, 0]: 0.125/2 + 0.125/2.
    z = paired_auc_drop_z(y, before, after)
    assert z == pytest.approx(0.25 / np.sqrt(0.125))
    assert paired_auc_drop_z(y, before, before) == 0.0


def test_equally_good_models_rarely_fail_on_chance_alone() -> None:
    """Two models of the same quality: the later one is worse on about half the draws, yet
    flagged on about 5% (one-sided DeLong at 1.645), not on every draw that went down."""
    labels = {"all": pd.Series(["x"] * 200)}
    sizes = {"threshold": 0.5, "min_size": 100, "min_class_rows": 10}
    worse = flagged = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, 200)
        champion, candidate = y * 0.6 + rng.random(200), y * 0.6 + rng.random(200)
        ours = segment_rows(labels, y, candidate, **sizes)
        theirs = segment_rows(labels, y, champion, **sizes)
        _, checks = compare_with_champion(
            labels, y, ours, theirs, (candidate, champion), margin=0.0
        )
        worse += (checks[0].value or 0) > 0
        flagged += not checks[0].passed
    assert worse > 80 and flagged < 20
