"""Raw probabilities and per-column contributions straight from each fitted classifier.

Going to the booster or coefficients directly skips sklearn's per-call validation, which dominates
the cost of scoring one customer. Tree ensembles are also flattened (`modeling.forest`): small
requests, and every request for reasons, are scored by the compiled walk over the flat arrays
(microseconds instead of a booster call's hundreds); large probability-only inputs go to the
booster with its threads. Both agree to ~1e-7; which one runs depends only on the number of rows
and whether reasons are asked for, so the same request always gets the same engine.

Contributions are in the model's own additive units: log-odds for boosted trees (Saabas path
contributions, as XGBoost's `approx_contribs`) and logistic regression (coefficient x value), and
probability for the random forest (Saabas, averaged over trees).

Each classifier's library is imported only by the model that needs it: a fitted classifier can only
be an instance of a class whose module is already imported (unpickling it imported it), so
`predictor_for` looks classes up in `sys.modules` instead of importing them. Loading an XGBoost
model therefore never imports LightGBM (which needs the system libgomp) and the other way round.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from churnops.modeling.forest import FlatForest, from_lightgbm, from_sklearn_forest, from_xgboost

if TYPE_CHECKING:
    from lightgbm import LGBMClassifier
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from xgboost import XGBClassifier

SMALL_REQUEST_ROWS = 256  # up to this many rows (probabilities only) the walk beats the booster


class Predictor(Protocol):
    def proba(self, matrix: np.ndarray) -> np.ndarray: ...

    def contributions(self, matrix: np.ndarray) -> np.ndarray: ...

    def proba_and_contributions(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def set_threads(self, n: int) -> None: ...


class _TreePredictor:
    """Shared logic: the flat forest for small inputs and all contributions, a booster otherwise."""

    flat: FlatForest | None

    def _booster_proba(self, matrix: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def proba(self, matrix: np.ndarray) -> np.ndarray:
        if self.flat is not None and len(matrix) <= SMALL_REQUEST_ROWS:
            return self.flat.proba(matrix)
        return self._booster_proba(matrix)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        if self.flat is None:
            raise TypeError("this model has splits the flat forest cannot explain")
        return self.flat.contributions(matrix)

    def proba_and_contributions(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.flat is not None:  # one walk gives both, at any size
            proba, contrib = self.flat.proba_and_contributions(matrix, contributions=True)
            assert contrib is not None
            return proba, contrib
        return self._booster_proba(matrix), self.contributions(matrix)


class XGBoostPredictor(_TreePredictor):
    def __init__(self, classifier: XGBClassifier) -> None:
        self.booster = classifier.get_booster()
        self.booster.set_param({"nthread": 1})  # one row needs no threads; batch sets its own
        self.flat = from_xgboost(self.booster)

    def _booster_proba(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(matrix), dtype=np.float64)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        if self.flat is None:  # e.g. categorical splits: the library's own path contributions
            from xgboost import DMatrix  # already imported: the booster is an XGBoost object

            dmatrix = DMatrix(matrix, nthread=1)
            values = self.booster.predict(dmatrix, pred_contribs=True, approx_contribs=True)
            return np.asarray(values[:, :-1], dtype=np.float64)
        return super().contributions(matrix)

    def set_threads(self, n: int) -> None:
        self.booster.set_param({"nthread": n})


class LightGBMPredictor(_TreePredictor):
    def __init__(self, classifier: LGBMClassifier) -> None:
        self.booster = classifier.booster_
        self.threads = 1
        self.flat = from_lightgbm(self.booster)

    def _booster_proba(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(matrix, num_threads=self.threads), dtype=np.float64)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        if self.flat is None:  # e.g. categorical splits: the library's own SHAP values
            values = self.booster.predict(matrix, pred_contrib=True, num_threads=self.threads)
            return np.asarray(values, dtype=np.float64)[:, :-1]
        return super().contributions(matrix)

    def set_threads(self, n: int) -> None:
        self.threads = n


class ForestPredictor(_TreePredictor):
    def __init__(self, classifier: RandomForestClassifier) -> None:
        self.classifier = classifier
        self.classifier.n_jobs = 1
        self.flat = from_sklearn_forest(classifier)

    def _booster_proba(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.classifier.predict_proba(matrix)[:, 1], dtype=np.float64)

    def set_threads(self, n: int) -> None:
        self.classifier.n_jobs = n


class LogisticPredictor:
    def __init__(self, classifier: LogisticRegression) -> None:
        self.coef = classifier.coef_[0].astype(np.float64)
        self.intercept = float(classifier.intercept_[0])

    def proba(self, matrix: np.ndarray) -> np.ndarray:
        margin = matrix @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-margin)), dtype=np.float64)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        return matrix * self.coef

    def proba_and_contributions(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.proba(matrix), self.contributions(matrix)

    def set_threads(self, n: int) -> None:
        return None


def _is_instance(obj: Any, module: str, name: str) -> bool:
    """isinstance against `module.name` without importing `module` (unimported: cannot match)."""
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(cls, type) and isinstance(obj, cls)


def predictor_for(classifier: Any) -> Predictor:
    if _is_instance(classifier, "xgboost", "XGBClassifier"):
        return XGBoostPredictor(classifier)
    if _is_instance(classifier, "lightgbm", "LGBMClassifier"):
        return LightGBMPredictor(classifier)
    if _is_instance(classifier, "sklearn.linear_model", "LogisticRegression"):
        return LogisticPredictor(classifier)
    if _is_instance(classifier, "sklearn.ensemble", "RandomForestClassifier"):
        return ForestPredictor(classifier)
    raise TypeError(f"no fast predictor for {type(classifier).__name__}")
