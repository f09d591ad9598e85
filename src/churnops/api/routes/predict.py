"""POST /predict and /predict/batch: validate, score in one vectorised call, log off the path.

The handlers are `async def` and score inline for small requests: one customer takes well under a
millisecond, less than a thread hop would cost. Large batches go to a worker thread so they never
stall the event loop.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from churnops.api.body import check_json_content_type, parse_body, validate_body
from churnops.api.contract import record_of
from churnops.api.deps import ServiceState
from churnops.api.errors import json_response
from churnops.api.reload import LoadedModel
from churnops.api.schemas import ERROR_RESPONSES, BatchOut, PredictionOut
from churnops.store import PredictionRecord

router = APIRouter(tags=["predictions"])

INLINE_ROWS = 256  # up to here scoring takes ~2 ms: a thread hop would cost more than it saves


def score_records(
    service: ServiceState,
    model: LoadedModel,
    records: list[dict[str, Any]],
    *,
    request_id: str | None,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Score validated records, count metrics, enqueue the store writes."""
    scores = model.scorer.score_records(records, reasons=True)
    contract = model.contract
    id_column = contract.id_column
    probability = scores.probability.tolist()
    will_churn = scores.will_churn.tolist()
    risk_level = scores.risk_level.tolist()
    confidence = scores.confidence.tolist()
    reasons = scores.reasons or [[] for _ in records]
    now = datetime.now(UTC)
    results: list[dict[str, Any]] = []
    stored: list[PredictionRecord] = []
    out_of_range = service.metrics.out_of_range
    for i, record in enumerate(records):
        prediction_id = str(uuid.uuid4())
        customer_id = record.pop(id_column, None) if id_column else None
        explained = [r.to_dict() for r in reasons[i]]
        results.append(
            {
                "customer_id": customer_id,
                "churn_probability": probability[i],
                "will_churn": will_churn[i],
                "risk_level": risk_level[i],
                "confidence": confidence[i],
                "reasons": explained,
                "model_name": model.name,
                "model_version": model.version,
                "prediction_id": prediction_id,
            }
        )
        stored.append(
            PredictionRecord(
                features=record,
                churn_probability=probability[i],
                will_churn=will_churn[i],
                risk_level=risk_level[i],
                model_name=model.name,
                model_version=model.version,
                source="api",
                request_id=request_id,
                customer_id=customer_id,
                reasons=explained,
                prediction_id=prediction_id,
                created_at=now,
            )
        )
        for feature, side in contract.out_of_range(record):
            out_of_range.labels(feature, side).inc()
    if service.writer is not None:
        service.writer.enqueue(stored)
    service.metrics.predictions.observe(scores.probability, scores.risk_level)
    return results, scores.probability


def _request_id(request: Request) -> str | None:
    value = request.headers.get("x-request-id")
    return value[:128] if value else None


@router.post(
    "/predict",
    summary="Churn risk of one customer",
    response_model=None,
    responses={200: {"model": PredictionOut}, **ERROR_RESPONSES},
    openapi_extra={"x-churnops-body": "customer"},
)
async def predict(request: Request) -> Response:
    # Normally answered by `predict_one` straight from the serving middleware (no router); this
    # route documents /predict in OpenAPI and serves apps built without that middleware.
    service: ServiceState = request.app.state.service
    check_json_content_type(request)
    return predict_one(service, await request.body(), request_id=_request_id(request))


def predict_one(service: ServiceState, body: bytes, *, request_id: str | None) -> Response:
    """Validate one customer's JSON, score it, enqueue the store write, build the response."""
    model = service.require_model()
    item = validate_body(body, model.contract.customer, allowed=model.contract.allowed)
    record = record_of(item, model.contract)
    results, _ = score_records(service, model, [record], request_id=request_id)
    return json_response(results[0])


def _summary(results: list[dict[str, Any]], probability: np.ndarray) -> dict[str, Any]:
    levels = {"low": 0, "medium": 0, "high": 0}
    churners = 0
    for result in results:
        levels[result["risk_level"]] = levels.get(result["risk_level"], 0) + 1
        churners += bool(result["will_churn"])
    count = len(results)
    return {
        "count": count,
        "by_risk_level": levels,
        "mean_probability": float(probability.mean()) if count else 0.0,
        "predicted_churn_rate": churners / count if count else 0.0,
    }


@router.post(
    "/predict/batch",
    summary="Churn risk of many customers, in order, with a summary",
    response_model=None,
    responses={200: {"model": BatchOut}, **ERROR_RESPONSES},
    openapi_extra={"x-churnops-body": "batch"},
)
async def predict_batch(request: Request) -> Response:
    service: ServiceState = request.app.state.service
    model = service.require_model()
    batch = await parse_body(request, model.contract.batch, allowed=model.contract.allowed)
    records = [record_of(item, model.contract) for item in batch.customers]  # type: ignore[attr-defined]
    request_id = _request_id(request)
    if len(records) <= INLINE_ROWS:
        results, probability = score_records(service, model, records, request_id=request_id)
    else:
        results, probability = await run_in_threadpool(
            score_records, service, model, records, request_id=request_id
        )
    body = {
        "predictions": results,
        "summary": _summary(results, probability),
        "model_name": model.name,
        "model_version": model.version,
    }
    return json_response(body)
