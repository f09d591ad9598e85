"""The FastAPI application: `create_app()` wires everything; the lifespan loads the model.

Nothing happens at import. `create_app()` reads settings only when none are given, refuses to
build a production app without API keys, and does no I/O; the store, the writer and the model are
opened in the lifespan and closed (queue flushed) on shutdown.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from churnops import __version__
from churnops.api.deps import ServiceState
from churnops.api.docs import ASSET_PATHS, install_docs
from churnops.api.errors import ApiError, error_response, install_error_handlers
from churnops.api.middleware import OPEN_PATHS, BodyTooLargeError, ServingMiddleware
from churnops.api.preflight import docs_access, keyring
from churnops.api.ratelimit import RateLimiter, check_worker_limits, per_worker_limits
from churnops.api.reload import ScorerLoader, VersionResolver
from churnops.api.routes import admin, deployment, feedback, home, ops, predict
from churnops.api.schemas import FeedbackIn
from churnops.settings import Settings, get_settings

logger = logging.getLogger(__name__)

TITLE = "churnops prediction API"
# Swagger UI and its files come from the installed package (api/docs.py); no /redoc (CDN only).
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json"}) | ASSET_PATHS


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: ServiceState = app.state.service
    await service.start()
    # Everything loaded so far (libraries, the model) lives as long as the process: moving it out
    # of the collector's reach keeps full collections from pausing requests for 100+ ms.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        await service.stop()


class ChurnopsAPI(FastAPI):
    """FastAPI with the serving layer (`ServingMiddleware`) in front of all of FastAPI's own.

    Every request passes metrics, API keys, rate limits and the body limit first; POST /predict is
    then answered right there, and everything else continues into FastAPI as usual. FastAPI's own
    layers (error, telemetry and body-limit middleware, the router) cost more per request than
    scoring a customer does, so the one route that has to be fast skips them; it handles its own
    errors with the same JSON shape.
    """

    front: ServingMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.front
        if front is None:
            await super().__call__(scope, receive, send)
            return
        await front(scope, receive, send)

    async def _inner(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    scorer_loader: ScorerLoader | None = None,
    resolve_alias: VersionResolver | None = None,
    limiter: RateLimiter | None = None,
) -> FastAPI:
    """Build the app; `scorer_loader`/`resolve_alias`/`limiter` are injectable for tests."""
    settings = settings if settings is not None else get_settings()
    docs = docs_access(settings)
    service = ServiceState(
        settings,
        keys=keyring(settings),
        scorer_loader=scorer_loader,
        resolve_alias=resolve_alias,
        limiter=limiter,
    )
    # Several workers without Redis: production refuses unless told, otherwise the limits are
    # split; the warning is for `churnops serve` to print once (each worker builds its own app).
    limits_warning = None
    if limiter is None:  # an injected limiter is the caller's business
        limits_warning = check_worker_limits(settings, service.limits)
        service.limits = per_worker_limits(settings, service.limits)
    served_docs = docs != "off"
    app = ChurnopsAPI(
        title=TITLE,
        version=__version__,
        description="Churn risk of customers from the registered champion model, with reasons.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's own page loads Swagger UI from a CDN: see install_docs
        redoc_url=None,
        openapi_url="/openapi.json" if served_docs else None,
    )
    if served_docs:
        install_docs(app, title=TITLE, openapi_url="/openapi.json")
    app.state.service = service
    app.state.limits_warning = limits_warning
    app.state.store_probe = ops.StoreProbe(
        service.store_reachable, timeout=settings.serving.ready_timeout_seconds
    )
    paths = set(DOCS_PATHS) if served_docs else set()
    for router in (
        predict.router,
        feedback.router,
        ops.router,
        admin.router,
        home.router,
        deployment.router,
    ):
        app.include_router(router)
        paths.update(getattr(route, "path", "") for route in router.routes)
    install_error_handlers(app)

    async def _too_large(_: Request, exc: Exception) -> Response:
        return error_response(ApiError(413, "body_too_large", str(exc)))

    app.add_exception_handler(BodyTooLargeError, _too_large)
    # Documentation shows the whole contract (categories, ranges): in production behind the key.
    open_paths = OPEN_PATHS | DOCS_PATHS if docs == "public" else OPEN_PATHS - DOCS_PATHS
    app.front = ServingMiddleware(
        app._inner, service=service, routes=frozenset(paths - {""}), open_paths=open_paths
    )
    app.openapi = lambda: _openapi(app, service)  # type: ignore[method-assign]
    return app


def _hoist(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Move pydantic `$defs` into components.schemas and point `$ref`s at them."""
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    return schema


def _openapi(app: FastAPI, service: ServiceState) -> dict[str, Any]:
    """OpenAPI with request bodies from the served model's contract (and its input example)."""
    model = service.models.current
    cache_key = (model.name, model.version) if model else None
    cached = getattr(app.state, "openapi_cache", None)
    if cached is not None and cached[0] == cache_key:
        return cached[1]
    spec = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        servers=[{"url": "/"}],  # the spec's default made explicit: generated clients need one
    )
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    ref = "#/components/schemas/{model}"
    bodies: dict[str, Any] = {"feedback": FeedbackIn}
    if model is not None:
        bodies["customer"] = model.contract.customer
        bodies["batch"] = model.contract.batch
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            kind = operation.pop("x-churnops-body", None) if isinstance(operation, dict) else None
            if kind is None:
                continue
            body_model = bodies.get(kind)
            if body_model is None:  # no model loaded yet: any object
                content_schema: dict[str, Any] = {"type": "object"}
            else:
                content_schema = _hoist(body_model.model_json_schema(ref_template=ref), components)
                components[body_model.__name__] = content_schema
                content_schema = {"$ref": ref.format(model=body_model.__name__)}
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": content_schema}},
            }
    if service.keys.enabled:
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, path_item in spec.get("paths", {}).items():
            if path in ("/", "/health", "/ready"):
                continue
            for operation in path_item.values():
                operation["security"] = [{"bearer": []}]
    app.state.openapi_cache = (cache_key, spec)
    return spec
