"""The parent of `churnops serve --workers N`: uvicorn's process manager, and what workers share.

`churnops serve` checks the settings as `create_app()` would (`api.preflight`, without importing
the web stack), so a bad configuration fails before anything binds, then replaces itself
(`os.execv`, same pid, same signals) with this module, which binds the socket and watches the
workers. Each worker builds its own app from the environment and loads its own model.

uvicorn starts each worker with multiprocessing's spawn: a new interpreter that imports the whole
API (1.3 s of CPU) before it can answer, every worker at once on the same cores, and again for
every worker it restarts. Here this process imports `WORKER_IMPORTS` once, and the workers are
forks of it that only build their app and load their model. The imported pages stay shared
between this process and every worker (copy-on-write): this process adds ~25 MB of its own, not
another copy of the API. It builds no app and loads no model, so it holds no connection, open
file or Python thread a worker could inherit half-used.

    python -m churnops.api.supervisor '<uvicorn options as JSON>'
"""

from __future__ import annotations

import gc
import importlib
import json
import shutil
import sys
from typing import Any

APP_FACTORY = "churnops.api.app:create_app"
# What every worker imports before its first request (the app, and what its start-up loads: the
# model's arrays, the registry client, monitoring, the store's migration check). Only imports:
# none of these opens a file, a connection or a Python thread at import, so forking after them is
# safe (OpenBLAS's native thread, started by numpy, is stopped around fork by OpenBLAS itself).
WORKER_IMPORTS = (
    "churnops.api.app",
    "churnops.modeling.tracking",
    "churnops.monitoring.monitor",
    "churnops.store.migrate",
    "numpy",
    "threadpoolctl",
)
# The option naming a folder this process made for the workers' shared metrics: removed on exit.
REMOVE_ON_EXIT = "churnops_remove_on_exit"


def command(python: str, options: dict[str, Any]) -> list[str]:
    """The argv that runs this supervisor with uvicorn `options` (JSON-serialisable)."""
    return [python, "-m", __name__, json.dumps(options)]


def main(argv: list[str]) -> int:
    options: dict[str, Any] = json.loads(argv[1])
    remove = options.pop(REMOVE_ON_EXIT, None)
    import uvicorn

    if options.get("workers", 1) > 1 and fork_workers():
        for name in WORKER_IMPORTS:
            importlib.import_module(name)
        gc.freeze()  # the workers' collections skip these objects, so their pages stay shared
    try:
        uvicorn.run(APP_FACTORY, factory=True, **options)
    finally:
        if remove:
            shutil.rmtree(remove, ignore_errors=True)
    return 0


def fork_workers() -> bool:
    """Make uvicorn start its workers by forking this process instead of spawning interpreters.

    uvicorn takes the multiprocessing context of its workers from `uvicorn._subprocess.spawn`
    (0.54, pinned in constraints.txt); False, with uvicorn's own spawn left in place, when that
    name is gone. tests/integration/test_serve_workers.py fails when the workers are not forks.
    Linux only: on macOS a fork after loading system frameworks (numpy's Accelerate BLAS, the
    Objective-C runtime) can crash or hang the child, which is why Python spawns there.
    """
    import multiprocessing

    from uvicorn import _subprocess

    if not sys.platform.startswith("linux"):
        return False
    if not isinstance(getattr(_subprocess, "spawn", None), multiprocessing.context.BaseContext):
        return False
    setattr(_subprocess, "spawn", multiprocessing.get_context("fork"))  # noqa: B010  another type
    return True


if __name__ == "__main__":
    sys.exit(main(sys.argv))
