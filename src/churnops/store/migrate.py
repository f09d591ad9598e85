"""Run the store's Alembic migrations programmatically (no alembic.ini, works from any CWD).

Alembic (with Mako and Pygments: ~0.2 s and ~15 MB to import) is imported only when a database
is not at the newest revision shipped here. The common case, a store already at head (every
`churnops predict` after the first, every worker start), is told apart with one SQLAlchemy read of
`alembic_version` compared with the heads read from the migration scripts' source text
(`shipped_heads`, tested to equal Alembic's own).
"""

from __future__ import annotations

import ast
import logging
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, column, select, table, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from churnops.errors import StoreError
from churnops.store.engine import make_engine, parse_url, safe_url, sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

SCRIPT_LOCATION = "churnops.store:migrations"
# The folder Alembic reads the revisions from (`script_location` above, its `versions/`).
VERSIONS_DIR = Path(__file__).parent / "migrations" / "versions"
# Alembic's default version table (env.py configures no other), in the default schema.
VERSION_TABLE = "alembic_version"
# Arbitrary constant: serialises concurrent upgrades (several API workers starting at once).
_PG_LOCK_KEY = 0x43_48_55_52  # "CHUR"
# A module-level assignment of a name Alembic reads from a revision script, annotated or not.
_SCRIPT_ASSIGNMENT = re.compile(
    r"^(?P<name>revision|down_revision|branch_labels|depends_on)\b[^=\n]*=(?P<value>[^\n]*)$",
    re.MULTILINE,
)


def alembic_config() -> Config:
    """An Alembic Config pointing at the migrations shipped inside the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head_revision() -> str | None:
    """The newest migration shipped with this version of churnops (asks Alembic)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _script_values(path: Path) -> dict[str, object] | None:
    """The literal values of a revision script's `revision`, `down_revision`, `branch_labels` and
    `depends_on`, from their one-line assignments at module level; None when one is assigned twice
    or is not a one-line literal (parsing whole scripts with `ast` cost ~1.5 ms a script)."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    values: dict[str, object] = {}
    for found in _SCRIPT_ASSIGNMENT.finditer(source):
        name = found.group("name")
        if name in values:
            return None
        try:
            values[name] = ast.literal_eval(found.group("value").strip())
        except (ValueError, SyntaxError):
            return None
    return values


def _as_revisions(value: object) -> tuple[str, ...] | None:
    """A `down_revision` as a tuple of ids; None when it is neither None, a str nor str items."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple | list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None


@cache
def shipped_heads() -> frozenset[str] | None:
    """The head revision(s) of the migrations shipped here, read from the scripts' source text
    without importing Alembic or the scripts.

    None when the scripts are not simple enough to read this way (a computed revision id, branch
    labels or dependencies): callers then ask Alembic. A test keeps this equal to Alembic's heads.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    # The files Alembic loads: *.py directly in versions/, not __init__.py nor editor lock files.
    for path in sorted(VERSIONS_DIR.glob("*.py")):
        if path.name.startswith(("__init__", ".#")):
            continue
        values = _script_values(path)
        if values is None:
            return None
        revision = values.get("revision")
        down = _as_revisions(values.get("down_revision"))
        if not isinstance(revision, str) or down is None:
            return None
        if values.get("branch_labels") is not None or values.get("depends_on") is not None:
            return None
        revisions.add(revision)
        parents.update(down)
    heads = frozenset(revisions - parents)
    return heads or None


def database_revisions(connection: Connection) -> frozenset[str]:
    """The revision(s) recorded in the database's version table (empty when never migrated).

    The same reads Alembic's `MigrationContext.get_current_heads` makes, without Alembic.
    """
    if not connection.dialect.has_table(connection, VERSION_TABLE):
        return frozenset()
    version = table(VERSION_TABLE, column("version_num"))
    return frozenset(str(row[0]) for row in connection.execute(select(version.c.version_num)))


def is_at_head(connection: Connection) -> bool:
    """Whether the database is at exactly the head revision(s) shipped here (no Alembic import).

    False also when that cannot be told without Alembic; the caller then migrates, which is a
    no-op for a database at head.
    """
    heads = shipped_heads()
    return heads is not None and database_revisions(connection) == heads


def current_revision(connection: Connection) -> str | None:
    """The migration the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade_connection(connection: Connection) -> None:
    """Migrate to head inside the caller's transaction (Postgres: under an advisory lock)."""
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def upgrade_engine(engine: Engine) -> None:
    """Migrate the database behind `engine` to head; raise StoreError when it cannot.

    A database already at head is only read (no Alembic, no lock, no transaction of DDL); any
    other (new, older, newer or unreadable without Alembic) goes through Alembic's upgrade, on
    Postgres under the advisory lock that serialises concurrent creators, which decides afresh.
    """
    try:
        with engine.connect() as connection:
            at_head = is_at_head(connection)
        if not at_head:
            with engine.begin() as connection:
                upgrade_connection(connection)
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot migrate the prediction store at {safe_url(engine.url)}: {exc}"
        ) from exc
    if logger.isEnabledFor(logging.DEBUG):
        heads = shipped_heads() if at_head else None
        logger.debug(
            "prediction store at %s is at revision %s",
            safe_url(engine.url),
            ", ".join(sorted(heads)) if heads else head_revision(),
        )


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
