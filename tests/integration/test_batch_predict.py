"""`churnops predict` end to end on the real champion: formats, rejects, atomicity, store."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from churnops.cli.main import app
from churnops.data.ingest import read_table
from churnops.modeling.pyfunc import load_scorer
from churnops.modeling.registry import model_identity
from churnops.scoring.batch import BatchOptions, BatchScorer
from tests.support.models import TrainedModel

pytestmark = pytest.mark.integration
OUTPUT_COLUMNS = [
    "customer_id",
    "churn_probability",
    "will_churn",
    "risk_level",
    "model_name",
    "model_version",
    "scored_at",
]


@pytest.fixture
def cli_env(trained_model: TrainedModel, monkeypatch: pytest.MonkeyPatch) -> TrainedModel:
    settings = trained_model.settings
    monkeypatch.setenv("CHURNOPS_HOME", settings.home)
    monkeypatch.setenv("CHURNOPS_TRACKING_URI", settings.resolved_tracking_uri())
    monkeypatch.setenv("CHURNOPS_DATABASE_URL", settings.resolved_database_url())
    monkeypatch.setenv("CHURNOPS_CONFIG", str(Path(settings.home) / "absent.yaml"))
    return trained_model


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["predict", *args])
    return result.exit_code, result.output


def _expected(trained_model: TrainedModel, frame: pd.DataFrame) -> pd.DataFrame:
    scorer = trained_model.scorer()
    scores = scorer.score_frame(frame)
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str).to_numpy(),
            "churn_probability": scores.probability,
            "risk_level": scores.risk_level.astype(str),
            "will_churn": scores.will_churn,
        }
    )


def _batch_runs(trained_model: TrainedModel) -> pd.DataFrame:
    engine = sa.create_engine(trained_model.settings.resolved_database_url())
    try:
        return pd.read_sql_table("batch_runs", engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("input_suffix", "output_suffix"),
    [(".csv", ".parquet"), (".parquet", ".csv"), (".jsonl", ".jsonl"), (".xlsx", ".parquet")],
)
def test_predict_scores_every_format_like_the_scorer(
    cli_env: TrainedModel, tmp_path: Path, input_suffix: str, output_suffix: str
) -> None:
    frame = cli_env.frame.head(1500 if input_suffix == ".xlsx" else 5000)
    source = tmp_path / f"customers{input_suffix}"
    {
        ".csv": lambda: frame.to_csv(source, index=False),
        ".parquet": lambda: frame.to_parquet(source, index=False),
        ".jsonl": lambda: frame.to_json(source, orient="records", lines=True),
        ".xlsx": lambda: frame.to_excel(source, index=False),
    }[input_suffix]()
    target = tmp_path / f"scored{output_suffix}"
    runs_before = len(_batch_runs(cli_env)) if input_suffix != ".csv" else None
    code, output = _run(str(source), "-o", str(target), "--chunk-rows", "700", "--json")
    assert code == 0, output
    scored = read_table(target)
    assert list(scored.columns) == OUTPUT_COLUMNS
    expected = _expected(cli_env, frame)
    assert scored["customer_id"].astype(str).tolist() == expected["customer_id"].tolist()
    np.testing.assert_allclose(
        scored["churn_probability"], expected["churn_probability"], atol=1e-6
    )
    assert scored["risk_level"].astype(str).tolist() == expected["risk_level"].tolist()
    assert scored["will_churn"].astype(bool).tolist() == expected["will_churn"].tolist()
    assert set(scored["model_name"].astype(str)) == {cli_env.settings.registry.model_name}

    summary = json.loads(output.strip().splitlines()[-1])
    beside = json.loads((tmp_path / "scored.summary.json").read_text())
    assert summary == beside
    assert summary["rows_read"] == summary["rows_scored"] == len(frame)
    assert summary["rows_rejected"] == 0
    counts = {k: v["count"] for k, v in summary["risk_levels"].items()}
    assert counts == expected["risk_level"].value_counts().to_dict() | {
        k: 0 for k in ("low", "medium", "high") if k not in set(expected["risk_level"])
    }
    assert summary["mean_probability"] == pytest.approx(expected["churn_probability"].mean())
    assert summary["predicted_churn_rate"] == pytest.approx(expected["will_churn"].mean())
    if runs_before is not None:
        assert len(_batch_runs(cli_env)) == runs_before + 1


def test_predict_records_run_with_profile_in_store(cli_env: TrainedModel, tmp_path: Path) -> None:
    source = tmp_path / "customers.parquet"
    cli_env.frame.to_parquet(source, index=False)
    code, output = _run(str(source), "-o", str(tmp_path / "out.parquet"))
    assert code == 0, output
    runs = _batch_runs(cli_env)
    last = runs.sort_values("id").iloc[-1]
    version = cli_env.client.get_model_version_by_alias(
        cli_env.settings.registry.model_name, "champion"
    ).version
    assert str(last["model_version"]) == str(version)
    assert int(last["rows_read"]) == len(cli_env.frame)
    profile = last["profile"] if isinstance(last["profile"], dict) else json.loads(last["profile"])
    assert profile["n_rows"] == len(cli_env.frame)
    assert profile["scores"]["n"] == len(cli_env.frame)
    # File inputs are fingerprinted by their bytes (what `sha256sum` prints), labelled as such.
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert last["input_fingerprint"] == f"sha256-file:{digest}"
    summary = last["summary"] if isinstance(last["summary"], dict) else json.loads(last["summary"])
    assert summary["status"] == "succeeded"
    assert summary["input_fingerprint"] == last["input_fingerprint"]


def _dirty(frame: pd.DataFrame) -> tuple[pd.DataFrame, set[int]]:
    dirty = frame.head(3000).copy()
    dirty["contract"] = dirty["contract"].astype(object)
    dirty["monthly_charges"] = dirty["monthly_charges"].astype(object)
    dirty.loc[5, "contract"] = "Ten year"
    dirty.loc[1234, "monthly_charges"] = "lots"
    dirty.loc[2999, "contract"] = None
    return dirty, {6, 1235, 3000}  # 1-based row numbers


def test_skip_writes_rejects_and_read_equals_scored_plus_rejected(
    cli_env: TrainedModel, tmp_path: Path
) -> None:
    dirty, bad_rows = _dirty(cli_env.frame)
    source = tmp_path / "dirty.csv"
    dirty.to_csv(source, index=False)
    target = tmp_path / "scored.csv"
    code, output = _run(
        str(source),
        "-o",
        str(target),
        "--on-error",
        "skip",
        "--chunk-rows",
        "1000",
        "--keep",
        "contract",
        "--json",
    )
    assert code == 0, output
    summary = json.loads(output.strip().splitlines()[-1])
    rejects = pd.read_csv(tmp_path / "scored.rejects.csv")
    scored = pd.read_csv(target)
    assert set(rejects["row"]) == bad_rows
    assert set(rejects["customer_id"]) == set(dirty["customer_id"].iloc[[r - 1 for r in bad_rows]])
    assert rejects.set_index("row").loc[6, "reason"].startswith("contract:")
    assert "monthly_charges: not a number" in rejects.set_index("row").loc[1235, "reason"]
    assert summary["rows_read"] == len(dirty) == summary["rows_scored"] + summary["rows_rejected"]
    assert summary["rows_rejected"] == len(rejects) == 3
    assert len(scored) == summary["rows_scored"]
    assert "contract" in scored.columns
    assert not set(scored["customer_id"]) & set(rejects["customer_id"])


def test_fail_stops_with_clear_message_and_writes_nothing(
    cli_env: TrainedModel, tmp_path: Path
) -> None:
    dirty, _ = _dirty(cli_env.frame)
    source = tmp_path / "dirty.parquet"
    dirty.astype({"monthly_charges": str}).to_parquet(source, index=False)
    target = tmp_path / "scored.parquet"
    runs_before = len(_batch_runs(cli_env))
    code, output = _run(str(source), "-o", str(target), "--chunk-rows", "1000")
    assert code == 2
    assert "row 6: contract" in output
    assert "--on-error skip" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dirty.parquet"]
    # The failed run is recorded too, with its status and error, and no population profile.
    runs = _batch_runs(cli_env).sort_values("id")
    assert len(runs) == runs_before + 1
    last = runs.iloc[-1]
    summary = last["summary"] if isinstance(last["summary"], dict) else json.loads(last["summary"])
    assert summary["status"] == "failed"
    assert "row 6: contract" in summary["error"]
    assert summary["input"] == str(source)
    assert int(last["rows_scored"]) == 0
    assert last["profile"] is None or pd.isna(last["profile"])


def test_missing_required_columns_fail_up_front(cli_env: TrainedModel, tmp_path: Path) -> None:
    source = tmp_path / "partial.csv"
    cli_env.frame.drop(columns=["tenure", "contract"]).head(50).to_csv(source, index=False)
    code, output = _run(str(source), "-o", str(tmp_path / "out.csv"))
    assert code == 2
    assert "tenure: required column is missing" in output
    assert "contract: required column is missing" in output
    assert not (tmp_path / "out.csv").exists()


def test_crash_mid_run_leaves_no_partial_output(
    cli_env: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "customers.parquet"
    cli_env.frame.to_parquet(source, index=False)
    target = tmp_path / "scored.parquet"
    target.write_bytes(b"yesterday's scores")
    calls = {"n": 0}
    original = BatchScorer._output_frame

    def crashing(self: BatchScorer, *args: object, **kwargs: object) -> pd.DataFrame:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # an interrupted run (Ctrl-C) mid-way
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BatchScorer, "_output_frame", crashing)
    code, output = _run(
        str(source), "-o", str(target), "--chunk-rows", "1000", "--on-error", "skip"
    )
    assert code == 130, output
    assert calls["n"] == 3
    assert target.read_bytes() == b"yesterday's scores"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.parquet", "scored.parquet"]
    last = _batch_runs(cli_env).sort_values("id").iloc[-1]
    summary = last["summary"] if isinstance(last["summary"], dict) else json.loads(last["summary"])
    assert summary["status"] == "interrupted"
    assert summary["output"] == str(target)
    # Counts reached before the interruption: at least the two chunks of 1000 written.
    assert int(last["rows_read"]) >= int(last["rows_scored"]) >= 2000
    assert int(last["rows_read"]) < len(cli_env.frame)


def test_writer_failure_mid_run_aborts(
    cli_env: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from churnops.errors import DataLoadError
    from churnops.scoring.writers import CsvWriter

    source = tmp_path / "customers.csv"
    cli_env.frame.to_csv(source, index=False)
    original = CsvWriter.write
    calls = {"n": 0}

    def failing(self: CsvWriter, frame: pd.DataFrame) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise DataLoadError("disk full")
        original(self, frame)

    monkeypatch.setattr(CsvWriter, "write", failing)
    code, output = _run(str(source), "-o", str(tmp_path / "scored.csv"), "--chunk-rows", "500")
    assert code == 2
    assert "disk full" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv"]


def test_reasons_and_sql_round_trip(
    cli_env: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the summary of a SQL output goes to the working folder
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = sa.create_engine(url)
    frame = cli_env.frame.head(400)
    frame.to_sql("customers", engine, index=False)
    code, output = _run(
        f"{url}#customers", "-o", f"{url}#churn_scores", "--reasons", "--chunk-rows", "150"
    )
    assert code == 0, output
    scored = pd.read_sql_table("churn_scores", engine)
    stored = pd.read_sql_table("customers", engine)
    engine.dispose()
    from churnops.data.fingerprint import fingerprint

    summary = json.loads((tmp_path / "churn_scores.summary.json").read_text())
    # No file to hash: the streamed row digest equals the whole-table digest of the same rows.
    assert summary["input_fingerprint"] == f"sha256-rows:{fingerprint(stored)}"
    assert len(scored) == len(frame)
    reasons = [json.loads(r) for r in scored["reasons"]]
    assert all(isinstance(r, list) for r in reasons)
    assert any(r and {"feature", "value", "contribution"} <= set(r[0]) for r in reasons)
    expected = cli_env.scorer().predict_frame(frame)
    assert scored["reasons"].tolist() == expected["reasons"].tolist()
    assert (tmp_path / "churn_scores.summary.json").exists()


def test_engine_is_independent_of_chunking(trained_model: TrainedModel, tmp_path: Path) -> None:
    scorer, _ = load_scorer(trained_model.champion_uri)
    identity = model_identity(trained_model.champion_uri, trained_model.client)
    source = tmp_path / "customers.parquet"
    trained_model.frame.to_parquet(source, index=False)
    results = []
    for size in (333, 7043, 100_000):
        target = tmp_path / f"out{size}.parquet"
        result = BatchScorer(scorer, identity, BatchOptions(chunk_rows=size)).run(
            str(source), str(target)
        )
        results.append((result, pd.read_parquet(target)))
    first = results[0][1]
    for result, frame in results[1:]:
        pd.testing.assert_frame_equal(
            frame.drop(columns="scored_at"), first.drop(columns="scored_at")
        )
        assert result.summary.risk_levels == results[0][0].summary.risk_levels
    populations = [r.population for r, _ in results]
    assert populations[0].scores.hist == populations[2].scores.hist


def test_tables_are_checked_against_the_booster_and_can_fall_back(
    trained_model: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    from xgboost import XGBClassifier

    from churnops.modeling.scorer import Scorer

    # The champion's preprocessing with a shallow XGBoost (the kind tuning picks for this data).
    base, _ = load_scorer(trained_model.champion_uri)
    bundle = copy.deepcopy(base.bundle)
    frame = trained_model.frame
    matrix = base.encoder.encode_frame(frame, np.float32)
    target = (frame[bundle.schema.target].astype(str) == bundle.schema.positive_label).to_numpy()
    shallow = XGBClassifier(n_estimators=300, max_depth=2, learning_rate=0.05, random_state=0)
    shallow.fit(matrix, target.astype(int))
    bundle.pipeline.steps[-1] = ("classifier", shallow)
    scorer = Scorer(bundle)
    identity = model_identity(trained_model.champion_uri, trained_model.client)
    source = tmp_path / "customers.parquet"
    frame.to_parquet(source, index=False)
    expected = scorer.score_frame(frame)

    fast = BatchScorer(scorer, identity, BatchOptions(chunk_rows=2000))
    result = fast.run(str(source), str(tmp_path / "fast.parquet"))
    assert result.summary.predictor == "tables"
    got = pd.read_parquet(tmp_path / "fast.parquet")
    np.testing.assert_allclose(got["churn_probability"], expected.probability, atol=1e-6, rtol=0)
    # Decisions are the booster's exactly, also for rows next to the threshold or a band.
    assert got["will_churn"].tolist() == expected.will_churn.tolist()
    assert got["risk_level"].astype(str).tolist() == expected.risk_level.tolist()

    # Put the threshold exactly on a booster probability the tables put just below it: only the
    # rescoring of near-cut rows keeps that customer's decision the booster's.
    ours = fast._probability(*fast._encode_parts(frame))
    below = np.flatnonzero(ours < expected.probability)
    assert below.size
    row = int(below[0])
    scorer.threshold = float(expected.probability[row])
    on_cut = BatchScorer(scorer, identity, BatchOptions())
    _, will_churn, _ = on_cut._predict(frame)
    assert bool(will_churn[row]) is True
    assert will_churn.tolist() == (expected.probability >= scorer.threshold).tolist()
    scorer.threshold = bundle.threshold

    # A run whose first chunk disagrees beyond the tolerance scores everything with the booster.
    monkeypatch.setattr("churnops.scoring.batch.TOLERANCE", -1.0)
    slow = BatchScorer(scorer, identity, BatchOptions(chunk_rows=2000))
    result = slow.run(str(source), str(tmp_path / "slow.parquet"))
    assert result.summary.predictor == "booster"
    exact = pd.read_parquet(tmp_path / "slow.parquet")
    np.testing.assert_array_equal(exact["churn_probability"], expected.probability)


def test_score_table_is_the_use_case_without_the_cli(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """A flow calls `score_table` as the CLI does: the run and a failed run land in the store."""
    from churnops.errors import DataValidationError
    from churnops.modeling.tracking import model_source
    from churnops.scoring.runs import BatchRequest, score_table

    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    source = tmp_path / "customers.csv"
    trained_model.frame.head(300).to_csv(source, index=False)
    request = BatchRequest(
        source=str(source),
        output=str(tmp_path / "scored.parquet"),
        model_uri=trained_model.champion_uri,
        options=BatchOptions(chunk_rows=100),
    )
    seen: list[int] = []
    result = score_table(
        request,
        source=model_source(trained_model.settings),
        database_url=database_url,
        progress=lambda done, total: seen.append(done),
    )
    assert seen == [100, 200, 300]
    assert result.summary.rows_scored == 300
    assert result.summary.model_version.isdigit()  # the alias resolved in the registry

    broken = tmp_path / "broken.csv"
    trained_model.frame.head(50).drop(columns=["tenure"]).to_csv(broken, index=False)
    with pytest.raises(DataValidationError, match="tenure"):
        score_table(
            BatchRequest(
                source=str(broken),
                output=str(tmp_path / "never.parquet"),
                model_uri=trained_model.champion_uri,
                options=BatchOptions(),
            ),
            source=model_source(trained_model.settings),
            database_url=database_url,
        )
    engine = sa.create_engine(database_url)
    try:
        runs = pd.read_sql_table("batch_runs", engine).sort_values("id")
    finally:
        engine.dispose()
    statuses = [(s if isinstance(s, dict) else json.loads(s))["status"] for s in runs["summary"]]
    assert statuses == ["succeeded", "failed"]
    assert runs["rows_read"].tolist() == [300, 0]
    assert not (tmp_path / "never.parquet").exists()


# Imported by other commands, never by a 10-row predict on a store at head: Alembic and Mako (the
# store's migrations), markdown_it (train's model card), httpx (`churnops app`), monitoring's drift.
NOT_FOR_PREDICT = ("alembic", "mako", "markdown_it", "httpx", "churnops.monitoring.drift")


def test_a_small_predict_on_a_store_at_head_imports_no_migration_or_other_commands_code(
    cli_env: TrainedModel, tmp_path: Path
) -> None:
    """The whole `churnops predict` of 10 rows in a fresh interpreter: the run is recorded in the
    store, and only what scoring and recording need is imported."""
    from churnops.store.store import PredictionStore

    settings = cli_env.settings
    with PredictionStore(settings.resolved_database_url()) as store:
        store.create()  # at head, as for every predict but the first
    runs_before = len(_batch_runs(cli_env))
    source = tmp_path / "ten.csv"
    cli_env.frame.head(10).to_csv(source, index=False)
    script = (
        "import json, sys\n"
        "from churnops.cli.main import app\n"
        f"sys.argv = ['churnops', 'predict', {str(source)!r}, '-o', {str(tmp_path / 'o.csv')!r}]\n"
        "try:\n"
        "    app()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        f"found = [m for m in {NOT_FOR_PREDICT!r} if m in sys.modules]\n"
        "print(json.dumps({'code': code, 'imported': found}))\n"
    )
    env = {
        **os.environ,
        "CHURNOPS_HOME": settings.home,
        "CHURNOPS_TRACKING_URI": settings.resolved_tracking_uri(),
        "CHURNOPS_DATABASE_URL": settings.resolved_database_url(),
        "CHURNOPS_CONFIG": str(Path(settings.home) / "absent.yaml"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"code": 0, "imported": []}, done.stderr[-3000:]
    assert len(pd.read_csv(tmp_path / "o.csv")) == 10
    assert len(_batch_runs(cli_env)) == runs_before + 1
