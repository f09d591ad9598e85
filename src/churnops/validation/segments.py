"""Quality per segment: each value of a categorical or binary feature, each quantile bin of a
numeric one; the weakest segments, and the segments that got worse against the champion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from churnops.data.schema import MISSING_CATEGORY, Schema
from churnops.validation.result import CheckResult, SegmentRow

Z_ONE_SIDED_95 = 1.645  # a drop counts only when chance would show it less than 5% of the time


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney ROC-AUC (ties count half): sklearn's number without its per-call checks."""
    positives = int(y.sum())
    negatives = len(y) - positives
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def paired_auc_drop_z(y: np.ndarray, before: np.ndarray, after: np.ndarray) -> float:
    """DeLong's z of ROC-AUC(before) - ROC-AUC(after), both scored on the same rows: how many
    standard errors the drop is (placement values from midranks, DeLong et al. 1988)."""
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    v10, v01 = [], []
    for score in (before, after):
        ranks = rankdata(score)
        v10.append((ranks[pos] - rankdata(score[pos])) / n)
        v01.append(1.0 - (ranks[neg] - rankdata(score[neg])) / m)
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    variance = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m
    variance += (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    drop = float(v10[0].mean() - v10[1].mean())
    if variance <= 0:
        return 0.0 if drop == 0 else float(np.sign(drop) * np.inf)
    return drop / float(np.sqrt(variance))


def numeric_bins(values: pd.Series, bins: int) -> pd.Series:
    """Quantile bins labelled by their range; missing values get their own label."""
    numbers = pd.to_numeric(values, errors="coerce")
    binned = pd.qcut(numbers, q=bins, duplicates="drop")
    labels = binned.astype(object).map(_interval_label, na_action="ignore")
    return labels.where(numbers.notna(), MISSING_CATEGORY).astype(str)


def _interval_label(interval: pd.Interval) -> str:
    return f"{interval.left:.4g} to {interval.right:.4g}"


def segment_labels(frame: pd.DataFrame, schema: Schema, *, bins: int) -> dict[str, pd.Series]:
    """Each feature -> the segment label of every row (numeric kinds binned by quantile)."""
    labels: dict[str, pd.Series] = {}
    for column in schema.features:
        series = frame[column.name]
        if column.categories is None and column.is_numeric_encoded:
            labels[column.name] = numeric_bins(series, bins)
        else:
            text = series.astype(object).where(series.notna(), MISSING_CATEGORY)
            labels[column.name] = text.astype(str)
    return labels


def segment_rows(
    labels: dict[str, pd.Series],
    y: np.ndarray,
    probability: np.ndarray,
    *,
    threshold: float,
    min_size: int,
    min_class_rows: int,
) -> list[SegmentRow]:
    """ROC-AUC, recall at the threshold and calibration gap of every segment of `min_size` rows."""
    rows: list[SegmentRow] = []
    for column, series in labels.items():
        codes, names = pd.factorize(series, sort=True)
        for code, name in enumerate(names):
            mask = codes == code
            if mask.sum() >= min_size:
                rows.append(
                    _segment(
                        column, str(name), y[mask], probability[mask], threshold, min_class_rows
                    )
                )
    return rows


def _segment(
    column: str, name: str, y: np.ndarray, p: np.ndarray, threshold: float, min_class_rows: int
) -> SegmentRow:
    positives = int(y.sum())
    ranked = min(positives, len(y) - positives) >= min_class_rows
    return SegmentRow(
        column=column,
        segment=name,
        rows=len(y),
        positives=positives,
        roc_auc=roc_auc(y, p) if ranked else None,
        recall=float((p[y == 1] >= threshold).mean()) if positives >= min_class_rows else None,
        calibration_gap=float(abs(p.mean() - y.mean())),
    )


def weakest_segments(rows: Sequence[SegmentRow], k: int) -> list[SegmentRow]:
    """The `k` segments with the lowest ROC-AUC (segments too small to rank are left out)."""
    ranked = [r for r in rows if r.roc_auc is not None]
    return sorted(ranked, key=lambda r: (r.roc_auc, r.column, r.segment))[:k]


def compare_with_champion(
    labels: dict[str, pd.Series],
    y: np.ndarray,
    rows: Sequence[SegmentRow],
    champion_rows: Sequence[SegmentRow],
    scores: tuple[np.ndarray, np.ndarray],
    *,
    margin: float,
) -> tuple[list[SegmentRow], list[CheckResult]]:
    """The rows with the champion's ROC-AUC on the same segment, and one `segment_regression`
    check for every segment ranked by both: failed when the drop exceeds `margin` and is
    significant (paired DeLong z above 1.645). `scores`: (candidate, champion) probabilities."""
    theirs = {(r.column, r.segment): r.roc_auc for r in champion_rows}
    merged: list[SegmentRow] = []
    checks: list[CheckResult] = []
    for row in rows:
        before = theirs.get((row.column, row.segment))
        merged.append(_with_champion(row, before))
        if before is None or row.roc_auc is None:
            continue
        mask = (labels[row.column] == row.segment).to_numpy()
        z = paired_auc_drop_z(y[mask], scores[1][mask], scores[0][mask])
        checks.append(_regression_check(row, before, z, margin))
    return merged, checks


def _regression_check(row: SegmentRow, before: float, z: float, margin: float) -> CheckResult:
    drop = before - (row.roc_auc or 0.0)
    return CheckResult(
        check="segment_regression",
        subject=f"{row.column} = {row.segment}",
        passed=drop <= margin or z <= Z_ONE_SIDED_95,
        value=round(drop, 6),
        limit=margin,
        detail=f"ROC-AUC {row.roc_auc:.4f} against champion {before:.4f} "
        f"({row.rows} rows; drop {drop:+.4f}, allowed {margin}; {z:.1f} standard errors)",
    )


def _with_champion(row: SegmentRow, champion_roc_auc: float | None) -> SegmentRow:
    return SegmentRow(**{**row.__dict__, "champion_roc_auc": champion_roc_auc})
