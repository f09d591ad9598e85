"""BatchWriter: predictions queued in memory, written in batches when its host says so.

The host is the writer process (`writer_process.py`): it reads predictions from the API's pipe,
queues them here and calls `write_pending()` from its loop. Nothing is lost on purpose:
- `close()` writes everything still queued (or spools it, if the database is away);
- while the database is unreachable, batches go to a local append-only JSONL spool; the writer
  tries the database again every `reconnect_interval` seconds and replays the spool when it is
  back; a spool left by a previous process is replayed too;
- a record the database refuses for a reason other than an outage (a data error) is written to
  `<spool>.rejected.jsonl` and counted, instead of blocking the rest forever;
- labels spooled during an outage are replayed after the predictions, and a label naming a
  prediction_id the store does not hold is set aside in `<spool>.feedback.unmatched.jsonl`.

Spool full: new records are dropped, counted in `dropped_records`, logged as errors and the writer
reports `degraded`. Blocking instead would turn a database outage into an API outage; an API that
must not answer for predictions it cannot keep refuses them before they get here
(`serving.on_spool_full: refuse`, see `ProcessWriter`).
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


class BatchWriter:
    """Queues predictions and stores them in batches when `write_pending()` is called.

    One thread drives it (enqueue, write_pending, flush, close); `state` may be read from any
    other. Typical host loop::

        writer = BatchWriter(store, spool_path=".churnops/spool.jsonl")
        writer.check_store()            # report an outage before the first write
        writer.enqueue(records)         # never touches the database
        writer.write_pending(max_batches=1)   # a batch; reconnects and replays when due
        writer.close()                  # writes (or spools) everything still queued
    """

    def __init__(
        self,
        store: PredictionStore,
        *,
        spool_path: str | Path,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        batch_size: int = 500,
        max_queue: int = 100_000,
        reconnect_interval: float = 5.0,
        ensure_schema: bool = True,
    ) -> None:
        if batch_size < 1 or max_queue < 1:
            raise ValueError("batch_size and max_queue must be at least 1")
        if reconnect_interval <= 0:
            raise ValueError("reconnect_interval must be positive")
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
        self.max_queue = max_queue
        self.reconnect_interval = reconnect_interval
        self.ensure_schema = ensure_schema

        self._queue: deque[PredictionRecord] = deque()
        self._handled = 0  # records taken from the queue: written, spooled, rejected or dropped
        self._closed = False

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

    # -- what the host calls -----------------------------------------------------------------

    def enqueue(self, records: Iterable[PredictionRecord]) -> None:
        """Queue predictions; never touches the database.

        Beyond `max_queue` queued records the surplus goes straight to the spool (the host
        normally spools such lines itself, unparsed: `spool_lines`). After `close()`, records
        are spooled at once.
        """
        batch = list(records)
        if self._closed:
            logger.warning("%d prediction(s) arrived after close; spooling", len(batch))
            self._spool(batch)
            return
        room = max(0, self.max_queue - len(self._queue))
        self._queue.extend(batch[:room])
        self._spool(batch[room:])

    def write_pending(self, *, max_batches: int | None = None) -> int:
        """Write queued records, a batch at a time; returns how many were handled.

        With nothing queued it still reconnects and replays the spools when that is due.
        """
        handled = batches = 0
        while max_batches is None or batches < max_batches:
            count = min(self.batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(count)]
            try:
                self._process_safely(batch)
            finally:
                self._handled += len(batch)
            handled += len(batch)
            batches += 1
            if not self._queue:
                break
        return handled

    def flush(self) -> None:
        """Write (or spool) everything queued so far."""
        self.write_pending()

    def close(self) -> None:
        """Write (or spool) everything still queued, without replaying; later records spool."""
        if self._closed:
            return
        self._closed = True
        self.write_pending()

    def check_store(self) -> None:
        """Ping the database now, so an outage shows before the first write."""
        if not self.store.ping():
            self._mark_outage(StoreError("prediction store not reachable at start-up"))

    def spool_lines(self, lines: list[bytes]) -> None:
        """Set aside predictions given as spool lines without queueing them (a host that
        cannot keep up); replayed like any spooled prediction."""
        self._spool_with(self.spool.append_lines, lines)

    def spool_feedback(self, records: list[FeedbackRecord]) -> int:
        """Keep labels for replay (database down, or prediction not stored); how many were kept.

        The predictions queued before them are written (or spooled) first, so that the check on
        replay finds every prediction sent before its label. Raises StoreError when the spool
        cannot take them, so the caller can answer 503.
        """
        self.flush()
        try:
            kept = self.feedback_spool.append(records)
        except OSError as exc:
            raise StoreError(
                f"cannot write feedback spool {self.feedback_spool.path}: {exc}"
            ) from exc
        if kept < len(records):
            raise StoreError(f"feedback spool {self.feedback_spool.path} is full")
        return kept

    @property
    def queued(self) -> int:
        """Records waiting in memory."""
        return len(self._queue)

    @property
    def durable_prefix(self) -> int:
        """n such that the first n records queued (in order) are out of memory: written,
        spooled, set aside or dropped. A host holding copies may let go of those."""
        return self._handled

    @property
    def state(self) -> WriterState:
        """Current queue, spool, error counters and health, for /ready and Prometheus."""
        reasons = []
        if not self._db_ok:
            reasons.append(f"database unreachable: {self._reason}")
        if self._spool_full:
            reasons.append(f"spool full, {self._dropped} prediction(s) dropped")
        return WriterState(
            running=not self._closed,
            degraded=bool(reasons),
            reason="; ".join(reasons) or None,
            queue_depth=len(self._queue),
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

    # -- writing -----------------------------------------------------------------------------

    def _process_safely(self, batch: list[PredictionRecord]) -> None:
        """`_process`, surviving anything: a batch that failed unexpectedly goes to the spool
        (replays are idempotent, so rows it did write are not duplicated)."""
        try:
            self._process(batch)
        except Exception:
            logger.exception("prediction writer: unexpected error; spooling the batch")
            self._spool(batch)

    def _process(self, batch: list[PredictionRecord]) -> None:
        """Store one batch: database if reachable (after replaying the spool), else the spool."""
        if not self._db_ok and time.monotonic() >= self._next_reconnect and not self._closed:
            self._try_reconnect()
        if self._db_ok and not self._closed and self.spool.records:
            self._replay_spool()
        if self._db_ok and not self._closed and self.feedback_spool.records:
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
        _append_json_lines(
            self.rejected_path, [{"error": str(exc), "record": record.to_json_dict()}]
        )

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

    # -- replaying ---------------------------------------------------------------------------

    def _replay_spool(self) -> None:
        self._replay(self.spool, self._write_for_replay, "prediction")
        self._spool_full = self.spool.full

    def _write_for_replay(self, batch: list[PredictionRecord]) -> None:
        self._write(batch)
        self._replayed += len(batch)

    def _replay_feedback(self) -> None:
        if self.spool.records:
            return  # predictions first: spooled labels may refer to them
        self._replay(self.feedback_spool, self._write_matched_feedback, "feedback")

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
            self._unmatched += len(unmatched)
            logger.warning(
                "%d label(s) name a prediction_id the store does not hold; set aside in %s",
                len(unmatched),
                self.unmatched_path,
            )
            _append_json_lines(self.unmatched_path, [r.to_json_dict() for r in unmatched])

    # -- spooling ----------------------------------------------------------------------------

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
        if not lost:
            return
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


def _append_json_lines(path: Path, items: list[dict[str, Any]]) -> None:
    """Keep records set aside (rejected, unmatched) for an operator; a failure is only logged."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            for item in items:
                fh.write(json.dumps(item, separators=(",", ":")) + "\n")
    except OSError as exc:
        logger.error("cannot write %s: %s", path, exc)
