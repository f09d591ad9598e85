"""Prediction store: every online prediction, feedback label, batch run and monitoring result.

SQLAlchemy 2 over SQLite (default) or PostgreSQL; schema managed by Alembic migrations shipped in
`churnops.store/migrations` and applied with `upgrade_schema(url)` or `PredictionStore.create()`.
The API's predictions are stored by a child process (`ProcessWriter` in `writer_process.py`)
that drives a `BatchWriter`: batches, and a bounded spool replayed after an outage.
"""

from typing import TYPE_CHECKING

from churnops.lazy import lazy_exports

# Imported on first use (PEP 562): the writer child and the API import only what they use
# (the migrations import Alembic, the readers pandas).
_EXPORTS = {
    "Decision": "decisions",
    "read_decisions": "decisions",
    "record_decision": "decisions",
    "head_revision": "migrate",
    "upgrade_schema": "migrate",
    "BatchRun": "records",
    "FeedbackRecord": "records",
    "MonitoringResult": "records",
    "PredictionRecord": "records",
    "to_jsonable": "records",
    "Spool": "spool",
    "SpoolFullError": "spool",
    "claim_spool_slot": "spool",
    "META_COLUMNS": "store",
    "PredictionStore": "store",
    "BatchWriter": "writer",
    "WriterState": "writer",
    "is_outage": "writer",
}

if TYPE_CHECKING:
    from churnops.store.decisions import Decision, read_decisions, record_decision
    from churnops.store.migrate import head_revision, upgrade_schema
    from churnops.store.records import (
        BatchRun,
        FeedbackRecord,
        MonitoringResult,
        PredictionRecord,
        to_jsonable,
    )
    from churnops.store.spool import Spool, SpoolFullError, claim_spool_slot
    from churnops.store.store import META_COLUMNS, PredictionStore
    from churnops.store.writer import BatchWriter, WriterState, is_outage


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "META_COLUMNS",
    "BatchRun",
    "BatchWriter",
    "Decision",
    "FeedbackRecord",
    "MonitoringResult",
    "PredictionRecord",
    "PredictionStore",
    "Spool",
    "SpoolFullError",
    "WriterState",
    "claim_spool_slot",
    "head_revision",
    "is_outage",
    "read_decisions",
    "record_decision",
    "to_jsonable",
    "upgrade_schema",
]
