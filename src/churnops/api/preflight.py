"""What the API refuses to start with, checked without importing the web stack.

`create_app()` runs these checks in every worker. `churnops serve --workers N` runs them once
before it execs into the supervisor, so a bad configuration still fails before anything binds,
but without importing FastAPI, the model stack and Prometheus first: that import was 1.3 s of
the 2 s the CLI spent before the first worker even started.
"""

from __future__ import annotations

import logging
from pathlib import Path

from churnops.api.ratelimit import check_worker_limits
from churnops.apikeys import KeyRing
from churnops.errors import ConfigError
from churnops.settings import Settings

logger = logging.getLogger(__name__)

PREDICT_ROUTES = ("/predict", "/predict/batch", "/feedback")
# The Swagger UI files /docs serves from the installed package (api/docs.py), never a CDN.
SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def docs_access(settings: Settings) -> str:
    """public | key | off for /docs (and its files) and /openapi.json (default: key in production)."""
    chosen = settings.serving.docs_access
    if chosen is not None:
        return chosen
    return "key" if settings.env == "production" else "public"


def keyring(settings: Settings) -> KeyRing:
    """The API keys; ConfigError in production when there are none."""
    production = settings.env == "production"
    ring = KeyRing(
        settings.serving.api_key_hashes,
        keys_file=settings.resolved_keys_file(),
        required=production,
    )
    if production and not ring.keys:
        raise ConfigError(
            "refusing to start: CHURNOPS_ENV=production needs API keys "
            "(run `churnops keys create`, or set serving.api_key_hashes)"
        )
    if not ring.enabled:
        logger.warning("API keys are off (env=%s): every route is open", settings.env)
    return ring


def route_limits(settings: Settings) -> dict[str, int]:
    """Requests per minute per route: the default for prediction routes, overridden per route."""
    limits = dict.fromkeys(PREDICT_ROUTES, settings.serving.rate_limit_per_minute)
    limits.update(settings.serving.rate_limits)
    return {route: limit for route, limit in limits.items() if limit > 0}


def swagger_ui_folder() -> Path:
    """The installed Swagger UI distribution."""
    import swagger_ui_bundle

    return Path(str(swagger_ui_bundle.swagger_ui_path))


def check_swagger_files(folder: Path) -> Path:
    """`folder` when it holds every file /docs serves; a broken install shows at start-up, not
    as a blank page."""
    missing = [name for name in SWAGGER_FILES if not (folder / name).is_file()]
    if missing:
        raise ConfigError(
            f"Swagger UI files missing from {folder}: {', '.join(missing)} "
            "(reinstall swagger-ui-bundle-v2, or set serving.docs_access: off)"
        )
    return folder


def preflight(settings: Settings) -> str | None:
    """Every check `create_app()` makes of `settings`: ConfigError for a refusal, else the
    start-up warning to print once (rate limits split between workers), or None."""
    keyring(settings)
    if docs_access(settings) != "off":
        check_swagger_files(swagger_ui_folder())
    return check_worker_limits(settings, route_limits(settings))
