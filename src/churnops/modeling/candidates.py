"""The candidate classifiers, their defaults and their Optuna search spaces.

Each classifier library is imported by its own factory, so training only XGBoost never loads
LightGBM (about 0.3 s and its OpenMP runtime) and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna

if TYPE_CHECKING:
    from lightgbm import LGBMClassifier
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from xgboost import XGBClassifier

Params = dict[str, Any]


@dataclass(frozen=True)
class Candidate:
    name: str
    make: Callable[[Params, int, int], Any]  # (params, seed, n_jobs) -> unfitted classifier
    defaults: Params
    suggest: Callable[[optuna.Trial], Params]
    max_trials: int  # fixed count keeps tuning reproducible; the time budget only caps it


def _logreg(params: Params, seed: int, n_jobs: int) -> LogisticRegression:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        C=params["C"],
        class_weight=params.get("class_weight"),
        max_iter=2000,
        random_state=seed,
    )


def _logreg_space(trial: optuna.Trial) -> Params:
    return {
        "C": trial.suggest_float("C", 1e-3, 10.0, log=True),
        "class_weight": trial.suggest_categorical("class_weight", [None, "balanced"]),
    }


def _forest(params: Params, seed: int, n_jobs: int) -> RandomForestClassifier:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=params["n_estimators"],
        max_depth=params["max_depth"],
        min_samples_leaf=params["min_samples_leaf"],
        max_features=params["max_features"],
        n_jobs=n_jobs,
        random_state=seed,
    )


def _forest_space(trial: optuna.Trial) -> Params:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 200, step=50),
        "max_depth": trial.suggest_int("max_depth", 4, 12),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 40, log=True),
        "max_features": trial.suggest_float("max_features", 0.1, 0.7),
    }


def _xgboost(params: Params, seed: int, n_jobs: int) -> XGBClassifier:
    from xgboost import XGBClassifier

    return XGBClassifier(
        n_estimators=params["n_estimators"],
        learning_rate=params["learning_rate"],
        max_depth=params["max_depth"],
        min_child_weight=params["min_child_weight"],
        subsample=params["subsample"],
        colsample_bytree=params["colsample_bytree"],
        reg_lambda=params["reg_lambda"],
        tree_method="hist",
        objective="binary:logistic",
        eval_metric="logloss",
        n_jobs=n_jobs,
        random_state=seed,
        verbosity=0,
    )


def _xgboost_space(trial: optuna.Trial) -> Params:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 600, step=50),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 6),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 20.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 20.0, log=True),
    }


def _lightgbm(params: Params, seed: int, n_jobs: int) -> LGBMClassifier:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        n_estimators=params["n_estimators"],
        learning_rate=params["learning_rate"],
        num_leaves=params["num_leaves"],
        min_child_samples=params["min_child_samples"],
        subsample=params["subsample"],
        subsample_freq=1,
        colsample_bytree=params["colsample_bytree"],
        reg_lambda=params["reg_lambda"],
        n_jobs=n_jobs,
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


def _lightgbm_space(trial: optuna.Trial) -> Params:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 600, step=50),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 48, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 120, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 20.0, log=True),
    }


CANDIDATES: dict[str, Candidate] = {
    "logistic_regression": Candidate(
        "logistic_regression", _logreg, {"C": 1.0, "class_weight": None}, _logreg_space, 12
    ),
    "random_forest": Candidate(
        "random_forest",
        _forest,
        {"n_estimators": 150, "max_depth": 10, "min_samples_leaf": 5, "max_features": 0.3},
        _forest_space,
        5,
    ),
    "xgboost": Candidate(
        "xgboost",
        _xgboost,
        {
            "n_estimators": 300,
            "learning_rate": 0.03,
            "max_depth": 3,
            "min_child_weight": 3.0,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
        },
        _xgboost_space,
        12,
    ),
    "lightgbm": Candidate(
        "lightgbm",
        _lightgbm,
        {
            "n_estimators": 300,
            "learning_rate": 0.03,
            "num_leaves": 8,
            "min_child_samples": 40,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
        },
        _lightgbm_space,
        12,
    ),
}
