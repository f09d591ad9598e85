"""Trained-model test helpers: settings under a temp home and what a training run leaves behind."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from churnops.data.sources import resolve_data_settings, resolve_validation_settings
from churnops.modeling.pyfunc import load_scorer
from churnops.modeling.scorer import Scorer
from churnops.modeling.train import TrainingOutcome
from churnops.settings import Settings


def make_settings(home: Path, **training: object) -> Settings:
    """Settings for tests: everything under `home`, a tiny tuning budget, demo data."""
    settings = Settings(home=str(home), tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    settings.database_url = f"sqlite:///{home / 'predictions.db'}"
    settings.training.budget_minutes = 0.01  # defaults only: one trial per candidate
    settings.training.candidates = ["xgboost", "logistic_regression"]
    for key, value in training.items():
        setattr(settings.training, key, value)
    settings.data = resolve_data_settings(settings.data)
    settings.validation = resolve_validation_settings(settings.validation, settings.data)
    return settings


@dataclass
class TrainedModel:
    settings: Settings
    client: MlflowClient
    outcome: TrainingOutcome
    frame: pd.DataFrame

    @property
    def champion_uri(self) -> str:
        return f"models:/{self.settings.registry.model_name}@champion"

    def scorer(self) -> Scorer:
        return load_scorer(self.champion_uri)[0]
