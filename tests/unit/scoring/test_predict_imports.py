"""What the `churnops predict` path imports, in a fresh interpreter (this process has it all)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# Code of other commands or of a store's first migration: never on a predict's import path.
NOT_FOR_PREDICT = ("alembic", "mako", "markdown_it", "httpx", "churnops.monitoring.drift")


def test_the_predict_command_path_imports_no_other_commands_code() -> None:
    """The CLI (every command's module), the batch use case, the model load, the run's summary and
    the prediction store: none of them imports Alembic, train's Markdown or `app`'s httpx."""
    script = (
        "import json, sys\n"
        "import churnops.cli.main, churnops.scoring.runs, churnops.scoring.batch\n"
        "import churnops.modeling.loading, churnops.store.store, churnops.store.migrate\n"
        "import churnops.monitoring.model_reference, churnops.monitoring.summary\n"
        f"print(json.dumps([m for m in {NOT_FOR_PREDICT!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_monitoring_package_still_exports_its_names() -> None:
    """Its names are imported on first use now; each still resolves to its submodule's object."""
    import churnops.monitoring as monitoring
    from churnops.monitoring.drift import DriftReport
    from churnops.monitoring.summary import WindowSummary

    assert monitoring.DriftReport is DriftReport
    assert monitoring.WindowSummary is WindowSummary
    for name in monitoring.__all__:
        assert getattr(monitoring, name) is not None
