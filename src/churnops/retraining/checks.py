"""Stored monitoring checks, reduced to the few figures the retraining policy reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from churnops.store.records import MonitoringResult


@dataclass(frozen=True, slots=True)
class WindowCheck:
    """One monitoring check: drift flags, rows, the model it watched, performance drops."""

    id: int
    created_at: datetime
    window_end: datetime
    n_rows: int
    dataset_drift: bool
    prediction_drift: bool
    model_version: str | None
    n_labelled: int
    realised_drop: float | None  # training ROC-AUC - realised ROC-AUC
    estimated_drop: float | None  # the same from the scores alone (CBPE)
    realised_roc_auc: float | None
    estimated_roc_auc: float | None

    @property
    def window(self) -> str:
        """The window's name in idempotency keys and reports."""
        return self.window_end.isoformat(timespec="seconds")


def _drop(drops: Mapping[str, Any] | None) -> float | None:
    value = (drops or {}).get("roc_auc")
    return float(value) if value is not None else None


def check_from_result(result: MonitoringResult) -> WindowCheck:
    """The policy's view of a stored result (`churnops monitor`'s summary JSON)."""
    summary: Mapping[str, Any] = result.summary or {}
    headline = summary.get("summary") or {}
    performance = summary.get("performance") or {}
    run = summary.get("run") or {}
    version = run.get("model_version")
    return WindowCheck(
        id=int(result.id),
        created_at=result.created_at,
        window_end=result.window_end or result.created_at,
        n_rows=int(headline.get("n_rows") or summary.get("n_rows") or 0),
        dataset_drift=bool(headline.get("dataset_drift", False)),
        prediction_drift=bool(headline.get("prediction_drift", False)),
        model_version=str(version) if version is not None else None,
        n_labelled=int(performance.get("n_labelled") or 0),
        realised_drop=_drop(performance.get("drops")),
        estimated_drop=_drop(performance.get("estimated_drops")),
        realised_roc_auc=headline.get("realised_roc_auc"),
        estimated_roc_auc=headline.get("estimated_roc_auc"),
    )
