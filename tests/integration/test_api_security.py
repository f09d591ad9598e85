"""API keys, production refusal, rate limits (in process and shared through Redis), HTTPS."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from churnops.api.app import create_app
from churnops.api.ratelimit import RedisLimiter
from churnops.apikeys import add_key, hash_key
from churnops.cli.main import app as cli
from churnops.errors import ConfigError
from tests.support.api import (
    REDIS_URL,
    answers_ready,
    api_settings,
    churnops_serve,
    example_record,
    live_server,
    postgres_database,
    wait_for,
)
from tests.support.models import TrainedModel
from tests.support.services import require_module, require_redis

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


@pytest.mark.parametrize("workers", ["1", "2"])  # 2: checked by api.preflight, not create_app
def test_serve_command_refuses_production_without_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    monkeypatch.setenv("CHURNOPS_ENV", "production")
    monkeypatch.setenv("CHURNOPS_SERVING__KEYS_FILE", str(tmp_path / "none.json"))
    result = CliRunner().invoke(cli, ["serve", "--port", "1", "--workers", workers])
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
        assert client.get("/openapi.json").status_code == 401  # production: docs need the key
        spec = client.get("/openapi.json", headers=good).json()
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
    require_redis(REDIS_URL)
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
    trustme = require_module("trustme")
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


DOC_ROUTES = ("/docs", "/docs/assets/swagger-ui-bundle.js", "/openapi.json")


@pytest.mark.parametrize(
    ("env", "docs_access", "open_status", "keyed_status"),
    [
        ("production", None, 401, 200),  # production default: behind the key like the rest
        ("production", "public", 200, 200),
        ("production", "off", 401, 404),  # not served: an unknown path, behind the key
        ("development", "off", 401, 404),
        ("development", None, 200, 200),  # development stays open
        ("development", "key", 401, 200),
    ],
)
def test_docs_follow_the_docs_access_setting(
    trained_model: TrainedModel,
    tmp_path: Path,
    env: str,
    docs_access: str | None,
    open_status: int,
    keyed_status: int,
) -> None:
    settings = api_settings(trained_model, tmp_path, docs_access=docs_access)
    settings.env = env
    settings.serving.api_key_hashes = [hash_key(KEY)]
    with TestClient(create_app(settings)) as client:
        for path in DOC_ROUTES:
            assert client.get(path).status_code == open_status, path
            keyed = client.get(path, headers={"Authorization": f"Bearer {KEY}"})
            assert keyed.status_code == keyed_status, path
        assert client.get("/health").status_code == 200  # probes stay open
        assert client.get("/ready").status_code == 200


def test_keys_revoke_help_tells_the_truth() -> None:
    result = CliRunner().invoke(cli, ["keys", "revoke", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "within a second" in text and "restart" not in text


def test_production_refuses_unsplit_limits_with_several_workers(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    settings = api_settings(trained_model, tmp_path, workers=2, rate_limit_per_minute=20)
    settings.env = "production"
    settings.serving.api_key_hashes = [hash_key(KEY)]
    settings.redis_url = None
    with pytest.raises(ConfigError, match="2 workers without Redis"):
        create_app(settings)
    settings.serving.rate_limits_without_redis = "divide"  # asked for: each worker gets 10
    app = create_app(settings)
    assert app.state.service.limits["/predict"] == 10
    assert "each worker allows limit / 2" in app.state.limits_warning
    settings.redis_url = REDIS_URL  # one shared count: the limit as configured, no warning
    app = create_app(settings)
    assert app.state.service.limits["/predict"] == 20 and app.state.limits_warning is None
    # Development splits without being asked (and warns); one worker is left alone.
    dev = api_settings(trained_model, tmp_path, workers=3, rate_limit_per_minute=20)
    dev.redis_url = None
    assert create_app(dev).state.service.limits["/predict"] == 6
    dev.serving.workers = 1
    assert create_app(dev).state.service.limits["/predict"] == 20


def test_serve_command_refuses_unsplit_limits_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys_file = tmp_path / "keys.json"
    add_key(keys_file, name="test")
    monkeypatch.setenv("CHURNOPS_ENV", "production")
    monkeypatch.setenv("CHURNOPS_SERVING__KEYS_FILE", str(keys_file))
    monkeypatch.delenv("CHURNOPS_REDIS_URL", raising=False)
    # A port already taken: a server that did not refuse would fail to bind (exit 1), not hang.
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        result = CliRunner().invoke(cli, ["serve", "--port", port, "--workers", "2"])
    assert result.exit_code == 2, result.output
    assert "2 workers without Redis" in result.output
    assert "Traceback" not in result.output


class PartitionProxy:
    """A TCP forwarder to Postgres that can drop into a network partition and back.

    Partitioned, it keeps every connection open and accepts new ones, but forwards nothing:
    the database neither answers nor refuses, the way it looks when packets are dropped.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.flowing = threading.Event()
        self.flowing.set()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def partition(self) -> None:
        self.flowing.clear()

    def heal(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.flowing.set()
        for sock in [self._server, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self.flowing.wait()  # partitioned: the connection is accepted, then nothing happens
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        self._sockets.append(upstream)
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self.flowing.wait()  # partitioned: held, neither delivered nor refused
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


@pytest.mark.serial  # asserts a time: run alone, not beside another test
def test_ready_answers_in_time_while_the_database_hangs(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    with postgres_database() as direct_url:
        proxy = PartitionProxy(("127.0.0.1", 5432))
        proxied = direct_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        settings = api_settings(trained_model, tmp_path, ready_timeout_seconds=0.5)
        settings.database_url = proxied
        try:
            with live_server(create_app(settings)) as url, httpx.Client(base_url=url) as client:
                assert wait_for(lambda: client.get("/ready").json()["status"] == "ok")
                proxy.partition()
                time.sleep(1.2)  # past the one-second cache of the last good ping
                for _ in range(3):  # the first check starts the ping, later ones find it hanging
                    started = time.monotonic()
                    response = client.get("/ready", timeout=15)
                    elapsed = time.monotonic() - started
                    assert elapsed < 1.5, f"/ready took {elapsed:.1f} s"
                    assert response.status_code == 503, response.text
                    body = response.json()
                    assert "store_timeout" in body["degraded"]
                    assert body["checks"]["store"].startswith("no answer within 0.5 s")
                    assert body["checks"]["model"].startswith("ok")
                assert client.get("/health", timeout=2).status_code == 200
                proxy.heal()
                assert wait_for(lambda: client.get("/ready", timeout=5).status_code == 200)
        finally:
            proxy.close()


@pytest.mark.slow
def test_two_workers_without_redis_keep_one_limit(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """`churnops serve --workers 2`, no Redis, 20 requests/minute per key: of 60 requests at
    most 20 get through (it used to be 37), and the start-up warning is printed once."""
    settings = api_settings(trained_model, tmp_path)
    keys_file = tmp_path / "keys.json"
    key, _ = add_key(keys_file, name="crm")
    env = {k: v for k, v in os.environ.items() if k != "CHURNOPS_REDIS_URL"} | {
        "CHURNOPS_HOME": settings.home,
        "CHURNOPS_TRACKING_URI": settings.resolved_tracking_uri(),
        "CHURNOPS_DATABASE_URL": settings.resolved_database_url(),
        "CHURNOPS_SERVING__SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "CHURNOPS_SERVING__KEYS_FILE": str(keys_file),
        "CHURNOPS_SERVING__RATE_LIMIT_PER_MINUTE": "20",
        "CHURNOPS_SERVING__RELOAD_INTERVAL_SECONDS": "0",
    }
    record = example_record(trained_model)
    auth = {"Authorization": f"Bearer {key}"}
    with churnops_serve(env, "--workers", "2") as server:
        # Both workers ready: a run of fresh connections (spread over both) all answer 200.
        assert wait_for(lambda: all(answers_ready(server.url) for _ in range(10)), timeout=120)
        if time.time() % 60 > 45:  # all 60 requests inside one one-minute window
            time.sleep(61 - time.time() % 60)
        # A new connection per request lets the kernel hand them to either worker.
        codes = [
            httpx.post(server.url + "/predict", json=record, headers=auth, timeout=10).status_code
            for _ in range(60)
        ]
    log = server.stderr
    assert set(codes) <= {200, 429}, codes
    assert 10 <= codes.count(200) <= 20, codes
    assert log.count("rate limits are counted per worker") == 1, log[-3000:]
    assert "each worker allows limit / 2 per minute (/predict 20->10" in " ".join(log.split())
