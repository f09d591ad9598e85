"""`monitoring.run.run_monitor` called as a function (no CLI): what the app's "Check now" button
and the flows get back, what is stored, and what is left untouched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from churnops.modeling.scorer import Scorer
from churnops.monitoring.monitor import MonitoringReport
from churnops.monitoring.run import EXIT_DRIFT, RESULT_KIND, run_monitor
from churnops.monitoring.window import EmptyWindowError
from churnops.settings import Settings
from churnops.store import PredictionStore
from churnops.store.records import MonitoringResult
from tests.integration.monitor_support import (
    MODEL_NAME,
    held_out_rows,
    shifted,
    write_predictions,
)
from tests.support.models import TrainedModel

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scorer(trained_model: TrainedModel) -> Scorer:
    return trained_model.scorer()


@pytest.fixture(scope="module")
def held_out(trained_model: TrainedModel) -> pd.DataFrame:
    return held_out_rows(trained_model)


@pytest.fixture
def settings(trained_model: TrainedModel, tmp_path: Path) -> Settings:
    """The trained champion's MLflow store; store, home and reports private to the test."""
    settings = Settings(
        home=str(tmp_path / "home"),
        tracking_uri=trained_model.settings.resolved_tracking_uri(),
        database_url=f"sqlite:///{tmp_path / 'predictions.db'}",
    )
    settings.monitoring.reports_dir = str(tmp_path / "reports")
    settings.monitoring.webhook_url = None
    return settings


def _stored(settings: Settings) -> list[MonitoringResult]:
    with PredictionStore(settings.resolved_database_url()) as store:
        store.create()
        return store.read_monitoring_results(kind=RESULT_KIND)


def test_stable_store_window_is_reported_recorded_and_pinned_to_the_champion_version(
    settings: Settings, scorer: Scorer, held_out: pd.DataFrame, trained_model: TrainedModel
) -> None:
    n = write_predictions(settings.resolved_database_url(), held_out, scorer, days=3)
    steps: list[str] = []

    @contextmanager
    def status(message: str) -> Iterator[None]:
        steps.append(message)
        yield

    outcome = run_monitor(settings, window="7d", status=status)

    assert outcome.drift_found is False and outcome.exit_code == 0
    assert outcome.rows == {"predictions": n} and outcome.report.n_rows == n
    assert outcome.source.startswith("prediction store sqlite:///")
    assert outcome.window is not None
    assert outcome.window.end - outcome.window.start == timedelta(days=7)
    assert steps == ["loading the model", "reading the window"]
    assert outcome.model.name == MODEL_NAME
    assert outcome.model.version == trained_model.outcome.version  # the alias, resolved
    assert outcome.html_path.parent == Path(settings.monitoring.reports_dir)
    written = MonitoringReport.model_validate(json.loads(outcome.json_path.read_text()))
    assert written.n_rows == n
    stored = _stored(settings)
    assert [r.id for r in stored] == [outcome.result_id]
    run = stored[0].summary["run"]
    assert run["model_version"] == trained_model.outcome.version
    assert run["rows"] == {"predictions": n} and run["reference"] == "model"
    assert outcome.to_dict()["exit_code"] == 0 and outcome.to_dict()["rows"] == outcome.rows


def test_shifted_window_without_record_returns_drift_and_stores_nothing(
    settings: Settings, scorer: Scorer, held_out: pd.DataFrame
) -> None:
    write_predictions(settings.resolved_database_url(), shifted(held_out), scorer, days=2)

    outcome = run_monitor(settings, window="3d", period="week", record=False)

    assert outcome.drift_found is True and outcome.exit_code == EXIT_DRIFT
    assert outcome.report.prediction_drift is True
    assert {"monthly_charges", "contract"} <= set(outcome.report.drift.drifted_features)
    assert outcome.report.period == "week"
    assert outcome.result_id is None and outcome.alerts == []
    assert _stored(settings) == []
    assert not (Path(settings.home) / "monitoring" / "alerts.json").exists()


def test_file_window_without_record_never_opens_the_store(
    settings: Settings, held_out: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "current.parquet"
    held_out.to_parquet(path)  # target column, no scores: scored and labelled here

    outcome = run_monitor(settings, current=str(path), record=False)

    assert outcome.window is None and outcome.source == f"file {path}"
    assert outcome.rows == {"file": len(held_out)}
    assert outcome.report.performance is not None
    assert outcome.report.performance.n_labelled == len(held_out)
    assert not (tmp_path / "predictions.db").exists()


def test_recorded_drift_opens_incidents_once(
    settings: Settings, scorer: Scorer, held_out: pd.DataFrame
) -> None:
    write_predictions(settings.resolved_database_url(), shifted(held_out), scorer, days=2)

    first = run_monitor(settings, window="3d")
    second = run_monitor(settings, window="3d")

    opened = {a.kind for a in first.alerts if a.action == "opened"}
    assert "prediction_drift" in opened
    assert not any(a.action == "opened" for a in second.alerts)  # same incidents, still open
    assert [r.drift_detected for r in _stored(settings)] == [True, True]


def test_empty_window_raises_and_writes_nothing(
    settings: Settings, scorer: Scorer, held_out: pd.DataFrame
) -> None:
    old = datetime.now(UTC) - timedelta(days=30)
    write_predictions(settings.resolved_database_url(), held_out.head(50), scorer, now=old)

    with pytest.raises(EmptyWindowError, match="no predictions in the window from"):
        run_monitor(settings, window="7d")

    assert _stored(settings) == []
    assert not Path(settings.monitoring.reports_dir).exists()
