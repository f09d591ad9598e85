"""A model given as a local path loads without opening MLflow's tracking store: no SQLite
tracking database is created (two workers starting together raced to migrate one)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import mlflow.artifacts
import numpy as np
import pytest

from churnops.modeling.loading import ModelSource, load_scorer, resolve_identity
from tests.support.models import TrainedModel

pytestmark = pytest.mark.integration


def test_a_local_model_path_never_opens_the_tracking_store(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    mlflow.set_tracking_uri(trained_model.settings.resolved_tracking_uri())
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=trained_model.champion_uri, dst_path=str(tmp_path / "model")
        )
    )
    tracking_db = tmp_path / "never-created" / "mlflow.db"
    opened: list[str] = []

    def client() -> object:
        opened.append("client")
        raise AssertionError("the tracking store was opened for a local model")

    source = ModelSource(
        registry_uri=f"sqlite:///{tracking_db}",
        cache_dir=tmp_path / "cache",
        client=client,
    )

    scorer, _ = load_scorer(str(local), source=source)
    identity = resolve_identity(str(local), source)

    assert opened == [] and not tracking_db.exists()
    assert identity.version == "unregistered"
    frame = trained_model.frame.head(50)
    expected = trained_model.scorer().score_frame(frame).probability
    assert np.allclose(scorer.score_frame(frame).probability, expected, atol=1e-12)
