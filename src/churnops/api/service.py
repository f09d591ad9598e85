"""The serving use cases, called by the middleware and the routes alike: score customers and hand
their predictions to the store; record a label.

Here rather than in a core package: these functions work on the API's own state (the loaded
model with its request contract, the metrics, the writer handle), and the core never imports an
entry point. Routes and the middleware only parse, call one of these, and format.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from starlette.concurrency import run_in_threadpool

from churnops.api.body import validate_body
from churnops.api.contract import record_of
from churnops.api.deps import ServiceState
from churnops.api.reload import LoadedModel
from churnops.api.rollout import Route, ShadowJob
from churnops.errors import StoreError
from churnops.modeling.scorer import RowScore
from churnops.store import FeedbackRecord
from churnops.store.records import new_prediction_ids
from churnops.store.writer import is_outage

INLINE_ROWS = 256  # up to here scoring takes ~2 ms: a thread hop would cost more than it saves


def _witness(record: dict[str, Any]) -> int | None:
    """Stands for a record's values (the challenger's constant-score check)."""
    try:
        return hash(tuple(record.values()))
    except TypeError:
        return None


def _observe(service: ServiceState, variant: str, scored: list[RowScore], seconds: float) -> None:
    service.metrics.observe_variant(variant, [s.risk_level for s in scored], seconds)


def _score_champion(
    service: ServiceState, model: LoadedModel, records: list[dict[str, Any]], *, by_variant: bool
) -> tuple[list[RowScore], LoadedModel, str, int]:
    """The champion's scores; with the model, the variant and the scoring time per record (µs)."""
    started = time.perf_counter()
    scored = model.scorer.score_rows(records)
    elapsed = time.perf_counter() - started
    if by_variant:
        if len(scored) == 1:  # inlined: the canary's hot path
            service.metrics.observe_variant_one("champion", scored[0].risk_level, elapsed)
        else:
            _observe(service, "champion", scored, elapsed)
    return scored, model, "champion", int(elapsed * 1e6 / max(1, len(records)))


def _score_challenger(
    service: ServiceState,
    model: LoadedModel,
    challenger: LoadedModel,
    records: list[dict[str, Any]],
) -> tuple[list[RowScore], LoadedModel, str, int]:
    """The challenger's scores, or the champion's when it raises (counted as its fault)."""
    started = time.perf_counter()
    try:
        scored = challenger.scorer.score_rows(records)
    except Exception as exc:  # the champion answers instead; the challenger is counted
        service.rollout.fault("errors", f"challenger raised {type(exc).__name__}: {exc}")
        service.metrics.observe_variant("challenger", (), 0.0, errors=len(records))
        return _score_champion(service, model, records, by_variant=True)
    elapsed = time.perf_counter() - started
    if len(scored) == 1:  # inlined: the canary's hot path
        probability = scored[0].probability
        faults = service.rollout.faults
        if probability != faults.last_score:  # check_score's usual case, without its frame
            faults.last_score, faults.same_score_run, faults.last_witness = probability, 0, None
        else:
            last = records[0]
            service.rollout.check_score(probability, lambda: _witness(last))
        service.metrics.observe_variant_one("challenger", scored[0].risk_level, elapsed)
    else:
        if scored:
            last = records[-1]
            service.rollout.check_score(scored[-1].probability, lambda: _witness(last))
        _observe(service, "challenger", scored, elapsed)
    return scored, challenger, "challenger", int(elapsed * 1e6 / max(1, len(records)))


def _routed(
    service: ServiceState,
    model: LoadedModel,
    route: Route,
    records: list[dict[str, Any]],
    customer_ids: list[Any] | None,
    caller: str | None,
) -> list[tuple[RowScore, LoadedModel, str, int]]:
    """Canary or blue-green: each record scored by the variant its key routes to, in order."""
    if len(records) == 1:  # one customer (POST /predict): no grouping
        cid = customer_ids[0] if customer_ids is not None else None
        key = caller if cid is None else cid if type(cid) is str else str(cid)
        if route.to_challenger(key) and route.challenger is not None:
            scored, served, variant, each_us = _score_challenger(
                service, model, route.challenger, records
            )
        else:
            scored, served, variant, each_us = _score_champion(
                service, model, records, by_variant=True
            )
        return [(scored[0], served, variant, each_us)]
    if customer_ids is None:
        flags = [route.to_challenger(caller)] * len(records)
    else:
        flags = [route.to_challenger(caller if cid is None else str(cid)) for cid in customer_ids]
    out: list[Any] = [None] * len(records)
    for wanted in (False, True):
        index = [i for i, flag in enumerate(flags) if flag is wanted]
        if not index:
            continue
        group = [records[i] for i in index]
        if wanted and route.challenger is not None:
            scored, served, variant, each_us = _score_challenger(
                service, model, route.challenger, group
            )
        else:
            scored, served, variant, each_us = _score_champion(
                service, model, group, by_variant=True
            )
        for i, score in zip(index, scored, strict=True):
            out[i] = (score, served, variant, each_us)
    return out


