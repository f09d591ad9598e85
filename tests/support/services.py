"""What a test needs from the machine: Postgres, Redis, Java, an optional package.

Every check goes through `needs`: locally a missing service skips the test with the reason; under
`CI=true` it fails, so CI can never pass by skipping what it was meant to run.
"""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType
from typing import NoReturn

import pytest
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def needs(service: str, reason: str) -> NoReturn:
    """The test cannot run without `service`: fail under CI, skip with `reason` otherwise."""
    message = f"needs {service}: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: required, not skipped)", pytrace=False)
    pytest.skip(message, allow_module_level=True)  # also from a module's top level (pyspark)


def postgres_base_url() -> str:
    return os.environ.get("CHURNOPS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def redis_url() -> str:
    return os.environ.get("CHURNOPS_TEST_REDIS_URL", DEFAULT_REDIS_URL)


def libpq_dsn(url: str) -> str:
    """psycopg connection string for a SQLAlchemy URL (drops the +driver)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def require_postgres(url: str) -> None:
    """Postgres answers `SELECT 1` at `url`."""
    import psycopg

    try:
        with psycopg.connect(libpq_dsn(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        needs("PostgreSQL", f"not reachable at {make_url(url)!r}: {exc}")


def require_redis(url: str) -> None:
    """Redis answers PING at `url`."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        needs("Redis", f"not reachable at {url}: {exc}")


def require_java() -> None:
    """A `java` executable on PATH (what local Spark starts)."""
    if shutil.which("java") is None:
        needs("Java", "no `java` on PATH (Spark needs a JRE 17)")


def require_module(name: str) -> ModuleType:
    """Import and return `name` (an optional dependency, e.g. pyspark)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        needs(name, f"cannot import {name}: {exc}")
