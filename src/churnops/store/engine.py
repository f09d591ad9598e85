"""Engine factory: one place that knows the SQLite and PostgreSQL quirks the store relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from churnops.errors import StoreError

SQLITE_BUSY_TIMEOUT_MS = 5_000


def parse_url(url: str | URL) -> URL:
    """Parse a database URL, raising StoreError with the reason when it is malformed."""
    try:
        return make_url(url)
    except Exception as exc:  # ArgumentError, ValueError: both mean "not a URL"
        raise StoreError(f"invalid database URL: {exc}") from exc


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def is_sqlite_memory(url: URL) -> bool:
    return is_sqlite(url) and url.database in (None, "", ":memory:")


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None for memory databases and other backends."""
    if not is_sqlite(url) or is_sqlite_memory(url) or url.database is None:
        return None
    if url.database.startswith("file:"):  # URI filename; leave it to SQLite
        return None
    return Path(url.database)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the API and monitoring read while the writer process writes; busy_timeout
    absorbs lock waits."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        # 64 MiB of page cache (default 2 MiB): the indexes of a store with millions of rows
        # stay in memory instead of being re-read from the OS for every insert.
        cursor.execute("PRAGMA cache_size = -65536")
    finally:
        cursor.close()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def make_engine(url: str | URL, *, connect_timeout: float = 5.0, echo: bool = False) -> Engine:
    """Create (without connecting) an engine tuned for the store: pre-ping, timeouts, SQLite WAL."""
    parsed = parse_url(url)
    # orjson: the JSON columns are most of a prediction row, and stdlib json was a third of the
    # writer's time under load.
    kwargs: dict[str, Any] = {
        "echo": echo,
        "future": True,
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
    }
    connect_args: dict[str, Any] = {}
    if is_sqlite(parsed):
        # Pooled connections are handed from thread to thread (the API's worker threads).
        connect_args["check_same_thread"] = False
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_MS / 1000
        if is_sqlite_memory(parsed):
            kwargs["poolclass"] = StaticPool  # one shared connection, or each sees its own db
    else:
        kwargs["pool_pre_ping"] = True  # survive a database restart without a failed request
        if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = max(1, round(connect_timeout))
    kwargs["connect_args"] = connect_args
    try:
        engine = create_engine(parsed, **kwargs)
    except Exception as exc:  # missing driver, bad options
        raise StoreError(f"cannot create a database engine for {safe_url(parsed)}: {exc}") from exc
    if is_sqlite(parsed) and not is_sqlite_memory(parsed):
        event.listen(engine, "connect", _on_sqlite_connect)
    return engine


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for logs and error messages."""
    try:
        return parse_url(url).render_as_string(hide_password=True)
    except StoreError:
        return "<invalid url>"
