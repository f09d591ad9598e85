"""The API's GET /: the service, the served model and where the docs and the app are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from churnops.api.app import create_app
from churnops.apikeys import hash_key
from churnops.errors import ModelNotFoundError
from tests.support.api import api_settings
from tests.support.models import TrainedModel

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_home_names_the_model_and_links_docs_and_app(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    settings = api_settings(trained_model, tmp_path)
    settings.serving.api_key_hashes = [hash_key("home-key-0123456789")]  # keys on
    settings.serving.app_url = "http://app.example:9000"
    with TestClient(create_app(settings)) as client:
        answer = client.get("/")  # open without a key: it is what a person's browser opens
        assert answer.status_code == 200
        body = answer.json()
        version = trained_model.client.get_model_version_by_alias(
            settings.registry.model_name, "champion"
        ).version
        assert body == {
            "service": "churnops prediction API",
            "model": {
                "name": settings.registry.model_name,
                "version": str(version),
                "alias": "champion",
            },
            "status": "ok",
            "links": {"docs": "/docs", "app": "http://app.example:9000"},
        }
        assert client.get(body["links"]["docs"]).status_code == 200
        assert client.get("/model").status_code == 401  # the rest still needs the key
        paths = client.get("/openapi.json").json()["paths"]
        assert "security" not in paths["/"]["get"]  # documented as open, like /health
        assert paths["/model"]["get"]["security"] == [{"bearer": []}]


def test_home_without_a_model_says_where_to_look(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    def no_model(uri: str) -> tuple[Any, Any]:
        raise ModelNotFoundError(f"no model at {uri}")

    settings = api_settings(trained_model, tmp_path)
    with TestClient(create_app(settings, scorer_loader=no_model)) as client:
        body = client.get("/").json()
    assert body["model"] is None
    assert "no model loaded" in body["status"]
    assert body["links"]["app"] == "http://127.0.0.1:8501"  # the default app address
