"""ProcessWriter: the API's prediction writes, done by a child process that drives a BatchWriter.

Why a process: a writer thread shares the GIL with the event loop. Under load the loop never
idles, so the thread got the GIL only when the interpreter forced a switch (every 5 ms): a 500-row
batch took seconds, the queue grew without bound, and each time the thread did get the GIL a
request waited for it (p99 10-20 ms). Here the event loop's whole share of a write is one orjson
line per prediction and one pipe write per loop iteration; batching, retries, the spool and its
replay all happen in the child, in `BatchWriter`.

Protocol (JSON lines). Parent -> child on stdin: first the `WriterConfig` (so the database
password never shows on the command line), then a prediction in the spool-line shape
(`PredictionRecord.to_json_dict()`), or `{"op": "flush" | "spool_feedback", "seq": n, ...}`.
Child -> parent on stdout: `{"op": "state", ...}` (writer state and counters, every 100 ms and
after each request) and `{"op": "done", "seq": n, "ok": bool, "error": str | null}`.

Nothing is lost:
- the parent keeps every line it sent until the child reports it handled (written to the
  database, spooled or set aside); if the child dies, a new one is started and those lines are sent
  again (inserts are idempotent, so a line stored twice is stored once);
- when no child can run, the parent appends what it holds to the spool file itself;
- on shutdown the parent closes the child's stdin; the child writes (or spools) everything and
  exits. SIGINT/SIGTERM are ignored in the child: the API process decides when it stops, and a
  parent killed outright still closes the pipe, which the child treats the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import gc
import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from churnops.errors import StoreError
from churnops.logformat import configure_process_logging
from churnops.store.records import FeedbackRecord, PredictionRecord
from churnops.store.spool import SpoolFullError, append_raw
from churnops.store.writer import DEFAULT_SPOOL_MAX_BYTES, WriterState

logger = logging.getLogger(__name__)

STATE_EVERY_SECONDS = 0.1
WRITER_NICENESS = 10
PIPE_BYTES = 1 << 20
COLLECT_EVERY_SECONDS = 30.0
RESTART_DELAY_SECONDS = 1.0
MAX_HELD_LINES = 200_000  # with no child running, the parent spools beyond this
WATCH_EVERY_SECONDS = 5.0
STUCK_SECONDS = 60.0  # a child confirming nothing this long, with STUCK_LINES waiting, is hung
STUCK_LINES = 10_000
STARTUP_SECONDS = 120.0
MAX_ARRIVED_LINES = 50_000  # the child stops reading beyond this: the pipe pushes back
# A shadow challenger's score (`enqueue_shadow`): stored beside the answer, best effort (never
# spooled: it is evidence for a comparison, not an answer anyone was given).
SHADOW_PREFIX = b'{"shadow":'
_COUNTERS = (
    "written_records",
    "replayed_records",
    "write_errors",
    "dropped_records",
    "rejected_records",
    "unmatched_feedback",
)


@dataclass(frozen=True)
class WriterConfig:
    """What the child needs to build its PredictionStore and BatchWriter."""

    database_url: str
    spool_path: str
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    batch_size: int = 500
    max_queue: int = 100_000
    flush_interval: float = 0.5
    reconnect_interval: float = 5.0
    connect_timeout: float = 2.0
    # The parent migrated this store already (at its start): the child need not load Alembic
    # (~15 MB) to find that out again. False: the child migrates before its first write.
    schema_ready: bool = False


class ProcessWriter:
    """The API-side handle: hand predictions over (`enqueue_json`), flush, state, close.

    Create and `await start()` on the event loop that serves requests. `enqueue_json` may be
    called from that loop or from worker threads; `flush` and `spool_feedback` block, so they
    must be called from a worker thread.
    """

    def __init__(
        self,
        config: WriterConfig,
        *,
        python: str = sys.executable,
        lock_fd: int | None = None,
        refuse_when_full: bool = False,
    ) -> None:
        self.config = config
        self.python = python
        self.lock_fd = lock_fd  # the spool's lock: the child keeps it held while it lives
        # True: a hand-over the spool might not be able to hold raises SpoolFullError (the API
        # answers 503); False: it is accepted and, if the spool is full, dropped and counted.
        self.refuse_when_full = refuse_when_full
        self._room_lock = threading.Lock()
        self._unconfirmed_bytes = 0  # lines accepted that no child has confirmed handled
        self._spool_seen = 0  # the prediction spool's size, as last reported or written here
        self._refused = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._pending: list[bytes] = []  # lines not yet written to the pipe
        self._send_scheduled = False
        self._held: deque[bytes] = deque()  # lines sent to the current child, not yet handled
        self._sent = 0  # records written to the current child's pipe
        self._child_state: dict[str, Any] = {}
        self._base = dict.fromkeys(_COUNTERS, 0)  # counters of children that have exited
        self._waiters: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._seq = itertools.count(1)
        self._lock = threading.Lock()  # _waiters, _child_state
        self._closing = False
        self._closed = False
        self._child_gone: asyncio.Event | None = None
        self._restarts = 0
        self._last_progress = time.monotonic()
        self._supervisor: asyncio.Task[None] | None = None
        self._dropped_in_parent = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> ProcessWriter:
        """Start the child on the running loop; returns self."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        with contextlib.suppress(OSError):  # a spool left by an earlier run takes room too
            self._spool_seen = Path(self.config.spool_path).stat().st_size
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise())
        return self

    async def _spawn(self) -> None:
        loop = self._loop
        assert loop is not None
        # The configuration (the database URL and its password) goes down the pipe, never on
        # the command line: /proc/PID/cmdline and `ps` show argv to every local user.
        argv = [self.python, "-m", "churnops.store.writer_process"]
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
            pass_fds=() if self.lock_fd is None else (self.lock_fd,),
        )
        try:
            assert proc.stdin is not None and proc.stdout is not None
            _widen_pipe(proc.stdin.fileno())
            os.write(proc.stdin.fileno(), encode_config(self.config))  # fits the empty pipe
            self._proc = proc
            self._child_gone = asyncio.Event()
            self._sent = 0
            self._child_state = {}
            transport, _ = await loop.connect_write_pipe(asyncio.Protocol, proc.stdin)
            await loop.connect_read_pipe(lambda: _ReplyProtocol(self), proc.stdout)
        except BaseException:
            proc.kill()  # never leave a child nobody talks to
            await asyncio.to_thread(proc.wait)
            raise
        self._stdin = transport
        self._last_progress = time.monotonic()
        # Lines a previous child did not confirm go first, then whatever waited meanwhile.
        resend = list(self._held)
        self._held.clear()
        self._write_lines(resend)
        self._send_pending()
        if self._closing:  # aclose() ran while this child was starting: let it finish at once
            transport.close()

    async def _supervise(self) -> None:
        """Restart the child if it dies, or kill it if it stops confirming while lines pile up."""
        while not self._closing:
            gone = self._child_gone
            assert gone is not None
            try:
                await asyncio.wait_for(gone.wait(), WATCH_EVERY_SECONDS)
            except TimeoutError:
                self._kill_if_stuck()
                continue
            if self._closing:
                return
            code = await asyncio.to_thread(self._reap)
            self._restarts += 1
            logger.error(
                "prediction writer process exited (code %s); restarting it, %d unconfirmed "
                "prediction(s) will be sent again",
                code,
                len(self._held),
            )
            await asyncio.sleep(RESTART_DELAY_SECONDS)
            if self._closing:
                return
            try:
                await self._spawn()
            except Exception as exc:  # the next death or timeout tries again
                logger.error("cannot start the prediction writer process: %s", exc)
                self._spool_held()
                self._child_gone = asyncio.Event()
                self._child_gone.set()

    def _kill_if_stuck(self) -> None:
        """A child that confirms nothing for STUCK_SECONDS while lines pile up is hung (a
        database call that never returns): replace it, rather than hold lines without bound."""
        proc = self._proc
        # Until its first report the child is starting (imports, first connection): more time.
        allowed = STUCK_SECONDS if self._child_state else max(STUCK_SECONDS, STARTUP_SECONDS)
        stuck = time.monotonic() - self._last_progress > allowed
        if proc is None or not stuck or len(self._held) + len(self._pending) < STUCK_LINES:
            return
        logger.error(
            "prediction writer process confirmed nothing for %.0fs with %d prediction(s) "
            "waiting; replacing it",
            STUCK_SECONDS,
            len(self._held) + len(self._pending),
        )
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        self._last_progress = time.monotonic()

    def _reap(self) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            return proc.wait(timeout=10)
        return None

    def _on_child_exit(self) -> None:
        """The child's stdout closed: it exited or is exiting."""
        with self._lock:
            state = self._child_state
            for name in _COUNTERS:
                self._base[name] += int(state.get(name, 0))
            self._child_state = {}
        self._stdin = None
        if self._child_gone is not None:
            self._child_gone.set()
        for seq in list(self._waiters):
            self._answer({"op": "done", "seq": seq, "ok": False, "error": "writer process exited"})

    async def aclose(self, timeout: float = 30.0) -> None:
        """Send what is pending, let the child write or spool everything, wait for it to exit."""
        if self._closed:
            return
        self._closing = True
        self._send_pending()
        stdin, proc = self._stdin, self._proc
        if stdin is not None:
            stdin.close()  # EOF: the child drains its queue and exits
        if proc is not None:
            try:
                code = await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)
            except TimeoutError:
                logger.error("prediction writer process did not finish within %ss", timeout)
                proc.kill()
                code = await asyncio.to_thread(proc.wait)
            if code != 0:
                logger.error("prediction writer process exited with code %s", code)
            if self._child_gone is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._child_gone.wait(), 5)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self._spool_held()  # only non-empty if the child could not confirm everything
        self._closed = True

    def _spool_held(self) -> None:
        """Append what the parent holds to the spool as it is (only while no child runs)."""
        lines = list(self._held) + self._pending
        self._held.clear()
        self._pending = []
        self._spool_raw(lines)

    def _spool_raw(self, lines: list[bytes]) -> None:
        shadows = [line for line in lines if line.startswith(SHADOW_PREFIX)]
        if shadows:
            self._release(shadows)
            lines = [line for line in lines if not line.startswith(SHADOW_PREFIX)]
        if not lines:
            return
        try:
            kept = append_raw(self.config.spool_path, lines, max_bytes=self.config.spool_max_bytes)
        except OSError as exc:
            logger.error("cannot write prediction spool %s: %s", self.config.spool_path, exc)
            kept = 0
        self._release(lines)
        with contextlib.suppress(OSError), self._room_lock:
            self._spool_seen = Path(self.config.spool_path).stat().st_size
        self._dropped_in_parent += len(lines) - kept
        logger.warning("spooled %d prediction(s) no writer process could take", kept)

    # -- hand-over ---------------------------------------------------------------------------

    def enqueue_json(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Hand over predictions already in the spool-line shape (validated by the child).

        Raises SpoolFullError (nothing handed over) when `refuse_when_full` and the spool might
        not hold them should the database stay away.
        """
        lines = [orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for row in rows]
        if not lines:
            return
        self._reserve(lines)
        if threading.get_ident() == self._loop_thread:
            self._queue_lines(lines)
            return
        if self._loop is None:
            raise StoreError("ProcessWriter.start() was not called")
        try:
            self._loop.call_soon_threadsafe(self._queue_lines, lines)
        except RuntimeError:  # the loop is gone (shut down): nothing runs a child any more
            self._spool_raw(lines)

    def enqueue_shadow(self, model_name: str, model_version: str, rows: list[Any]) -> None:
        """Hand over a batch of one challenger's shadow scores as ONE line
        (`{"shadow": [name, version], "rows": [[prediction_id, created_at, probability,
        will_churn, risk_level, latency_us], ...]}`): a line per score cost the API process and the
        writer a JSON document each. Never refused: when there is no room the batch is dropped
        (best effort) rather than take an answer's place."""
        if not rows:
            return
        line = orjson.dumps({"shadow": [model_name, model_version], "rows": rows}) + b"\n"
        try:
            self._reserve([line])
        except SpoolFullError:
            return
        if threading.get_ident() == self._loop_thread:
            self._queue_lines([line])
        elif self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._queue_lines, [line])

    def _reserve(self, lines: list[bytes]) -> None:
        """Count `lines` as in flight; refuse them if the spool could not take them all.

        Whatever is in flight may still have to be spooled (the database is away, or behind);
        counting it twice covers the child's re-encoding of a line and a report that lags.
        """
        size = sum(map(len, lines))
        with self._room_lock:
            needed = self._spool_seen + 2 * (self._unconfirmed_bytes + size)
            if self.refuse_when_full and needed > self.config.spool_max_bytes:
                self._refused += len(lines)
                raise SpoolFullError(
                    f"prediction spool {self.config.spool_path} is full (database unreachable "
                    "or behind): prediction not served, retry later"
                )
            self._unconfirmed_bytes += size

    def _release(self, lines: Iterable[bytes]) -> None:
        size = sum(map(len, lines))
        with self._room_lock:
            self._unconfirmed_bytes = max(0, self._unconfirmed_bytes - size)

    def _queue_lines(self, lines: list[bytes]) -> None:
        if self._closed:
            self._pending += lines
            self._spool_held()
            return
        self._pending += lines
        if not self._send_scheduled:
            # After this loop iteration: every request handled in it goes out in one write.
            self._send_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._send_pending)

    def _send_pending(self) -> None:
        self._send_scheduled = False
        if self._stdin is None:
            no_child = self._proc is None or self._proc.poll() is not None
            if no_child and len(self._held) + len(self._pending) > MAX_HELD_LINES:
                self._spool_held()  # no child for a while: keep memory bounded
            return
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        self._write_lines(lines)

    def _write_lines(self, lines: list[bytes]) -> None:
        if not lines:
            return
        assert self._stdin is not None
        self._stdin.write(b"".join(lines))
        self._held.extend(lines)
        self._sent += len(lines)

    def _confirmed(self, handled: int) -> None:
        """The child has handled its first `handled` records: stop holding them."""
        done = max(0, min(len(self._held) - (self._sent - handled), len(self._held)))
        if done or not self._held:
            self._last_progress = time.monotonic()
        self._release([self._held.popleft() for _ in range(done)])

    # -- requests that wait for the child ----------------------------------------------------

    def _request(self, message: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError("this call blocks; run it in a worker thread")
        if self._loop is None:
            raise StoreError("ProcessWriter.start() was not called")
        seq = next(self._seq)
        event, result = threading.Event(), list[dict[str, Any]]()
        self._waiters[seq] = (event, result)
        line = orjson.dumps({**message, "seq": seq}) + b"\n"
        self._loop.call_soon_threadsafe(self._send_control, seq, line)
        try:
            if not event.wait(timeout):
                return {"ok": False, "error": "timed out"}
            return result[0] if result else {"ok": False, "error": "no answer"}
        finally:
            self._waiters.pop(seq, None)

    def _send_control(self, seq: int, line: bytes) -> None:
        self._send_pending()  # everything enqueued before the request goes first
        if self._stdin is None:
            self._answer({"op": "done", "seq": seq, "ok": False, "error": "writer not running"})
            return
        self._stdin.write(line)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything enqueued so far is written (or spooled); False on timeout."""
        wait = None if timeout is None else timeout + 2.0
        answer = self._request({"op": "flush", "timeout": timeout}, wait)
        return bool(answer.get("ok"))

    def spool_feedback(self, records: list[FeedbackRecord]) -> int:
        """Keep labels for replay (database down); raises StoreError if they cannot be kept."""
        answer = self._request(
            {"op": "spool_feedback", "records": [r.to_json_dict() for r in records]}, 30.0
        )
        if not answer.get("ok"):
            raise StoreError(f"cannot spool feedback: {answer.get('error')}")
        return len(records)

    def _answer(self, message: dict[str, Any]) -> None:
        waiter = self._waiters.get(int(message.get("seq", 0)))
        if waiter is not None:
            waiter[1].append(message)
            waiter[0].set()

    def _on_state(self, message: dict[str, Any]) -> None:
        with self._lock:
            previous, self._child_state = self._child_state, message
        with self._room_lock:
            self._spool_seen = int(message.get("prediction_spool_bytes", self._spool_seen))
        work = ("written_records", "replayed_records", "spooled_records", "rejected_records")
        if not previous or any(previous.get(key) != message.get(key) for key in work):
            self._last_progress = time.monotonic()  # busy (a long replay, say), not hung
        self._confirmed(int(message.get("handled", 0)))

    # -- state ---------------------------------------------------------------------------------

    @property
    def state(self) -> WriterState:
        """Queue, spool and counters across the parent, the pipe and the child."""
        with self._lock:
            child = dict(self._child_state)
            base = dict(self._base)
        alive = self._proc is not None and self._proc.poll() is None and self._stdin is not None
        reasons = []
        if not alive and not self._closed:
            reasons.append("prediction writer process not running (restarting)")
        if child.get("reason"):
            reasons.append(str(child["reason"]))
        in_pipe = max(0, self._sent - int(child.get("received", 0)))
        return WriterState(
            running=alive,
            degraded=bool(reasons) or bool(child.get("degraded")),
            reason="; ".join(reasons) or None,
            queue_depth=len(self._pending) + in_pipe + int(child.get("queue_depth", 0)),
            spooled_records=int(child.get("spooled_records", 0)),
            spooled_feedback=int(child.get("spooled_feedback", 0)),
            spool_bytes=int(child.get("spool_bytes", 0)),
            dropped_records=base["dropped_records"]
            + int(child.get("dropped_records", 0))
            + self._dropped_in_parent,
            refused_records=self._refused,
            **{
                name: base[name] + int(child.get(name, 0))
                for name in _COUNTERS
                if name != "dropped_records"
            },
        )

    @property
    def degraded(self) -> bool:
        return self.state.degraded

    @property
    def pid(self) -> int | None:
        """The child's process id (for operators and tests)."""
        return self._proc.pid if self._proc is not None else None


class _ReplyProtocol(asyncio.Protocol):
    """Reads the child's JSON lines on the event loop."""

    def __init__(self, owner: ProcessWriter) -> None:
        self.owner = owner
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                logger.warning("prediction writer process: %s", line[:200])
                continue
            if message.get("op") == "state":
                self.owner._on_state(message)
            elif message.get("op") == "done":
                self.owner._answer(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._on_child_exit()


def _widen_pipe(fd: int) -> None:
    """Raise the pipe's capacity from 64 KiB to 1 MiB where Linux allows it.

    The loop writes to the pipe once per iteration, and an iteration of a busy server can take
    several milliseconds: at 64 KiB a time the pipe, not the writer, capped how many predictions
    a second reached the store (~7,000 of 900 bytes).
    """
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, setpipe, PIPE_BYTES)


def encode_config(config: WriterConfig) -> bytes:
    """The first line the child reads on its stdin."""
    return orjson.dumps(dataclasses.asdict(config)) + b"\n"


def read_config(fd: int = 0) -> WriterConfig:
    """The configuration line at the start of `fd`, read a byte at a time so that nothing after
    it (the first predictions) is taken from the pipe."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            raise StoreError("writer process: stdin closed before the configuration line")
        line += byte
    return WriterConfig(**orjson.loads(line))


# -- the child ---------------------------------------------------------------------------------


class _Child:
    """The writer process: one thread parses and writes, one reads stdin, one reports state.

    Parsing and writing share a thread on purpose: in a process of its own the writer's Python
    work would again compete for a GIL with whatever feeds it. The reader thread spends its time
    in `os.read`, the reporter in a timed wait. When the database falls behind and the writer's
    queue is full, further lines go to the spool as they are, unparsed: the cheapest way to stay
    within bounded memory without losing them (they are replayed when the database catches up).
    """

    def __init__(self, config: WriterConfig) -> None:
        from churnops.store.store import PredictionStore
        from churnops.store.writer import BatchWriter

        self.config = config
        self.store = PredictionStore(config.database_url, connect_timeout=config.connect_timeout)
        if config.schema_ready:
            self.store.assume_schema_ready()
        self.writer = BatchWriter(
            self.store,
            spool_path=config.spool_path,
            spool_max_bytes=config.spool_max_bytes,
            batch_size=config.batch_size,
            max_queue=config.max_queue,
            reconnect_interval=config.reconnect_interval,
        )
        self.arrived: deque[list[bytes]] = deque()  # chunks of lines from the reader thread
        self.arrival = threading.Condition()
        self.arrived_lines = 0
        self.urgent = False  # a request line arrived: its sender waits for the answer
        # Lines that wake the writer without a request: a batch, and never more than the reader
        # holds before it stops reading (else both would wait for the flush interval).
        self.wake_lines = min(config.batch_size, MAX_ARRIVED_LINES)
        self.eof = False
        self.received = 0  # prediction lines taken so far, in pipe order
        self.queued = 0  # of those, records put in the writer's queue
        # (first queue index, first pipe index, length) of each run of queued records, to turn
        # "the writer handled its first n queued records" into a prefix of the pipe's lines.
        self.runs: deque[tuple[int, int, int]] = deque()
        self.prefix = 0  # the first `prefix` lines received are out of memory
        self.unreadable = 0
        self.shadows: list[tuple[Any, ...]] = []
        self.shadows_dropped = 0
        self.out_lock = threading.Lock()
        self.stopped = threading.Event()

    def reply(self, message: dict[str, Any]) -> None:
        line = orjson.dumps(message) + b"\n"
        with self.out_lock:
            os.write(1, line)

    def report(self) -> None:
        # The prefix first: the spool size read after it includes every line it confirms (the
        # parent's room estimate must never miss a line that is neither held nor counted).
        handled, received = self.prefix, self.received
        state = self.writer.state
        self.reply(
            {
                "op": "state",
                **dataclasses.asdict(state),
                "received": received,
                "handled": handled,
                "rejected_records": state.rejected_records + self.unreadable,
                "prediction_spool_bytes": self.writer.spool.size_bytes,
            }
        )

    def report_loop(self) -> None:
        while not self.stopped.wait(STATE_EVERY_SECONDS):
            with contextlib.suppress(OSError):
                self.report()

    def read_loop(self) -> None:
        rest = b""
        while True:
            chunk = os.read(0, 1 << 20)
            if not chunk:
                break
            data = rest + chunk
            *lines, rest = data.split(b"\n")
            with self.arrival:
                self.arrived.append(lines)
                self.arrived_lines += len(lines)
                # Wake the writer for a request, or for a batch; predictions otherwise wait for
                # the flush interval. Waking it for every chunk (one per event-loop turn of the
                # API) cost more than parsing and storing the lines. A feature called "op" only
                # wakes it early.
                if b'{"op"' in data:
                    self.urgent = True
                if self.urgent or self.arrived_lines >= self.wake_lines:
                    self.arrival.notify_all()
                # Behind by this much: stop reading, so the pipe (and the API) push back instead
                # of this process growing until the OOM killer loses everything it holds.
                while self.arrived_lines > MAX_ARRIVED_LINES:
                    self.arrival.wait()
        with self.arrival:
            self.eof = True
            self.arrival.notify()

    def answer(self, message: dict[str, Any]) -> None:
        ok, error = True, None
        try:
            if message["op"] == "flush":
                self.writer.flush()
                self.write_shadows()
                self.update_prefix()
            elif message["op"] == "spool_feedback":
                records = [FeedbackRecord.from_json_dict(r) for r in message["records"]]
                self.writer.spool_feedback(records)  # after the predictions queued before them
                self.update_prefix()
            else:
                ok, error = False, f"unknown op {message['op']!r}"
        except Exception as exc:  # reported to the waiting request, not fatal to the process
            ok, error = False, str(exc)
        with contextlib.suppress(OSError):
            self.report()  # the state the request sees next reflects what just happened
            self.reply({"op": "done", "seq": message.get("seq"), "ok": ok, "error": error})

    def take(self, lines: list[bytes]) -> None:
        """Queue (or set aside) the predictions in `lines`; requests are answered in order."""
        run: list[bytes] = []
        for line in lines:
            if line.startswith(b'{"op"'):
                self.store_run(run)
                run = []
                try:
                    self.answer(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    logger.error("unreadable request line skipped: %s", exc)
            elif line.startswith(SHADOW_PREFIX):
                self.store_run(run)
                run = []
                self.take_shadow(line)
            elif line.strip():
                run.append(line)
        self.store_run(run)

    def take_shadow(self, line: bytes) -> None:
        """Keep a shadow score for the next write; the line counts as handled (best effort)."""
        self.received += 1
        try:
            batch = orjson.loads(line)
            name, version = batch["shadow"]
            self.shadows += [
                (pid, created_at, name, version, probability, will_churn, level, latency_us)
                for pid, created_at, probability, will_churn, level, latency_us in batch["rows"]
            ]  # SHADOW_COLUMNS order; all or none of a line
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            logger.error("unreadable shadow line skipped: %s", exc)
        if not self.runs:
            self.prefix = self.received

    def write_shadows(self) -> None:
        """Store the shadow scores taken so far; on any failure they are dropped and counted."""
        if not self.shadows:
            return
        from churnops.store.deployment import write_shadow_rows

        rows, self.shadows = self.shadows, []
        try:
            write_shadow_rows(self.store, rows)
        except (StoreError, KeyError, TypeError, ValueError) as exc:
            self.shadows_dropped += len(rows)
            logger.warning("dropped %d shadow score(s): %s", len(rows), exc)

    def store_run(self, lines: list[bytes]) -> None:
        room = max(0, self.writer.max_queue - self.writer.queued)
        records: list[PredictionRecord] = []
        for line in lines[:room]:
            try:
                records.append(PredictionRecord.from_json_dict(orjson.loads(line)))
            except (ValueError, TypeError, KeyError) as exc:
                logger.error("unreadable prediction line skipped: %s", exc)
                self.unreadable += 1
                self.queue(records)
                self.received += 1
                records = []
        self.queue(records)
        if len(lines) > room:  # the database is behind and the queue is full
            self.writer.spool_lines([line + b"\n" for line in lines[room:]])
            self.received += len(lines) - room
        self.update_prefix()

    def queue(self, records: list[PredictionRecord]) -> None:
        if not records:
            return
        self.runs.append((self.queued, self.received, len(records)))
        self.writer.enqueue(records)
        self.queued += len(records)
        self.received += len(records)

    def update_prefix(self) -> None:
        """Lines before the first record still in the writer's memory are all out of memory."""
        handled = self.writer.durable_prefix
        while self.runs and self.runs[0][0] + self.runs[0][2] <= handled:
            self.runs.popleft()
        if not self.runs:
            self.prefix = self.received
            return
        first_queued, first_line, _ = self.runs[0]
        self.prefix = first_line + max(0, handled - first_queued)

    def next_lines(self, wait: float) -> list[bytes] | None:
        """What arrived (waiting up to `wait` s for a request, a batch or the end of input); None
        once stdin is closed."""
        with self.arrival:
            due = self.urgent or self.eof or self.arrived_lines >= self.wake_lines
            if not due and wait > 0:
                self.arrival.wait(wait)
            lines = [line for chunk in self.arrived for line in chunk]
            self.arrived.clear()
            self.arrived_lines = 0
            self.urgent = False
            self.arrival.notify_all()
            if not lines and self.eof:
                return None
            return lines

    def run(self) -> int:
        writer, config = self.writer, self.config
        # The queue can hold 100,000 records of a few dicts each, and a full collection walks
        # them all: with the collector on, parsing under a backlog took 25x longer. The records
        # hold no cycles; what else might (SQLAlchemy internals) is collected when the queue is
        # short, at most once every COLLECT_EVERY_SECONDS.
        gc.disable()
        collected = time.monotonic()
        writer.check_store()
        threading.Thread(target=self.report_loop, daemon=True).start()
        threading.Thread(target=self.read_loop, daemon=True).start()
        last_write = time.monotonic()
        while True:
            busy = writer.queued >= config.batch_size
            since = time.monotonic() - last_write
            lines = self.next_lines(0.0 if busy else config.flush_interval - since)
            if lines is None:
                break
            self.take(lines)
            now = time.monotonic()
            if writer.queued >= config.batch_size or now - last_write >= config.flush_interval:
                writer.write_pending(max_batches=1)  # also reconnects and replays when due
                if not writer.state.degraded:
                    self.write_shadows()
                else:
                    self.shadows_dropped += len(self.shadows)
                    self.shadows = []
                self.update_prefix()
                last_write = now
            if writer.queued < config.batch_size and now - collected >= COLLECT_EVERY_SECONDS:
                gc.collect()
                collected = now
        writer.close()  # stdin closed: write (or spool) everything, then exit
        self.write_shadows()
        self.update_prefix()
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.report()
        self.store.close()
        return 0


def main() -> int:
    """Entry point of the child: `python -m churnops.store.writer_process`, its configuration
    as the first JSON line on stdin (`encode_config`)."""
    # The API process decides when this one stops (by closing stdin), also on Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Background work: when the cores are busy, the API's requests go first. Falling behind is
    # what the queue and the spool are for.
    with contextlib.suppress(OSError):
        os.nice(WRITER_NICENESS)
    # Recovery and replays are news: churnops' events at INFO (JSON lines under --log-format json).
    configure_process_logging("%(asctime)s %(levelname)s [store writer] %(message)s")
    config = read_config()
    started = time.monotonic()
    code = _Child(config).run()
    logger.debug("writer process done after %.1fs", time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())
