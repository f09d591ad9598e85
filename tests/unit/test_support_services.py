"""tests/support/services.py: a missing service skips locally and fails under CI=true."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import pytest

from tests.support.services import (
    needs,
    require_java,
    require_module,
    require_postgres,
    require_redis,
)


def _closed_port() -> int:
    """A port nothing listens on (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _checks(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], object]]:
    port = _closed_port()
    monkeypatch.setenv("PATH", "")  # no java on an empty PATH
    return {
        "PostgreSQL": lambda: require_postgres(f"postgresql+psycopg://root@127.0.0.1:{port}/test"),
        "Redis": lambda: require_redis(f"redis://127.0.0.1:{port}/0"),
        "Java": require_java,
        "no_such_module_churnops": lambda: require_module("no_such_module_churnops"),
    }


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_missing_service_skips_with_the_reason_outside_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    for service, check in _checks(monkeypatch).items():
        with pytest.raises(pytest.skip.Exception, match=f"needs {service}: "):
            check()


@pytest.mark.parametrize("ci", ["true", "TRUE", "1", "yes"])
def test_missing_service_fails_under_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    for service, check in _checks(monkeypatch).items():
        with pytest.raises(pytest.fail.Exception, match=f"(?s)needs {service}: .*CI=true"):
            check()


def test_needs_names_the_service_and_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        needs("Redis", "not reachable at redis://x:1/0")
    assert str(skipped.value) == "needs Redis: not reachable at redis://x:1/0"


def test_an_installed_module_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert require_module("json") is json
