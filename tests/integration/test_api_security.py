"""API keys, production refusal, rate limits (in process and shared through Redis), HTTPS."""

from __future__ import annotations

import json
import ssl
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from churnops.api.app import create_app
from churnops.api.ratelimit import RedisLimiter
from churnops.apikeys import hash_key
from churnops.cli.main import app as cli
from churnops.errors import ConfigError
from tests.conftest import TrainedModel
from tests.integration.test_api_support import (
    REDIS_URL,
    api_settings,
    example_record,
    live_server,
    need_service,
    wait_for,
)

pytestmark = pytest.mark.integration

KEY = "cho_test-key-0123456789"


def test_production_refuses_to_start_without_keys(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    settings = api_settings(trained_model, tmp_path)
    settings.env = "production"
    with pytest.raises(ConfigError, match="production needs API keys"):
        create_app(settings)
    settings.serving.api_key_hashes = [hash_key(KEY)]
    create_app(settings)  # with a key it builds


def test_serve_command_refuses_production_without_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURNOPS_ENV", "production")
    monkeypatch.setenv("CHURNOPS_SERVING__KEYS_FILE", str(tmp_path / "none.json"))
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "production needs API keys" in result.output


def test_keys_create_then_authenticate(trained_model: TrainedModel, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    result = CliRunner().invoke(
        cli, ["keys", "create", "--name", "crm", "--keys-file", str(keys_file)]
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    stored = json.loads(keys_file.read_text())["keys"]
    assert len(stored) == 1 and key not in keys_file.read_text()
    assert stored[0]["hash"].startswith("sha256$") and stored[0]["name"] == "crm"

    settings = api_settings(trained_model, tmp_path, keys_file=str(keys_file))
    settings.env = "production"
    record = example_record(trained_model)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
        for path in ("/metrics", "/model"):
            response = client.get(path)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert client.post("/admin/reload").status_code == 401
        assert client.post("/predict", json=record).status_code == 401
        wrong = {"Authorization": "Bearer cho_wrong"}
        assert client.post("/predict", json=record, headers=wrong).json()["message"] == (
            "invalid API key"
        )
        good = {"Authorization": f"Bearer {key}"}
        assert client.post("/predict", json=record, headers=good).status_code == 200
        assert client.get("/metrics", headers=good).status_code == 200
        assert client.post("/admin/reload", headers=good).json()["status"] == "unchanged"
        spec = client.get("/openapi.json").json()
        assert "bearer" in spec["components"]["securitySchemes"]

        listed = CliRunner().invoke(cli, ["keys", "list", "--json", "--keys-file", str(keys_file)])
        assert json.loads(listed.stdout)[0]["id"] == stored[0]["id"]
        revoked = CliRunner().invoke(
            cli, ["keys", "revoke", stored[0]["id"], "--keys-file", str(keys_file)]
        )
        assert revoked.exit_code == 0 and json.loads(keys_file.read_text())["keys"] == []
        # The running service notices within about a second; production stays closed.
        assert wait_for(
            lambda: client.post("/predict", json=record, headers=good).status_code == 401,
            timeout=5,
        )
        assert client.post("/predict", json=record).status_code == 401


def _hammer(client: TestClient, record: dict[str, Any], n: int, **headers: str) -> list[Any]:
    return [client.post("/predict", json=record, headers=headers or None) for _ in range(n)]


def test_rate_limit_in_process(trained_model: TrainedModel, tmp_path: Path) -> None:
    settings = api_settings(
        trained_model, tmp_path, rate_limit_per_minute=5, rate_limits={"/model": 2}
    )
    settings.serving.api_key_hashes = [hash_key(KEY), hash_key(KEY + "2")]
    record = example_record(trained_model)
    with TestClient(create_app(settings)) as client:
        first = _hammer(client, record, 7, authorization=f"Bearer {KEY}")
        assert [r.status_code for r in first] == [200] * 5 + [429] * 2
        limited = first[-1]
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"] == "rate_limited"
        # Another key has its own budget; a route without a limit is not limited.
        other = _hammer(client, record, 2, authorization=f"Bearer {KEY}2")
        assert [r.status_code for r in other] == [200, 200]
        auth = {"authorization": f"Bearer {KEY}"}
        codes = [client.get("/model", headers=auth).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert all(client.get("/health").status_code == 200 for _ in range(10))
        text = client.get("/metrics", headers=auth).text
        assert 'churnops_rate_limited_requests_total{route="/predict"} 2.0' in text


def test_rate_limit_by_client_address_without_keys(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    settings = api_settings(trained_model, tmp_path, rate_limit_per_minute=3)
    record = example_record(trained_model)
    with TestClient(create_app(settings)) as client:
        assert [r.status_code for r in _hammer(client, record, 4)] == [200, 200, 200, 429]


def test_rate_limit_shared_through_redis(trained_model: TrainedModel, tmp_path: Path) -> None:
    need_service("Redis", "127.0.0.1", 6379)
    prefix = f"churnops-test:{uuid.uuid4().hex}"
    settings = api_settings(trained_model, tmp_path, rate_limit_per_minute=4)
    settings.redis_url = REDIS_URL
    record = example_record(trained_model)
    # Two apps = two workers sharing one budget through Redis.
    app_a = create_app(settings, limiter=RedisLimiter(REDIS_URL, prefix=prefix))
    settings_b = settings.model_copy(deep=True)
    settings_b.serving.spool_path = str(tmp_path / "spool-b.jsonl")
    app_b = create_app(settings_b, limiter=RedisLimiter(REDIS_URL, prefix=prefix))
    with TestClient(app_a) as a, TestClient(app_b) as b:
        codes = [c.post("/predict", json=record).status_code for c in (a, b, a, b, a, b)]
        assert codes == [200, 200, 200, 200, 429, 429]
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    assert keys and all(0 < client.ttl(k) <= 61 for k in keys)
    client.delete(*keys)
    client.close()


def test_redis_down_fails_open(trained_model: TrainedModel, tmp_path: Path) -> None:
    settings = api_settings(trained_model, tmp_path, rate_limit_per_minute=1)
    limiter = RedisLimiter("redis://127.0.0.1:1/0", prefix="unused")
    record = example_record(trained_model)
    with TestClient(create_app(settings, limiter=limiter)) as client:
        assert [r.status_code for r in _hammer(client, record, 3)] == [200, 200, 200]


def test_https_with_self_signed_certificate(trained_model: TrainedModel, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    settings = api_settings(trained_model, tmp_path)
    record = example_record(trained_model)
    app = create_app(settings)
    with live_server(app, ssl_certfile=str(certfile), ssl_keyfile=str(keyfile)) as url:
        assert url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cafile))
        with httpx.Client(base_url=url, verify=context) as client:
            assert client.post("/predict", json=record).status_code == 200
        with httpx.Client(base_url=url) as untrusting, pytest.raises(httpx.ConnectError):
            untrusting.get("/health")
        plain = url.replace("https://", "http://")
        with httpx.Client(base_url=plain) as client, pytest.raises(httpx.HTTPError):
            client.get("/health")


class _BrokenLimiter:
    """A limiter whose backend fails in a way nobody planned for."""

    async def hit(self, bucket: str, limit: int) -> Any:
        raise RuntimeError("limiter exploded")

    async def close(self) -> None:
        return None


def test_unexpected_error_in_the_serving_layer_is_a_json_500(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """The serving layer runs in front of FastAPI's error middleware: it must answer by itself."""
    settings = api_settings(trained_model, tmp_path, rate_limit_per_minute=5)
    record = example_record(trained_model)
    app = create_app(settings, limiter=_BrokenLimiter())
    with TestClient(app, raise_server_exceptions=False) as client:
        for path, body in (("/predict", record), ("/predict/batch", {"customers": [record]})):
            response = client.post(path, json=body)
            assert response.status_code == 500
            assert response.json()["error"] == "internal_error"
            assert "exploded" not in response.text  # no internals leak to the client
        assert client.get("/health").status_code == 200  # routes without a limit are unaffected
        metrics = client.get("/metrics").text
    assert (
        'churnops_http_requests_total{method="POST",route="/predict",status="500"} 1.0' in metrics
    )
