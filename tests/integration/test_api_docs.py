"""The API's documentation as its users meet it: a generated OpenAPI client, /docs in a browser.

- aiopenapi3 builds a client from the live /openapi.json: it authenticates through the declared
  security scheme and parses /model and /ready into typed objects (a path without a response
  schema parses to nothing, which is what generated clients got before).
- /docs loads Swagger UI from the API's own files: the page names no other host, and Debian's
  headless Chromium renders the operations with no request leaving the machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from churnops.api.app import create_app
from churnops.api.docs import ASSET_PATHS
from churnops.apikeys import hash_key
from tests.support.api import api_settings, live_server
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, need_chromium
from tests.support.models import TrainedModel

pytestmark = pytest.mark.integration

KEY = "cho_docs-test-key-0123456789"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def keyed_api(
    trained_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A live production API with a key, its docs public (so a browser can read them)."""
    settings = api_settings(
        trained_model, tmp_path_factory.mktemp("docs-api"), docs_access="public"
    )
    settings.env = "production"
    settings.serving.api_key_hashes = [hash_key(KEY)]
    with live_server(create_app(settings)) as url:
        yield url


def test_the_spec_declares_bearer_auth_and_response_schemas(keyed_api: str) -> None:
    spec = httpx.get(keyed_api + "/openapi.json", timeout=10).json()
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert spec["paths"]["/model"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/ready"]["get"]  # probes stay open
    for path, name in (("/model", "ModelOut"), ("/ready", "ReadyOut")):
        schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert schema["schema"] == {"$ref": f"#/components/schemas/{name}"}, path
    model = spec["components"]["schemas"]["ModelOut"]
    assert {"name", "version", "threshold", "risk_bands", "schema", "input_example"} <= set(
        model["required"]
    )


def test_a_generated_client_authenticates_and_parses_model_and_ready(
    keyed_api: str, trained_model: TrainedModel
) -> None:
    from aiopenapi3 import OpenAPI

    api = OpenAPI.load_sync(keyed_api + "/openapi.json")
    ready = api._.ready_ready_get()
    assert ready.status == "ok" and ready.model_dump()["checks"]["store"] == "ok"
    # The client knows /model needs the declared scheme (and the server refuses it without).
    with pytest.raises(Exception, match=r"accepts \{bearer\}"):
        api._.model_info_model_get()
    assert httpx.get(keyed_api + "/model", timeout=10).status_code == 401
    api.authenticate(bearer=KEY)
    model = api._.model_info_model_get()
    version = trained_model.outcome.version
    assert model.version == str(version)
    assert model.risk_bands.high > model.risk_bands.medium
    assert 0 < model.threshold < 1
    assert isinstance(model.model_dump()["metrics"]["test"]["roc_auc"], float)
    # The schema is typed, so a client can build its form from it.
    schema = model.schema_
    columns = {column.name for column in schema.features} | {schema.id_column}
    assert set(model.model_dump()["input_example"]) <= columns


def _external_urls(text: str, base: str) -> list[str]:
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", text)
    return [
        url
        for url in urls
        if url.startswith(("http:", "https:", "//")) and not url.startswith(base)
    ]


def test_docs_page_names_no_other_host_and_its_files_are_served(keyed_api: str) -> None:
    page = httpx.get(keyed_api + "/docs", timeout=10)
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and _external_urls(page.text, keyed_api) == []
    for path in ASSET_PATHS:
        asset = httpx.get(keyed_api + path, timeout=10)
        assert asset.status_code == 200 and len(asset.content) > 100, path
    bundle = httpx.get(keyed_api + "/docs/assets/swagger-ui-bundle.js", timeout=10)
    assert "SwaggerUIBundle" in bundle.text and bundle.headers["content-type"].startswith(
        "text/javascript"
    )
    assert httpx.get(keyed_api + "/redoc", timeout=10).status_code in (401, 404)  # CDN-only: gone


@pytest.mark.slow
def test_docs_render_offline_in_a_real_browser(keyed_api: str) -> None:
    from playwright.sync_api import sync_playwright

    need_chromium()
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.on("request", lambda request: requested.append(request.url))
            # Anything not on the API's own address is refused, as on a machine without internet.
            page.route(
                re.compile(r"^(?!" + re.escape(keyed_api) + ").*"),
                lambda route: route.abort(),
            )
            page.goto(keyed_api + "/docs", wait_until="networkidle", timeout=60_000)
            page.wait_for_selector(".opblock-summary-path", timeout=60_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            assert {"/predict", "/model", "/ready"} <= {
                p.strip().replace("\u200b", "") for p in paths
            }
            assert page.locator("button.authorize").count() == 1  # the bearer scheme
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
        finally:
            browser.close()
    outside = [url for url in requested if not url.startswith(keyed_api)]
    assert outside == [], outside
    assert keyed_api + "/openapi.json" in requested
