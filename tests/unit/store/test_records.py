"""Records callers build: validation and strict-JSON conversion."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from churnops.store import FeedbackRecord, PredictionRecord, to_jsonable
from churnops.store.records import new_prediction_id, new_prediction_ids
from tests.unit.store.contract import make_prediction


def test_to_jsonable_makes_strict_json() -> None:
    value = {
        "nan": float("nan"),
        "inf": float("-inf"),
        "np_int": np.int64(3),
        "np_float": np.float32(0.5),
        "np_nan": np.float64("nan"),
        "np_bool": np.bool_(True),
        "array": np.array([1, 2]),
        "na": pd.NA,
        "ts": datetime(2025, 1, 1, tzinfo=UTC),
        "dec": Decimal("1.25"),
        "tuple": (1, "a"),
        2: "int key",
    }
    assert to_jsonable(value) == {
        "nan": None,
        "inf": None,
        "np_int": 3,
        "np_float": 0.5,
        "np_nan": None,
        "np_bool": True,
        "array": [1, 2],
        "na": None,
        "ts": "2025-01-01T00:00:00+00:00",
        "dec": 1.25,
        "tuple": [1, "a"],
        "2": "int key",
    }


def test_prediction_record_defaults_and_json_round_trip() -> None:
    record = make_prediction(3, model_version=7, customer_id=42)
    assert record.model_version == "7" and record.customer_id == "42"
    assert len(record.prediction_id) == 36
    again = PredictionRecord.from_json_dict(record.to_json_dict())
    assert again == record


def test_prediction_record_times_become_utc() -> None:
    naive = make_prediction(1, created_at=datetime(2025, 1, 1, 12))
    assert naive.created_at == datetime(2025, 1, 1, 12, tzinfo=UTC)
    plus_one = timezone(timedelta(hours=1))
    aware = make_prediction(1, created_at=datetime(2025, 1, 1, 12, tzinfo=plus_one))
    assert aware.created_at == datetime(2025, 1, 1, 11, tzinfo=UTC)
    fresh = PredictionRecord(
        features={},
        churn_probability=0.1,
        will_churn=False,
        risk_level="low",
        model_name="m",
        model_version="1",
    )
    assert fresh.created_at.tzinfo is UTC and fresh.source == "api"


@pytest.mark.parametrize(
    "overrides", [{"source": "stream"}, {"churn_probability": 1.5}, {"churn_probability": -0.1}]
)
def test_prediction_record_rejects_bad_values(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_prediction(1, **overrides)


def test_feedback_record_validation() -> None:
    assert FeedbackRecord(prediction_id="p", label=True).label == 1
    assert FeedbackRecord(customer_id=7, label=0.0).customer_id == "7"
    with pytest.raises(ValueError, match="0 or 1"):
        FeedbackRecord(prediction_id="p", label=2)
    with pytest.raises(ValueError, match="0 or 1"):
        FeedbackRecord(prediction_id="p", label=0.5)
    with pytest.raises(ValueError, match="prediction_id or a customer_id"):
        FeedbackRecord(label=1)


def test_prediction_ids_are_unique_time_ordered_version_7_uuids() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_prediction_id() for _ in range(1000)] + new_prediction_ids(1000)
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == value  # canonical lower-case text, 36 characters
        assert before <= parsed.int >> 80 <= after  # the leading 48 bits are the creation time
    # Ids of different milliseconds sort in creation order (what keeps index inserts at the end).
    time.sleep(0.002)
    assert max(ids) < new_prediction_id()
