"""Store test helpers (not fixtures) for PostgreSQL: a schema per test, a switchable TCP proxy.

Each test gets its own Postgres schema (selected via `search_path` in the URL), dropped at the end.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from tests.support.services import libpq_dsn, postgres_base_url, require_postgres

# Re-exported: store tests import them from here as they did from tests/conftest_store.py.
__all__ = [
    "TcpProxy",
    "free_port",
    "postgres_base_url",
    "postgres_schema",
    "require_postgres",
    "with_search_path",
]


def with_search_path(url: str, schema: str) -> str:
    """The URL with libpq `options` selecting `schema`, so tables and Alembic live there."""
    parsed = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return parsed.render_as_string(hide_password=False)


@contextmanager
def postgres_schema(prefix: str = "churnops_test") -> Iterator[str]:
    """Create a uniquely named schema, yield a URL bound to it, drop it afterwards."""
    base = postgres_base_url()
    require_postgres(base)
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_dsn(base), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(base, schema)
    finally:
        with psycopg.connect(libpq_dsn(base), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TcpProxy:
    """A switchable TCP forwarder: lets a test take a real database "down" and "up" again."""

    def __init__(self, listen_port: int, target: tuple[str, int]) -> None:
        self.listen_port = listen_port
        self.target = target
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.listen_port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        """Stop listening and cut every open connection (what a database crash looks like)."""
        if self._server is not None:
            with suppress(OSError):  # shutdown wakes the thread blocked in accept() on Linux
                self._server.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                self._server.close()
            self._server = None
        with self._lock:
            for sock in self._sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with suppress(OSError):
                    sock.close()
            self._sockets.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`, found through /proc/<pid>/task/*/children."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            with suppress(OSError):
                for child in children.read_text().split():
                    found.append(int(child))
                    todo.append(int(child))
    return found


def command_lines(pids: list[int]) -> list[bytes]:
    """Each process's argv as /proc shows it to every local user (NUL-separated)."""
    lines = []
    for pid in pids:
        with suppress(OSError):
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes())
    return lines
