"""AsyncWriter when the database goes away: spool, stay available, replay, lose nothing.

The SQLite cases need no service (the database "comes back" when its directory is created); the
Postgres case cuts a real connection with a TCP proxy and is marked `integration`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from churnops.store import AsyncWriter, PredictionStore, upgrade_schema
from tests.support.stores import TcpProxy, free_port, postgres_schema
from tests.unit.store.contract import make_prediction

FAST = {"batch_size": 40, "flush_interval": 0.02, "reconnect_interval": 0.05}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def unreachable(tmp_path: Path) -> Iterator[tuple[PredictionStore, Path]]:
    """A store whose SQLite file sits in a directory that does not exist yet."""
    db_dir = tmp_path / "not-yet"
    store = PredictionStore(f"sqlite:///{db_dir / 'predictions.db'}")
    yield store, db_dir
    store.close()


def test_outage_spools_then_replays(
    unreachable: tuple[PredictionStore, Path], tmp_path: Path
) -> None:
    store, db_dir = unreachable
    spool = tmp_path / "spool" / "spool.jsonl"
    with AsyncWriter(store, spool_path=spool, **FAST) as writer:
        assert wait_until(lambda: writer.degraded)  # noticed at start-up, before any write
        records = [make_prediction(i) for i in range(250)]
        for record in records:
            writer.enqueue(record)
        assert writer.flush(timeout=10)
        state = writer.state
        assert state.degraded and state.reason and "unreachable" in state.reason
        assert state.spooled_records == 250 and state.queue_depth == 0
        assert state.dropped_records == 0
        assert spool.exists()

        db_dir.mkdir()  # the database comes back
        assert wait_until(lambda: writer.spooled_records == 0)
        assert store.count_predictions() == 250
        state = writer.state
        assert not state.degraded and state.reason is None
        assert state.replayed_records == 250
        # the counter reaches 0 once the last batch is committed; the file goes right after
        assert wait_until(lambda: not spool.exists())

        later = make_prediction(999)
        writer.enqueue(later)  # and normal service resumes
        assert writer.flush(timeout=5)
    stored = set(store.read_predictions(since=None, until=None)["prediction_id"])
    assert stored == {r.prediction_id for r in [*records, later]}


def test_close_flushes_the_whole_queue(tmp_path: Path) -> None:
    store = PredictionStore(f"sqlite:///{tmp_path / 'p.db'}")
    store.create()
    # nothing would be written on its own for a minute: only close() can get these out
    writer = AsyncWriter(
        store, spool_path=tmp_path / "spool.jsonl", batch_size=10_000, flush_interval=60
    ).start()
    writer.enqueue([make_prediction(i) for i in range(1_500)])
    assert writer.state.queue_depth == 1_500
    writer.close()
    assert store.count_predictions() == 1_500
    assert writer.state.spooled_records == 0
    store.close()


def test_close_during_outage_spools_and_next_process_replays(
    unreachable: tuple[PredictionStore, Path], tmp_path: Path
) -> None:
    store, db_dir = unreachable
    spool = tmp_path / "spool.jsonl"
    writer = AsyncWriter(store, spool_path=spool, **FAST).start()
    writer.enqueue([make_prediction(i) for i in range(100)])
    writer.close()  # SIGTERM while the database is down
    assert writer.state.spooled_records == 100
    db_dir.mkdir()
    with AsyncWriter(store, spool_path=spool, **FAST) as successor:
        assert successor.state.spooled_records == 100  # found the previous process's spool
        assert wait_until(lambda: successor.spooled_records == 0)
    assert store.count_predictions() == 100


def _enqueue_from_threads(writer: AsyncWriter, *, threads: int, per_thread: int) -> None:
    def producer(seed: int) -> None:
        rng = random.Random(seed)
        records = [make_prediction(i) for i in range(per_thread)]
        while records:
            size = rng.randint(1, 30)
            chunk, records = records[:size], records[size:]
            writer.enqueue(chunk if size > 1 else chunk[0])

    workers = [threading.Thread(target=producer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_concurrent_producers_lose_nothing(tmp_path: Path) -> None:
    store = PredictionStore(f"sqlite:///{tmp_path / 'p.db'}")
    store.create()
    # a small max_queue forces the overflow-to-spool path under contention too
    writer = AsyncWriter(
        store,
        spool_path=tmp_path / "spool.jsonl",
        max_queue=200,
        **FAST,
    ).start()
    _enqueue_from_threads(writer, threads=8, per_thread=300)
    writer.close()
    state = writer.state
    assert store.count_predictions() + state.spooled_records == 2_400
    assert state.dropped_records == 0
    # whatever overflowed to the spool is replayed by the next writer
    with AsyncWriter(store, spool_path=tmp_path / "spool.jsonl", **FAST) as nxt:
        assert wait_until(lambda: nxt.spooled_records == 0)
    assert store.count_predictions() == 2_400
    store.close()


def test_concurrent_producers_during_outage(
    unreachable: tuple[PredictionStore, Path], tmp_path: Path
) -> None:
    store, db_dir = unreachable
    with AsyncWriter(store, spool_path=tmp_path / "spool.jsonl", **FAST) as writer:
        recover = threading.Timer(0.15, db_dir.mkdir)  # the database returns mid-stream
        recover.start()
        _enqueue_from_threads(writer, threads=6, per_thread=200)
        recover.join()
        assert writer.flush(timeout=10)
        assert wait_until(lambda: writer.spooled_records == 0 and not writer.degraded)
    assert store.count_predictions() == 1_200


@pytest.mark.integration
def test_postgres_connection_cut_and_restored(tmp_path: Path) -> None:
    """A live Postgres behind a proxy: up, cut (pooled connections die), back; nothing lost."""
    with postgres_schema("churnops_outage") as url:
        upgrade_schema(url)
        real = make_url(url)
        port = free_port()
        proxy = TcpProxy(port, (real.host or "127.0.0.1", real.port or 5432))
        proxy.start()
        via_proxy = real.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        store = PredictionStore(via_proxy, connect_timeout=2)
        with AsyncWriter(store, spool_path=tmp_path / "spool.jsonl", **FAST) as writer:
            writer.enqueue([make_prediction(i) for i in range(100)])
            assert writer.flush(timeout=10)
            assert store.count_predictions() == 100 and not writer.degraded

            proxy.stop()  # database gone
            writer.enqueue([make_prediction(i) for i in range(100, 300)])
            assert writer.flush(timeout=15)
            assert writer.degraded and writer.spooled_records == 200
            assert writer.write_errors >= 1  # a real write failed mid-service
            assert store.ping() is False

            proxy.start()  # database back
            assert wait_until(lambda: writer.spooled_records == 0, timeout=15)
            assert not writer.degraded
        assert store.count_predictions() == 300
        store.close()
        proxy.stop()
