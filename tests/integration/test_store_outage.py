"""The API's writer (a ProcessWriter and its child, as production runs it) when the database goes
away: spool, stay available, replay, lose nothing.

The SQLite cases need no service (the database "comes back" when its directory is created); the
Postgres case cuts a real connection with a TCP proxy.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from churnops.errors import StoreError
from churnops.store import PredictionStore, upgrade_schema
from churnops.store.writer_process import ProcessWriter, WriterConfig
from tests.support.stores import TcpProxy, free_port, postgres_schema
from tests.unit.store.contract import make_prediction

pytestmark = pytest.mark.integration

FAST = {"batch_size": 40, "flush_interval": 0.02, "reconnect_interval": 0.05}


def _config(url: str, spool: Path, **overrides: Any) -> WriterConfig:
    values: dict[str, Any] = {"database_url": url, "spool_path": str(spool)} | FAST
    return WriterConfig(**(values | overrides))


def _rows(start: int, count: int) -> list[dict[str, Any]]:
    return [make_prediction(i).to_json_dict() for i in range(start, start + count)]


async def _until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


def _stored(url: str) -> list[str]:
    """Stored prediction ids; none while the writer has not created the tables yet."""
    store = PredictionStore(url)
    try:
        return list(store.read_predictions()["prediction_id"])
    except StoreError:
        return []
    finally:
        store.close()


def _not_yet(tmp_path: Path) -> tuple[str, Path]:
    """A SQLite URL whose directory does not exist yet: unreachable until it is created."""
    db_dir = tmp_path / "not-yet"
    return f"sqlite:///{db_dir / 'predictions.db'}", db_dir


def _ready(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    PredictionStore(url).create()
    return url


def test_outage_spools_then_replays(tmp_path: Path) -> None:
    url, db_dir = _not_yet(tmp_path)
    spool = tmp_path / "spool" / "spool.jsonl"
    rows = _rows(0, 250)

    async def main() -> None:
        writer = await ProcessWriter(_config(url, spool)).start()
        assert await _until(lambda: writer.state.degraded)  # noticed before any write
        writer.enqueue_json(rows)
        assert await asyncio.to_thread(writer.flush, 10.0)
        state = writer.state
        assert state.degraded and state.reason and "unreachable" in state.reason
        assert state.spooled_records == 250 and state.queue_depth == 0
        assert state.dropped_records == 0
        assert spool.exists()

        db_dir.mkdir()  # the database comes back
        assert await _until(lambda: writer.state.spooled_records == 0)
        assert await _until(lambda: not writer.state.degraded)
        assert len(_stored(url)) == 250
        assert writer.state.replayed_records == 250
        assert await _until(lambda: not spool.exists())

        writer.enqueue_json(_rows(999, 1))  # and normal service resumes
        assert await asyncio.to_thread(writer.flush, 5.0)
        await writer.aclose()

    asyncio.run(main())
    stored = _stored(url)
    assert len(stored) == 251 and {r["prediction_id"] for r in rows} <= set(stored)


def test_close_writes_the_whole_queue(tmp_path: Path) -> None:
    url = _ready(tmp_path)
    # nothing would be written on its own for a minute: only closing can get these out
    config = _config(url, tmp_path / "spool.jsonl", batch_size=10_000, flush_interval=60)

    async def main() -> None:
        writer = await ProcessWriter(config).start()
        writer.enqueue_json(_rows(0, 1_500))
        assert await _until(lambda: writer.state.queue_depth == 1_500)
        assert _stored(url) == []
        await writer.aclose()

    asyncio.run(main())
    assert len(_stored(url)) == 1_500
    assert not (tmp_path / "spool.jsonl").exists()


def test_close_during_outage_spools_and_next_process_replays(tmp_path: Path) -> None:
    url, db_dir = _not_yet(tmp_path)
    spool = tmp_path / "spool.jsonl"
    config = _config(url, spool)

    async def down() -> None:
        writer = await ProcessWriter(config).start()
        writer.enqueue_json(_rows(0, 100))
        await writer.aclose()  # SIGTERM while the database is down

    asyncio.run(down())
    assert spool.read_bytes().count(b"\n") == 100
    db_dir.mkdir()

    async def successor() -> None:
        writer = await ProcessWriter(config).start()  # finds the previous process's spool
        assert await _until(lambda: len(_stored(url)) == 100)
        await writer.aclose()

    asyncio.run(successor())
    assert not spool.exists()


def _produce(writer: ProcessWriter, seed: int, count: int) -> None:
    """Hand over `count` predictions in random-sized chunks, from a worker thread."""
    rng = random.Random(seed)
    rows = _rows(seed * 10_000, count)
    while rows:
        size = rng.randint(1, 30)
        chunk, rows = rows[:size], rows[size:]
        writer.enqueue_json(chunk)


async def _from_threads(writer: ProcessWriter, *, threads: int, per_thread: int) -> None:
    await asyncio.gather(
        *(asyncio.to_thread(_produce, writer, n, per_thread) for n in range(threads))
    )


def test_concurrent_producers_lose_nothing(tmp_path: Path) -> None:
    url = _ready(tmp_path)
    # a small max_queue forces the child's overflow-to-spool path under contention too
    config = _config(url, tmp_path / "spool.jsonl", max_queue=200)

    async def main() -> Any:
        writer = await ProcessWriter(config).start()
        await _from_threads(writer, threads=8, per_thread=300)
        assert await asyncio.to_thread(writer.flush, 20.0)
        assert await _until(lambda: writer.state.spooled_records == 0)
        state = writer.state
        await writer.aclose()
        return state

    state = asyncio.run(main())
    stored = _stored(url)
    assert len(stored) == len(set(stored)) == 2_400
    assert state.dropped_records == 0 and state.rejected_records == 0


def test_concurrent_producers_during_outage(tmp_path: Path) -> None:
    url, db_dir = _not_yet(tmp_path)

    async def main() -> None:
        writer = await ProcessWriter(_config(url, tmp_path / "spool.jsonl")).start()
        recover = threading.Timer(0.15, db_dir.mkdir)  # the database returns mid-stream
        recover.start()
        await _from_threads(writer, threads=6, per_thread=200)
        recover.join()
        assert await asyncio.to_thread(writer.flush, 10.0)
        ok = await _until(lambda: writer.state.spooled_records == 0 and not writer.state.degraded)
        assert ok, writer.state
        await writer.aclose()

    asyncio.run(main())
    stored = _stored(url)
    assert len(stored) == len(set(stored)) == 1_200


def test_postgres_connection_cut_and_restored(tmp_path: Path) -> None:
    """A live Postgres behind a proxy: up, cut (pooled connections die), back; nothing lost."""
    with postgres_schema("churnops_outage") as url:
        upgrade_schema(url)
        real = make_url(url)
        port = free_port()
        proxy = TcpProxy(port, (real.host or "127.0.0.1", real.port or 5432))
        proxy.start()
        via_proxy = real.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        config = _config(via_proxy, tmp_path / "spool.jsonl")

        async def main() -> None:
            writer = await ProcessWriter(config).start()
            writer.enqueue_json(_rows(0, 100))
            assert await asyncio.to_thread(writer.flush, 10.0)
            assert len(_stored(url)) == 100 and not writer.state.degraded

            proxy.stop()  # database gone
            writer.enqueue_json(_rows(100, 200))
            assert await asyncio.to_thread(writer.flush, 15.0)
            state = writer.state
            assert state.degraded and state.spooled_records == 200
            assert state.write_errors >= 1  # a real write failed mid-service

            proxy.start()  # database back
            assert await _until(lambda: writer.state.spooled_records == 0)
            assert await _until(lambda: not writer.state.degraded)
            await writer.aclose()

        try:
            asyncio.run(main())
        finally:
            proxy.stop()
        assert len(_stored(url)) == 300
