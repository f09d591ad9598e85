"""Support for the monitoring integration tests: the champion's held-out rows, a shifted copy,
and predictions written to a store as the API would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from sklearn.model_selection import train_test_split

from churnops.data.schema import target_vector
from churnops.modeling.scorer import Scorer
from churnops.store import PredictionRecord, PredictionStore
from tests.support.models import TrainedModel

MODEL_NAME = "churn-model"


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
