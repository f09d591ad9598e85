"""The parent process of `churnops serve --workers N`: uvicorn's process manager, nothing else.

`churnops serve` checks the settings as `create_app()` would (`api.preflight`, without importing
the web stack), so a bad configuration fails before anything binds, then replaces itself
(`os.execv`, same pid, same signals) with this module. The parent only binds the socket and
watches the workers; when the CLI built the app itself and stayed their parent, it kept what that
imported (the API, pydantic, Prometheus: ~180 MB RSS, a third of a worker) for the life of the
server, and the import cost 1.3 s before any worker started. Each worker builds its own app from
the environment.

    python -m churnops.api.supervisor '<uvicorn options as JSON>'
"""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any

APP_FACTORY = "churnops.api.app:create_app"
# The option naming a folder this process made for the workers' shared metrics: removed on exit.
REMOVE_ON_EXIT = "churnops_remove_on_exit"


def command(python: str, options: dict[str, Any]) -> list[str]:
    """The argv that runs this supervisor with uvicorn `options` (JSON-serialisable)."""
    return [python, "-m", __name__, json.dumps(options)]


def main(argv: list[str]) -> int:
    options: dict[str, Any] = json.loads(argv[1])
    remove = options.pop(REMOVE_ON_EXIT, None)
    import uvicorn

    try:
        uvicorn.run(APP_FACTORY, factory=True, **options)
    finally:
        if remove:
            shutil.rmtree(remove, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
