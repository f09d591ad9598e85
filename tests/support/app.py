"""Helpers for the tests that run `churnops app` as a real process (holds no tests itself)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.api import wait_for

REPO = Path(__file__).resolve().parents[2]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def processes_with_env(entry: str) -> set[int]:
    """Live processes whose environment holds `entry` (NAME=value): a run's whole family."""
    wanted = entry.encode()
    found: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if wanted in environ.split(b"\0") and alive(int(proc.name)):
            found.add(int(proc.name))
    return found


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


@contextmanager
def churnops_app(
    args: list[str], env: dict[str, str], *, health: list[str]
) -> Iterator[subprocess.Popen[bytes]]:
    """`churnops app ARGS` as a process; waits until every URL in `health` answers; Ctrl-C at the end."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from churnops.cli.main import app; app()", "app", *args],
        env={**os.environ, **env},
        cwd=REPO,
    )
    try:
        started = wait_for(
            lambda: all(answers(url) for url in health) or process.poll() is not None,
            timeout=120,
            interval=0.5,
        )
        if not started or process.poll() is not None:
            raise RuntimeError(f"churnops app did not come up (exit code {process.poll()})")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
