"""BatchWriter driven as the writer process drives it: batches, flush/close, bad records, the
spool bound, labels checked against the store on replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from churnops.store import BatchWriter, FeedbackRecord, PredictionStore, Spool
from tests.unit.store.contract import make_prediction


def make_writer(store: PredictionStore, tmp_path: Path, **kwargs: object) -> BatchWriter:
    options: dict[str, object] = {
        "spool_path": tmp_path / "spool" / "spool.jsonl",
        "batch_size": 50,
        "reconnect_interval": 0.05,
    }
    options.update(kwargs)
    return BatchWriter(store, **options)


def test_writes_a_batch_at_a_time(store: PredictionStore, tmp_path: Path) -> None:
    writer = make_writer(store, tmp_path)
    writer.enqueue([make_prediction(i) for i in range(121)])
    assert writer.queued == 121 and store.count_predictions() == 0  # enqueue never writes
    assert writer.write_pending(max_batches=1) == 50
    assert store.count_predictions() == 50 and writer.durable_prefix == 50
    assert writer.write_pending() == 71
    state = writer.state
    assert store.count_predictions() == 121
    assert state.running and not state.degraded and state.reason is None
    assert state.queue_depth == 0 and state.written_records == 121
    assert state.spooled_records == 0 and state.write_errors == 0
    writer.close()
    assert not writer.state.running


def test_flush_and_close_write_everything(store: PredictionStore, tmp_path: Path) -> None:
    writer = make_writer(store, tmp_path)
    writer.enqueue([make_prediction(i) for i in range(3)])
    writer.flush()
    assert store.count_predictions() == 3
    writer.enqueue([make_prediction(i) for i in range(3, 6)])
    writer.close()
    assert store.count_predictions() == 6


def test_records_after_close_are_spooled_and_replayed_by_the_next_writer(
    store: PredictionStore, tmp_path: Path
) -> None:
    writer = make_writer(store, tmp_path)
    writer.close()
    writer.enqueue([make_prediction(1), make_prediction(2)])
    assert writer.state.spooled_records == 2 and store.count_predictions() == 0
    successor = make_writer(store, tmp_path)
    successor.write_pending()  # nothing queued: it still replays the spool
    assert store.count_predictions() == 2
    assert successor.state.replayed_records == 2 and successor.state.spooled_records == 0


def test_bad_record_is_set_aside_and_the_rest_written(
    store: PredictionStore, tmp_path: Path
) -> None:
    bad = make_prediction(3, model_name=None)  # NOT NULL violation: a data error, not an outage
    writer = make_writer(store, tmp_path)
    writer.enqueue([make_prediction(1), make_prediction(2), bad, make_prediction(4)])
    writer.flush()
    state = writer.state
    assert store.count_predictions() == 3
    assert state.rejected_records == 1 and state.write_errors >= 1 and not state.degraded
    lines = writer.rejected_path.read_text().splitlines()
    assert json.loads(lines[0])["record"]["prediction_id"] == bad.prediction_id


def test_full_spool_drops_are_counted(tmp_path: Path) -> None:
    probe = Spool(tmp_path / "probe.jsonl", max_bytes=10**6)
    probe.append([make_prediction(1)])
    down = PredictionStore(f"sqlite:///{tmp_path / 'missing' / 'p.db'}")
    writer = make_writer(down, tmp_path, spool_max_bytes=probe.size_bytes * 3 + 10)
    writer.enqueue([make_prediction(i) for i in range(10)])
    writer.close()
    state = writer.state
    assert state.spooled_records == 3
    assert state.dropped_records == 7
    assert state.degraded and state.reason is not None and "spool full" in state.reason


def test_a_queue_beyond_max_queue_overflows_to_the_spool(tmp_path: Path) -> None:
    down = PredictionStore(f"sqlite:///{tmp_path / 'missing' / 'p.db'}")
    writer = make_writer(down, tmp_path, max_queue=4)
    writer.enqueue([make_prediction(i) for i in range(10)])
    assert writer.queued == 4 and writer.state.spooled_records == 6


def test_spooled_labels_are_checked_against_the_store_on_replay(
    store: PredictionStore, tmp_path: Path
) -> None:
    """A label naming a stored prediction is stored; one naming an unknown prediction_id is set
    aside and counted, never stored as an orphan; labels by customer keep their own rule."""
    served = make_prediction(1)
    writer = make_writer(store, tmp_path)
    writer.enqueue([served])
    labels = [
        FeedbackRecord(prediction_id=served.prediction_id, label=1),
        FeedbackRecord(prediction_id="never-served", label=0),
        FeedbackRecord(customer_id="nobody-yet", label=1),
    ]
    writer.spool_feedback(labels)
    writer.write_pending()  # the prediction first, then the labels
    state = writer.state
    assert state.unmatched_feedback == 1 and state.spooled_feedback == 0
    assert store.count_feedback(attached_only=True) == 1
    assert store.count_feedback() == 2  # the attached label and the customer's unattached one
    set_aside = [json.loads(line) for line in writer.unmatched_path.read_text().splitlines()]
    assert [row["prediction_id"] for row in set_aside] == ["never-served"]


def test_invalid_options(store: PredictionStore, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make_writer(store, tmp_path, batch_size=0)
    with pytest.raises(ValueError):
        make_writer(store, tmp_path, reconnect_interval=0)
