"""The local model cache: a warm load imports no MLflow, scikit-learn, XGBoost or pandas and
scores exactly as the model loaded through MLflow; an entry that is not what was written is never
loaded; a small batch never needs the booster, a large one gets it from the bundle."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from churnops.modeling import treewalk_aot
from churnops.modeling.loading import SERVING_FILE, load_scorer
from churnops.modeling.model_cache import MANIFEST
from churnops.modeling.registry import model_identity
from churnops.modeling.tracking import model_source
from churnops.scoring.batch import BatchOptions, BatchScorer
from churnops.settings import Settings
from tests.support.models import TrainedModel
from tests.support.services import needs

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("mlflow", "sklearn", "xgboost", "lightgbm", "pandas", "scipy.stats", "scipy.linalg")
JIT = ("numba", "llvmlite")  # not needed either once the walk is built ahead of time


def _cached_settings(trained: TrainedModel, cache: Path) -> Settings:
    settings = trained.settings.model_copy(deep=True)
    settings.registry.model_cache_dir = str(cache)
    return settings


def _run_script(script: str, settings: Settings) -> Any:
    """Run `script` in a fresh interpreter against `settings`' registry and model cache; the JSON
    it prints last."""
    env = {
        **os.environ,
        "CHURNOPS_HOME": settings.home,
        "CHURNOPS_TRACKING_URI": settings.resolved_tracking_uri(),
        "CHURNOPS_REGISTRY__MODEL_CACHE_DIR": str(settings.registry.model_cache_dir),
        "CHURNOPS_REGISTRY__MODEL_NAME": settings.registry.model_name,
    }
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _entries(cache: Path) -> list[Path]:
    return [p for p in cache.iterdir() if (p / MANIFEST).exists()]


def test_a_warm_load_imports_no_mlflow_and_scores_as_the_mlflow_load(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    if treewalk_aot.load() is None:
        needs("the ahead-of-time tree walk", "run `make setup` (it builds it with gcc)")
    settings = _cached_settings(trained_model, tmp_path / "cache")
    uri = trained_model.champion_uri
    reference = trained_model.scorer()  # through MLflow, no cache
    frame = trained_model.frame.head(300)

    cold, _ = load_scorer(uri, source=model_source(settings))  # fills the cache
    warm, meta = load_scorer(uri, source=model_source(settings))

    assert "churnops" in meta.metadata
    [entry] = _entries(tmp_path / "cache")
    assert (entry / SERVING_FILE).exists()
    assert oct((tmp_path / "cache").stat().st_mode & 0o777) == "0o700"
    for scorer in (cold, warm):
        ours = scorer.score_frame(frame.head(40), reasons=True)
        theirs = reference.score_frame(frame.head(40), reasons=True)
        np.testing.assert_array_equal(ours.probability, theirs.probability)
        assert ours.reasons == theirs.reasons
    records = frame.head(5).to_dict(orient="records")
    assert warm.score_rows(records) == reference.score_rows(records)
    # 300 rows without reasons go to the booster: restored from the cached bundle on first use.
    assert "booster" not in warm.predictor.__dict__
    np.testing.assert_array_equal(
        warm.score_frame(frame).probability, reference.score_frame(frame).probability
    )
    assert "booster" in warm.predictor.__dict__

    script = (
        "import json, sys\n"
        "from churnops.modeling.loading import load_scorer\n"
        "from churnops.modeling.tracking import model_source\n"
        "from churnops.settings import get_settings\n"
        f"scorer, _ = load_scorer({uri!r}, source=model_source(get_settings()))\n"
        f"rows = scorer.score_rows(json.loads({json.dumps(json.dumps(records, default=str))}))\n"
        f"print(json.dumps({{'imported': [m for m in {HEAVY + JIT!r} if m in sys.modules],"
        " 'rows': [list(r) for r in rows]}))\n"
    )
    found = _run_script(script, settings)
    assert found["imported"] == []
    expected = json.loads(json.dumps([list(r) for r in reference.score_rows(records)]))
    assert found["rows"] == expected


def test_an_entry_that_is_not_what_was_written_is_never_loaded(
    trained_model: TrainedModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    settings = _cached_settings(trained_model, cache)
    uri = trained_model.champion_uri
    reference = trained_model.scorer()
    load_scorer(uri, source=model_source(settings))
    [entry] = _entries(cache)
    pickled = entry / SERVING_FILE
    pickled.write_bytes(pickled.read_bytes()[:-8] + b"tampered")

    with caplog.at_level(logging.WARNING):
        scorer, _ = load_scorer(uri, source=model_source(settings))

    assert "does not match its manifest" in caplog.text
    records = trained_model.frame.head(3).to_dict(orient="records")
    assert scorer.score_rows(records) == reference.score_rows(records)
    [again] = _entries(cache)  # replaced by a good copy
    assert load_scorer(uri, source=model_source(settings))[0].score_rows(records) == (
        reference.score_rows(records)
    )
    assert again == entry

    cache.chmod(0o777)  # anyone could put a pickle there: not used, the model still loads
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        scorer, _ = load_scorer(uri, source=model_source(settings))
    assert "writable by no one else" in caplog.text
    assert scorer.score_rows(records) == reference.score_rows(records)


def test_a_small_batch_never_loads_the_booster_and_matches_the_api(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    settings = _cached_settings(trained_model, tmp_path / "cache")
    uri = trained_model.champion_uri
    load_scorer(uri, source=model_source(settings))
    scorer, _ = load_scorer(uri, source=model_source(settings))
    source = tmp_path / "ten.csv"
    frame = trained_model.frame.head(10)
    frame.to_csv(source, index=False)
    identity = model_identity(uri, trained_model.client)

    result = BatchScorer(scorer, identity, BatchOptions()).run(
        str(source), str(tmp_path / "out.csv")
    )

    assert result.summary.predictor == "walk"
    assert "booster" not in scorer.predictor.__dict__
    import pandas as pd

    got = pd.read_csv(tmp_path / "out.csv")
    api = [row.probability for row in scorer.score_rows(frame.to_dict(orient="records"))]
    np.testing.assert_allclose(got["churn_probability"], api, rtol=0, atol=1e-15)


def test_training_caches_the_version_it_registers_for_serving(
    trained_model: TrainedModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`cache_for_serving` (the training stage after registering) leaves a verified entry, so the
    first load after a promotion is a warm one; a version that cannot be loaded is reported, not
    raised (the run registered its model already)."""
    from churnops.modeling.stages import cache_for_serving

    cache = tmp_path / "cache"
    settings = _cached_settings(trained_model, cache)
    name = settings.registry.model_name
    version = trained_model.outcome.version
    assert cache_for_serving(name, version, model_source(settings))
    [entry] = _entries(cache)
    assert (entry / SERVING_FILE).exists()
    warm, _ = load_scorer(f"models:/{name}/{version}", source=model_source(settings))
    assert _entries(cache) == [entry]  # served from that entry, nothing downloaded again
    records = trained_model.frame.head(3).to_dict(orient="records")
    assert warm.score_rows(records) == trained_model.scorer().score_rows(records)
    with caplog.at_level(logging.WARNING):
        assert not cache_for_serving(name, "9999", model_source(settings))
    assert "version 9999 not cached for serving" in caplog.text


def test_a_first_load_of_a_version_stored_on_this_machine_needs_no_mlflow(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """An empty cache, a registry whose artifacts are local files: the version is copied from
    its storage location, verified and cached without importing MLflow."""
    settings = _cached_settings(trained_model, tmp_path / "cache")
    records = trained_model.frame.head(3).to_dict(orient="records")
    script = (
        "import json, sys\n"
        "from churnops.modeling.loading import load_scorer\n"
        "from churnops.modeling.tracking import model_source\n"
        "from churnops.settings import get_settings\n"
        f"scorer, _ = load_scorer({trained_model.champion_uri!r}, source=model_source(get_settings()))\n"
        f"rows = scorer.score_rows(json.loads({json.dumps(json.dumps(records, default=str))}))\n"
        "print(json.dumps({'mlflow': 'mlflow' in sys.modules, 'rows': [list(r) for r in rows]}))\n"
    )
    found = _run_script(script, settings)
    assert found["mlflow"] is False
    expected = json.loads(json.dumps([list(r) for r in trained_model.scorer().score_rows(records)]))
    assert found["rows"] == expected
    [entry] = _entries(tmp_path / "cache")
    assert (entry / SERVING_FILE).exists()
