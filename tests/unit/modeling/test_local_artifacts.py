"""Where a registered version's files are: a `file://` storage location on this machine is read
in place (no MLflow on a first load); anything else is left to MLflow."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from churnops.modeling.registry_lookup import VersionRecord, local_artifacts


def _registry(tmp_path: Path, location: str) -> str:
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as connection:
        connection.execute(
            "CREATE TABLE model_versions (name TEXT, version INTEGER, storage_location TEXT)"
        )
        connection.execute("INSERT INTO model_versions VALUES ('m', 3, ?)", (location,))
    return f"sqlite:///{db}"


RECORD = VersionRecord("m", "3", "models:/m-1", "run", 1, "READY")


def test_a_local_folder_with_an_mlmodel_is_read_in_place(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts with space"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    uri = _registry(tmp_path, folder.as_uri())
    assert local_artifacts(uri, RECORD) == folder


@pytest.mark.parametrize(
    "location",
    [
        "s3://bucket/models/m-1/artifacts",  # object storage: MLflow's job
        "mlflow-artifacts:/models/m-1/artifacts",  # the artifact server
        "file:///nowhere/at/all",  # gone from this machine
        "",
    ],
)
def test_anything_else_is_left_to_mlflow(tmp_path: Path, location: str) -> None:
    assert local_artifacts(_registry(tmp_path, location), RECORD) is None


def test_an_unreadable_registry_is_left_to_mlflow(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as connection:  # a schema without storage_location
        connection.execute("CREATE TABLE model_versions (name TEXT, version INTEGER)")
    assert local_artifacts(f"sqlite:///{db}", RECORD) is None
    assert local_artifacts("http://127.0.0.1:5000", RECORD) is None
    assert local_artifacts(f"sqlite:///{tmp_path / 'missing.db'}", RECORD) is None
