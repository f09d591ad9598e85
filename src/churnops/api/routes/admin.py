"""POST /admin/reload: check the registry alias now and swap in a new champion."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from churnops.api.deps import ServiceDep
from churnops.api.errors import json_response

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/reload", summary="Reload the model if the alias moved (force: reload anyway)")
async def reload_model(service: ServiceDep, force: bool = False) -> Response:
    result = await service.reload(force=force)
    return json_response(result.to_dict(), 200 if result.status != "failed" else 503)
