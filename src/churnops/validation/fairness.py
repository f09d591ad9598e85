"""Fairness for sensitive columns: demographic parity and equalized odds differences of the
model's decisions (Fairlearn's definitions and functions), flagged above configured limits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnops.data.schema import MISSING_CATEGORY
from churnops.settings import FairnessLimits
from churnops.validation.result import CheckResult, GroupRow
from churnops.validation.segments import numeric_bins

MAX_GROUPS = 20  # a numeric column with more distinct values is cut into quantile bins


@dataclass(frozen=True)
class FairnessOutcome:
    checks: list[CheckResult]
    groups: list[GroupRow]
    notes: list[str]


def group_labels(values: pd.Series, *, bins: int) -> pd.Series:
    """Each row's group: its value, or its quantile bin for a many-valued numeric column."""
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > MAX_GROUPS:
        return numeric_bins(values, bins)
    return values.astype(object).where(values.notna(), MISSING_CATEGORY).astype(str)


def group_rates(
    column: str, groups: pd.Series, y: np.ndarray, decision: np.ndarray
) -> list[GroupRow]:
    """Selection rate, true and false positive rates of each group."""
    table = pd.DataFrame({"g": groups.to_numpy(), "y": y, "d": decision.astype(float)})
    rows = []
    for name, part in table.groupby("g", sort=True):
        pos, neg = part[part.y == 1], part[part.y == 0]
        rows.append(
            GroupRow(
                column=column,
                group=str(name),
                rows=len(part),
                selection_rate=float(part.d.mean()),
                true_positive_rate=float(pos.d.mean()) if len(pos) else None,
                false_positive_rate=float(neg.d.mean()) if len(neg) else None,
            )
        )
    return rows


def fairness_differences(
    groups: pd.Series, y: np.ndarray, decision: np.ndarray
) -> dict[str, float]:
    """Fairlearn's demographic parity difference and equalized odds difference (between groups)."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    sensitive = groups.to_numpy()
    return {
        "demographic_parity_difference": float(
            demographic_parity_difference(y, decision, sensitive_features=sensitive)
        ),
        "equalized_odds_difference": float(
            equalized_odds_difference(y, decision, sensitive_features=sensitive)
        ),
    }


def check_fairness(
    frame: pd.DataFrame,
    y: np.ndarray,
    decision: np.ndarray,
    *,
    columns: list[str],
    limits: FairnessLimits,
    by_column: dict[str, FairnessLimits],
    min_group_size: int,
    bins: int,
) -> FairnessOutcome:
    """Two checks per sensitive column, over its groups of at least `min_group_size` rows."""
    checks: list[CheckResult] = []
    rows: list[GroupRow] = []
    notes: list[str] = []
    for column in columns:
        groups = group_labels(frame[column], bins=bins)
        rows.extend(group_rates(column, groups, y, decision))
        counts = groups.value_counts()
        kept = groups.isin(counts[counts >= min_group_size].index).to_numpy()
        if kept.sum() == 0 or groups[kept].nunique() < 2:
            notes.append(f"fairness {column}: fewer than 2 groups of {min_group_size}+ rows")
            continue
        found = fairness_differences(groups[kept], y[kept], decision[kept])
        checks.extend(_limit_checks(column, found, by_column.get(column, limits)))
    return FairnessOutcome(checks=checks, groups=rows, notes=notes)


def _limit_checks(
    column: str, found: dict[str, float], limits: FairnessLimits
) -> list[CheckResult]:
    checks = []
    for metric, value in found.items():
        limit = float(getattr(limits, metric))
        checks.append(
            CheckResult(
                check="fairness",
                subject=f"{column} {metric}",
                passed=value <= limit,
                value=round(value, 6),
                limit=limit,
                detail=f"{metric.replace('_', ' ')} {value:.4f} (limit {limit})",
            )
        )
    return checks
