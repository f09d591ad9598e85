"""Leakage gate: a single feature, or a whole model, that predicts churn too well to be true."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from churnops.data.schema import MISSING_CATEGORY, Schema


@dataclass(frozen=True)
class LeakageFlag:
    kind: str  # "feature" or "model"
    name: str
    roc_auc: float
    limit: float

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}: ROC-AUC {self.roc_auc:.4f} >= {self.limit}"

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "roc_auc": self.roc_auc, "limit": self.limit}


def _symmetric_auc(y: np.ndarray, score: np.ndarray) -> float:
    auc = float(roc_auc_score(y, score))
    return max(auc, 1.0 - auc)


def _out_of_fold_target_rate(text: pd.Series, y: np.ndarray, *, seed: int) -> np.ndarray:
    """Category -> churn rate learnt on other folds, so a unique-per-row column scores ~0.5."""
    encoded = np.full(len(text), float(y.mean()))
    values = text.to_numpy()
    for fit_idx, eval_idx in StratifiedKFold(5, shuffle=True, random_state=seed).split(values, y):
        rates = pd.Series(y[fit_idx]).groupby(values[fit_idx]).mean()
        encoded[eval_idx] = (
            pd.Series(values[eval_idx]).map(rates).fillna(y[fit_idx].mean()).to_numpy()
        )
    return encoded


def feature_auc(series: pd.Series, y: np.ndarray, *, numeric: bool, seed: int) -> float:
    if numeric:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        filler = np.nanmedian(values) if np.isfinite(values).any() else 0.0
        return _symmetric_auc(y, np.where(np.isnan(values), filler, values))
    text = series.astype(object).where(series.notna(), MISSING_CATEGORY).astype(str)
    return _symmetric_auc(y, _out_of_fold_target_rate(text, y, seed=seed))


def feature_leakage(
    frame: pd.DataFrame, y: np.ndarray, schema: Schema, *, limit: float, seed: int
) -> tuple[list[LeakageFlag], dict[str, float]]:
    """Each feature's own ROC-AUC against the target; flags those at or above `limit`."""
    aucs: dict[str, float] = {}
    for column in schema.features:
        numeric = column.is_numeric_encoded and column.categories is None
        aucs[column.name] = feature_auc(frame[column.name], y, numeric=numeric, seed=seed)
    flags = [LeakageFlag("feature", name, auc, limit) for name, auc in aucs.items() if auc >= limit]
    return flags, aucs


def model_leakage(name: str, test_roc_auc: float, *, limit: float) -> list[LeakageFlag]:
    return [LeakageFlag("model", name, test_roc_auc, limit)] if test_roc_auc >= limit else []
