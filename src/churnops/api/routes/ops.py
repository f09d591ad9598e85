"""GET /health, /ready, /model and /metrics: liveness, readiness, what is served, Prometheus."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from churnops.api.deps import ModelDep, ServiceDep
from churnops.api.errors import json_response

router = APIRouter(tags=["operations"])


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Model loaded and prediction store reachable; degraded states by name",
    responses={503: {"description": "No model loaded"}},
)
async def ready(service: ServiceDep) -> Response:
    checks: dict[str, str] = {}
    degraded: list[str] = []
    model = service.models.current
    if model is None:
        reason = service.models.last_error or "still loading"
        checks["model"] = f"not loaded: {reason}"
        degraded.append("model_not_loaded")
    else:
        checks["model"] = f"ok: {model.name} version {model.version}"
        if service.models.last_error:
            checks["model_reload"] = f"last reload failed: {service.models.last_error}"
    state = service.writer_state()
    reachable = await service.store_reachable()
    if state is None:
        checks["store"] = "not open"
        degraded.append("store_unreachable")
    elif not reachable or state.degraded:
        why = state.reason or "database does not answer"
        checks["store"] = f"degraded: {why}"
        degraded.append("store_unreachable" if not reachable or "unreachable" in why else "store")
        if state.spooled_records or not reachable:
            degraded.append("store_spooling")
    else:
        checks["store"] = "ok"
    if state is not None:
        checks["store_queue_depth"] = str(state.queue_depth)
        checks["store_spooled_records"] = str(state.spooled_records)
    status = "ok" if not degraded else ("not_ready" if model is None else "degraded")
    body: dict[str, Any] = {"status": status, "degraded": degraded, "checks": checks}
    # Without a model the instance cannot answer; a store outage is ridden out by the spool.
    return json_response(body, 503 if model is None else 200)


@router.get("/model", summary="The served model: version, metrics, threshold, input schema")
async def model_info(model: ModelDep) -> Response:
    bundle = model.scorer.bundle
    return json_response(
        {
            "name": model.name,
            "version": model.version,
            "alias": model.alias,
            "uri": model.uri,
            "loaded_at": model.loaded_at.isoformat(),
            "candidate": bundle.candidate,
            "trained_at": bundle.trained_at,
            "metrics": bundle.metrics,
            "threshold": model.scorer.threshold,
            "risk_bands": model.scorer.risk_bands.model_dump(),
            "schema": model.scorer.schema.model_dump(mode="json"),
            "input_example": model.contract.example,
        }
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    await run_in_threadpool(service.refresh_monitoring)
    return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)
