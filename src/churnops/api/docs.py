"""`/docs`: Swagger UI served from the files of the `swagger-ui-bundle-v2` package, never a CDN.

FastAPI's own /docs page loads its script and stylesheet from a CDN, so it is blank on a machine
without internet access; /redoc does the same and is not served. The three files the page uses are
answered from the installed package, by exact path (they hold no part of the API's contract).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from churnops.api.preflight import SWAGGER_FILES, check_swagger_files, swagger_ui_folder

DOCS_PATH = "/docs"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
ASSETS_PREFIX = "/docs/assets/"
ASSET_PATHS = frozenset(ASSETS_PREFIX + name for name in SWAGGER_FILES)
# Swagger UI would otherwise send the document to validator.swagger.io for a badge.
UI_PARAMETERS = {"validatorUrl": None, "persistAuthorization": False}


def install_docs(app: FastAPI, *, title: str, openapi_url: str) -> frozenset[str]:
    """Add /docs, its OAuth2 redirect and its assets to `app`; returns the paths added."""
    folder = check_swagger_files(swagger_ui_folder())

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - docs",
            swagger_js_url=ASSETS_PREFIX + "swagger-ui-bundle.js",
            swagger_css_url=ASSETS_PREFIX + "swagger-ui.css",
            swagger_favicon_url=ASSETS_PREFIX + "favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
            swagger_ui_parameters=UI_PARAMETERS,
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route(DOCS_PATH, swagger_ui, include_in_schema=False)
    app.add_api_route(OAUTH2_REDIRECT_PATH, oauth2_redirect, include_in_schema=False)
    for name, media_type in SWAGGER_FILES.items():
        app.add_api_route(
            ASSETS_PREFIX + name, _asset(folder / name, media_type), include_in_schema=False
        )
    return frozenset({DOCS_PATH, OAUTH2_REDIRECT_PATH}) | ASSET_PATHS


def _asset(path: Path, media_type: str) -> Callable[[], Awaitable[Response]]:
    async def asset() -> Response:
        # Versioned by the installed package: a browser may keep it for a day.
        headers = {"Cache-Control": "public, max-age=86400"}
        return FileResponse(path, media_type=media_type, headers=headers)

    return asset
