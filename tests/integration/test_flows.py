"""The Prefect flows under Prefect's test harness (a temporary server and database): training
leaves a markdown artifact with the card, the comparison and the run; monitoring stores its check;
the retraining flow runs the loop and records its decisions. And Prefect stays off the API's path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from churnops.data.load import load_training_table
from churnops.modeling.pyfunc import load_scorer
from churnops.settings import get_settings
from churnops.store import PredictionStore
from churnops.store.decisions import read_decisions
from tests.support.flows import write_params
from tests.support.retraining import crafted_check, day_rows, store_day

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Prefect's temporary server and database, its home in a temp folder (set before Prefect
    reads its settings: nothing is written under ~/.prefect)."""
    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def artifacts(key: str) -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [a.data for a in client.read_artifacts() if a.key == key]  # type: ignore[misc]


@pytest.mark.slow
def test_training_monitoring_and_retraining_flows_under_the_test_harness(
    harness: None, tmp_path: Path
) -> None:
    from churnops.flows.monitoring import monitoring_flow
    from churnops.flows.retraining import retraining_flow
    from churnops.flows.training import training_flow

    config = write_params(tmp_path)
    summary = training_flow(config=str(config))
    assert summary["version"] == "1" and summary["promoted"] is True
    (card,) = artifacts("churnops-training")
    assert "# churn-model v1" in card and "| candidate | CV ROC-AUC |" in card
    assert f"MLflow run `{summary['run_id']}`" in card

    settings = get_settings(config)
    table, _ = load_training_table(_demo(settings))
    scorer = load_scorer("models:/churn-model/1")[0]
    now = datetime.now(UTC)
    with PredictionStore(settings.resolved_database_url()) as store:
        store.create()
        for day in (2, 1):
            store_day(
                store,
                day_rows(table, day=day, drift=False, seed=5),
                scorer,
                start=now - timedelta(days=day),
                version="1",
                model_name="churn-model",
            )
    checked = monitoring_flow(config=str(config), window="3d")
    assert checked["result_id"] is not None and checked["rows"]["predictions"] == 1200
    assert artifacts("churnops-monitoring")

    after = datetime.now(UTC)  # three drifted checks after the clean one
    with PredictionStore(settings.resolved_database_url()) as store:
        for seconds in (1, 2, 3):
            crafted_check(
                store,
                end=after + timedelta(seconds=seconds),
                version="1",
                model_name="churn-model",
                dataset_drift=True,
            )
    result = retraining_flow(config=str(config))
    # the same table and seed make the same model: no better by the margin, so it stays challenger
    assert result["action"] == "rejected", result
    with PredictionStore(settings.resolved_database_url()) as store:
        outcomes = [d.outcome for d in read_decisions(store)]
    assert outcomes == ["rejected", "started"]
    (report,) = artifacts("churnops-retraining")
    assert report.startswith("# Retraining: rejected")


def _demo(settings):  # the flows resolve the bundled table the same way
    from churnops.data.sources import resolve_data_settings

    return resolve_data_settings(settings.data)


def test_neither_the_api_nor_churnops_serve_imports_prefect(tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "import churnops.cli.main, churnops.cli.serve, churnops.cli.flows, churnops.cli.retrain\n"
        "import churnops.api, churnops.api.app\n"
        "from churnops.api.app import create_app\n"
        "from churnops.settings import get_settings\n"
        "app = create_app(get_settings())\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'"
        " or m.startswith('churnops.flows.'))))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "CHURNOPS_HOME": str(tmp_path),
        "CHURNOPS_CONFIG": str(tmp_path / "none.yaml"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
