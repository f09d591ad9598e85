"""AsyncWriter: the API hands predictions over without waiting; a thread stores them in batches.

Nothing is lost on purpose:
- `close()` (lifespan shutdown, SIGTERM via uvicorn, or atexit) writes everything still queued;
- while the database is unreachable, batches go to a local append-only JSONL spool, the writer
  retries the database every `reconnect_interval` seconds and replays the spool when it is back;
  a spool left by a previous process is replayed too;
- a record the database refuses for a reason other than an outage (a data error) is written to
  `<spool>.rejected.jsonl` and counted, instead of blocking the rest forever.

Spool full: new records are dropped, counted in `dropped_records`, logged as errors and the writer
reports `degraded`. We chose dropping over blocking because blocking would turn a database outage
into an API outage; the spool bound (default 256 MiB, ~300k predictions) is the budget for how long
an outage the service rides out without loss.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import (
    TimeoutError as PoolTimeoutError,
)

from churnops.errors import StoreError
from churnops.store.records import FeedbackRecord, PredictionRecord
from churnops.store.spool import Spool
from churnops.store.store import PredictionStore

logger = logging.getLogger(__name__)

DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
_DROP_LOG_EVERY_SECONDS = 30.0


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means "the database is unreachable now" rather than "this data is bad"."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current, OperationalError | InterfaceError | DisconnectionError | PoolTimeoutError
        ):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, OSError | ConnectionError):
            return True
        current = current.__cause__
    return False


@dataclass(frozen=True, slots=True)
class WriterState:
    """A snapshot of the writer for `/ready` and Prometheus."""

    running: bool
    degraded: bool
    reason: str | None
    queue_depth: int
    spooled_records: int
    spooled_feedback: int
    spool_bytes: int
    written_records: int
    replayed_records: int
    write_errors: int
    dropped_records: int
    rejected_records: int
    unmatched_feedback: int = 0  # labels naming a prediction_id the store does not hold
    refused_records: int = 0  # predictions refused (503) because the spool could not take them


class AsyncWriter:
    """Batches predictions to a PredictionStore from a background thread; see module docstring.

    Typical use in an app lifespan::

        writer = AsyncWriter(store, spool_path=".churnops/spool.jsonl").start()
        writer.enqueue(record)          # from any thread, returns at once
        writer.state                    # for /ready and /metrics
        writer.close()                  # on shutdown: flushes everything
    """

    def __init__(
        self,
        store: PredictionStore,
        *,
        spool_path: str | Path,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_queue: int = 100_000,
        reconnect_interval: float = 5.0,
        ensure_schema: bool = True,
    ) -> None:
        if batch_size < 1 or max_queue < 1:
            raise ValueError("batch_size and max_queue must be at least 1")
        if flush_interval <= 0 or reconnect_interval <= 0:
            raise ValueError("flush_interval and reconnect_interval must be positive")
        self.store = store
        self.spool = Spool(spool_path, max_bytes=spool_max_bytes)
        # Labels sent during an outage wait beside the predictions and are replayed after them,
        # so a label can attach to a prediction that was itself spooled.
        self.feedback_spool = Spool(
            Path(str(spool_path) + ".feedback.jsonl"),
            max_bytes=spool_max_bytes,
            record_type=FeedbackRecord,
        )
        self.rejected_path = Path(str(spool_path) + ".rejected.jsonl")
        self.unmatched_path = Path(str(spool_path) + ".feedback.unmatched.jsonl")
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.reconnect_interval = reconnect_interval
        self.ensure_schema = ensure_schema

        self._cond = threading.Condition()
        self._queue: deque[PredictionRecord] = deque()
        self._enqueued = 0  # records accepted into the queue
        self._handled = 0  # of those: written, spooled, rejected or dropped
        self._flush_requested = False
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._io_lock = threading.RLock()  # one batch at a time reaches the database/spool
        self._stats_lock = threading.Lock()  # counters also touched by enqueueing threads

        self._db_ok = True  # optimistic until a write fails
        self._reason: str | None = None
        self._next_reconnect = 0.0
        self._spool_full = False
        self._last_drop_log = 0.0
        self._written = 0
        self._replayed = 0
        self._write_errors = 0
        self._dropped = 0
        self._rejected = 0
        self._unmatched = 0

    # -- public API ----------------------------------------------------------------------

    def start(self) -> Self:
        """Start the background thread (idempotent) and make sure close() runs at exit."""
        with self._cond:
            if self._closed:
                raise StoreError("this AsyncWriter was closed; create a new one")
            if self._thread is not None:
                return self
            self._thread = threading.Thread(
                target=self._run, name="churnops-prediction-writer", daemon=True
            )
            self._thread.start()
        atexit.register(self.close)
        return self

    def enqueue(self, records: PredictionRecord | Iterable[PredictionRecord]) -> None:
        """Hand over one or more predictions; never waits for the database.

        Beyond `max_queue` queued records (the thread cannot keep up), the surplus goes straight to
        the spool from the calling thread. After `close()`, records are spooled synchronously.
        """
        batch = [records] if isinstance(records, PredictionRecord) else list(records)
        if not batch:
            return
        with self._cond:
            if self._closed:
                overflow = batch
                accepted: list[PredictionRecord] = []
            else:
                room = max(0, self.max_queue - len(self._queue))
                accepted, overflow = batch[:room], batch[room:]
                self._queue.extend(accepted)
                self._enqueued += len(accepted)
                if len(self._queue) >= self.batch_size:
                    self._cond.notify_all()
        if overflow:
            if self._closed:
                logger.warning("%d prediction(s) arrived after close; spooling", len(overflow))
            self._spool(overflow)

    submit = enqueue

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything enqueued so far is written (or spooled); False on timeout."""
        with self._cond:
            target = self._enqueued
            self._flush_requested = True
            self._cond.notify_all()
            running = self._thread is not None and self._thread.is_alive()
        if not running:
            self._drain()
        with self._cond:
            return self._cond.wait_for(lambda: self._handled >= target, timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything still queued and stop the thread; later records go to the spool.

        If the thread does not finish within `timeout`, what is still queued is spooled.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        atexit.unregister(self.close)
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.error(
                    "prediction writer did not stop within %ss; spooling its queue", timeout
                )
                with self._cond:
                    rest = list(self._queue)
                    self._queue.clear()
                self._spool(rest)
                self._mark_handled(len(rest))
                return
        self._drain()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def state(self) -> WriterState:
        """Current queue, spool, error counters and health, for /ready and Prometheus."""
        with self._cond:
            queue_depth = len(self._queue)
            running = self._thread is not None and self._thread.is_alive()
        reasons = []
        if not self._db_ok:
            reasons.append(f"database unreachable: {self._reason}")
        if self._spool_full:
            reasons.append(f"spool full, {self._dropped} prediction(s) dropped")
        return WriterState(
            running=running,
            degraded=bool(reasons),
            reason="; ".join(reasons) or None,
            queue_depth=queue_depth,
            spooled_records=self.spool.records,
            spooled_feedback=self.feedback_spool.records,
            spool_bytes=self.spool.size_bytes + self.feedback_spool.size_bytes,
            written_records=self._written,
            replayed_records=self._replayed,
            write_errors=self._write_errors,
            dropped_records=self._dropped,
            rejected_records=self._rejected,
            unmatched_feedback=self._unmatched,
        )

    @property
    def queue_depth(self) -> int:
        return self.state.queue_depth

    @property
    def durable_prefix(self) -> int:
        """n such that the first n records ever given to `enqueue` are out of memory (written,
        spooled, set aside or dropped), for a caller that holds copies until then.

        The queue is handled in order, so its first `handled` records are; any record of that
        prefix that did not go through the queue overflowed straight to the spool.
        """
        with self._cond:
            return self._handled

    @property
    def spooled_records(self) -> int:
        return self.spool.records

    @property
    def write_errors(self) -> int:
        return self._write_errors

    @property
    def degraded(self) -> bool:
        return self.state.degraded

    @property
    def degraded_reason(self) -> str | None:
        return self.state.reason

    # -- background loop -----------------------------------------------------------------

    def _run(self) -> None:
        self.check_store()  # report an outage at start-up even before the first prediction
        while True:
            with self._cond:
                deadline = time.monotonic() + self.flush_interval
                while (
                    not self._stopping
                    and not self._flush_requested
                    and len(self._queue) < self.batch_size
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch = self._take_batch()
                stop = self._stopping and not self._queue
            self._process_safely(batch)
            self._mark_handled(len(batch))
            if stop:
                return

    def _process_safely(self, batch: list[PredictionRecord]) -> None:
        """`_process`, surviving anything: a batch that failed unexpectedly goes to the spool
        (replays are idempotent, so rows it did write are not duplicated)."""
        try:
            self._process(batch)
        except Exception:
            logger.exception("prediction writer: unexpected error; spooling the batch")
            self._spool(batch)

    def _take_batch(self) -> list[PredictionRecord]:
        """Pop up to batch_size records (caller holds the condition)."""
        count = min(self.batch_size, len(self._queue))
        batch = [self._queue.popleft() for _ in range(count)]
        if not self._queue:
            self._flush_requested = False
        return batch

    def _mark_handled(self, count: int) -> None:
        with self._cond:
            self._handled += count
            self._cond.notify_all()

    def _drain(self) -> None:
        """Process the whole queue in the calling thread (writer not started, or closing)."""
        self.write_pending()

    def write_pending(self, *, max_batches: int | None = None) -> int:
        """Write queued records in the calling thread, a batch at a time; returns how many.

        For a host that runs no writer thread (the API's writer process drives it from its own
        loop). With nothing queued it still reconnects and replays the spool when that is due.
        """
        handled = batches = 0
        while max_batches is None or batches < max_batches:
            with self._cond:
                batch = self._take_batch()
            try:
                self._process_safely(batch)
            finally:
                self._mark_handled(len(batch))
            handled += len(batch)
            batches += 1
            if not batch or not self._queue:
                break
        return handled

    def check_store(self) -> None:
        """Ping the database now, so an outage shows before the first write (as `start()` does)."""
        with self._io_lock:
            if not self.store.ping():
                self._mark_outage(StoreError("prediction store not reachable at start-up"))

    @property
    def queued(self) -> int:
        """Records waiting in memory."""
        with self._cond:
            return len(self._queue)

    def _process(self, batch: list[PredictionRecord]) -> None:
        """Store one batch: database if reachable (after replaying the spool), else the spool."""
        with self._io_lock:
            if not self._db_ok and time.monotonic() >= self._next_reconnect and not self._closed:
                self._try_reconnect()
            if self._db_ok and not self._stopping and self.spool.records:
                self._replay_spool()
            if self._db_ok and not self._stopping and self.feedback_spool.records:
                self._replay_feedback()
            if not batch:
                return
            if self._db_ok:
                try:
                    self._write(batch)
                    return
                except StoreError as exc:
                    self._mark_outage(exc)
            self._spool(batch)

    def _ensure_schema(self) -> None:
        if self.ensure_schema and not self.store.schema_ready:
            self.store.upgrade()

    def _write(self, batch: list[PredictionRecord]) -> None:
        """Write a batch; raises StoreError only for outages (bad records are set aside)."""
        try:
            self._ensure_schema()
            self.store.write_predictions(batch)
        except StoreError as exc:
            self._write_errors += 1
            if is_outage(exc):
                raise
            self._write_one_by_one(batch, exc)
            return
        self._written += len(batch)

    def _write_one_by_one(self, batch: list[PredictionRecord], first: StoreError) -> None:
        """A batch failed on its data: find the bad records, keep the good ones."""
        logger.error("prediction batch refused (%s); retrying record by record", first)
        for record in batch:
            try:
                self.store.write_predictions([record])
                self._written += 1
            except StoreError as exc:
                if is_outage(exc):
                    raise  # the caller keeps the whole batch; rows already written are skipped
                self._reject(record, exc)

    def _reject(self, record: PredictionRecord, exc: StoreError) -> None:
        self._rejected += 1
        logger.error("prediction %s refused by the database: %s", record.prediction_id, exc)
        try:
            self.rejected_path.parent.mkdir(parents=True, exist_ok=True)
            with self.rejected_path.open("a", encoding="utf-8") as fh:
                line = {"error": str(exc), "record": record.to_json_dict()}
                fh.write(json.dumps(line, separators=(",", ":")) + "\n")
        except OSError as io_exc:
            logger.error("cannot write rejected prediction to %s: %s", self.rejected_path, io_exc)

    def _mark_outage(self, exc: BaseException) -> None:
        if self._db_ok:
            logger.error("prediction store unreachable, spooling to %s: %s", self.spool.path, exc)
        self._db_ok = False
        self._reason = str(exc)
        self._next_reconnect = time.monotonic() + self.reconnect_interval

    def _try_reconnect(self) -> None:
        self._next_reconnect = time.monotonic() + self.reconnect_interval
        if not self.store.ping():
            return
        try:
            self._ensure_schema()
        except StoreError as exc:
            self._reason = str(exc)
            return
        logger.info("prediction store reachable again")
        self._db_ok = True
        self._reason = None

    def _replay_spool(self) -> None:
        self._replay(self.spool, self._write_for_replay, "prediction")
        self._spool_full = self.spool.full

    def _replay(self, spool: Spool, write: Callable[[list[Any]], object], what: str) -> None:
        """Move a spool's records into the store; an outage stops it where it got to."""
        try:
            replayed = spool.replay(write, batch_size=self.batch_size)
        except StoreError as exc:
            self._mark_outage(exc)
            return
        except OSError as exc:
            logger.error("cannot read %s spool %s: %s", what, spool.path, exc)
            return
        if replayed:
            logger.info("replayed %d spooled %s record(s) into the store", replayed, what)

    def spool_feedback(self, records: list[FeedbackRecord]) -> int:
        """Keep labels that could not be stored now (database down); returns how many were kept.

        Raises StoreError when the spool cannot take them, so the caller can answer 503.
        """
        try:
            kept = self.feedback_spool.append(records)
        except OSError as exc:
            raise StoreError(
                f"cannot write feedback spool {self.feedback_spool.path}: {exc}"
            ) from exc
        if kept < len(records):
            raise StoreError(f"feedback spool {self.feedback_spool.path} is full")
        with self._cond:
            self._cond.notify_all()  # let the loop try to reconnect and replay
        return kept

    def _replay_feedback(self) -> None:
        if self.spool.records:
            return  # predictions first: spooled labels may refer to them
        self._replay(self.feedback_spool, self._write_matched_feedback, "feedback")

    def _write_matched_feedback(self, batch: list[FeedbackRecord]) -> None:
        """Store labels whose prediction is stored; set aside those naming a prediction_id the
        store does not hold (never stored as orphans), counted and logged."""
        named = {r.prediction_id for r in batch if r.prediction_id is not None}
        known = self.store.known_prediction_ids(named) if named else set()
        unmatched = [
            r for r in batch if r.prediction_id is not None and r.prediction_id not in known
        ]
        matched = [r for r in batch if r.prediction_id is None or r.prediction_id in known]
        if matched:
            self.store.write_feedback(matched)
        if unmatched:
            self._set_aside_unmatched(unmatched)

    def _set_aside_unmatched(self, records: list[FeedbackRecord]) -> None:
        self._unmatched += len(records)
        logger.warning(
            "%d label(s) name a prediction_id the store does not hold; set aside in %s",
            len(records),
            self.unmatched_path,
        )
        try:
            self.unmatched_path.parent.mkdir(parents=True, exist_ok=True)
            with self.unmatched_path.open("a", encoding="utf-8") as fh:
                for record in records:
                    fh.write(json.dumps(record.to_json_dict(), separators=(",", ":")) + "\n")
        except OSError as exc:
            logger.error("cannot write unmatched feedback to %s: %s", self.unmatched_path, exc)

    def _write_for_replay(self, batch: list[PredictionRecord]) -> None:
        self._write(batch)
        self._replayed += len(batch)

    def spool_lines(self, lines: list[bytes]) -> None:
        """Set aside predictions given as spool lines without queueing them (a host that
        cannot keep up); replayed like any spooled prediction."""
        self._spool_with(self.spool.append_lines, lines)

    def _spool(self, records: list[PredictionRecord]) -> None:
        """Append to the spool; whatever does not fit is dropped, counted and logged."""
        self._spool_with(self.spool.append, records)

    def _spool_with(self, append: Callable[[Any], int], items: list[Any]) -> None:
        if not items:
            return
        try:
            kept = append(items)
        except OSError as exc:
            logger.error("cannot write prediction spool %s: %s", self.spool.path, exc)
            kept = 0
        lost = len(items) - kept
        self._spool_full = lost > 0 or self.spool.full
        if lost:
            with self._stats_lock:
                self._dropped += lost
            now = time.monotonic()
            if now - self._last_drop_log >= _DROP_LOG_EVERY_SECONDS:
                self._last_drop_log = now
                logger.error(
                    "prediction spool %s is full (%d bytes): dropped %d prediction(s), %d in total",
                    self.spool.path,
                    self.spool.max_bytes,
                    lost,
                    self._dropped,
                )
