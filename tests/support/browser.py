"""Debian's headless Chromium for browser tests (Playwright with `executable_path`, no download)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.support.services import needs

CHROMIUM = os.environ.get("CHURNOPS_CHROMIUM", "/usr/bin/chromium")
# No browser download, no network, no GPU: what runs as root in a container.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def need_chromium() -> None:
    """Skip locally (fail under CI) when Debian's chromium is not installed."""
    if shutil.which(CHROMIUM) or Path(CHROMIUM).exists():
        return
    needs("chromium", f"not installed at {CHROMIUM} (make installs it: apt-get install chromium)")
