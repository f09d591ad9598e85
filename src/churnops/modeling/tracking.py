"""Point MLflow at the configured tracking/registry store (called by entry points only)."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from churnops.settings import Settings


def configure_tracking(settings: Settings) -> MlflowClient:
    """Set tracking and registry URIs; create the local home folder for the SQLite default."""
    uri = settings.resolved_tracking_uri()
    if uri.startswith("sqlite:"):
        Path(settings.home).mkdir(parents=True, exist_ok=True)
    # Alembic's INFO lines on first use of a store are noise on a user's terminal.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(client: MlflowClient, settings: Settings) -> str:
    name = settings.registry.experiment
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=settings.artifact_location()))