def score_records(
    service: ServiceState,
    model: LoadedModel,
    records: list[dict[str, Any]],
    *,
    request_id: str | None,
    caller: str | None = None,
) -> tuple[list[dict[str, Any]], list[float]]:
    """Score validated records, hand the store writes over, count metrics; results and scores.

    A deployment in force (`service.rollout.route`) decides which variant answers each record
    (canary, blue-green) or has the challenger score them too after the answer (shadow);
    `caller` (the API key) routes records without a customer id.

    Raises SpoolFullError (a StoreError: 503) when the writer refuses them: then nothing is
    served, counted or stored.
    """
    contract = model.contract
    id_column = contract.id_column
    customer_ids = [record.pop(id_column, None) for record in records] if id_column else None
    route = service.rollout.route
    if route.splits:
        routed = _routed(service, model, route, records, customer_ids, caller)
    else:
        scored, _, _, each_us = _score_champion(
            service, model, records, by_variant=route.mode != "none"
        )
        routed = [(score, model, "champion", each_us) for score in scored]
    created_at = datetime.now(UTC).isoformat()
    results: list[dict[str, Any]] = []
    stored: list[dict[str, Any]] = []  # the store's row shape (PredictionRecord.to_json_dict)
    prediction_ids = new_prediction_ids(len(records))
    out_of_range: list[tuple[str, str]] = []
    for i, (record, (score, served, variant, each_us)) in enumerate(
        zip(records, routed, strict=True)
    ):
        prediction_id = prediction_ids[i]
        customer_id = customer_ids[i] if customer_ids is not None else None
        name, version = served.name, served.version
        results.append(
            {
                "customer_id": customer_id,
                "churn_probability": score.probability,
                "will_churn": score.will_churn,
                "risk_level": score.risk_level,
                "confidence": score.confidence,
                "reasons": score.reasons,
                "model_name": name,
                "model_version": version,
                "prediction_id": prediction_id,
            }
        )
        stored.append(
            {
                "prediction_id": prediction_id,
                "created_at": created_at,
                "request_id": request_id,
                "source": "api",
                "model_name": name,
                "model_version": version,
                "customer_id": None if customer_id is None else str(customer_id),
                "features": record,
                "churn_probability": score.probability,
                "will_churn": score.will_churn,
                "risk_level": score.risk_level,
                "reasons": score.reasons,
                "variant": variant,
                "latency_us": each_us,
            }
        )
        out_of_range += contract.out_of_range(record)
    if service.writer is not None:  # first: a refusal (spool full) serves and counts nothing
        service.writer.enqueue_json(stored)
    probabilities = [r["churn_probability"] for r in results]
    service.metrics.observe_predictions(
        probabilities, [r["risk_level"] for r in results], out_of_range
    )
    sampled = route.sample_rate >= 1.0 or random.random() < route.sample_rate
    if route.mode == "shadow" and route.challenger is not None and sampled:
        job = ShadowJob(
            route.challenger,
            records,
            prediction_ids,
            created_at,
            time.perf_counter(),
            probabilities[-1] if probabilities else None,
        )
        service.rollout.shadow(job)
    return results, probabilities


def predict_one(
    service: ServiceState, body: bytes, *, request_id: str | None, caller: str | None = None
) -> bytes:
    """Validate one customer's JSON, score it, hand the store write over; the response body."""
    model = service.require_model()
    item = validate_body(body, model.contract.customer, allowed=model.contract.allowed)
    record = record_of(item, model.contract)
    results, _ = score_records(service, model, [record], request_id=request_id, caller=caller)
    return orjson.dumps(results[0], option=orjson.OPT_SERIALIZE_NUMPY)


async def predict_batch(
    service: ServiceState,
    model: LoadedModel,
    records: list[dict[str, Any]],
    *,
    request_id: str | None,
    caller: str | None = None,
) -> dict[str, Any]:
    """Score a batch (on the event loop when small, else in a worker thread); the response."""
    if len(records) <= INLINE_ROWS:
        results, probability = score_records(
            service, model, records, request_id=request_id, caller=caller
        )
    else:
        results, probability = await run_in_threadpool(
            lambda: score_records(service, model, records, request_id=request_id, caller=caller)
        )
    return {
        "predictions": results,
        "summary": batch_summary(results, probability),
        "model_name": model.name,
        "model_version": model.version,
    }


def batch_summary(results: list[dict[str, Any]], probability: list[float]) -> dict[str, Any]:
    """Counts by risk level, mean probability and predicted churn rate of a batch."""
    levels = {"low": 0, "medium": 0, "high": 0}
    churners = 0
    for result in results:
        levels[result["risk_level"]] = levels.get(result["risk_level"], 0) + 1
        churners += bool(result["will_churn"])
    count = len(results)
    return {
        "count": count,
        "by_risk_level": levels,
        "mean_probability": float(np.mean(probability)) if count else 0.0,
        "predicted_churn_rate": churners / count if count else 0.0,
    }


def record_feedback(service: ServiceState, record: FeedbackRecord) -> str:
    """Store a label now (after queued predictions, so it can attach to them); blocks, so call
    it from a worker thread.

    Returns "recorded", or "queued" when the label went to the writer's feedback spool: the
    database is down, or the label names a prediction_id the store does not hold. The writer
    checks spooled labels when it replays them and sets aside (counts, never stores) those whose
    prediction is still unknown, so the answer is the same whether the database is up or not.
    Raises StoreError when the label can be neither stored nor spooled.
    """
    store, writer = service.store, service.writer
    if store is None or writer is None:
        raise StoreError("prediction store is not open")
    flushed = writer.flush(timeout=5.0)
    if flushed and not writer.degraded:
        try:
            known = record.prediction_id is None or store.has_prediction(record.prediction_id)
            if known:
                store.write_feedback([record])
                return "recorded"
        except StoreError as exc:
            if not is_outage(exc):
                raise
    writer.spool_feedback([record])
    return "queued"
