"""The bounded JSONL spool: bound, replay, partial replay, torn lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from churnops.store import PredictionRecord, Spool
from tests.unit.store.contract import make_prediction


def test_append_and_replay_everything(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "sub" / "spool.jsonl", max_bytes=1_000_000)
    records = [make_prediction(i) for i in range(7)]
    assert spool.append(records) == 7
    assert spool.records == 7 and spool.size_bytes == spool.path.stat().st_size
    seen: list[list[PredictionRecord]] = []
    assert spool.replay(seen.append, batch_size=3) == 7
    assert [len(b) for b in seen] == [3, 3, 1]
    assert [r for b in seen for r in b] == records
    assert spool.records == 0 and not spool.path.exists()


def test_bound_is_respected(tmp_path: Path) -> None:
    probe = Spool(tmp_path / "probe.jsonl", max_bytes=10**6)
    probe.append([make_prediction(1)])
    line_size = probe.size_bytes
    spool = Spool(tmp_path / "spool.jsonl", max_bytes=int(line_size * 3.5))
    assert spool.append([make_prediction(i) for i in range(1, 6)]) == 3
    assert spool.records == 3 and spool.size_bytes <= spool.max_bytes
    assert spool.append([make_prediction(9)]) == 0


def test_failed_replay_keeps_the_rest(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl", max_bytes=10**6)
    records = [make_prediction(i) for i in range(6)]
    spool.append(records)
    calls = 0

    def flaky(batch: list[PredictionRecord]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("down again")

    with pytest.raises(ConnectionError):
        spool.replay(flaky, batch_size=2)
    assert spool.records == 4  # first batch written, the rest kept
    got: list[PredictionRecord] = []
    assert spool.replay(got.extend, batch_size=10) == 4
    assert got == records[2:]


def test_existing_spool_is_counted_and_torn_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    Spool(path, max_bytes=10**6).append([make_prediction(1), make_prediction(2)])
    with path.open("ab") as fh:
        fh.write(b'{"prediction_id": "torn')  # crash in the middle of an append
    spool = Spool(path, max_bytes=10**6)  # a new process
    assert spool.records == 3
    got: list[PredictionRecord] = []
    assert spool.replay(got.extend, batch_size=10) == 2
    assert spool.corrupt_lines == 1 and spool.records == 0


def test_what_a_full_spool_does_depends_on_the_environment() -> None:
    from churnops.settings import Settings

    assert Settings(env="production").resolved_on_spool_full() == "refuse"
    assert Settings(env="development").resolved_on_spool_full() == "drop"
    explicit = Settings(env="production", serving={"on_spool_full": "drop"})
    assert explicit.resolved_on_spool_full() == "drop"
