"""Copying one database to a file and back: SQLite through its online backup API, PostgreSQL
through pg_dump/pg_restore of one schema.

PostgreSQL credentials go to the client programs in their environment (PGPASSWORD and friends),
never on their command line, where any user of the machine could read them in `ps`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

from churnops.errors import ChurnopsError
from churnops.operations.manifest import redact_url
from churnops.store.engine import is_sqlite, parse_url, sqlite_path

PG_TIMEOUT_SECONDS = 3600
# Relation kinds that make a schema "not empty": tables, partitioned tables, views, materialised
# views, sequences, foreign tables.
_RELKINDS = ("r", "p", "v", "m", "S", "f")


class DatabaseCopyError(ChurnopsError):
    """A database could not be copied out or in."""


@dataclass(frozen=True)
class Dumped:
    dialect: str
    tables: dict[str, int]
    schema: str | None


def dialect_of(url: str) -> str:
    parsed = parse_url(url)
    if is_sqlite(parsed):
        return "sqlite"
    if parsed.get_backend_name() == "postgresql":
        return "postgresql"
    raise DatabaseCopyError(
        f"cannot back up {redact_url(url)}: only SQLite and PostgreSQL databases are supported"
    )


def dump(url: str, target: Path) -> Dumped:
    """Copy the database at `url` into the file `target`; row counts of the same snapshot."""
    if dialect_of(url) == "sqlite":
        return Dumped("sqlite", _sqlite_dump(_sqlite_file(url), target), None)
    schema, tables = _pg_dump(parse_url(url), target)
    return Dumped("postgresql", tables, schema)


def restore(url: str, source: Path, *, dialect: str, schema: str | None) -> None:
    """Load the copy `source` into the database at `url` (check `target_problem` first)."""
    if dialect == "sqlite":
        _sqlite_restore(source, _sqlite_file(url))
    else:
        _pg_restore(parse_url(url), source, schema or "public")


def target_problem(url: str, *, dialect: str, schema: str | None) -> str | None:
    """Why a copy of `dialect` (PostgreSQL: of `schema`) must not be restored into `url`: another
    kind of database, another schema selected, or data already there. None when it may."""
    if dialect_of(url) != dialect:
        return f"the archive holds a {dialect} copy and {redact_url(url)} is {dialect_of(url)}"
    if dialect == "sqlite":
        path = _sqlite_file(url)
        if not path.exists() or path.stat().st_size == 0:
            return None
        with closing(_sqlite_connect(path, read_only=True)) as conn:
            tables = _sqlite_tables(conn)
        return f"{redact_url(url)} already has tables ({', '.join(tables)})" if tables else None
    name = schema or "public"
    with _pg_connect(parse_url(url)) as conn:
        selected = _selected_schema(conn)
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = ANY(%s) ORDER BY 1",
            (name, list(_RELKINDS)),
        ).fetchall()
    if selected != name:
        return (
            f"the archive holds schema {name!r} but {redact_url(url)} selects {selected!r} "
            f"(set its search_path to {name})"
        )
    if rows:
        names = ", ".join(str(row[0]) for row in rows[:5])
        return f"{redact_url(url)} schema {name} already has relations ({names}...)"
    return None


def _selected_schema(conn: psycopg.Connection) -> str:
    """The schema new tables go to: current_schema(), or the first search_path entry when that
    schema does not exist yet (a restore creates it)."""
    row = conn.execute("SELECT current_schema()").fetchone()
    if row is not None and row[0] is not None:
        return str(row[0])
    path = conn.execute("SELECT current_setting('search_path')").fetchone()
    entries = [part.strip().strip('"') for part in str(path[0] if path else "").split(",")]
    return next((entry for entry in entries if entry and entry != "$user"), "public")


def table_counts(url: str, *, schema: str | None = None) -> dict[str, int]:
    """Rows per table, now."""
    if dialect_of(url) == "sqlite":
        with closing(_sqlite_connect(_sqlite_file(url), read_only=True)) as conn:
            return _sqlite_counts(conn)
    with _pg_connect(parse_url(url)) as conn:
        return _pg_counts(conn, schema or _current_schema(conn))


# -- SQLite --------------------------------------------------------------------------------------


def _sqlite_file(url: str) -> Path:
    path = sqlite_path(parse_url(url))
    if path is None:
        raise DatabaseCopyError(f"{url} is not a SQLite file (memory databases have no backup)")
    return path.expanduser()


def _sqlite_connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    return sqlite3.connect(path, timeout=30)


def _sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        table: int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
        for table in _sqlite_tables(conn)
    }


def _sqlite_dump(source: Path, target: Path) -> dict[str, int]:
    if not source.exists():
        raise DatabaseCopyError(f"SQLite database {source} does not exist")
    try:
        # The online backup API copies a consistent snapshot while writers carry on.
        with (
            closing(_sqlite_connect(source, read_only=True)) as src,
            closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            return _sqlite_counts(dst)
    except sqlite3.Error as exc:
        raise DatabaseCopyError(f"cannot back up SQLite database {source}: {exc}") from exc


def _sqlite_restore(source: Path, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(source)) as src, closing(_sqlite_connect(target)) as dst:
            src.backup(dst)
    except (sqlite3.Error, OSError) as exc:
        raise DatabaseCopyError(f"cannot restore SQLite database {target}: {exc}") from exc


# -- PostgreSQL ----------------------------------------------------------------------------------


def libpq_environment(url: URL) -> dict[str, str]:
    """The libpq variables that point pg_dump/pg_restore at `url` (password included)."""
    env = {
        "PGHOST": url.host or "",
        "PGPORT": str(url.port or ""),
        "PGUSER": url.username or "",
        "PGPASSWORD": url.password if isinstance(url.password, str) else "",
        "PGDATABASE": url.database or "",
        "PGSSLMODE": str(url.query.get("sslmode", "")),
        "PGOPTIONS": str(url.query.get("options", "")),
        "PGCONNECT_TIMEOUT": "10",
    }
    return {key: value for key, value in env.items() if value}


@contextmanager
def _pg_connect(url: URL) -> Iterator[psycopg.Connection]:
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
            yield conn
    except psycopg.Error as exc:
        safe = url.render_as_string(hide_password=True)
        raise DatabaseCopyError(f"PostgreSQL at {safe}: {exc}".strip()) from exc


def _current_schema(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    if row is None or row[0] is None:
        raise DatabaseCopyError("the URL's search_path names no existing schema")
    return str(row[0])


def _pg_counts(conn: psycopg.Connection, schema: str) -> dict[str, int]:
    tables = conn.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY 1",
        (schema,),
    ).fetchall()
    counts: dict[str, int] = {}
    for (table,) in tables:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        row = conn.execute(query).fetchone()
        counts[str(table)] = int(row[0]) if row else 0
    return counts


def _client(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise DatabaseCopyError(
            f"{program} is not on PATH: install the PostgreSQL client (Debian: postgresql-client)"
        )
    return found


def _run(argv: list[str], url: URL) -> None:
    env = {**os.environ, **libpq_environment(url)}
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DatabaseCopyError(f"{Path(argv[0]).name} took longer than {exc.timeout}s") from exc
    if done.returncode != 0:
        message = " ".join(done.stderr.split())[:500]
        raise DatabaseCopyError(f"{Path(argv[0]).name} failed: {message}")


def _pg_dump(url: URL, target: Path) -> tuple[str, dict[str, int]]:
    """Dump the URL's current schema; the counts come from the very snapshot pg_dump reads."""
    pg_dump = _client("pg_dump")
    with _pg_connect(url) as conn:
        conn.autocommit = False
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            snapshot_row = conn.execute("SELECT pg_export_snapshot()").fetchone()
            assert snapshot_row is not None
            schema = _current_schema(conn)
            counts = _pg_counts(conn, schema)
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--schema={_exact_pattern(schema)}",
                    f"--snapshot={snapshot_row[0]}",
                    f"--file={target}",
                ],
                url,
            )
    return schema, counts


