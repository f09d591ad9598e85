"""Raw probabilities and per-column contributions straight from each fitted classifier.

Going to the booster or coefficients directly skips sklearn's per-call validation, which dominates
the cost of scoring one customer. Contributions are in the model's own additive units: log-odds for
boosted trees (SHAP values from the library) and logistic regression (coefficient x value), and
probability for the random forest (Saabas decomposition along each decision path).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from lightgbm import LGBMClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from xgboost import DMatrix, XGBClassifier


class Predictor(Protocol):
    def proba(self, matrix: np.ndarray) -> np.ndarray: ...

    def contributions(self, matrix: np.ndarray) -> np.ndarray: ...


class XGBoostPredictor:
    def __init__(self, classifier: XGBClassifier) -> None:
        self.booster = classifier.get_booster()
        self.booster.set_param({"nthread": 1})  # one row needs no threads; batch sets its own

    def proba(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(matrix), dtype=np.float64)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        values = self.booster.predict(DMatrix(matrix), pred_contribs=True)
        return np.asarray(values[:, :-1], dtype=np.float64)

    def set_threads(self, n: int) -> None:
        self.booster.set_param({"nthread": n})


class LightGBMPredictor:
    def __init__(self, classifier: LGBMClassifier) -> None:
        self.booster = classifier.booster_
        self.threads = 1

    def proba(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(matrix, num_threads=self.threads), dtype=np.float64)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        values = self.booster.predict(matrix, pred_contrib=True, num_threads=self.threads)
        return np.asarray(values, dtype=np.float64)[:, :-1]

    def set_threads(self, n: int) -> None:
        self.threads = n


class LogisticPredictor:
    def __init__(self, classifier: LogisticRegression) -> None:
        self.coef = classifier.coef_[0].astype(np.float64)
        self.intercept = float(classifier.intercept_[0])

    def proba(self, matrix: np.ndarray) -> np.ndarray:
        margin = matrix @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-margin))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        return matrix * self.coef

    def set_threads(self, n: int) -> None:
        return None


class ForestPredictor:
    def __init__(self, classifier: RandomForestClassifier) -> None:
        self.classifier = classifier
        self.classifier.n_jobs = 1
        self._deltas: list[tuple[sp.csr_matrix, np.ndarray]] | None = None

    def proba(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.classifier.predict_proba(matrix)[:, 1], dtype=np.float64)

    def _tree_deltas(self) -> list[tuple[sp.csr_matrix, np.ndarray]]:
        """Per tree: (nodes x features) change in P(positive) entering each node, and root value."""
        if self._deltas is None:
            n_features = self.classifier.n_features_in_
            deltas = []
            for estimator in self.classifier.estimators_:
                tree = estimator.tree_
                value = tree.value[:, 0, :]
                positive = value[:, 1] / value.sum(axis=1)
                rows, cols, data = [], [], []
                for parent in range(tree.node_count):
                    for child in (tree.children_left[parent], tree.children_right[parent]):
                        if child >= 0:
                            rows.append(child)
                            cols.append(tree.feature[parent])
                            data.append(positive[child] - positive[parent])
                shape = (tree.node_count, n_features)
                deltas.append((sp.csr_matrix((data, (rows, cols)), shape=shape), positive[:1]))
            self._deltas = deltas
        return self._deltas

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        total = np.zeros((matrix.shape[0], self.classifier.n_features_in_))
        for estimator, (delta, _root) in zip(
            self.classifier.estimators_, self._tree_deltas(), strict=True
        ):
            path = estimator.decision_path(matrix.astype(np.float32))
            total += np.asarray((path @ delta).todense())
        return total / len(self.classifier.estimators_)

    def set_threads(self, n: int) -> None:
        self.classifier.n_jobs = n


def predictor_for(
    classifier: Any,
) -> XGBoostPredictor | LightGBMPredictor | LogisticPredictor | ForestPredictor:
    if isinstance(classifier, XGBClassifier):
        return XGBoostPredictor(classifier)
    if isinstance(classifier, LGBMClassifier):
        return LightGBMPredictor(classifier)
    if isinstance(classifier, LogisticRegression):
        return LogisticPredictor(classifier)
    if isinstance(classifier, RandomForestClassifier):
        return ForestPredictor(classifier)
    raise TypeError(f"no fast predictor for {type(classifier).__name__}")
