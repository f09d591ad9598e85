"""A synthetic production stream for the retraining loop: demo customers scored by the champion,
labelled later, then drifted (prices up, everyone month-to-month on fibre, paying by electronic
check) with a concept shift (long-tenure customers are the ones who leave), and the daily
monitoring checks `churnops monitor` would have stored."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from churnops.modeling.scorer import Scorer
from churnops.monitoring.model_reference import reference_from_scorer
from churnops.monitoring.monitor import monitor_frame
from churnops.monitoring.run import RESULT_KIND
from churnops.settings import MonitoringSettings
from churnops.store import FeedbackRecord, PredictionRecord, PredictionStore

ROWS_PER_DAY = 600
LABELLED_SHARE = 0.5


def drifted(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The new population, and the new concept: churn now follows tenure, not the contract."""
    out = frame.assign(
        monthly_charges=frame["monthly_charges"] + 70.0,
        contract="Month-to-month",
        internet_service="Fiber optic",
        payment_method="Electronic check",
    )
    leaves = (out["tenure"] > 30).to_numpy() ^ (rng.random(len(out)) < 0.05)
    out["churn"] = np.where(leaves, "Yes", "No")
    return out


def day_rows(table: pd.DataFrame, *, day: int, drift: bool, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed + day)
    rows = table.sample(ROWS_PER_DAY, random_state=seed + day, replace=True).reset_index(drop=True)
    return drifted(rows, rng) if drift else rows


def store_day(
    store: PredictionStore,
    rows: pd.DataFrame,
    scorer: Scorer,
    *,
    start: datetime,
    version: str,
    model_name: str,
    label: bool = True,
) -> pd.DataFrame:
    """Score `rows`, store them as predictions over one day from `start`, label a share of them.
    Returns the scored rows (with churn_probability, will_churn, risk_level, label, created_at)."""
    scores = scorer.score_frame(rows)
    schema = scorer.schema
    features = rows[schema.feature_names].to_dict(orient="records")
    step = timedelta(days=1) / len(rows)
    times = [start + step * i for i in range(len(rows))]
    records = [
        PredictionRecord(
            features=f,
            churn_probability=float(scores.probability[i]),
            will_churn=bool(scores.will_churn[i]),
            risk_level=str(scores.risk_level[i]),
            model_name=model_name,
            model_version=version,
            customer_id=f"{start:%Y%m%d%H}-{i}",
            created_at=times[i],
        )
        for i, f in enumerate(features)
    ]
    store.write_predictions(records)
    labels = (rows[schema.target].astype(str) == schema.positive_label).astype(int).to_numpy()
    if label:
        keep = int(len(records) * LABELLED_SHARE)
        store.write_feedback(
            FeedbackRecord(prediction_id=r.prediction_id, label=int(y))
            for r, y in zip(records[:keep], labels[:keep], strict=True)
        )
    return rows[schema.feature_names].assign(
        churn_probability=scores.probability,
        will_churn=scores.will_churn,
        risk_level=scores.risk_level,
        label=labels.astype(float),
        created_at=times,
    )


def record_check(
    store: PredictionStore,
    window: pd.DataFrame,
    scorer: Scorer,
    *,
    end: datetime,
    version: str,
    model_name: str,
    monitoring: MonitoringSettings,
) -> bool:
    """Run the real monitor over `window` and store its result as `churnops monitor` does."""
    report, _ = monitor_frame(
        window, reference_from_scorer(scorer), settings=monitoring, period="day"
    )
    store.record_monitoring_result(
        kind=RESULT_KIND,
        drift_detected=report.drift_found,
        summary=report.to_dict() | {"run": {"model_name": model_name, "model_version": version}},
        window_start=end - timedelta(days=1),
        window_end=end,
        created_at=end,
    )
    return report.drift.dataset_drift


def crafted_check(
    store: PredictionStore, *, end: datetime, version: str, model_name: str, **headline: Any
) -> None:
    """A stored check with the given headline figures (for policy cases the real monitor need not
    reproduce)."""
    values: Mapping[str, Any] = {
        "n_rows": 1000,
        "dataset_drift": False,
        "prediction_drift": False,
    } | headline
    store.record_monitoring_result(
        kind=RESULT_KIND,
        drift_detected=bool(values["dataset_drift"]),
        summary={
            "summary": dict(values),
            "run": {"model_name": model_name, "model_version": version},
        },
        window_start=end - timedelta(days=1),
        window_end=end,
        created_at=end,
    )
