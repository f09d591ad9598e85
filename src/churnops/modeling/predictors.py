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
import threading
from collections.abc import Callable
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

    @property
    def detachable(self) -> bool: ...

    def detached(self) -> Any: ...

    def bind(self, classifier: Callable[[], Any]) -> None: ...


_RESTORE_LOCK = threading.Lock()


class _TreePredictor:
    """Shared logic: the flat forest for small inputs and all contributions, a booster otherwise.

    A predictor can be `detached`: saved without its library object (booster or classifier), so
    that loading it imports neither the library nor scikit-learn (~1.2 s and ~100 MB for
    XGBoost). Everything a request needs is the flat forest; the library object is restored from
    the model's bundle (`bind`) on first use, by a large probability-only batch.
    """

    flat: FlatForest | None
    threads: int = 1
    LIBRARY = "booster"  # the attribute that holds the library object

    def __init__(self, classifier: Any) -> None:
        raise NotImplementedError

    def _booster_proba(self, matrix: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _apply_threads(self) -> None:
        raise NotImplementedError

    def set_threads(self, n: int) -> None:
        self.threads = n
        if self.LIBRARY in self.__dict__:
            self._apply_threads()

    @property
    def detachable(self) -> bool:
        return self.flat is not None

    def detached(self) -> Any:
        """A copy without the library object (for the local model cache)."""
        if self.flat is None:
            raise TypeError("a model the flat forest cannot explain needs its library")
        copy = object.__new__(type(self))
        copy.__dict__.update(
            {k: v for k, v in self.__dict__.items() if k not in (self.LIBRARY, "_restore")}
        )
        return copy

    def bind(self, classifier: Callable[[], Any]) -> None:
        """Where a detached predictor gets its fitted classifier when it first needs it."""
        self.__dict__["_restore"] = classifier

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set: the library object of a detached predictor.
        if name != type(self).LIBRARY or "flat" not in self.__dict__:
            raise AttributeError(name)
        with _RESTORE_LOCK:
            if name not in self.__dict__:
                restore = self.__dict__.get("_restore")
                if restore is None:
                    raise AttributeError(f"{name}: detached predictor with no bundle bound")
                fresh = type(self)(restore())
                self.__dict__[name] = fresh.__dict__[name]
                self._apply_threads()
        return self.__dict__[name]

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
    booster: Any

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

    def _apply_threads(self) -> None:
        self.booster.set_param({"nthread": self.threads})


class LightGBMPredictor(_TreePredictor):
    booster: Any

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

    def _apply_threads(self) -> None:
        return None  # passed to each predict call


class ForestPredictor(_TreePredictor):
    LIBRARY = "classifier"
    classifier: Any

    def __init__(self, classifier: RandomForestClassifier) -> None:
        self.classifier = classifier
        self.classifier.n_jobs = 1
        self.flat = from_sklearn_forest(classifier)

    def _booster_proba(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.classifier.predict_proba(matrix)[:, 1], dtype=np.float64)

    def _apply_threads(self) -> None:
        self.classifier.n_jobs = self.threads


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

    detachable = True

    def detached(self) -> LogisticPredictor:
        return self  # plain arrays: nothing of sklearn is kept

    def bind(self, classifier: Callable[[], Any]) -> None:
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
