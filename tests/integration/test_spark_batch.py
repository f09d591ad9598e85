"""The Spark engine gives the pandas engine's scores (local Spark, Java 17)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnops.errors import DataValidationError
from churnops.modeling.pyfunc import load_scorer
from churnops.modeling.registry import model_identity
from churnops.scoring.batch import BatchOptions, BatchResult, BatchScorer
from churnops.scoring.runs import record_run
from tests.support.models import TrainedModel
from tests.support.services import require_java, require_module

pytestmark = [pytest.mark.integration, pytest.mark.spark]
pyspark = require_module("pyspark")
require_java()


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from churnops.scoring.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


def _pandas_engine(
    trained: TrainedModel, source: Path, target: Path, options: BatchOptions
) -> tuple[pd.DataFrame, BatchResult]:
    scorer, _ = load_scorer(trained.champion_uri)
    identity = model_identity(trained.champion_uri, trained.client)
    result = BatchScorer(scorer, identity, options).run(str(source), str(target))
    return pd.read_parquet(target), result


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_spark_equals_pandas_engine(
    trained_model: TrainedModel, spark: Any, tmp_path: Path, suffix: str
) -> None:
    from churnops.scoring.spark import score_with_spark

    source = tmp_path / f"customers{suffix}"
    if suffix == ".csv":
        trained_model.frame.to_csv(source, index=False)
    else:
        trained_model.frame.to_parquet(source, index=False)
    options = BatchOptions(reasons=suffix == ".parquet")
    expected, pandas_result = _pandas_engine(
        trained_model, source, tmp_path / "pandas.parquet", options
    )
    identity = model_identity(trained_model.champion_uri, trained_model.client)
    target = tmp_path / "spark.parquet"
    result = score_with_spark(
        str(source),
        str(target),
        model_uri=trained_model.champion_uri,
        model=identity,
        options=options,
        spark=spark,
    )
    got = pd.read_parquet(target)
    assert list(got.columns) == list(expected.columns)
    merged = expected.merge(got, on="customer_id", suffixes=("_pandas", "_spark"))
    assert len(merged) == len(expected) == len(got) == len(trained_model.frame)
    np.testing.assert_allclose(
        merged["churn_probability_spark"], merged["churn_probability_pandas"], atol=1e-6, rtol=0
    )
    assert (merged["risk_level_spark"].astype(str) == merged["risk_level_pandas"].astype(str)).all()
    assert (merged["will_churn_spark"] == merged["will_churn_pandas"]).all()
    if options.reasons:
        assert (merged["reasons_spark"] == merged["reasons_pandas"]).all()
    assert result.summary.rows_read == result.summary.rows_scored == len(trained_model.frame)
    summary = json.loads((tmp_path / "spark.summary.json").read_text())
    assert summary["engine"] == "spark"
    assert summary["model_version"] == identity.version
    # Same input fingerprint (the file's bytes) and the same population profile as pandas'.
    assert summary["input_fingerprint"] == pandas_result.summary.input_fingerprint
    assert summary["input_fingerprint"].startswith("sha256-file:")
    assert summary["predictor"] == pandas_result.summary.predictor
    ours, theirs = result.population, pandas_result.population
    assert ours is not None and theirs is not None
    assert ours.n_rows == theirs.n_rows == len(trained_model.frame)
    assert ours.categorical == theirs.categorical
    for name, numeric in theirs.numeric.items():
        assert ours.numeric[name].grid.le == numeric.grid.le
        assert ours.numeric[name].bin_counts == numeric.bin_counts
        assert ours.numeric[name].total == pytest.approx(numeric.total)
    assert ours.scores is not None and theirs.scores is not None
    assert ours.scores.hist == theirs.scores.hist
    assert ours.scores.risk_counts == theirs.scores.risk_counts
    assert ours.scores.grid.lt == theirs.scores.grid.lt


def test_spark_run_is_recorded_with_profile(
    trained_model: TrainedModel, spark: Any, tmp_path: Path
) -> None:
    from churnops.scoring.spark import score_with_spark
    from churnops.store.store import PredictionStore

    source = tmp_path / "customers.parquet"
    trained_model.frame.head(3000).to_parquet(source, index=False)
    identity = model_identity(trained_model.champion_uri, trained_model.client)
    result = score_with_spark(
        str(source),
        str(tmp_path / "out.parquet"),
        model_uri=trained_model.champion_uri,
        model=identity,
        options=BatchOptions(),
        spark=spark,
    )
    store = PredictionStore(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        store.create()
        record_run(store, result)
        runs = pd.read_sql_table("batch_runs", store.engine)
    finally:
        store.close()
    run = runs.iloc[-1]
    profile = run["profile"] if isinstance(run["profile"], dict) else json.loads(run["profile"])
    assert profile["n_rows"] == 3000
    assert profile["scores"]["n"] == 3000
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert run["input_fingerprint"] == f"sha256-file:{digest}"


def test_spark_rejects_and_fail(trained_model: TrainedModel, spark: Any, tmp_path: Path) -> None:
    from churnops.scoring.spark import score_with_spark

    dirty = trained_model.frame.head(2000).copy()
    dirty["contract"] = dirty["contract"].astype(object)
    dirty.loc[10, "contract"] = "Ten year"
    dirty.loc[1500, "monthly_charges"] = np.inf
    source = tmp_path / "dirty.parquet"
    dirty.to_parquet(source, index=False)
    identity = model_identity(trained_model.champion_uri, trained_model.client)
    target = tmp_path / "out.parquet"
    with pytest.raises(DataValidationError, match="row 11: contract"):
        score_with_spark(
            str(source),
            str(target),
            model_uri=trained_model.champion_uri,
            model=identity,
            options=BatchOptions(on_error="fail"),
            spark=spark,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dirty.parquet"]
    result = score_with_spark(
        str(source),
        str(target),
        model_uri=trained_model.champion_uri,
        model=identity,
        options=BatchOptions(on_error="skip"),
        spark=spark,
    )
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert rejects["row"].tolist() == [11, 1501]
    summary = result.summary
    assert summary.rows_read == 2000 == summary.rows_scored + summary.rows_rejected
    assert len(pd.read_parquet(target)) == summary.rows_scored
