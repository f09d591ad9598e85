"""AsyncWriter on a healthy SQLite store: batching, flush/close, bad records, spool bound."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from churnops.errors import StoreError
from churnops.store import AsyncWriter, PredictionStore, Spool
from tests.unit.store.contract import make_prediction


def make_writer(store: PredictionStore, tmp_path: Path, **kwargs: object) -> AsyncWriter:
    options: dict[str, object] = {
        "spool_path": tmp_path / "spool" / "spool.jsonl",
        "batch_size": 50,
        "flush_interval": 0.02,
        "reconnect_interval": 0.05,
    }
    options.update(kwargs)
    return AsyncWriter(store, **options)


def test_background_thread_writes_in_batches(store: PredictionStore, tmp_path: Path) -> None:
    with make_writer(store, tmp_path) as writer:
        writer.enqueue([make_prediction(i) for i in range(120)])
        writer.enqueue(make_prediction(500))
        assert writer.flush(timeout=10)
        assert store.count_predictions() == 121
        state = writer.state
        assert state.running and not state.degraded and state.reason is None
        assert state.queue_depth == 0 and state.written_records == 121
        assert state.spooled_records == 0 and state.write_errors == 0
    assert not writer.state.running


def test_interval_flush_without_explicit_flush(store: PredictionStore, tmp_path: Path) -> None:
    writer = make_writer(store, tmp_path, batch_size=1000).start()
    writer.enqueue([make_prediction(i) for i in range(5)])  # far below batch_size
    deadline = time.monotonic() + 5
    while store.count_predictions() < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.count_predictions() == 5
    writer.close()


def test_flush_and_close_without_thread(store: PredictionStore, tmp_path: Path) -> None:
    writer = make_writer(store, tmp_path)  # never started: flush works in the caller
    writer.enqueue([make_prediction(i) for i in range(3)])
    assert writer.flush(timeout=5)
    assert store.count_predictions() == 3
    writer.enqueue([make_prediction(i) for i in range(3, 6)])
    writer.close()
    assert store.count_predictions() == 6


def test_records_after_close_are_spooled_not_lost(store: PredictionStore, tmp_path: Path) -> None:
    writer = make_writer(store, tmp_path).start()
    writer.close()
    writer.enqueue([make_prediction(1), make_prediction(2)])
    assert writer.spooled_records == 2
    with pytest.raises(StoreError, match="closed"):
        writer.start()
    # the next process replays them
    with make_writer(store, tmp_path) as successor:
        assert successor.flush(timeout=5)
        deadline = time.monotonic() + 5
        while successor.spooled_records and time.monotonic() < deadline:
            time.sleep(0.01)
    assert store.count_predictions() == 2


def test_bad_record_is_set_aside_and_the_rest_written(
    store: PredictionStore, tmp_path: Path
) -> None:
    bad = make_prediction(3, model_name=None)  # NOT NULL violation: a data error, not an outage
    with make_writer(store, tmp_path) as writer:
        writer.enqueue([make_prediction(1), make_prediction(2), bad, make_prediction(4)])
        assert writer.flush(timeout=5)
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


def test_invalid_options(store: PredictionStore, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make_writer(store, tmp_path, batch_size=0)
    with pytest.raises(ValueError):
        make_writer(store, tmp_path, flush_interval=0)
