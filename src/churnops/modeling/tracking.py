"""Point MLflow at the configured tracking/registry store (called by entry points only)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from churnops.errors import ConfigError
from churnops.settings import Settings

if TYPE_CHECKING:  # mlflow takes seconds to import: only when a store is really used
    from mlflow.tracking import MlflowClient

    from churnops.modeling.loading import ModelSource


def local_store_path(uri: str) -> Path | None:
    """The file or folder behind a local tracking URI (SQLite file, file store); None otherwise."""
    if uri.startswith("sqlite:"):
        database = uri.split(":///", 1)[1] if ":///" in uri else ""
        if not database or database.startswith((":memory:", "file:")):
            return None
        return Path(database.split("?", 1)[0])
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return None


def require_tracking_store(settings: Settings) -> None:
    """Fail (one line, where it was expected) when a local tracking store does not exist.

    Read-only commands call this instead of letting MLflow create an empty store in whatever
    folder they happen to run in.
    """
    uri = settings.resolved_tracking_uri()
    path = local_store_path(uri)
    if path is not None and not path.exists():
        raise ConfigError(
            f"no MLflow tracking store at {path.resolve()} (train a model first with "
            "`churnops train`, or point CHURNOPS_TRACKING_URI / --config at the project's store)"
        )


def configure_tracking(settings: Settings, *, must_exist: bool = False) -> MlflowClient:
    """Set tracking and registry URIs; create the local home folder for the SQLite default.

    With `must_exist`, a missing local store is an error (`require_tracking_store`), never created.
    """
    if must_exist:
        require_tracking_store(settings)
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = settings.resolved_tracking_uri()
    path = local_store_path(uri)
    if path is not None and uri.startswith("sqlite:") and not must_exist:
        path.parent.mkdir(parents=True, exist_ok=True)  # SQLite creates the file, not its folder
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


def model_source(settings: Settings, *, must_exist: bool = True) -> ModelSource:
    """Where consumers load models from: the registry, the local model cache, and MLflow (set up
    by `configure_tracking` only if a load needs it)."""
    from churnops.modeling.loading import ModelSource

    if must_exist:
        require_tracking_store(settings)
    return ModelSource(
        registry_uri=settings.resolved_tracking_uri(),
        cache_dir=settings.resolved_model_cache_dir(),
        client=lambda: configure_tracking(settings, must_exist=must_exist),
    )
