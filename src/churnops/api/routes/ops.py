"""GET /health, /ready, /model and /metrics: liveness, readiness, what is served, Prometheus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from churnops.api.deps import ModelDep, ServiceDep
from churnops.api.errors import json_response
from churnops.api.schemas import ErrorOut, ModelOut, ReadyOut

router = APIRouter(tags=["operations"])


class StoreProbe:
    """The store check of /ready, waited for at most `timeout` seconds.

    A database that hangs (a network partition: packets dropped, nothing refused) blocks a ping
    for as long as TCP retries; /ready must answer anyway. One ping runs at a time: while it hangs,
    later checks wait only for what is left of its timeout instead of starting more (each would
    hold a thread).
    """

    def __init__(self, ping: Callable[[], Awaitable[bool]], *, timeout: float) -> None:
        self.ping = ping
        self.timeout = timeout
        self._running: asyncio.Future[bool] | None = None
        self._started = 0.0

    async def reachable(self) -> bool | None:
        """True or False as the ping answered; None when it did not answer in time."""
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self.ping())
            self._started = time.monotonic()
        left = self.timeout - (time.monotonic() - self._started)
        if left <= 0:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), left)
        except TimeoutError:
            return None


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Model loaded and prediction store reachable; degraded states by name",
    response_model=ReadyOut,
    responses={
        503: {"model": ReadyOut, "description": "No model loaded, or the store check timed out"}
    },
)
async def ready(service: ServiceDep, request: Request) -> Response:
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
    probe: StoreProbe = request.app.state.store_probe
    reachable = await probe.reachable()
    if state is None:
        checks["store"] = "not open"
        degraded.append("store_unreachable")
    elif reachable is None:
        # Hanging, not refusing: writes wait on it instead of going to the spool.
        checks["store"] = f"no answer within {probe.timeout:g} s (database hanging?)"
        degraded += ["store_timeout", "store_unreachable"]
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
    unready = model is None or reachable is None
    status = "ok" if not degraded else ("not_ready" if unready else "degraded")
    body: dict[str, Any] = {"status": status, "degraded": degraded, "checks": checks}
    # Without a model the instance cannot answer, and with a store that does not answer it cannot
    # tell whether what it serves is stored; a refusing store is ridden out by the spool.
    return json_response(body, 503 if unready else 200)


@router.get(
    "/model",
    summary="The served model: version, metrics, threshold, input schema",
    response_model=ModelOut,
    responses={503: {"model": ErrorOut, "description": "No model loaded"}},
)
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
