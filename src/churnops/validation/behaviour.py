"""Behaviour of the trained model: invariance, directional expectations, robustness to noise and
edge cases. Each check builds its perturbed rows as one frame and scores it once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnops.data.schema import ColumnKind, Schema
from churnops.settings import DirectionExpectation
from churnops.validation.result import CheckResult, CurvePoint

Predict = Callable[[pd.DataFrame], np.ndarray]
INVARIANCE_TOLERANCE = 1e-9  # float noise, not a dependence
UNSEEN = "__churnops_unseen__"
EDGE_ROWS = 20  # rows of each edge case per column


def _stacked(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)


def check_invariance(
    frame: pd.DataFrame, predict: Predict, base: np.ndarray, *, columns: list[str]
) -> list[CheckResult]:
    """Each column's values moved to other rows must leave every probability where it was."""
    present = [c for c in columns if c in frame.columns]
    if not present:
        return []
    copies = []
    for column in present:
        moved = frame.copy()
        moved[column] = np.roll(frame[column].to_numpy(), 1)
        copies.append(moved)
    changes = np.abs(predict(_stacked(copies)).reshape(len(present), -1) - base)
    return [
        CheckResult(
            check="invariance",
            subject=column,
            passed=float(change.max()) <= INVARIANCE_TOLERANCE,
            value=float(change.max()),
            limit=INVARIANCE_TOLERANCE,
            detail=f"largest probability change {change.max():.3g} when values are swapped",
        )
        for column, change in zip(present, changes, strict=True)
    ]


def direction_values(frame: pd.DataFrame, expectation: DirectionExpectation, grid: int) -> list:
    """The values a directional column is set to, in order: the configured order of a category,
    or `grid + 1` quantiles of a numeric column."""
    if expectation.order is not None:
        return list(expectation.order)
    numbers = pd.to_numeric(frame[expectation.column], errors="coerce").dropna()
    return sorted({float(q) for q in np.quantile(numbers, np.linspace(0, 1, grid + 1))})


def check_direction(
    frame: pd.DataFrame,
    predict: Predict,
    expectation: DirectionExpectation,
    *,
    grid: int,
    tolerance: float,
) -> tuple[CheckResult, list[CurvePoint]]:
    """Set every row to each value in order; the mean probability may move against the expected
    direction by at most `tolerance` per step."""
    column, values = expectation.column, direction_values(frame, expectation, grid)
    copies = [frame.assign(**{column: [v] * len(frame)}) for v in values]
    probabilities = predict(_stacked(copies)).reshape(len(values), -1)
    means = probabilities.mean(axis=1)
    sign = 1.0 if expectation.risk == "decreasing" else -1.0
    worst = float(max((sign * np.diff(means)).max(), 0.0))  # largest step the wrong way
    wrong_rows = float((sign * (probabilities[-1] - probabilities[0]) > tolerance).mean())
    curve = [
        CurvePoint(column, _value_label(v), float(m)) for v, m in zip(values, means, strict=True)
    ]
    check = CheckResult(
        check="direction",
        subject=column,
        passed=worst <= tolerance,
        value=round(worst, 6),
        limit=tolerance,
        detail=f"risk must be {expectation.risk}; mean probability {means[0]:.3f} -> "
        f"{means[-1]:.3f}, largest step the wrong way {worst:.4f} "
        f"({wrong_rows:.1%} of customers move the wrong way end to end)",
    )
    return check, curve


def _value_label(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def check_robustness(
    frame: pd.DataFrame,
    predict: Predict,
    base: np.ndarray,
    schema: Schema,
    *,
    noise: float,
    limit: float,
    seed: int,
) -> CheckResult | None:
    """Gaussian noise of `noise` standard deviations on every numeric feature (kept in its
    trained range): the mean absolute probability change must stay within `limit`."""
    numeric = [c for c in schema.features if c.kind is ColumnKind.NUMERIC and c.name in frame]
    if not numeric:
        return None
    rng = np.random.default_rng(seed)
    noisy = frame.copy()
    for column in numeric:
        values = pd.to_numeric(frame[column.name], errors="coerce").to_numpy(dtype=float)
        jitter = rng.normal(0.0, noise * np.nanstd(values), len(values))
        noisy[column.name] = np.clip(values + jitter, column.min, column.max)
    change = np.abs(predict(noisy) - base)
    mean, p99 = float(change.mean()), float(np.quantile(change, 0.99))
    return CheckResult(
        check="robustness",
        subject=f"noise {noise} sd on {len(numeric)} numeric features",
        passed=mean <= limit,
        value=round(mean, 6),
        limit=limit,
        detail=f"mean |probability change| {mean:.4f} (99th percentile {p99:.4f})",
    )


@dataclass(frozen=True)
class EdgeCase:
    name: str
    frame: pd.DataFrame


def edge_cases(frame: pd.DataFrame, schema: Schema) -> list[EdgeCase]:
    """Rows a live model meets: each feature missing, numeric features at their trained minimum
    and maximum, categorical features holding a value never seen in training."""
    rows = frame.head(EDGE_ROWS)
    missing = [rows.assign(**{c.name: None}) for c in schema.features]
    missing.append(rows.assign(**{c.name: None for c in schema.features}))
    extremes = [
        rows.assign(**{c.name: bound})
        for c in schema.features
        if c.kind is ColumnKind.NUMERIC
        for bound in (c.min, c.max)
        if bound is not None
    ]
    unseen = [rows.assign(**{c.name: UNSEEN}) for c in schema.categorical_features]
    cases = [("missing values", missing), ("extreme in-range values", extremes)]
    cases.append(("unknown categories", unseen))
    return [EdgeCase(name, _stacked(parts)) for name, parts in cases if parts]


def check_edge_cases(frame: pd.DataFrame, predict: Predict, schema: Schema) -> list[CheckResult]:
    """Each edge case scored without an error, every probability finite and within [0, 1]."""
    checks = []
    for case in edge_cases(frame, schema):
        try:
            probability = np.asarray(predict(case.frame), dtype=float)
            ok = bool(
                np.isfinite(probability).all() and ((probability >= 0) & (probability <= 1)).all()
            )
            detail = f"{len(case.frame)} rows scored" + ("" if ok else ", some not in [0, 1]")
        except Exception as exc:  # the check is that nothing raises: report what did
            ok, detail = False, f"scoring failed: {type(exc).__name__}: {exc}"
        checks.append(CheckResult("edge_cases", case.name, ok, None, None, detail))
    return checks
