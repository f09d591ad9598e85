"""GET /deployment: the deployment policy in force and this worker's view of it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from churnops.api.deps import ServiceDep
from churnops.api.errors import json_response

router = APIRouter(tags=["deployment"])


@router.get("/deployment", summary="The deployment policy (shadow, canary, blue-green or none)")
async def deployment(service: ServiceDep) -> Response:
    return json_response(service.rollout.describe())
