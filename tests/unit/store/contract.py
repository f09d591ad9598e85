"""Behaviour every PredictionStore backend must show; subclassed per backend with a `store` fixture.

Not collected by itself (no `test_` prefix); `TestSqliteStore` and `TestPostgresStore` inherit it.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text

from churnops.store import (
    META_COLUMNS,
    FeedbackRecord,
    PredictionRecord,
    PredictionStore,
    head_revision,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_prediction(i: int = 0, **overrides: Any) -> PredictionRecord:
    """A small synthetic prediction; `i` varies the features and the timestamp (T0 + i minutes)."""
    values: dict[str, Any] = {
        "features": {
            "tenure": i,
            "contract": "month-to-month" if i % 2 else "two-year",
            "monthly_charges": 20.5 + i,
        },
        "churn_probability": min(1.0, 0.05 * i),
        "will_churn": i >= 10,
        "risk_level": "high" if i >= 10 else "low",
        "model_name": "churn-model",
        "model_version": "3",
        "request_id": f"req-{i}",
        "customer_id": f"cust-{i}",
        "created_at": T0 + timedelta(minutes=i),
        "reasons": [{"feature": "tenure", "impact": 0.1 * i}],
    }
    values.update(overrides)
    return PredictionRecord(**values)


class StoreContract:
    """Round trips, idempotence, label join and windows, against the `store` fixture."""

    def test_ping_and_revision(self, store: PredictionStore) -> None:
        assert store.ping() is True
        assert store.revision() == head_revision()
        store.upgrade()  # already at head: a no-op
        assert store.revision() == head_revision()

    def test_write_read_round_trip(self, store: PredictionStore) -> None:
        records = [make_prediction(i) for i in range(3)]
        assert store.write_predictions(records) == 3
        frame = store.read_predictions(since=None, until=None)
        assert list(frame["prediction_id"]) == [r.prediction_id for r in records]
        first = frame.iloc[1]
        assert first["customer_id"] == "cust-1"
        assert first["model_version"] == "3"
        assert first["source"] == "api"
        assert first["risk_level"] == "low"
        assert math.isclose(first["churn_probability"], 0.05)
        assert bool(first["will_churn"]) is False
        assert first["created_at"] == pd.Timestamp(T0 + timedelta(minutes=1))
        assert str(frame["created_at"].dt.tz) == "UTC"
        assert frame["will_churn"].dtype == bool
        assert frame["churn_probability"].dtype == "float64"

    def test_features_expanded_into_columns(self, store: PredictionStore) -> None:
        store.write_predictions(
            [
                make_prediction(1),
                make_prediction(2, features={"tenure": 5, "extra": "x", "customer_id": "c"}),
            ]
        )
        frame = store.read_predictions(since=None, until=None)
        assert list(frame.columns[: len(META_COLUMNS)]) == list(META_COLUMNS)
        assert {"tenure", "contract", "monthly_charges", "extra"} <= set(frame.columns)
        assert list(frame["tenure"]) == [1, 5]
        assert frame["contract"].iloc[0] == "month-to-month"
        assert pd.isna(frame["contract"].iloc[1])  # field absent from the second record
        # a feature named like a store column does not overwrite it
        assert frame["customer_id"].iloc[1] == "cust-2"
        assert frame["feature__customer_id"].iloc[1] == "c"

    def test_non_finite_features_stored_as_null(self, store: PredictionStore) -> None:
        record = make_prediction(1, features={"a": float("nan"), "b": float("inf"), "c": 1.5})
        store.write_predictions([record])
        frame = store.read_predictions(since=None, until=None)
        assert pd.isna(frame["a"].iloc[0]) and pd.isna(frame["b"].iloc[0])
        assert frame["c"].iloc[0] == 1.5

    def test_driver_level_insert_stores_what_sqlalchemy_stores(
        self, store: PredictionStore
    ) -> None:
        """The tuple fast path and SQLAlchemy Core write rows the read side cannot tell apart."""
        odd = {
            "n": np.float32(1.5),
            "i": np.int64(7),
            "missing": pd.NA,
            "nan": float("nan"),
            "text": 'tab\tnew\nline \\ quote"',
            "nested": {1: [np.int64(2), None]},
        }
        fast = [
            make_prediction(1, features=odd, request_id=None, customer_id=None, reasons=None),
            make_prediction(2, created_at=datetime(2025, 3, 1, 14, 0, 0, tzinfo=UTC)),
        ]
        core = [
            PredictionRecord.from_json_dict({**r.to_json_dict(), "prediction_id": f"core-{i}"})
            for i, r in enumerate(fast)
        ]
        core = [
            dataclasses.replace(c, features=f.features) for c, f in zip(core, fast, strict=True)
        ]
        assert store._bulk is not None  # this backend has the fast path
        store.write_predictions(fast)
        bulk, store._bulk = store._bulk, None
        try:
            store.write_predictions(core)
        finally:
            store._bulk = bulk
        frame = store.read_predictions(since=None, until=None).set_index("prediction_id")
        ours = frame.loc[[r.prediction_id for r in fast]].reset_index(drop=True)
        theirs = frame.loc[[c.prediction_id for c in core]].reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, theirs)
        assert ours["text"].iloc[0] == 'tab\tnew\nline \\ quote"'
        assert ours["n"].iloc[0] == 1.5 and ours["i"].iloc[0] == 7
        assert pd.isna(ours["missing"].iloc[0]) and pd.isna(ours["nan"].iloc[0])
        assert ours["created_at"].iloc[1] == pd.Timestamp("2025-03-01 14:00:00", tz="UTC")
        with store.engine.connect() as conn:
            raw = conn.execute(
                text(
                    "SELECT prediction_id, reasons, request_id FROM predictions ORDER BY prediction_id"
                )
            ).all()
        by_id = {row[0]: row[1:] for row in raw}
        assert by_id[fast[0].prediction_id] == by_id[core[0].prediction_id]
        assert by_id[fast[1].prediction_id][0] == by_id[core[1].prediction_id][0]

    def test_write_predictions_is_idempotent(self, store: PredictionStore) -> None:
        records = [make_prediction(i) for i in range(4)]
        store.write_predictions(records)
        store.write_predictions([*records[2:], make_prediction(9)])  # replay overlap
        assert store.count_predictions() == 5

    def test_empty_inputs(self, store: PredictionStore) -> None:
        assert store.write_predictions([]) == 0
        assert store.write_feedback([]) == 0
        frame = store.read_predictions(since=None, until=None)
        assert frame.empty
        assert list(frame.columns) == list(META_COLUMNS)

    def test_feedback_by_prediction_id_is_idempotent(self, store: PredictionStore) -> None:
        records = [make_prediction(i) for i in range(3)]
        store.write_predictions(records)
        feedback = FeedbackRecord(prediction_id=records[1].prediction_id, label=1)
        assert store.write_feedback([feedback]) == 1
        assert store.write_feedback([feedback]) == 1
        assert store.count_feedback() == 1
        labels = store.read_predictions(since=None, until=None).set_index("prediction_id")["label"]
        assert labels.dtype == "float64"
        assert labels[records[1].prediction_id] == 1.0
        assert labels.drop(records[1].prediction_id).isna().all()

    def test_feedback_label_can_be_corrected(self, store: PredictionStore) -> None:
        record = make_prediction(1)
        store.write_predictions([record])
        store.write_feedback([FeedbackRecord(prediction_id=record.prediction_id, label=1)])
        store.write_feedback([FeedbackRecord(prediction_id=record.prediction_id, label=0)])
        assert store.count_feedback() == 1
        assert store.read_predictions(since=None, until=None)["label"].tolist() == [0.0]

    def test_duplicates_within_one_call_collapse(self, store: PredictionStore) -> None:
        record = make_prediction(1)
        store.write_predictions([record])
        same = FeedbackRecord(prediction_id=record.prediction_id, label=1)
        assert store.write_feedback([same, same, same]) == 1
        assert store.count_feedback() == 1

    def test_feedback_by_customer_attaches_to_latest(self, store: PredictionStore) -> None:
        older = make_prediction(1, customer_id="alice")
        newer = make_prediction(5, customer_id="alice")
        other = make_prediction(3, customer_id="bob")
        store.write_predictions([newer, older, other])
        feedback = FeedbackRecord(customer_id="alice", label=1)
        assert store.write_feedback([feedback]) == 1
        assert store.write_feedback([feedback]) == 1  # twice: still one row
        assert store.count_feedback() == 1
        labels = store.read_predictions(since=None, until=None).set_index("prediction_id")["label"]
        assert labels[newer.prediction_id] == 1.0
        assert pd.isna(labels[older.prediction_id])
        assert pd.isna(labels[other.prediction_id])
        # the same label sent by prediction id is the same feedback
        store.write_feedback([FeedbackRecord(prediction_id=newer.prediction_id, label=1)])
        assert store.count_feedback() == 1

    def test_feedback_for_unknown_customer_kept_once(self, store: PredictionStore) -> None:
        feedback = FeedbackRecord(customer_id="nobody", label=0)
        assert store.write_feedback([feedback]) == 1
        assert store.write_feedback([feedback]) == 1
        assert store.count_feedback() == 1
        assert store.count_feedback(attached_only=True) == 0

    def test_feedback_before_prediction_is_joined_later(self, store: PredictionStore) -> None:
        record = make_prediction(1)  # label arrives while the prediction is still queued
        store.write_feedback([FeedbackRecord(prediction_id=record.prediction_id, label=1)])
        store.write_predictions([record])
        assert store.read_predictions(since=None, until=None)["label"].tolist() == [1.0]

    def test_time_window_and_filters(self, store: PredictionStore) -> None:
        records = [make_prediction(i) for i in range(10)]
        records.append(make_prediction(20, model_name="other-model"))
        records.append(make_prediction(21, source="batch"))
        store.write_predictions(records)
        since, until = T0 + timedelta(minutes=2), T0 + timedelta(minutes=5)
        window = store.read_predictions(since=since, until=until)
        assert window["tenure"].tolist() == [2, 3, 4]  # since inclusive, until exclusive
        assert store.count_predictions(since=since, until=until) == 3
        assert len(store.read_predictions(since=T0 + timedelta(minutes=9), until=None)) == 3
        assert len(store.read_predictions(since=None, until=T0)) == 0
        other = store.read_predictions(since=None, until=None, model_name="other-model")
        assert other["tenure"].tolist() == [20]
        batch = store.read_predictions(since=None, until=None, source="batch")
        assert batch["tenure"].tolist() == [21]
        assert store.count_predictions(source="api") == 11
        latest = store.read_predictions(since=None, until=None, limit=2)
        assert latest["tenure"].tolist() == [20, 21]  # most recent two, oldest first

    def test_time_zones_are_normalised(self, store: PredictionStore) -> None:
        paris = timezone(timedelta(hours=2))
        record = make_prediction(1, created_at=datetime(2025, 6, 1, 14, 0, tzinfo=paris))
        store.write_predictions([record])
        stored = store.read_predictions(since=None, until=None)["created_at"].iloc[0]
        assert stored == pd.Timestamp("2025-06-01 12:00", tz="UTC")
        # an aware bound in another zone and a naive (UTC) bound select the same instant
        assert store.count_predictions(since=datetime(2025, 6, 1, 14, 0, tzinfo=paris)) == 1
        assert store.count_predictions(since=datetime(2025, 6, 1, 12, 0, 1)) == 0

    def test_batch_run_round_trip(self, store: PredictionStore) -> None:
        profile = {"columns": {"tenure": {"mean": 30.5, "bins": [0, 12, 24]}}, "n": 100}
        run_id = store.record_batch_run(
            started_at=T0,
            finished_at=T0 + timedelta(seconds=42),
            input_fingerprint="sha256:abc",
            model_name="churn-model",
            model_version=3,
            rows_read=100,
            rows_scored=98,
            rows_rejected=2,
            summary={"churn_rate": 0.25, "nan": float("nan")},
            profile=profile,
        )
        second = store.record_batch_run(
            started_at=T0 + timedelta(hours=1),
            finished_at=None,
            model_name="churn-model",
            model_version="4",
            rows_read=1,
            rows_scored=1,
            rows_rejected=0,
        )
        assert isinstance(run_id, int) and second != run_id
        runs = store.read_batch_runs()
        assert [r.id for r in runs] == [second, run_id]  # newest first
        run = runs[1]
        assert run.started_at == T0 and run.finished_at == T0 + timedelta(seconds=42)
        assert (run.rows_read, run.rows_scored, run.rows_rejected) == (100, 98, 2)
        assert run.model_version == "3" and run.input_fingerprint == "sha256:abc"
        assert run.profile == profile
        assert run.summary == {"churn_rate": 0.25, "nan": None}
        assert runs[0].profile is None and runs[0].summary == {}
        assert len(store.read_batch_runs(limit=1)) == 1

    def test_monitoring_results_round_trip(self, store: PredictionStore) -> None:
        assert store.latest_monitoring_result("drift") is None
        ids = [
            store.record_monitoring_result(
                kind="drift",
                drift_detected=i == 2,
                summary={"share_drifted": 0.1 * i},
                window_start=T0,
                window_end=T0 + timedelta(days=7),
                created_at=T0 + timedelta(days=i),
            )
            for i in range(3)
        ]
        perf = store.record_monitoring_result(
            kind="performance", drift_detected=False, summary={"roc_auc": 0.81}
        )
        latest = store.latest_monitoring_result("drift")
        assert latest is not None
        assert latest.id == ids[2] and latest.drift_detected is True
        assert latest.window_end == T0 + timedelta(days=7)
        assert latest.summary == {"share_drifted": 0.2}
        drift = store.read_monitoring_results(kind="drift", limit=2)
        assert [r.id for r in drift] == [ids[2], ids[1]]
        assert {r.id for r in store.read_monitoring_results()} == {*ids, perf}
        latest_perf = store.latest_monitoring_result("performance")
        assert latest_perf is not None and latest_perf.created_at.tzinfo is not None
