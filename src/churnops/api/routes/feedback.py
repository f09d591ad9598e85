"""POST /feedback: the real outcome of a prediction, stored for performance monitoring."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from churnops.api import service as serving
from churnops.api.body import parse_body
from churnops.api.deps import ServiceState
from churnops.api.errors import ApiError, json_response
from churnops.api.schemas import ERROR_RESPONSES, FeedbackIn, FeedbackOut
from churnops.errors import StoreError
from churnops.store import FeedbackRecord

router = APIRouter(tags=["feedback"])


@router.post(
    "/feedback",
    summary="Record the real outcome for a prediction_id or a customer_id (idempotent)",
    response_model=None,
    responses={
        200: {"model": FeedbackOut, "description": "Stored"},
        202: {
            "model": FeedbackOut,
            "description": "Queued: the database is down, or the prediction_id is not stored "
            "(checked again on replay; still unknown, set aside and counted, not stored)",
        },
        **ERROR_RESPONSES,
    },
    openapi_extra={"x-churnops-body": "feedback"},
)
async def feedback(request: Request) -> Response:
    service: ServiceState = request.app.state.service
    item = await parse_body(request, FeedbackIn)
    customer_id = None if item.customer_id is None else str(item.customer_id)
    record = FeedbackRecord(
        label=item.label, prediction_id=item.prediction_id, customer_id=customer_id
    )
    try:
        status = await run_in_threadpool(serving.record_feedback, service, record)
    except StoreError as exc:
        raise ApiError(
            503,
            "store_unavailable",
            f"feedback not stored, retry later: {exc}",
            headers={"Retry-After": "5"},
        ) from None
    return json_response(
        {
            "status": status,
            "prediction_id": item.prediction_id,
            "customer_id": customer_id,
            "label": item.label,
        },
        status=200 if status == "recorded" else 202,
    )
