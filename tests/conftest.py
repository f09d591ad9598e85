"""Shared fixtures: a real MLflow store in a temp folder and one small trained champion."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from churnops.data.load import load_training_table
from churnops.data.sources import resolve_data_settings
from churnops.datasets import demo_path
from churnops.modeling.pyfunc import load_scorer
from churnops.modeling.scorer import Scorer
from churnops.modeling.tracking import configure_tracking, ensure_experiment
from churnops.modeling.train import TrainingOutcome, run_training
from churnops.settings import Settings

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


def make_settings(home: Path, **training: object) -> Settings:
    """Settings for tests: everything under `home`, a tiny tuning budget, demo data."""
    settings = Settings(home=str(home), tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    settings.database_url = f"sqlite:///{home / 'predictions.db'}"
    settings.training.budget_minutes = 0.01  # defaults only: one trial per candidate
    settings.training.candidates = ["xgboost", "logistic_regression"]
    for key, value in training.items():
        setattr(settings.training, key, value)
    settings.data = resolve_data_settings(settings.data)
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


@pytest.fixture(scope="session")
def demo_frame() -> pd.DataFrame:
    return pd.read_csv(demo_path())


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedModel]:
    """One champion (xgboost vs logistic regression, default params) trained on the demo data."""
    home = tmp_path_factory.mktemp("churnops-home")
    settings = make_settings(home)
    client = configure_tracking(settings)
    experiment_id = ensure_experiment(client, settings)
    frame, schema = load_training_table(settings.data)
    outcome = run_training(
        frame, schema=schema, settings=settings, client=client, experiment_id=experiment_id
    )
    yield TrainedModel(settings=settings, client=client, outcome=outcome, frame=frame)


@pytest.fixture(autouse=True)
def _restore_mlflow_uris() -> Iterator[None]:
    """Tests that train into their own store must not leave MLflow pointing at it."""
    import mlflow

    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)
