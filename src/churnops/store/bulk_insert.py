"""The prediction INSERT at driver level, with rows as plain tuples.

The writer process stores every prediction; through SQLAlchemy Core each row's fourteen values
went through bind processors, type decorators and the JSON serializer in Python: 35 µs a row on
SQLite and 90 µs on Postgres, most of what storing a prediction cost. Here a row is one tuple and
the driver does the rest in C. On SQLite, one multi-row `INSERT ... VALUES` per few hundred rows
instead of `executemany`'s call into SQLite per row. On Postgres, a COPY into a session temp table
followed by one
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` (multi-row VALUES and psycopg's executemany were
2-5x slower there). Values are stored exactly as the SQLAlchemy column types store them (tested by
reading back through the models), so the read side cannot tell the two paths apart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from churnops.store.records import PredictionRecord, json_text

COLUMNS: tuple[str, ...] = (
    "prediction_id",
    "created_at",
    "request_id",
    "source",
    "model_name",
    "model_version",
    "customer_id",
    "features",
    "churn_probability",
    "will_churn",
    "risk_level",
    "reasons",
    "variant",
    "latency_us",
)
_NAMES = ", ".join(COLUMNS)
_CONFLICT = "ON CONFLICT (prediction_id) DO NOTHING"
_SQLITE_ROW = "(" + ", ".join("?" for _ in COLUMNS) + ")"
SQLITE_ROWS_PER_STATEMENT = 500  # 6,000 variables; SQLite allows 32,766 since 3.32
# Per connection, emptied by every commit; a failed transaction takes its rows with it.
_PG_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS churnops_staged_predictions "
    "(LIKE predictions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_PG_COPY = f"COPY churnops_staged_predictions ({_NAMES}) FROM STDIN"
_PG_MOVE = (
    f"INSERT INTO predictions ({_NAMES}) SELECT {_NAMES} FROM churnops_staged_predictions "
    f"{_CONFLICT}"
)


def _row(record: PredictionRecord, *, created_at: Any, will_churn: Any) -> tuple[Any, ...]:
    """The record's values in COLUMNS order; the two that each driver wants differently given."""
    return (
        record.prediction_id,
        created_at,
        record.request_id,
        record.source,
        record.model_name,
        record.model_version,
        record.customer_id,
        json_text(record.features),
        float(record.churn_probability),
        will_churn,
        record.risk_level,
        json_text(record.reasons),
        record.variant,
        record.latency_us,
    )


def _sqlite_row(record: PredictionRecord) -> tuple[Any, ...]:
    # SQLAlchemy's SQLite DATETIME text: naive UTC, space-separated, always with microseconds.
    created = record.created_at.replace(tzinfo=None).isoformat(" ", "microseconds")
    return _row(record, created_at=created, will_churn=1 if record.will_churn else 0)


def _postgres_row(record: PredictionRecord) -> tuple[Any, ...]:
    # Aware UTC datetime: psycopg sends it as timestamptz.
    return _row(record, created_at=record.created_at, will_churn=bool(record.will_churn))


@lru_cache(maxsize=8)
def _sqlite_insert(rows: int) -> str:
    return (
        f"INSERT INTO predictions ({_NAMES}) VALUES {', '.join([_SQLITE_ROW] * rows)} {_CONFLICT}"
    )


def _sqlite_rows_per_statement(conn: Connection) -> int:
    """Rows per statement within this SQLite build's limit on bound variables."""
    driver = conn.connection.driver_connection
    limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if driver is not None else 999
    return max(1, min(SQLITE_ROWS_PER_STATEMENT, limit // len(COLUMNS)))


@dataclass(frozen=True)
class PredictionInsert:
    """INSERT ... ON CONFLICT (prediction_id) DO NOTHING for one dialect, inside a transaction."""

    dialect: str

    @classmethod
    def for_dialect(cls, dialect: str) -> PredictionInsert | None:
        """None for a dialect without a fast path (the store then uses SQLAlchemy Core)."""
        return cls(dialect) if dialect in ("sqlite", "postgresql") else None

    def insert(self, conn: Connection, records: Sequence[PredictionRecord]) -> None:
        if self.dialect == "sqlite":
            step = _sqlite_rows_per_statement(conn)
            for start in range(0, len(records), step):
                chunk = records[start : start + step]
                values: list[Any] = []
                for record in chunk:
                    values.extend(_sqlite_row(record))
                conn.exec_driver_sql(_sqlite_insert(len(chunk)), tuple(values))
            return
        conn.exec_driver_sql(_PG_STAGING)
        driver = conn.connection.driver_connection  # psycopg, in the transaction `conn` began
        assert driver is not None
        try:
            with driver.cursor() as cursor:
                with cursor.copy(_PG_COPY) as copy:
                    for record in records:
                        copy.write_row(_postgres_row(record))
                cursor.execute(_PG_MOVE)
        except driver.Error as exc:
            # Straight from psycopg: wrap it as SQLAlchemy would, so the store turns it into a
            # StoreError and the writer can tell an outage (spool) from bad data (set aside).
            raise DBAPIError.instance(
                _PG_COPY, None, exc, type(driver).Error, dialect=conn.dialect
            ) from exc
