"""PredictionStore: write and read predictions, feedback, batch runs and monitoring results.

One class over SQLAlchemy Core, the same code on SQLite (default) and PostgreSQL (production):
driver-level bulk inserts (`bulk_insert.py`), dialect-native upserts for idempotence, and a read
side that returns pandas frames ready for the monitoring code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Insert,
    Select,
    Table,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from churnops.errors import StoreError
from churnops.store.bulk_insert import PredictionInsert
from churnops.store.engine import make_engine, parse_url, safe_url, sqlite_path
from churnops.store.models import (
    BatchRunRow,
    FeedbackRow,
    MonitoringResultRow,
    PredictionRow,
    to_utc,
)
from churnops.store.records import (
    BatchRun,
    FeedbackRecord,
    MonitoringResult,
    PredictionRecord,
    to_jsonable,
    utcnow,
)

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

T = TypeVar("T")

PREDICTIONS: Table = PredictionRow.__table__  # type: ignore[assignment]
FEEDBACK: Table = FeedbackRow.__table__  # type: ignore[assignment]
BATCH_RUNS: Table = BatchRunRow.__table__  # type: ignore[assignment]
MONITORING_RESULTS: Table = MonitoringResultRow.__table__  # type: ignore[assignment]

# Rows per insert call: bounded memory and statement size, few round trips.
INSERT_CHUNK = 1_000
# Customer ids per IN (...) lookup when attaching feedback by customer.
LOOKUP_CHUNK = 500

# Columns `read_predictions` always returns, in this order, before the expanded features.
META_COLUMNS: tuple[str, ...] = (
    "prediction_id",
    "created_at",
    "request_id",
    "source",
    "customer_id",
    "model_name",
    "model_version",
    "churn_probability",
    "will_churn",
    "risk_level",
    "label",
)
# A feature whose name clashes with a meta column is returned under this prefix.
FEATURE_CLASH_PREFIX = "feature__"


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _describe(exc: BaseException) -> str:
    """The driver's message without SQLAlchemy's echo of the statement and its parameters."""
    orig = getattr(exc, "orig", None)
    message = str(orig if orig is not None else exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0] if message else ''}"


def _optional_utc(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value)


class PredictionStore:
    """The prediction store at one database URL (SQLite file or PostgreSQL).

    Creating the object opens nothing; call `create()` (or `upgrade()`) once at start-up to bring
    the schema to the newest migration. Every database error surfaces as `StoreError` with the
    SQLAlchemy exception as its `__cause__`. Thread-safe: the engine pools connections.
    """

    def __init__(self, url: str, *, connect_timeout: float = 5.0, echo: bool = False) -> None:
        self.url = url
        self._engine = make_engine(url, connect_timeout=connect_timeout, echo=echo)
        self._schema_ready = False
        self._bulk = PredictionInsert.for_dialect(self._engine.dialect.name)

    def __repr__(self) -> str:
        return f"PredictionStore({safe_url(self.url)!r})"

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self._engine.dialect.name

    @property
    def schema_ready(self) -> bool:
        """True once `create()`/`upgrade()` succeeded in this process."""
        return self._schema_ready

    def assume_schema_ready(self) -> None:
        """Another process of this service migrated the store to this code's head already."""
        self._schema_ready = True

    def create(self) -> None:
        """First-time set-up: make the SQLite directory if needed, then migrate to head."""
        from churnops.store.migrate import ensure_sqlite_directory

        ensure_sqlite_directory(self.url)
        self.upgrade()

    def open(self, *, create: bool) -> None:
        """`create()`, or for a reader (`create=False`) the same on an existing store only: a
        missing SQLite file is a StoreError naming where it was expected, never a new empty store."""
        if create:
            self.create()
            return
        path = sqlite_path(parse_url(self.url))
        if path is not None and not path.expanduser().exists():
            raise StoreError(
                f"no prediction store at {path.expanduser().resolve()} (nothing recorded there "
                "yet; set CHURNOPS_DATABASE_URL or --config to the store to read)"
            )
        self.upgrade()

    def upgrade(self) -> None:
        """Run the Alembic migrations to head (a no-op when already there)."""
        # A store already at head is only read: Alembic (with Mako and Pygments, ~0.2 s and
        # ~15 MB) is imported only where a schema is set up or migrated.
        from churnops.store.migrate import upgrade_engine

        upgrade_engine(self._engine)
        self._schema_ready = True

    def revision(self) -> str | None:
        """The Alembic revision the database is at (None before the first migration)."""
        from churnops.store.migrate import current_revision

        try:
            with self._engine.connect() as conn:
                return current_revision(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"prediction store: cannot read revision: {_describe(exc)}") from exc

    def ping(self) -> bool:
        """Whether the database answers a trivial query right now (never raises)."""
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not reachable" to /ready
            logger.debug("prediction store ping failed: %s", _describe(exc))
            return False
        return True

    def close(self) -> None:
        """Close pooled connections."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _begin(self, what: str) -> Iterator[Connection]:
        """A transaction whose SQLAlchemy errors become StoreError."""
        try:
            with self._engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"prediction store: cannot {what}: {_describe(exc)}") from exc

    @contextmanager
    def _connect(self, what: str) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"prediction store: cannot {what}: {_describe(exc)}") from exc

    # -- writes ------------------------------------------------------------------------------

    def _insert_ignoring(self, table: Table, key: Sequence[str]) -> Insert:
        """INSERT that skips rows whose `key` already exists (replays must not fail)."""
        if self.dialect == "postgresql":
            return pg_insert(table).on_conflict_do_nothing(index_elements=list(key))
        if self.dialect == "sqlite":
            return sqlite_insert(table).on_conflict_do_nothing(index_elements=list(key))
        return insert(table)

    def write_predictions(self, records: Iterable[PredictionRecord]) -> int:
        """Insert predictions in bulk; ones whose prediction_id is already stored are skipped.

        Returns the number of records given. Idempotent, so a spool replay after a crash between
        commit and spool truncation cannot fail or duplicate. Rows go to the driver as plain
        tuples (`bulk_insert.py`): SQLAlchemy's per-value processing cost 35-90 µs a row of
        Python, most of what storing a prediction cost.
        """
        items = list(records)
        if not items:
            return 0
        bulk = self._bulk
        if bulk is None:
            rows = [record.to_row() for record in items]
            stmt = self._insert_ignoring(PREDICTIONS, ["prediction_id"])
            with self._begin("write predictions") as conn:
                for row_chunk in _chunks(rows, INSERT_CHUNK):
                    conn.execute(stmt, list(row_chunk))
            return len(items)
        with self._begin("write predictions") as conn:
            for record_chunk in _chunks(items, INSERT_CHUNK):
                bulk.insert(conn, record_chunk)
        return len(items)

    def _latest_prediction_ids(self, conn: Connection, customer_ids: set[str]) -> dict[str, str]:
        """customer_id -> prediction_id of that customer's most recent prediction."""
        found: dict[str, str] = {}
        ordered = sorted(customer_ids)
        for chunk in _chunks(ordered, LOOKUP_CHUNK):
            rank = (
                func.row_number()
                .over(
                    partition_by=PREDICTIONS.c.customer_id,
                    order_by=(PREDICTIONS.c.created_at.desc(), PREDICTIONS.c.prediction_id.desc()),
                )
                .label("rank")
            )
            ranked = (
                select(PREDICTIONS.c.customer_id, PREDICTIONS.c.prediction_id, rank)
                .where(PREDICTIONS.c.customer_id.in_(list(chunk)))
                .subquery()
            )
            stmt = select(ranked.c.customer_id, ranked.c.prediction_id).where(ranked.c.rank == 1)
            for customer_id, prediction_id in conn.execute(stmt):
                found[customer_id] = prediction_id
        return found

    def _upsert_feedback(
        self,
        conn: Connection,
        rows: list[dict[str, Any]],
        *,
        key: str,
        key_where: ColumnElement[bool] | None,
    ) -> None:
        """Insert feedback rows; an existing row for the same key is updated only if the label
        changed, so sending the same feedback again changes nothing."""
        if self.dialect == "postgresql":
            stmt_pg = pg_insert(FEEDBACK)
            excluded = stmt_pg.excluded
            upsert: Insert = stmt_pg.on_conflict_do_update(
                index_elements=[key],
                index_where=key_where,
                set_={
                    "label": excluded.label,
                    "received_at": excluded.received_at,
                    "customer_id": func.coalesce(excluded.customer_id, FEEDBACK.c.customer_id),
                },
                where=FEEDBACK.c.label != excluded.label,
            )
        elif self.dialect == "sqlite":
            stmt_lite = sqlite_insert(FEEDBACK)
            excluded_lite = stmt_lite.excluded
            upsert = stmt_lite.on_conflict_do_update(
                index_elements=[key],
                index_where=key_where,
                set_={
                    "label": excluded_lite.label,
                    "received_at": excluded_lite.received_at,
                    "customer_id": func.coalesce(excluded_lite.customer_id, FEEDBACK.c.customer_id),
                },
                where=FEEDBACK.c.label != excluded_lite.label,
            )
        else:  # pragma: no cover - only SQLite and Postgres are supported
            raise StoreError(f"feedback upsert is not supported on {self.dialect}")
        for chunk in _chunks(rows, INSERT_CHUNK):
            conn.execute(upsert, list(chunk))

    def write_feedback(self, records: Iterable[FeedbackRecord]) -> int:
        """Record labels idempotently; returns how many distinct feedback rows were stored.

        Feedback with a prediction_id is keyed on it: the same feedback twice leaves one row, and a
        different label for the same prediction replaces the old one. Feedback with only a
        customer_id attaches to that customer's latest stored prediction; when the customer has
        none yet it is kept as one unattached row per customer (also upserted). Duplicates within
        one call collapse to the last one.
        """
        items = list(records)
        if not items:
            return 0
        with self._begin("write feedback") as conn:
            wanted = {r.customer_id for r in items if r.prediction_id is None and r.customer_id}
            latest = self._latest_prediction_ids(conn, wanted) if wanted else {}
            attached: dict[str, dict[str, Any]] = {}
            orphans: dict[str, dict[str, Any]] = {}
            for record in items:
                prediction_id = record.prediction_id
                if prediction_id is None and record.customer_id is not None:
                    prediction_id = latest.get(record.customer_id)
                row = {
                    "prediction_id": prediction_id,
                    "customer_id": record.customer_id,
                    "label": record.label,
                    "received_at": record.received_at,
                }
                if prediction_id is not None:
                    attached[prediction_id] = row
                elif record.customer_id is not None:
                    orphans[record.customer_id] = row
            if attached:
                self._upsert_feedback(
                    conn, list(attached.values()), key="prediction_id", key_where=None
                )
            if orphans:
                logger.warning(
                    "%d feedback record(s) match no stored prediction; kept unattached",
                    len(orphans),
                )
                self._upsert_feedback(
                    conn,
                    list(orphans.values()),
                    key="customer_id",
                    key_where=FEEDBACK.c.prediction_id.is_(None),
                )
        return len(attached) + len(orphans)

    def record_batch_run(
        self,
        *,
        started_at: datetime,
        finished_at: datetime | None,
        model_name: str,
        model_version: str | int,
        rows_read: int,
        rows_scored: int,
        rows_rejected: int,
        input_fingerprint: str | None = None,
        summary: Mapping[str, Any] | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> int:
        """Store one batch-scoring run; `profile` is kept as given (opaque JSON). Returns its id."""
        row = {
            "started_at": to_utc(started_at),
            "finished_at": _optional_utc(finished_at),
            "input_fingerprint": input_fingerprint,
            "model_name": model_name,
            "model_version": str(model_version),
            "rows_read": int(rows_read),
            "rows_scored": int(rows_scored),
            "rows_rejected": int(rows_rejected),
            "summary": to_jsonable(dict(summary or {})),
            "profile": None if profile is None else to_jsonable(profile),
        }
        with self._begin("record a batch run") as conn:
            result = conn.execute(insert(BATCH_RUNS).values(**row))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def record_monitoring_result(
        self,
        *,
        kind: str,
        drift_detected: bool,
        summary: Mapping[str, Any],
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        created_at: datetime | None = None,
    ) -> int:
        """Store one monitoring result (kind 'drift', 'performance', ...). Returns its id."""
        row = {
            "created_at": to_utc(created_at or utcnow()),
            "window_start": _optional_utc(window_start),
            "window_end": _optional_utc(window_end),
            "kind": kind,
            "drift_detected": bool(drift_detected),
            "summary": to_jsonable(dict(summary)),
        }
        with self._begin("record a monitoring result") as conn:
            result = conn.execute(insert(MONITORING_RESULTS).values(**row))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    # -- reads -------------------------------------------------------------------------------

    @staticmethod
    def _prediction_filters(
        stmt: Select[Any],
        *,
        since: datetime | None,
        until: datetime | None,
        model_name: str | None,
        source: str | None,
    ) -> Select[Any]:
        if since is not None:
            stmt = stmt.where(PREDICTIONS.c.created_at >= to_utc(since))
        if until is not None:
            stmt = stmt.where(PREDICTIONS.c.created_at < to_utc(until))
        if model_name is not None:
            stmt = stmt.where(PREDICTIONS.c.model_name == model_name)
        if source is not None:
            stmt = stmt.where(PREDICTIONS.c.source == source)
        return stmt

    def count_predictions(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model_name: str | None = None,
        source: str | None = None,
    ) -> int:
        """Number of stored predictions in [since, until) matching the filters."""
        stmt = self._prediction_filters(
            select(func.count()).select_from(PREDICTIONS),
            since=since,
            until=until,
            model_name=model_name,
            source=source,
        )
        with self._connect("count predictions") as conn:
            return int(conn.execute(stmt).scalar_one())

    def has_prediction(self, prediction_id: str) -> bool:
        """Whether a prediction with this id is stored."""
        stmt = select(PREDICTIONS.c.prediction_id).where(
            PREDICTIONS.c.prediction_id == prediction_id
        )
        with self._connect("look up a prediction") as conn:
            return conn.execute(stmt.limit(1)).first() is not None

    def known_prediction_ids(self, prediction_ids: Iterable[str]) -> set[str]:
        """Those of `prediction_ids` that are stored."""
        wanted = sorted(set(prediction_ids))
        found: set[str] = set()
        with self._connect("look up predictions") as conn:
            for chunk in _chunks(wanted, LOOKUP_CHUNK):
                stmt = select(PREDICTIONS.c.prediction_id).where(
                    PREDICTIONS.c.prediction_id.in_(list(chunk))
                )
                found.update(conn.execute(stmt).scalars())
        return found

    def count_feedback(self, *, attached_only: bool = False) -> int:
        """Number of stored feedback rows (only those tied to a prediction, if asked)."""
        stmt = select(func.count()).select_from(FEEDBACK)
        if attached_only:
            stmt = stmt.where(FEEDBACK.c.prediction_id.is_not(None))
        with self._connect("count feedback") as conn:
            return int(conn.execute(stmt).scalar_one())

    def read_predictions(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model_name: str | None = None,
        source: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Predictions in [since, until), oldest first, one row each, for monitoring.

        Columns: META_COLUMNS (`label` is float: 0.0/1.0 from feedback, NaN when none yet;
        `created_at` is UTC-aware), then one column per input feature. A feature named like a
        meta column is returned as `feature__<name>`. With `limit`, the most recent `limit` rows.
        """
        p = PREDICTIONS
        columns = [
            p.c.prediction_id,
            p.c.created_at,
            p.c.request_id,
            p.c.source,
            p.c.customer_id,
            p.c.model_name,
            p.c.model_version,
            p.c.churn_probability,
            p.c.will_churn,
            p.c.risk_level,
            FEEDBACK.c.label,
            p.c.features,
        ]
        stmt = select(*columns).select_from(
            p.outerjoin(FEEDBACK, FEEDBACK.c.prediction_id == p.c.prediction_id)
        )
        stmt = self._prediction_filters(
            stmt, since=since, until=until, model_name=model_name, source=source
        )
        if limit is not None:
            stmt = stmt.order_by(p.c.created_at.desc(), p.c.prediction_id.desc()).limit(limit)
        else:
            stmt = stmt.order_by(p.c.created_at, p.c.prediction_id)
        with self._connect("read predictions") as conn:
            rows = list(conn.execute(stmt).all())
        if limit is not None:
            rows.reverse()
        return _predictions_frame(rows)

    def read_batch_runs(
        self,
        *,
        limit: int = 100,
        model_name: str | None = None,
        since: datetime | None = None,
    ) -> list[BatchRun]:
        """Recorded batch runs, newest first."""
        stmt = select(BATCH_RUNS).order_by(BATCH_RUNS.c.started_at.desc(), BATCH_RUNS.c.id.desc())
        if model_name is not None:
            stmt = stmt.where(BATCH_RUNS.c.model_name == model_name)
        if since is not None:
            stmt = stmt.where(BATCH_RUNS.c.started_at >= to_utc(since))
        with self._connect("read batch runs") as conn:
            rows = conn.execute(stmt.limit(limit)).mappings().all()
        return [BatchRun(**dict(row)) for row in rows]

    def read_monitoring_results(
        self,
        *,
        kind: str | None = None,
        limit: int = 100,
        since: datetime | None = None,
    ) -> list[MonitoringResult]:
        """Recorded monitoring results, newest first."""
        m = MONITORING_RESULTS
        stmt = select(m).order_by(m.c.created_at.desc(), m.c.id.desc())
        if kind is not None:
            stmt = stmt.where(m.c.kind == kind)
        if since is not None:
            stmt = stmt.where(m.c.created_at >= to_utc(since))
        with self._connect("read monitoring results") as conn:
            rows = conn.execute(stmt.limit(limit)).mappings().all()
        return [MonitoringResult(**dict(row)) for row in rows]

    def latest_monitoring_result(self, kind: str) -> MonitoringResult | None:
        """The most recent monitoring result of `kind`, or None."""
        results = self.read_monitoring_results(kind=kind, limit=1)
        return results[0] if results else None


def _predictions_frame(rows: Sequence[Any]) -> pd.DataFrame:
    import pandas as pd  # reads only: the writer child and the API's hot path never need it

    """Rows of (META_COLUMNS..., features) -> frame with the features expanded into columns."""
    meta = pd.DataFrame.from_records(
        [tuple(row[:-1]) for row in rows], columns=list(META_COLUMNS), coerce_float=False
    )
    meta["created_at"] = pd.to_datetime(meta["created_at"], utc=True)
    meta["churn_probability"] = meta["churn_probability"].astype("float64")
    meta["will_churn"] = meta["will_churn"].astype(bool)
    meta["label"] = pd.to_numeric(meta["label"], errors="coerce").astype("float64")
    features = pd.DataFrame.from_records([row[-1] or {} for row in rows], index=meta.index)
    if features.empty and len(features.columns) == 0:
        return meta
    clashes = {c: f"{FEATURE_CLASH_PREFIX}{c}" for c in features.columns if c in META_COLUMNS}
    if clashes:
        features = features.rename(columns=clashes)
    return pd.concat([meta, features], axis=1)
