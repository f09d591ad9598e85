"""A batch run as one use case: resolve the model in the registry, score a table with the pandas or
Spark engine, and record the run (or why it failed) in the prediction store.

Entry points (`churnops predict`, flows) parse their arguments into a `BatchRequest`, call
`score_table`, and format the summary it returns.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from churnops.errors import StoreError
from churnops.modeling.loading import ModelSource, load_scorer, resolve_identity
from churnops.modeling.registry import ModelIdentity
from churnops.scoring.batch import BatchOptions, BatchResult, BatchScorer, Progress, RunTally

logger = logging.getLogger(__name__)
MAX_ERROR_TEXT = 2000


@dataclass(frozen=True)
class BatchRequest:
    """What to score, where to write it, and how."""

    source: str
    output: str
    model_uri: str
    options: BatchOptions
    engine: Literal["pandas", "spark"] = "pandas"
    rejects: str | None = None
    spark_master: str | None = None


def score_table(
    request: BatchRequest,
    *,
    source: ModelSource,
    database_url: str,
    progress: Progress | None = None,
) -> BatchResult:
    """Score `request.source` into `request.output`; the run is recorded in the store at
    `database_url` whether it succeeds or fails (a failure to record a failure is only logged)."""
    identity = resolve_identity(request.model_uri, source)
    started = datetime.now(UTC)
    batch: BatchScorer | None = None
    try:
        if request.engine == "spark":
            if source.client is not None:
                source.client()  # Spark's workers load through MLflow's configured URIs
            result = _score_with_spark(request, identity)
        else:
            # Pinned to the version resolved above: the version recorded is the one used.
            scorer, _ = load_scorer(identity.pinned_uri, source=source)
            batch = BatchScorer(scorer, identity, request.options)
            result = batch.run(
                request.source, request.output, rejects=request.rejects, progress=progress
            )
    except BaseException as exc:
        _record_failure_logged(
            database_url,
            model=identity,
            source=request.source,
            output=request.output,
            engine_name=request.engine,
            started=started,
            error=exc,
            tally=batch.tally if batch is not None else None,
        )
        raise
    _record_run_or_explain(database_url, result, output=request.output)
    return result


def _score_with_spark(request: BatchRequest, identity: ModelIdentity) -> BatchResult:
    from churnops.scoring.spark import score_with_spark

    return score_with_spark(
        request.source,
        request.output,
        model_uri=identity.pinned_uri,
        model=identity,
        options=request.options,
        rejects=request.rejects,
        master=request.spark_master,
    )


def _record_run_or_explain(database_url: str, result: BatchResult, *, output: str) -> None:
    from churnops.store.store import PredictionStore

    try:
        with PredictionStore(database_url) as store:
            store.create()
            record_run(store, result)
    except StoreError as exc:
        raise StoreError(f"scored into {output}, but the run was not recorded: {exc}") from exc


def _record_failure_logged(database_url: str, **failure: Any) -> None:
    """Record a failed run in the store; a store problem is logged, never hides the failure."""
    from churnops.store.store import PredictionStore

    try:
        with PredictionStore(database_url) as store:
            store.create()
            record_failure(store, **failure)
    except Exception as exc:  # the run's own error is the one to report
        logger.warning("the failed run was not recorded in the store: %s", exc)


def record_run(store: Any, result: BatchResult) -> int:
    """Record a finished run (counts, summary and population profile) in the prediction store."""
    summary = result.summary
    profile = None
    if result.population is not None:
        profile = json.loads(result.population.to_json())
    return int(
        store.record_batch_run(
            started_at=datetime.fromisoformat(summary.started_at),
            finished_at=datetime.fromisoformat(summary.finished_at),
            model_name=summary.model_name,
            model_version=summary.model_version,
            rows_read=summary.rows_read,
            rows_scored=summary.rows_scored,
            rows_rejected=summary.rows_rejected,
            input_fingerprint=summary.input_fingerprint,
            summary=summary.to_dict(),
            profile=profile,
        )
    )


def record_failure(
    store: Any,
    *,
    model: ModelIdentity,
    source: str,
    output: str,
    engine_name: str,
    started: datetime,
    error: BaseException,
    tally: RunTally | None = None,
) -> int:
    """Record a failed or interrupted run (nothing was written) with its status and error.

    The store has no status column: `status` and `error` go into the run's summary JSON, as they
    do for successful runs (`status: succeeded`). Counts are those reached before the failure.
    """
    finished = datetime.now(UTC)
    counts = tally or RunTally()
    interrupted = isinstance(error, KeyboardInterrupt)
    message = "interrupted" if interrupted else (str(error) or type(error).__name__)
    summary = {
        "status": "interrupted" if interrupted else "failed",
        "error": f"{type(error).__name__}: {message}"[:MAX_ERROR_TEXT],
        "input": source,
        "output": output,
        "engine": engine_name,
        "model_name": model.name,
        "model_version": model.version,
        "model_uri": model.uri,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "duration_seconds": round((finished - started).total_seconds(), 3),
        "rows_read": counts.read,
        "rows_scored": counts.scored,
        "rows_rejected": counts.rejected,
    }
    return int(
        store.record_batch_run(
            started_at=started,
            finished_at=finished,
            model_name=model.name,
            model_version=model.version,
            rows_read=counts.read,
            rows_scored=counts.scored,
            rows_rejected=counts.rejected,
            input_fingerprint=None,
            summary=summary,
            profile=None,
        )
    )
