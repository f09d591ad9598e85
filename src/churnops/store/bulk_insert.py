"""The prediction INSERT at driver level, with rows as plain tuples.

The API's background writer stores every prediction; through SQLAlchemy Core each row's twelve
values went through bind processors, type decorators and the JSON serializer in Python: 35 µs a
row on SQLite and 90 µs on Postgres, all of it holding the GIL the event loop needs. Here a row is
one tuple and the driver does the rest in C: sqlite3's `executemany` (which releases the GIL while
SQLite works), and on Postgres a COPY into a session temp table followed by one
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` (multi-row VALUES and psycopg's executemany were
2-5x slower). Values are stored exactly as the SQLAlchemy column types store them (tested by
reading back through the models), so the read side cannot tell the two paths apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

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
)
_NAMES = ", ".join(COLUMNS)
_CONFLICT = "ON CONFLICT (prediction_id) DO NOTHING"
_SQLITE_INSERT = (
    f"INSERT INTO predictions ({_NAMES}) VALUES ({', '.join('?' for _ in COLUMNS)}) {_CONFLICT}"
)
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


def _sqlite_row(record: PredictionRecord) -> tuple[Any, ...]:
    # SQLAlchemy's SQLite DATETIME text: naive UTC, space-separated, always with microseconds.
    created = record.created_at.replace(tzinfo=None).isoformat(" ", "microseconds")
    return (
        record.prediction_id,
        created,
        record.request_id,
        record.source,
        record.model_name,
        record.model_version,
        record.customer_id,
        json_text(record.features),
        float(record.churn_probability),
        1 if record.will_churn else 0,
        record.risk_level,
        json_text(record.reasons),
    )


def _postgres_row(record: PredictionRecord) -> tuple[Any, ...]:
    return (
        record.prediction_id,
        record.created_at,  # aware UTC: psycopg sends it as timestamptz
        record.request_id,
        record.source,
        record.model_name,
        record.model_version,
        record.customer_id,
        json_text(record.features),
        float(record.churn_probability),
        bool(record.will_churn),
        record.risk_level,
        json_text(record.reasons),
    )


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
            conn.exec_driver_sql(_SQLITE_INSERT, [_sqlite_row(record) for record in records])
            return
        conn.exec_driver_sql(_PG_STAGING)
        driver = conn.connection.driver_connection  # psycopg, in the transaction `conn` began
        assert driver is not None
        with driver.cursor() as cursor:
            with cursor.copy(_PG_COPY) as copy:
                for record in records:
                    copy.write_row(_postgres_row(record))
            cursor.execute(_PG_MOVE)
