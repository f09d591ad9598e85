"""Probability calibration chosen by cross-validation on out-of-fold scores, kept only if it helps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Method = Literal["none", "sigmoid", "isotonic"]
EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from raw to calibrated probability: cheap enough for the hot path."""

    method: Method = "none"
    slope: float = 1.0
    intercept: float = 0.0
    x_points: tuple[float, ...] = field(default_factory=tuple)
    y_points: tuple[float, ...] = field(default_factory=tuple)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        if self.method == "sigmoid":
            return 1.0 / (1.0 + np.exp(-(self.slope * _logit(raw) + self.intercept)))
        if self.method == "isotonic":
            return np.interp(raw, self.x_points, self.y_points)
        return raw


def fit_calibrator(raw: np.ndarray, y: np.ndarray, method: Method) -> Calibrator:
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression  # fitting only: loading needs none

        model = LogisticRegression(C=1e6, solver="lbfgs")
        model.fit(_logit(raw).reshape(-1, 1), y)
        return Calibrator(
            "sigmoid", slope=float(model.coef_[0, 0]), intercept=float(model.intercept_[0])
        )
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
        return Calibrator(
            "isotonic",
            x_points=tuple(float(v) for v in iso.X_thresholds_),
            y_points=tuple(float(v) for v in iso.y_thresholds_),
        )
    return Calibrator()


@dataclass(frozen=True)
class CalibrationChoice:
    calibrator: Calibrator
    brier_by_method: dict[str, float]


def choose_calibration(
    raw_oof: np.ndarray, y: np.ndarray, *, folds: int, seed: int, min_gain: float = 1e-4
) -> CalibrationChoice:
    """Compare none/sigmoid/isotonic by CV Brier score on out-of-fold raw scores.

    A method must lower the Brier score by `min_gain` to be kept; then it is refit on all scores.
    """
    from sklearn.metrics import brier_score_loss
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores: dict[str, list[float]] = {"none": [], "sigmoid": [], "isotonic": []}
    for fit_idx, eval_idx in splitter.split(raw_oof, y):
        methods: tuple[Method, ...] = ("none", "sigmoid", "isotonic")
        for method in methods:
            calibrator = fit_calibrator(raw_oof[fit_idx], y[fit_idx], method)
            calibrated = calibrator.apply(raw_oof[eval_idx])
            scores[method].append(float(brier_score_loss(y[eval_idx], calibrated)))
    brier = {method: float(np.mean(values)) for method, values in scores.items()}
    best: Method = "none"
    for method in ("sigmoid", "isotonic"):
        if brier[method] < brier[best] - min_gain:
            best = method
    return CalibrationChoice(fit_calibrator(raw_oof, y, best), brier)
