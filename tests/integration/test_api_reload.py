"""Zero-downtime model updates: a new champion is swapped in under concurrent load, no request fails."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from churnops.api.app import create_app
from tests.support.api import api_settings, example_record, live_server, wait_for
from tests.support.models import TrainedModel

pytestmark = pytest.mark.integration


def _register_copy(trained: TrainedModel, name: str) -> str:
    """Register the champion's artifact again as a new version of `name`; returns the version."""
    client = trained.client
    source = client.get_model_version_by_alias(trained.settings.registry.model_name, "champion")
    with contextlib.suppress(Exception):  # already registered
        client.create_registered_model(name)
    version = client.create_model_version(name, source.source, run_id=source.run_id)
    return str(version.version)


async def _load(url: str, record: dict[str, Any], stop: asyncio.Event) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while not stop.is_set():
            response = await client.post("/predict", json=record)
            version = (
                response.json().get("model_version", "") if response.status_code == 200 else ""
            )
            seen.append((response.status_code, version))
    return seen


def test_reload_under_concurrent_load(trained_model: TrainedModel, tmp_path: Path) -> None:
    name = f"reload-test-{uuid.uuid4().hex[:8]}"
    first = _register_copy(trained_model, name)
    registry = trained_model.client
    registry.set_registered_model_alias(name, "champion", first)
    settings = api_settings(trained_model, tmp_path, model_uri=f"models:/{name}@champion")
    settings.serving.reload_interval_seconds = 0.5
    record = example_record(trained_model)

    with live_server(create_app(settings)) as url:

        async def scenario() -> tuple[list[tuple[int, str]], dict[str, Any]]:
            stop = asyncio.Event()
            workers = [asyncio.create_task(_load(url, record, stop)) for _ in range(8)]
            await asyncio.sleep(1.0)
            second = await asyncio.to_thread(_register_copy, trained_model, name)
            await asyncio.to_thread(registry.set_registered_model_alias, name, "champion", second)
            async with httpx.AsyncClient(base_url=url, timeout=60) as admin:
                result = (await admin.post("/admin/reload")).json()
            await asyncio.sleep(1.0)
            stop.set()
            seen = [item for batch in await asyncio.gather(*workers) for item in batch]
            return seen, result

        seen, result = asyncio.run(scenario())
        statuses = {status for status, _ in seen}
        assert statuses == {200}, f"failed requests during reload: {statuses}"
        versions = [version for _, version in seen]
        assert len(seen) > 100
        assert result["status"] in ("swapped", "unchanged")  # the poller may have been first
        assert versions[0] == first and versions[-1] != first
        assert {first, str(int(first) + 1)} == set(versions)

        # The poller notices an alias move without being asked.
        registry.set_registered_model_alias(name, "champion", first)
        with httpx.Client(base_url=url) as client:
            assert wait_for(lambda: client.get("/model").json()["version"] == first, timeout=20)
            text = client.get("/metrics").text
            assert 'churnops_model_reloads_total{result="swapped"}' in text
            assert f'version="{first}"' in text


def test_failed_reload_keeps_the_old_model(trained_model: TrainedModel, tmp_path: Path) -> None:
    calls = {"n": 0}
    scorer = trained_model.scorer()

    def flaky_loader(uri: str) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("artifact store down")
        return scorer, None

    from fastapi.testclient import TestClient

    settings = api_settings(trained_model, tmp_path)
    record = example_record(trained_model)
    with TestClient(create_app(settings, scorer_loader=flaky_loader)) as client:
        response = client.post("/admin/reload", params={"force": True})
        assert response.status_code == 503
        assert "artifact store down" in response.json()["error"]
        assert client.post("/predict", json=record).status_code == 200
        ready = client.get("/ready").json()
        assert ready["status"] == "ok" and "artifact store down" in ready["checks"]["model_reload"]


def test_no_model_means_not_ready_but_alive(trained_model: TrainedModel, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    settings = api_settings(trained_model, tmp_path, model_uri="models:/does-not-exist@champion")
    record = example_record(trained_model)
    started = time.monotonic()
    with TestClient(create_app(settings)) as client:
        assert time.monotonic() - started < 30
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["degraded"] == ["model_not_loaded"]
        response = client.post("/predict", json=record)
        assert response.status_code == 503 and response.json()["error"] == "model_not_loaded"
