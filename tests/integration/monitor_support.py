"""Support for the monitoring integration tests: the champion's held-out rows, a shifted copy,
and predictions written to a store as the API would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from churnops.data.schema import target_vector
from churnops.modeling.scorer import Scorer
from churnops.monitoring.monitor import monitor_frame
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.run import RESULT_KIND
from churnops.settings import MonitoringSettings
from churnops.store import FeedbackRecord, PredictionRecord, PredictionStore
from tests.support.models import TrainedModel
from tests.unit.monitoring.synthetic import make_customers, with_predictions

MODEL_NAME = "churn-model"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
DAYS = 6
DRIFT_DAYS = 2  # the last two days: prices up, almost everyone month-to-month


def held_out_rows(trained_model: TrainedModel) -> pd.DataFrame:
    """The champion's own test split: the population its score profile was made on."""
    settings = trained_model.settings.training
    frame = trained_model.frame
    y = target_vector(frame, trained_model.outcome.schema)
    _, test = train_test_split(
        frame, test_size=settings.test_size, stratify=y, random_state=settings.seed
    )
    return test.reset_index(drop=True)


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """Prices up 30% and every customer on a month-to-month contract."""
    return frame.assign(monthly_charges=frame["monthly_charges"] * 1.3, contract="Month-to-month")


def write_predictions(
    url: str, frame: pd.DataFrame, scorer: Scorer, *, days: int = 3, now: datetime | None = None
) -> int:
    """Score `frame` and store one prediction per row, spread over the last `days` days."""
    now = now or datetime.now(UTC)
    scores = scorer.score_frame(frame)
    features = frame[scorer.schema.feature_names].to_dict(orient="records")
    step = timedelta(days=days) / max(len(frame), 1)
    records = [
        PredictionRecord(
            features=row,
            churn_probability=float(scores.probability[i]),
            will_churn=bool(scores.will_churn[i]),
            risk_level=str(scores.risk_level[i]),
            model_name=MODEL_NAME,
            model_version="1",
            customer_id=str(frame["customer_id"].iloc[i]),
            created_at=now - timedelta(minutes=5) - step * i,
        )
        for i, row in enumerate(features)
    ]
    with PredictionStore(url) as store:
        store.create()
        return store.write_predictions(records)


def _day_rows(day: int, rng: np.random.Generator) -> pd.DataFrame:
    drifted = day >= DAYS - DRIFT_DAYS
    frame = make_customers(
        400,
        seed=100 + day,
        charges_shift=45.0 if drifted else 0.0,
        m2m_share=0.95 if drifted else 0.55,
    )
    rows = with_predictions(frame)
    start = NOW - timedelta(days=DAYS - day)
    rows["created_at"] = [start + timedelta(seconds=float(s)) for s in rng.uniform(0, 86_000, 400)]
    return rows


def seed_store(url: str, reference: MonitoringReference) -> pd.DataFrame:
    """Predictions over DAYS days (drift at the end), feedback for a third, one stored check a
    day over the days so far (as `churnops monitor` records them)."""
    rng = np.random.default_rng(3)
    days = [_day_rows(day, rng) for day in range(DAYS)]
    features = [
        c
        for c in days[0].columns
        if c not in {"churn_probability", "will_churn", "risk_level", "label", "created_at"}
    ]
    with PredictionStore(url) as store:
        store.create()
        for day, rows in enumerate(days):
            records = [
                PredictionRecord(
                    features=row,
                    churn_probability=float(p),
                    will_churn=bool(w),
                    risk_level=str(r),
                    model_name=MODEL_NAME,
                    model_version="1",
                    created_at=t,
                )
                for row, p, w, r, t in zip(
                    rows[features].to_dict(orient="records"),
                    rows["churn_probability"],
                    rows["will_churn"],
                    rows["risk_level"],
                    rows["created_at"],
                    strict=True,
                )
            ]
            store.write_predictions(records)
            store.write_feedback(
                FeedbackRecord(prediction_id=rec.prediction_id, label=int(label))
                for rec, label in zip(records[::3], rows["label"].iloc[::3], strict=True)
            )
            window = pd.concat(days[max(0, day - 2) : day + 1], ignore_index=True)
            report, _ = monitor_frame(
                window, reference, settings=MonitoringSettings(), period="day"
            )
            end = NOW - timedelta(days=DAYS - day - 1)
            store.record_monitoring_result(
                kind=RESULT_KIND,
                drift_detected=report.drift_found,
                summary=report.to_dict()
                | {"run": {"model_name": MODEL_NAME, "model_version": "1"}},
                window_start=end - timedelta(days=3),
                window_end=end,
                created_at=end - timedelta(minutes=1),
            )
    return pd.concat(days, ignore_index=True)