def _exact_pattern(name: str) -> str:
    """A pg_dump pattern matching exactly `name` (double quotes turn off wildcards and folding)."""
    return '"' + name.replace('"', '""') + '"'


def _pg_restore(url: URL, source: Path, schema: str) -> None:
    pg_restore = _client("pg_restore")
    with _pg_connect(url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    listing = source.with_suffix(".list")
    if exists:
        # The schema is there (empty, checked by the caller): restore everything but its creation.
        _write_listing(pg_restore, source, listing, skip_schema=schema)
    argv = [pg_restore, "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]
    if exists:
        argv.append(f"--use-list={listing}")
    _run([*argv, f"--dbname={url.database}", str(source)], url)


def _write_listing(pg_restore: str, source: Path, listing: Path, *, skip_schema: str) -> None:
    """The dump's table of contents without the entries that create `skip_schema`."""
    done = subprocess.run(
        [pg_restore, "--list", str(source)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise DatabaseCopyError(f"pg_restore cannot read the dump: {done.stderr.strip()[:300]}")
    kept = [
        line
        for line in done.stdout.splitlines()
        if not (
            f" SCHEMA - {skip_schema} " in line + " "
            or f" COMMENT - SCHEMA {skip_schema} " in line + " "
        )
    ]
    listing.write_text("\n".join(kept) + "\n")
