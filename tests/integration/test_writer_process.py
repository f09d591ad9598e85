"""ProcessWriter: predictions handed over on the event loop are stored by a child process, and
none is lost when the child is killed, cannot start again, or falls behind the database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from orjson import dumps as orjson_dumps
from orjson import loads as orjson_loads

from churnops.store import PredictionStore
from churnops.store.writer_process import (
    MAX_ARRIVED_LINES,
    ProcessWriter,
    WriterConfig,
    encode_config,
)
from tests.support.stores import command_lines, descendants, postgres_schema
from tests.unit.store.contract import make_prediction

pytestmark = pytest.mark.integration


def _config(tmp_path: Path, **overrides: Any) -> WriterConfig:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    PredictionStore(url).create()
    values: dict[str, Any] = {
        "database_url": url,
        "spool_path": str(tmp_path / "spool.jsonl"),
        "batch_size": 100,
        "flush_interval": 0.05,
        "reconnect_interval": 0.2,
    }
    return WriterConfig(**(values | overrides))


def _rows(start: int, count: int) -> list[dict[str, Any]]:
    return [make_prediction(i).to_json_dict() for i in range(start, start + count)]


async def _until(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def _stored(config: WriterConfig) -> list[str]:
    store = PredictionStore(config.database_url)
    try:
        return list(store.read_predictions()["prediction_id"])
    finally:
        store.close()


def test_loop_and_thread_hand_overs_are_all_stored(tmp_path: Path) -> None:
    config = _config(tmp_path)

    async def main() -> tuple[bool, Any, int | None]:
        writer = await ProcessWriter(config).start()
        writer.enqueue_json(_rows(0, 1_500))  # from the event loop
        await asyncio.to_thread(writer.enqueue_json, _rows(1_500, 500))  # from a worker thread
        writer.enqueue_json(_rows(2_000, 1))
        flushed = await asyncio.to_thread(writer.flush, 20.0)
        state = writer.state
        with pytest.raises(RuntimeError, match="worker thread"):
            writer.flush(1.0)  # blocking on the loop would deadlock it: refused
        proc = writer._proc
        await writer.aclose()
        return flushed, state, None if proc is None else proc.poll()

    flushed, state, exit_code = asyncio.run(main())
    assert flushed
    assert state.written_records == 2_001 and state.queue_depth == 0 and not state.degraded
    assert exit_code == 0  # the child finished on its own when its stdin closed
    stored = _stored(config)
    assert len(stored) == len(set(stored)) == 2_001


def test_a_killed_child_is_replaced_and_nothing_is_lost(tmp_path: Path) -> None:
    config = _config(tmp_path)
    rows = _rows(0, 6_000)

    async def main() -> Any:
        writer = await ProcessWriter(config).start()
        first = writer.pid
        writer.enqueue_json(rows[:4_000])
        await asyncio.sleep(0)  # the lines go out on this loop iteration
        assert first is not None
        os.kill(first, signal.SIGKILL)  # mid-stream: most of the 4,000 are still in memory
        writer.enqueue_json(rows[4_000:])  # handed over while no child runs
        assert await _until(lambda: writer.pid not in (None, first) and writer.state.running)
        assert await asyncio.to_thread(writer.flush, 30.0)
        state = writer.state
        await writer.aclose()
        return state

    state = asyncio.run(main())
    assert state.written_records >= 6_000  # lines the dead child had written are sent again
    stored = _stored(config)
    assert len(stored) == len(set(stored)) and set(stored) == {r["prediction_id"] for r in rows}


def test_when_no_child_can_start_the_parent_spools_and_the_next_writer_replays(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)

    async def broken() -> None:
        writer = await ProcessWriter(config).start()
        writer.python = str(tmp_path / "no-such-python")  # every restart fails from now on
        pid = writer.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the child stops confirming anything ...
        try:
            writer.enqueue_json(_rows(0, 300))
            await asyncio.sleep(0.3)
        finally:
            os.kill(pid, signal.SIGKILL)  # ... and dies with the lines unconfirmed
        assert await _until(lambda: writer._proc is not None and writer._proc.poll() is not None)
        await asyncio.sleep(1.5)  # the restart is attempted and fails
        writer.enqueue_json(_rows(300, 200))  # arrives while no child can run
        await writer.aclose()

    asyncio.run(broken())
    assert _stored(config) == []
    assert (tmp_path / "spool.jsonl").read_bytes().count(b"\n") == 500

    async def successor() -> None:
        writer = await ProcessWriter(config).start()
        assert await _until(lambda: len(_stored(config)) == 500)
        await writer.aclose()

    asyncio.run(successor())
    assert not (tmp_path / "spool.jsonl").exists()


def test_a_backlog_beyond_the_queue_goes_to_the_spool_unparsed_then_to_the_store(
    tmp_path: Path,
) -> None:
    """The database stalls (a lock held elsewhere): memory stays bounded, nothing is lost."""
    config = _config(tmp_path, max_queue=300, batch_size=100)
    database = str(tmp_path / "predictions.db")
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        conn = sqlite3.connect(database, timeout=30)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(60)
        conn.rollback()
        conn.close()

    async def main() -> tuple[Any, Any]:
        writer = await ProcessWriter(config).start()
        holder = threading.Thread(target=hold_lock)
        holder.start()
        assert locked.wait(10)
        for start in range(0, 3_000, 500):
            writer.enqueue_json(_rows(start, 500))
            await asyncio.sleep(0.05)
        # At most the queue (300) and a batch in hand stay in memory; the rest is set aside.
        assert await _until(lambda: writer.state.spooled_records >= 3_000 - 300 - 100)
        during = writer.state
        release.set()
        await asyncio.to_thread(holder.join)
        assert await _until(lambda: writer.state.written_records >= 3_000, timeout=60)
        after = writer.state
        await writer.aclose()
        return during, after

    during, after = asyncio.run(main())
    assert during.written_records == 0  # the database really was stalled meanwhile
    assert after.replayed_records > 0 and after.spooled_records == 0
    assert after.dropped_records == 0 and after.rejected_records == 0
    stored = _stored(config)
    assert len(stored) == len(set(stored)) == 3_000


def test_a_hung_child_is_replaced_and_nothing_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child that confirms nothing (a database call that never returns) while lines pile up."""
    from churnops.store import writer_process

    monkeypatch.setattr(writer_process, "STUCK_SECONDS", 1.0)
    monkeypatch.setattr(writer_process, "WATCH_EVERY_SECONDS", 0.2)
    monkeypatch.setattr(writer_process, "STUCK_LINES", 100)
    config = _config(tmp_path)
    rows = _rows(0, 600)

    async def main() -> int:
        writer = await ProcessWriter(config).start()
        hung = writer.pid
        assert hung is not None
        assert await _until(lambda: writer.state.written_records == 0 and bool(writer._child_state))
        os.kill(hung, signal.SIGSTOP)  # up and reporting, then frozen
        try:
            writer.enqueue_json(rows)
            assert await _until(lambda: writer.pid != hung and writer.state.running, timeout=20)
            assert await asyncio.to_thread(writer.flush, 30.0)
            await writer.aclose()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(hung, signal.SIGKILL)  # never leave a stopped process behind
        return writer._restarts

    assert asyncio.run(main()) >= 1
    assert set(_stored(config)) == {r["prediction_id"] for r in rows}


