"""Run the store's Alembic migrations programmatically (no alembic.ini, works from any CWD)."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from churnops.errors import StoreError
from churnops.store.engine import make_engine, parse_url, safe_url, sqlite_path

logger = logging.getLogger(__name__)

SCRIPT_LOCATION = "churnops.store:migrations"
# Arbitrary constant: serialises concurrent upgrades (several API workers starting at once).
_PG_LOCK_KEY = 0x43_48_55_52  # "CHUR"


def alembic_config() -> Config:
    """An Alembic Config pointing at the migrations shipped inside the package."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head_revision() -> str | None:
    """The newest migration shipped with this version of churnops."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The migration the database is at, or None when it was never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_connection(connection: Connection) -> None:
    """Migrate to head inside the caller's transaction (Postgres: under an advisory lock)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def upgrade_engine(engine: Engine) -> None:
    """Migrate the database behind `engine` to head; raise StoreError when it cannot."""
    try:
        with engine.begin() as connection:
            upgrade_connection(connection)
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot migrate the prediction store at {safe_url(engine.url)}: {exc}"
        ) from exc
    logger.debug("prediction store at %s is at revision %s", safe_url(engine.url), head_revision())


def ensure_sqlite_directory(url: str | URL) -> None:
    """Create the directory of a SQLite database file, which SQLite will not do itself."""
    path = sqlite_path(parse_url(url))
    if path is None:
        return
    try:
        path.expanduser().parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the directory for SQLite database {path}: {exc}") from exc


def upgrade_schema(url: str, *, create_dirs: bool = True) -> None:
    """Create or migrate the prediction store schema at `url` to the newest revision.

    With `create_dirs`, the directory of a SQLite file is created first (the default
    `.churnops/predictions.db` usually does not exist on a fresh checkout).
    """
    if create_dirs:
        ensure_sqlite_directory(url)
    engine = make_engine(url)
    try:
        upgrade_engine(engine)
    finally:
        engine.dispose()
