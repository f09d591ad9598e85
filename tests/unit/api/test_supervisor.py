"""Where `serve --workers N` forks its workers and where it leaves uvicorn's spawn in place."""

from __future__ import annotations

import sys

import pytest
from uvicorn import _subprocess

from churnops.api.supervisor import fork_workers


@pytest.fixture
def uvicorn_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test does to uvicorn's worker context is undone after it."""
    monkeypatch.setattr(_subprocess, "spawn", _subprocess.spawn)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux")
def test_on_linux_uvicorn_forks_the_workers(uvicorn_context: None) -> None:
    assert _subprocess.spawn.get_start_method() == "spawn"
    assert fork_workers() is True
    assert _subprocess.spawn.get_start_method() == "fork"


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_elsewhere_uvicorn_keeps_spawning_them(
    uvicorn_context: None, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    """macOS: a fork after numpy's Accelerate or the Objective-C runtime loaded can crash."""
    monkeypatch.setattr(sys, "platform", platform)
    assert fork_workers() is False
    assert _subprocess.spawn.get_start_method() == "spawn"


def test_a_uvicorn_without_the_context_hook_keeps_its_own_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(_subprocess, "spawn")
    assert fork_workers() is False
    assert not hasattr(_subprocess, "spawn")
