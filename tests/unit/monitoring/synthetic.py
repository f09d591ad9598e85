"""Synthetic customers with a known churn probability, and a reference built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnops.data.profile import profile_frame, profile_scores
from churnops.data.schema import infer_schema
from churnops.monitoring.reference import MonitoringReference
from churnops.settings import DataSettings

CONTRACTS = ["Month-to-month", "One year", "Two year"]
PAYMENTS = ["Electronic check", "Mailed check", "Bank transfer", "Credit card"]
THRESHOLD = 0.4


def make_customers(
    n: int,
    seed: int,
    *,
    charges_shift: float = 0.0,
    m2m_share: float = 0.55,
) -> pd.DataFrame:
    """Customers whose churn label is drawn from `true_probability`."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 73, n)
    base = np.clip(rng.normal(65.0, 30.0, n), 18.0, 120.0)
    monthly = base + charges_shift
    total = tenure * base + rng.normal(0, 20, n)  # the shift is on one feature only
    total[rng.random(n) < 0.002] = np.nan
    rest = (1 - m2m_share) / 2
    frame = pd.DataFrame(
        {
            "tenure": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "contract": rng.choice(CONTRACTS, n, p=[m2m_share, rest, rest]),
            "payment_method": rng.choice(PAYMENTS, n),
            "female": rng.integers(0, 2, n),
        }
    )
    p = true_probability(frame)
    frame["churn"] = np.where(rng.random(n) < p, "Yes", "No")
    return frame


def true_probability(frame: pd.DataFrame) -> np.ndarray:
    logit = (
        -1.2
        + 1.4 * (frame["contract"] == "Month-to-month").to_numpy()
        - 0.03 * frame["tenure"].to_numpy()
        + 0.012 * (frame["monthly_charges"].to_numpy() - 65.0)
    )
    return 1.0 / (1.0 + np.exp(-logit))


def risk_levels(p: np.ndarray) -> np.ndarray:
    return np.where(p >= 0.6, "high", np.where(p >= 0.3, "medium", "low"))


def with_predictions(
    frame: pd.DataFrame, probabilities: np.ndarray | None = None, *, labelled: bool = True
) -> pd.DataFrame:
    """What the prediction store returns: features + scores (+ labels once feedback arrived)."""
    p = true_probability(frame) if probabilities is None else probabilities
    out = frame.drop(columns=["churn"]).copy()
    out["churn_probability"] = p
    out["will_churn"] = p >= THRESHOLD
    out["risk_level"] = risk_levels(p)
    out["label"] = (frame["churn"] == "Yes").astype(float) if labelled else np.nan
    return out


def build_reference(
    frame: pd.DataFrame, training_metrics: dict[str, float] | None = None
) -> MonitoringReference:
    schema = infer_schema(frame, DataSettings(target="churn", positive_label="Yes"))
    profile = profile_frame(frame, schema)
    p = true_probability(frame)
    profile.scores = profile_scores(p, risk_levels(p), threshold=THRESHOLD)
    return MonitoringReference(
        profile=profile,
        schema=schema,
        threshold=THRESHOLD,
        training_metrics=training_metrics or {},
    )
