"""Prediction store: every online prediction, feedback label, batch run and monitoring result.

SQLAlchemy 2 over SQLite (default) or PostgreSQL; schema managed by Alembic migrations shipped in
`churnops.store/migrations` and applied with `upgrade_schema(url)` or `PredictionStore.create()`.
`AsyncWriter` stores predictions in batches and never loses them (spool + replay); the API runs
it in a child process through `ProcessWriter`, so database work never holds the API's GIL.
"""

from churnops.store.migrate import head_revision, upgrade_schema
from churnops.store.records import (
    BatchRun,
    FeedbackRecord,
    MonitoringResult,
    PredictionRecord,
    to_jsonable,
)
from churnops.store.spool import Spool
from churnops.store.store import META_COLUMNS, PredictionStore
from churnops.store.writer import AsyncWriter, WriterState, is_outage

BackgroundWriter = AsyncWriter

__all__ = [
    "META_COLUMNS",
    "AsyncWriter",
    "BackgroundWriter",
    "BatchRun",
    "FeedbackRecord",
    "MonitoringResult",
    "PredictionRecord",
    "PredictionStore",
    "Spool",
    "WriterState",
    "head_revision",
    "is_outage",
    "to_jsonable",
    "upgrade_schema",
]