def test_hand_over_after_shutdown_goes_to_the_spool(tmp_path: Path) -> None:
    """A worker thread finishing a batch after the service stopped: its rows are not lost."""
    config = _config(tmp_path)

    async def main() -> ProcessWriter:
        writer = await ProcessWriter(config).start()
        await writer.aclose()
        return writer

    writer = asyncio.run(main())  # the loop is closed now
    late = _rows(0, 3)
    writer.enqueue_json(late)
    spooled = (tmp_path / "spool.jsonl").read_bytes().splitlines()
    assert {orjson_loads(line)["prediction_id"] for line in spooled} == {
        r["prediction_id"] for r in late
    }


class _RawChild:
    """The writer child on plain pipes, as the API drives it, with its answers collected."""

    def __init__(self, config: WriterConfig) -> None:
        argv = [sys.executable, "-m", "churnops.store.writer_process"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.send(encode_config(config))
        self.answered: dict[int, float] = {}
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            message = orjson_loads(line)
            if message.get("op") == "done":
                with self.cond:
                    self.answered[message["seq"]] = time.monotonic()
                    self.cond.notify_all()

    def send(self, *parts: bytes, pause: float = 0.0) -> float:
        """Write `parts` (a pause between them); when the writing began."""
        assert self.proc.stdin is not None
        began = time.monotonic()
        for part in parts:
            self.proc.stdin.write(part)  # blocks while the child is not reading
            time.sleep(pause)
        return began

    def seconds_to_answer(self, seq: int, since: float, timeout: float = 60.0) -> float:
        with self.cond:
            self.cond.wait_for(lambda: seq in self.answered, timeout)
        return self.answered.get(seq, float("inf")) - since


def _lines(start: int, count: int) -> bytes:
    return b"".join(orjson_dumps(row) + b"\n" for row in _rows(start, count))


def _flush(seq: int) -> bytes:
    return orjson_dumps({"op": "flush", "timeout": 30, "seq": seq}) + b"\n"


@pytest.mark.serial  # asserts a time: run alone, not beside another test
def test_requests_are_answered_at_once_whatever_the_flush_interval(tmp_path: Path) -> None:
    """Predictions wait for a batch or the flush interval (30 s here), a request never does:
    not when its line arrives in two pieces, nor behind more lines than the child reads ahead
    (the batch size is set larger than that)."""
    config = _config(tmp_path, flush_interval=30.0, batch_size=MAX_ARRIVED_LINES * 2)
    child = _RawChild(config)
    try:
        assert child.seconds_to_answer(1, child.send(_flush(1)), timeout=120) < 60  # started
        request = _flush(2)
        since = child.send(_lines(0, 3) + request[:9], request[9:], pause=0.1)
        assert child.seconds_to_answer(2, since) < 5
        backlog = MAX_ARRIVED_LINES + 5_000
        since = child.send(_lines(3, backlog) + _flush(3))
        assert child.seconds_to_answer(3, since) < 15
        assert child.proc.stdin is not None
        child.proc.stdin.close()  # the API stops: everything is written, promptly
        assert child.proc.wait(timeout=20) == 0
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()
    with sqlite3.connect(tmp_path / "predictions.db") as db:
        assert db.execute("select count(*) from predictions").fetchone()[0] == 3 + backlog


def test_the_database_password_is_not_on_any_command_line(tmp_path: Path) -> None:
    """Every local user can read /proc/PID/cmdline: the URL goes to the child on its stdin.

    Local Postgres trusts local connections, so the password is ignored but still in the URL.
    """
    secret = "S3cret-" + os.urandom(6).hex()
    with postgres_schema("churnops_secret") as url:
        with_password = url.replace("root@", f"root:{secret}@")
        assert secret in with_password
        config = _config(tmp_path, database_url=with_password)

        async def main() -> tuple[list[bytes], Any]:
            writer = await ProcessWriter(config).start()
            writer.enqueue_json(_rows(0, 20))
            assert await asyncio.to_thread(writer.flush, 30.0)
            lines = command_lines(descendants(os.getpid()))
            state = writer.state
            await writer.aclose()
            return lines, state

        lines, state = asyncio.run(main())
        assert any(b"churnops.store.writer_process" in line for line in lines), lines
        assert not [line for line in lines if secret.encode() in line]
        assert state.written_records == 20 and not state.degraded  # it did get the URL
        assert len(_stored(config)) == 20
