"""Helpers shared by the API integration tests: settings, a live uvicorn server, a database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from churnops.settings import Settings
from tests.support.models import TrainedModel
from tests.support.services import postgres_base_url, redis_url, require_postgres
from tests.support.stores import free_port

# free_port is re-exported: API tests import it from here.
__all__ = [
    "POSTGRES_URL",
    "REDIS_URL",
    "ServeProcess",
    "answers_ready",
    "api_settings",
    "churnops_serve",
    "example_record",
    "free_port",
    "live_server",
    "post_json",
    "postgres_database",
    "wait_for",
]
POSTGRES_URL = postgres_base_url()
REDIS_URL = redis_url()


def api_settings(trained: TrainedModel, tmp_path: Path, **serving: Any) -> Settings:
    """The trained model's settings with a private store, spool and no polling by default."""
    settings = trained.settings.model_copy(deep=True)
    settings.database_url = f"sqlite:///{tmp_path / 'predictions.db'}"
    settings.serving.spool_path = str(tmp_path / "spool.jsonl")
    settings.serving.keys_file = str(tmp_path / "keys.json")
    settings.serving.reload_interval_seconds = 0
    settings.serving.store_flush_interval_seconds = 0.05
    settings.serving.rate_limit_per_minute = 0
    for key, value in serving.items():
        setattr(settings.serving, key, value)
    return settings


def example_record(trained: TrainedModel) -> dict[str, Any]:
    """The first complete training row (id and features) as JSON-ready values.

    (Taken from the training table the test owns: the model carries no real rows.)"""
    schema = trained.outcome.schema
    columns = [*([schema.id_column] if schema.id_column else []), *schema.feature_names]
    row = trained.frame[columns].dropna().iloc[0].to_dict()
    return {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


@contextmanager
def live_server(app: FastAPI, **config: Any) -> Iterator[str]:
    """Run `app` on uvicorn in a thread (lifespan included); yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    scheme = "https" if config.get("ssl_certfile") else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, uniquely named Postgres database; dropped afterwards. Yields its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    require_postgres(POSTGRES_URL)
    base = make_url(POSTGRES_URL)
    name = f"churnops_api_{uuid.uuid4().hex[:10]}"
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def post_json(client: httpx.Client, path: str, body: Any, **headers: str) -> httpx.Response:
    return client.post(path, json=body, headers=headers or None)


@dataclass
class ServeProcess:
    """A running `churnops serve`: its base URL, the process, and (after exit) what it logged."""

    url: str
    process: subprocess.Popen[bytes]
    stderr: str = ""


def answers_ready(url: str) -> bool:
    try:
        return httpx.get(url + "/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def serve_env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment plus what a `churnops serve` child needs to serve `settings`
    from `tmp_path` (spool, keys file), no rate limits, no reload poller; `extra` on top."""
    return os.environ | {
        "CHURNOPS_HOME": settings.home,
        "CHURNOPS_TRACKING_URI": settings.resolved_tracking_uri(),
        "CHURNOPS_DATABASE_URL": settings.resolved_database_url(),
        "CHURNOPS_SERVING__SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "CHURNOPS_SERVING__KEYS_FILE": str(tmp_path / "keys.json"),
        "CHURNOPS_SERVING__RATE_LIMIT_PER_MINUTE": "0",
        "CHURNOPS_SERVING__RELOAD_INTERVAL_SECONDS": "0",
        **extra,
    }


@contextmanager
def churnops_serve(env: dict[str, str], *args: str) -> Iterator[ServeProcess]:
    """`churnops serve ARGS` on a free port in its own process group (workers, writer children),
    ready before it is handed over; SIGTERM to the group afterwards, its stderr kept."""
    port = free_port()
    churnops = str(Path(sys.executable).parent / "churnops")
    process = subprocess.Popen(
        [churnops, "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    served = ServeProcess(f"http://127.0.0.1:{port}", process)
    try:
        assert wait_for(lambda: answers_ready(served.url), timeout=120), "server did not start"
        yield served
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
        served.stderr = errors.decode()
