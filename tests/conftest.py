"""Shared fixtures: a real MLflow store in a temp folder and one small trained champion."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pandas as pd
import pytest

from churnops.data.load import load_training_table
from churnops.datasets import demo_path
from churnops.modeling.tracking import configure_tracking, ensure_experiment
from churnops.modeling.train import run_training
from tests.support.models import TrainedModel, make_settings

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


# Fixtures that train a model: every test whose fixture closure holds one is marked `slow`
# (pytest_collection_modifyitems below), so `make test-fast` never trains and no test can forget.
TRAINING_FIXTURES = frozenset({"trained_model"})


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TRAINING_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def demo_frame() -> pd.DataFrame:
    return pd.read_csv(demo_path())


# The session's trained model's MLflow URI, once it exists (see the URI-restoring fixtures).
_SESSION_TRACKING_URI: dict[str, str] = {}


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
    _SESSION_TRACKING_URI["uri"] = settings.resolved_tracking_uri()
    yield TrainedModel(settings=settings, client=client, outcome=outcome, frame=frame)


@pytest.fixture(autouse=True, scope="module")
def _restore_mlflow_uris_per_module() -> Iterator[None]:
    """Module fixtures that train into their own store (the retraining world, the validation
    runs) must not leave MLflow pointing at it for the next module."""
    import mlflow

    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield
    # Once the session's trained model exists, it is what MLflow points at between modules (even
    # when it was first trained in the middle of this module).
    if "uri" in _SESSION_TRACKING_URI:
        tracking = registry = _SESSION_TRACKING_URI["uri"]
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)


@pytest.fixture(autouse=True)
def _restore_mlflow_uris() -> Iterator[None]:
    """Tests that train into their own store must not leave MLflow pointing at it."""
    import mlflow

    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)
