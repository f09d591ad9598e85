"""Reference profile of the training data and its scores, carried inside the model for monitoring.

Numeric features keep decile bin edges with counts (PSI, Jensen-Shannon) and a 1001-point quantile
sketch (Kolmogorov-Smirnov, Wasserstein); categorical features keep category counts. Scores keep a
fixed 20-bin histogram on [0, 1], quantiles and the share per risk level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from churnops.data.schema import MISSING_CATEGORY, ColumnSchema, Schema
from churnops.lazy import lazy_module

if TYPE_CHECKING:
    import pandas as pd
else:  # frames only: the API scores plain records and never needs pandas
    pd = lazy_module("pandas")

N_QUANTILES = 1001
N_BINS = 10
SCORE_BINS = 20


class NumericProfile(BaseModel):
    name: str
    count: int
    null_rate: float
    mean: float
    std: float
    min: float
    max: float
    bin_edges: list[float]  # inner edges; bins are (-inf, e0], (e0, e1], ..., (e_last, inf)
    bin_counts: list[int]
    quantiles: list[float]  # N_QUANTILES points from 0 to 1


class CategoricalProfile(BaseModel):
    name: str
    count: int
    null_rate: float
    frequencies: dict[str, int]  # category (as text) -> count; MISSING_CATEGORY for nulls


class ScoreProfile(BaseModel):
    count: int
    bin_edges: list[float]
    bin_counts: list[int]
    quantiles: list[float]
    mean: float
    risk_shares: dict[str, float]
    positive_rate: float  # share at or above the decision threshold


class ReferenceProfile(BaseModel):
    numeric: dict[str, NumericProfile] = Field(default_factory=dict)
    categorical: dict[str, CategoricalProfile] = Field(default_factory=dict)
    scores: ScoreProfile | None = None
    n_rows: int = 0


def numeric_bin_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts in bins (-inf, e0], (e0, e1], ..., (e_last, inf); NaNs are not counted."""
    finite = values[~np.isnan(values)]
    index = np.searchsorted(np.asarray(edges, dtype=float), finite, side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def profile_numeric(series: pd.Series, name: str) -> NumericProfile:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        finite = np.array([0.0])
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, N_BINS + 1)[1:-1]))
    return NumericProfile(
        name=name,
        count=int(values.size),
        null_rate=float(np.isnan(values).mean()) if values.size else 0.0,
        mean=float(finite.mean()),
        std=float(finite.std()),
        min=float(finite.min()),
        max=float(finite.max()),
        bin_edges=[float(e) for e in edges],
        bin_counts=[int(c) for c in numeric_bin_counts(values, list(edges))],
        quantiles=[float(q) for q in np.quantile(finite, np.linspace(0, 1, N_QUANTILES))],
    )


def category_counts(series: pd.Series) -> dict[str, int]:
    text = series.astype(object).where(series.notna(), MISSING_CATEGORY).astype(str)
    counts = text.value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def profile_categorical(series: pd.Series, name: str) -> CategoricalProfile:
    return CategoricalProfile(
        name=name,
        count=len(series),
        null_rate=float(series.isna().mean()),
        frequencies=category_counts(series),
    )


def profile_column(series: pd.Series, column: ColumnSchema) -> NumericProfile | CategoricalProfile:
    if column.is_numeric_encoded and column.categories is None:
        return profile_numeric(series, column.name)
    return profile_categorical(series, column.name)


def profile_scores(
    probabilities: np.ndarray, risk_levels: np.ndarray, *, threshold: float
) -> ScoreProfile:
    edges = np.linspace(0, 1, SCORE_BINS + 1)
    counts, _ = np.histogram(np.clip(probabilities, 0, 1), bins=edges)
    levels, level_counts = np.unique(risk_levels, return_counts=True)
    shares = {
        str(level): float(n / len(risk_levels))
        for level, n in zip(levels, level_counts, strict=True)
    }
    for level in ("low", "medium", "high"):
        shares.setdefault(level, 0.0)
    return ScoreProfile(
        count=len(probabilities),
        bin_edges=[float(e) for e in edges],
        bin_counts=[int(c) for c in counts],
        quantiles=[float(q) for q in np.quantile(probabilities, np.linspace(0, 1, 101))],
        mean=float(probabilities.mean()),
        risk_shares=shares,
        positive_rate=float((probabilities >= threshold).mean()),
    )


def profile_frame(frame: pd.DataFrame, schema: Schema) -> ReferenceProfile:
    """Profile every feature of `frame` (binary columns count as categories)."""
    profile = ReferenceProfile(n_rows=len(frame))
    for column in schema.features:
        described = profile_column(frame[column.name], column)
        if isinstance(described, NumericProfile):
            profile.numeric[column.name] = described
        else:
            profile.categorical[column.name] = described
    return profile


def typical_record(schema: Schema, profile: ReferenceProfile | None = None) -> dict[str, Any]:
    """A made-up customer with typical values: never a real row, and no id.

    Used wherever an example request is shown or logged (OpenAPI, `GET /model`, the MLflow input
    example), so no training customer leaks through documentation. Numbers are the training
    median (the middle of the training range without a profile), rounded; categories the most
    frequent one (the first allowed one without a profile).
    """
    profile = profile or ReferenceProfile()
    record: dict[str, Any] = {}
    for column in schema.features:
        if column.categories:
            record[column.name] = _typical_category(column, profile.categorical.get(column.name))
        elif column.is_numeric_encoded:
            record[column.name] = _typical_number(column, profile.numeric.get(column.name))
        else:  # free text without known categories
            record[column.name] = ""
    return record


def _typical_category(column: ColumnSchema, counts: CategoricalProfile | None) -> Any:
    allowed = [c for c in column.categories or [] if c != MISSING_CATEGORY]
    if counts is not None:
        by_text = {str(c): c for c in allowed}
        ranked = sorted(counts.frequencies.items(), key=lambda item: -item[1])
        for text, _ in ranked:
            if text in by_text:
                return by_text[text]
    return allowed[0] if allowed else ""


def _typical_number(column: ColumnSchema, numbers: NumericProfile | None) -> int | float:
    if numbers is not None and numbers.quantiles:
        value = float(np.nanmedian(np.asarray(numbers.quantiles, dtype=float)))
    elif column.min is not None and column.max is not None:
        value = (column.min + column.max) / 2
    else:
        value = 0.0
    if not np.isfinite(value):
        value = 0.0
    return round(value) if column.dtype == "int" else round(value, 2)
