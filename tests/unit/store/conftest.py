"""Fixtures for the prediction store unit tests: a migrated SQLite file per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from churnops.store import PredictionStore


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the migrations once per session; tests get a copy (fast, still a real migrated db)."""
    path = tmp_path_factory.mktemp("store-template") / "predictions.db"
    store = PredictionStore(f"sqlite:///{path}")
    store.create()
    store.close()
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, _migrated_template: Path) -> str:
    """URL of a freshly migrated SQLite database in the test's temp dir."""
    path = tmp_path / "predictions.db"
    shutil.copyfile(_migrated_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[PredictionStore]:
    store = PredictionStore(sqlite_url)
    store.upgrade()  # at head already: exercises the no-op path and sets schema_ready
    yield store
    store.close()
