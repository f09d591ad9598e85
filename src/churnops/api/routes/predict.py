"""POST /predict and /predict/batch: parse, call the serving use case (`api.service`), answer.

The handlers are `async def`: one customer takes well under a millisecond, less than a thread hop
would cost; `service.predict_batch` moves large batches to a worker thread.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from churnops.api import service as serving
from churnops.api.body import check_json_content_type, parse_body, request_id_of
from churnops.api.contract import record_of
from churnops.api.deps import ServiceState
from churnops.api.errors import json_response
from churnops.api.schemas import ERROR_RESPONSES, BatchOut, PredictionOut

router = APIRouter(tags=["predictions"])


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
    payload = serving.predict_one(
        service,
        await request.body(),
        request_id=_request_id(request),
        caller=request.headers.get("authorization"),
    )
    return Response(payload, media_type="application/json")


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
    body = await serving.predict_batch(
        service,
        model,
        records,
        request_id=_request_id(request),
        caller=request.headers.get("authorization"),
    )
    return json_response(body)
