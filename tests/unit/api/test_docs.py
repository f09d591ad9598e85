"""/docs is built from the installed Swagger UI files; a broken install is one readable error."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from churnops.api import docs
from churnops.errors import ConfigError


def test_the_page_and_its_files_come_from_the_package() -> None:
    app = FastAPI(docs_url=None, redoc_url=None)
    paths = docs.install_docs(app, title="t", openapi_url="/openapi.json")
    assert paths == {"/docs", "/docs/oauth2-redirect"} | docs.ASSET_PATHS
    with TestClient(app) as client:
        page = client.get("/docs").text
        assert "/docs/assets/swagger-ui-bundle.js" in page and "http" not in page.split("<body>")[0]
        assert '"validatorUrl": null' in page
        for path in docs.ASSET_PATHS:
            answer = client.get(path)
            name = path.rsplit("/", 1)[1]
            assert answer.content == (docs.swagger_ui_folder() / name).read_bytes()


def test_missing_files_refuse_to_start_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docs, "swagger_ui_folder", lambda: tmp_path)
    with pytest.raises(ConfigError, match=r"swagger-ui-bundle\.js, swagger-ui\.css"):
        docs.install_docs(FastAPI(), title="t", openapi_url="/openapi.json")
