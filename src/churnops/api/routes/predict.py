"""POST /predict and /predict/batch: validate, score in one vectorised call, log off the path.

The handlers are `async def` and score inline for small requests: one customer takes well under a
millisecond, less than a thread hop would cost. Large batches go to a worker thread so they never
stall the event loop.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from churnops.api.body import check_json_content_type, parse_body, request_id_of, validate_body
from churnops.api.contract import record_of
from churnops.api.deps import ServiceState
from churnops.api.errors import json_response
from churnops.api.reload import LoadedModel
from churnops.api.schemas import ERROR_RESPONSES, BatchOut, PredictionOut
from churnops.store.records import new_prediction_ids

router = APIRouter(tags=["predictions"])

INLINE_ROWS = 256  # up to here scoring takes ~2 ms: a thread hop would cost more than it saves


def score_records(
    service: ServiceState,
    model: LoadedModel,
    records: list[dict[str, Any]],
    *,
    request_id: str | None,
) -> tuple[list[dict[str, Any]], list[float]]:
    """Score validated records, count metrics, enqueue the store writes; results and scores."""
    contract = model.contract
    id_column = contract.id_column
    customer_ids = [record.pop(id_column, None) for record in records] if id_column else None
    scored = model.scorer.score_rows(records)
    created_at = datetime.now(UTC).isoformat()
    name, version = model.name, model.version
    results: list[dict[str, Any]] = []
    stored: list[dict[str, Any]] = []  # the store's row shape (PredictionRecord.to_json_dict)
    prediction_ids = new_prediction_ids(len(records))
    out_of_range: list[tuple[str, str]] = []
    for i, (record, score) in enumerate(zip(records, scored, strict=True)):
        prediction_id = prediction_ids[i]
        customer_id = customer_ids[i] if customer_ids is not None else None
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
            }
        )
        out_of_range += contract.out_of_range(record)
    if service.writer is not None:  # first: a refusal (spool full) serves and counts nothing
        service.writer.enqueue_json(stored)
    probabilities = [score.probability for score in scored]
    service.metrics.observe_predictions(
        probabilities, [score.risk_level for score in scored], out_of_range
    )
    return results, probabilities


def _request_id(request: Request) -> str | None:
    return request_id_of(next((v for k, v in request.headers.raw if k == b"x-request-id"), None))


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
    payload = predict_one(service, await request.body(), request_id=_request_id(request))
    return Response(payload, media_type="application/json")


def predict_one(service: ServiceState, body: bytes, *, request_id: str | None) -> bytes:
    """Validate one customer's JSON, score it, enqueue the store write; the response body."""
    model = service.require_model()
    item = validate_body(body, model.contract.customer, allowed=model.contract.allowed)
    record = record_of(item, model.contract)
    results, _ = score_records(service, model, [record], request_id=request_id)
    return orjson.dumps(results[0], option=orjson.OPT_SERIALIZE_NUMPY)


def _summary(results: list[dict[str, Any]], probability: list[float]) -> dict[str, Any]:
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
