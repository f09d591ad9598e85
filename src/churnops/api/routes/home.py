"""GET /: what a person who opens the API's address sees: the service, the model, where to go."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from churnops.api.deps import ServiceDep

router = APIRouter(tags=["operations"])

SERVICE_NAME = "churnops prediction API"


@router.get("/", summary="The service, the served model and links to the docs and the app")
async def home(service: ServiceDep) -> dict[str, Any]:
    model = service.models.current
    served = (
        None
        if model is None
        else {"name": model.name, "version": model.version, "alias": model.alias}
    )
    return {
        "service": SERVICE_NAME,
        "model": served,
        "status": "ok" if model is not None else "no model loaded yet (see /ready)",
        "links": {"docs": "/docs", "app": service.settings.serving.app_url},
    }
