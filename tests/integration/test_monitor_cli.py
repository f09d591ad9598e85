"""`churnops monitor` end to end on the real champion: store and file windows, exit codes 0/1/2,
report files, stored results, one webhook alert per incident, batch-run summaries, Postgres, and
the API's `/metrics` gauges fed by the stored result."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from churnops.cli.main import app
from churnops.modeling.scorer import Scorer
from churnops.monitoring.monitor import MonitoringReport
from churnops.store import PredictionRecord, PredictionStore
from tests.integration.monitor_support import held_out_rows, shifted, write_predictions
from tests.support.models import TrainedModel

pytestmark = pytest.mark.integration


# -- data ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scorer(trained_model: TrainedModel) -> Scorer:
    return trained_model.scorer()


@pytest.fixture(scope="module")
def held_out(trained_model: TrainedModel) -> pd.DataFrame:
    return held_out_rows(trained_model)


# -- environment ---------------------------------------------------------------------------------


@dataclass
class MonitorEnv:
    home: Path
    url: str
    reports: Path
    tmp: Path

    def results(self) -> list[Any]:
        with PredictionStore(self.url) as store:
            store.create()
            return store.read_monitoring_results(kind="drift")


def _use_store(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("CHURNOPS_DATABASE_URL", url)


@pytest.fixture
def env(trained_model: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MonitorEnv:
    """The trained champion's MLflow store; everything else (store, home, reports) private."""
    home = tmp_path / "home"
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    monkeypatch.setenv("CHURNOPS_HOME", str(home))
    monkeypatch.setenv("CHURNOPS_TRACKING_URI", trained_model.settings.resolved_tracking_uri())
    monkeypatch.setenv("CHURNOPS_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("CHURNOPS_MONITORING__REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("CHURNOPS_MONITORING__WEBHOOK_URL", raising=False)
    monkeypatch.delenv("CHURNOPS_SERVING__MODEL_URI", raising=False)
    _use_store(monkeypatch, url)
    return MonitorEnv(home=home, url=url, reports=tmp_path / "reports", tmp=tmp_path)


def monitor(*args: str) -> Result:
    return CliRunner().invoke(app, ["monitor", *args])


def monitor_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = monitor(*args, "--json")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # CliRunner reports a crash as exit code 1: never take it for drift
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


class Webhook:
    """A local HTTP server that records every JSON body POSTed to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def kinds(self) -> list[str]:
        return sorted(str(body["kind"]) for body in self.received)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


# -- store windows -------------------------------------------------------------------------------


def test_stable_window_exits_0_and_is_recorded(
    env: MonitorEnv, scorer: Scorer, held_out: pd.DataFrame
) -> None:
    n = write_predictions(env.url, held_out, scorer, days=3)

    code, out = monitor_json("--window", "7d")

    assert code == 0, out["summary"]
    assert out["drift_found"] is False
    assert out["rows"] == {"predictions": n}
    assert out["summary"]["dataset_drift"] is False
    assert out["summary"]["prediction_drift"] is False
    html, summary_json = Path(out["report_html"]), Path(out["report_json"])
    assert html.parent == env.reports and html.stat().st_size > 100_000  # plotly inlined
    report = MonitoringReport.model_validate(json.loads(summary_json.read_text()))
    assert report.n_rows == n
    assert report.period == "day" and 3 <= len(report.series) <= 4
    assert sum(p.n_rows for p in report.series) == n
    results = env.results()
    assert len(results) == 1 and results[0].drift_detected is False
    stored = MonitoringReport.model_validate(results[0].summary)  # what the API's gauges read
    assert stored.n_rows == n
    assert results[0].summary["run"]["rows"] == {"predictions": n}


def test_shifted_window_exits_1_and_alerts_once_per_incident(
    env: MonitorEnv, scorer: Scorer, held_out: pd.DataFrame, webhook: Webhook
) -> None:
    write_predictions(env.url, shifted(held_out), scorer, days=2)

    code, out = monitor_json("--window", "3d", "--webhook", webhook.url, "--period", "week")

    assert code == 1
    assert out["drift_found"] is True and out["exit_code"] == 1
    assert out["summary"]["prediction_drift"] is True
    assert {"monthly_charges", "contract"} <= set(out["summary"]["drifted_features"])
    assert Path(out["report_html"]).exists() and Path(out["report_json"]).exists()
    first = webhook.kinds()
    assert "prediction_drift" in first
    assert len(first) == len(set(first))  # one POST per incident kind
    opened = {a["kind"] for a in out["alerts"] if a["action"] == "opened"}
    assert opened == set(first)
    assert all(body["source"] == "churnops" for body in webhook.received)

    second = monitor("--window", "3d", "--webhook", webhook.url)

    assert second.exit_code == 1, second.output
    assert webhook.kinds() == first  # still the same incidents: nothing new is sent
    assert "drift found" in second.output
    printed = re.search(r"^report: (.+\.html)$", second.output, re.MULTILINE)
    assert printed is not None and Path(printed.group(1)).is_file()
    results = env.results()
    assert [r.drift_detected for r in results] == [True, True]
    assert (env.home / "monitoring" / "alerts.json").exists()


def test_batch_run_summaries_in_the_window_are_merged(
    env: MonitorEnv, scorer: Scorer, held_out: pd.DataFrame, trained_model: TrainedModel
) -> None:
    from churnops.modeling.registry import model_identity
    from churnops.scoring.batch import BatchOptions, BatchScorer
    from churnops.scoring.runs import record_run

    n_online = write_predictions(env.url, held_out.head(400), scorer, days=1)
    source = env.tmp / "batch.csv"
    held_out.iloc[400:].drop(columns=["churn"]).to_csv(source, index=False)
    identity = model_identity(trained_model.champion_uri, trained_model.client)
    result = BatchScorer(scorer, identity, BatchOptions()).run(
        str(source), str(env.tmp / "batch.predictions.csv")
    )
    with PredictionStore(env.url) as store:
        record_run(store, result)
    n_batch = len(held_out) - 400

    code, out = monitor_json("--window", "2d")

    assert code == 0, out["summary"]
    assert out["rows"] == {"predictions": n_online, "batch_runs": n_batch}
    assert out["summary"]["n_rows"] == n_online + n_batch
    assert out["skipped_batch_runs"] == {}

    reference = env.tmp / "reference.csv"
    trained_model.frame.head(3000).to_csv(reference, index=False)
    code, out = monitor_json("--window", "2d", "--reference", str(reference))

    assert out["rows"] == {"predictions": n_online}  # another reference: the run cannot merge
    assert list(out["skipped_batch_runs"].values()) == ["built against another reference profile"]


# -- file windows --------------------------------------------------------------------------------


def test_current_file_with_labels_reports_performance(
    env: MonitorEnv, held_out: pd.DataFrame, trained_model: TrainedModel
) -> None:
    path = env.tmp / "current.parquet"
    held_out.to_parquet(path)  # target column, no scores: the monitor scores it

    code, out = monitor_json("--current", str(path), "--no-record")

    assert code == 0, out["summary"]
    assert out["rows"] == {"file": len(held_out)}
    report = json.loads(Path(out["report_json"]).read_text())
    performance = report["performance"]
    assert performance["n_labelled"] == len(held_out)
    test_auc = trained_model.scorer().bundle.metrics["test"]["roc_auc"]
    assert performance["realised"]["roc_auc"] == pytest.approx(test_auc, abs=0.01)
    assert performance["estimated"]["roc_auc"] is not None
    assert "Performance" in Path(out["report_html"]).read_text()
    assert env.results() == []  # --no-record

    noisy = held_out.assign(churn=np.random.default_rng(0).permutation(held_out["churn"]))
    noisy_path = env.tmp / "noisy.csv"
    noisy.to_csv(noisy_path, index=False)

    code, out = monitor_json("--current", str(noisy_path))

    assert code == 1
    assert out["summary"]["performance_degraded"] is True
    assert out["summary"]["dataset_drift"] is False  # the features did not move
    assert [r.drift_detected for r in env.results()] == [True]


# -- bad input -----------------------------------------------------------------------------------


def _one_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.count("error:") == 1
    return " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--window", "7x"], "bad window '7x'"),
        (["--window", "0d"], "longer than zero"),
        (["--since", "last tuesday"], "bad date 'last tuesday'"),
        (["--since", "2999-01-01"], "is not in the past"),
        (["--since", "2025-01-01", "--window", "7d"], "give --since or --window, not both"),
        (["--current", "no-such-file.csv"], "--current file not found: no-such-file.csv"),
        (["--reference", "no-such-ref.csv"], "--reference file not found"),
        (["--model-uri", "models:/no-such-model@champion"], "cannot load model"),
        (["--period", "month"], None),
    ],
)
def test_bad_input_exits_2_with_one_readable_line(
    env: MonitorEnv, args: list[str], expected: str | None
) -> None:
    result = monitor(*args)
    if expected is None:  # rejected by the option parser itself
        assert result.exit_code == 2 and "Traceback" not in result.output
        return
    assert expected in _one_error(result)


def test_empty_window_is_an_error_not_a_clean_bill(
    env: MonitorEnv, scorer: Scorer, held_out: pd.DataFrame
) -> None:
    old = datetime.now(UTC) - timedelta(days=30)
    write_predictions(env.url, held_out.head(50), scorer, days=1, now=old)

    text = _one_error(monitor("--window", "7d"))

    assert "no predictions in the window" in text
    assert "not 'no drift'" in text
    assert env.results() == []
    assert not env.reports.exists()


def test_too_few_rows_is_an_error_not_drift(
    env: MonitorEnv, scorer: Scorer, held_out: pd.DataFrame
) -> None:
    write_predictions(env.url, held_out.head(7), scorer, days=1)

    text = _one_error(monitor("--window", "7d"))

    assert "only 7 prediction(s)" in text and "min_rows" in text
    assert env.results() == []  # nothing recorded, no incident opened


def test_other_models_predictions_stay_out_of_the_window(
    env: MonitorEnv, scorer: Scorer, held_out: pd.DataFrame
) -> None:
    n = write_predictions(env.url, held_out, scorer, days=2)
    other = [
        PredictionRecord(
            features={"something_else": 1.0},
            churn_probability=0.9,
            will_churn=True,
            risk_level="high",
            model_name="another-model",
            model_version="4",
        )
        for _ in range(500)
    ]
    with PredictionStore(env.url) as store:
        store.write_predictions(other)

    code, out = monitor_json("--window", "7d")

    assert code == 0, out["summary"]
    assert out["rows"] == {"predictions": n}


def test_file_missing_a_feature_exits_2(env: MonitorEnv, held_out: pd.DataFrame) -> None:
    path = env.tmp / "partial.csv"
    held_out.drop(columns=["tenure"]).to_csv(path, index=False)

    text = _one_error(monitor("--current", str(path)))

    assert "tenure" in text


# -- Postgres ------------------------------------------------------------------------------------


def test_monitor_on_postgres(
    env: MonitorEnv,
    scorer: Scorer,
    held_out: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.stores import postgres_schema

    with postgres_schema("churnops_monitor") as url:
        _use_store(monkeypatch, url)
        env.url = url
        n = write_predictions(url, shifted(held_out), scorer, days=2)

        code, out = monitor_json("--window", "3d")

        assert code == 1
        assert out["rows"] == {"predictions": n}
        assert out["summary"]["prediction_drift"] is True
        results = env.results()
        assert len(results) == 1 and results[0].drift_detected is True
        assert results[0].window_end is not None and results[0].window_start is not None
        assert results[0].window_end - results[0].window_start == timedelta(days=3)


# -- through the API -----------------------------------------------------------------------------


def test_api_predictions_are_monitored_and_exposed_on_metrics(
    env: MonitorEnv,
    trained_model: TrainedModel,
    held_out: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from churnops.api.app import create_app
    from tests.support.api import api_settings

    settings = api_settings(trained_model, env.tmp / "api")
    _use_store(monkeypatch, settings.resolved_database_url())
    env.url = settings.resolved_database_url()
    rows = shifted(held_out).drop(columns=["churn"]).head(600)
    customers = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in rows.to_dict(orient="records")
    ]
    with TestClient(create_app(settings)) as client:
        response = client.post("/predict/batch", json={"customers": customers})
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 20
        with PredictionStore(env.url) as store:
            while store.count_predictions() < len(rows) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert store.count_predictions() == len(rows)

        code, out = monitor_json("--window", "1d")

        assert code == 1 and out["rows"] == {"predictions": len(rows)}
        metrics = client.get("/metrics").text
    assert "churnops_prediction_drift 1.0" in metrics
    assert 'churnops_feature_drifted{feature="contract"} 1.0' in metrics
    assert "churnops_monitoring_window_rows 600.0" in metrics
