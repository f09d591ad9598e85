"""Lookup tables reproduce the XGBoost booster's probabilities (and refuse what they cannot do)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from xgboost import XGBClassifier

from churnops.features.encoder import FastEncoder
from churnops.scoring.fastpath import ChunkEncoder
from churnops.scoring.treetables import TOLERANCE, TreeTables
from tests.support.features import Fitted


def _fit(fitted: Fitted, **params: object) -> XGBClassifier:
    matrix = fitted.encoder.encode_frame(fitted.frame).astype(np.float32)
    target = fitted.frame[fitted.schema.target].astype(str) == fitted.schema.positive_label
    model = XGBClassifier(n_estimators=60, learning_rate=0.2, random_state=0, n_jobs=1, **params)
    return model.fit(matrix, target.to_numpy().astype(int))


def _noisy(frame: pd.DataFrame, encoder: FastEncoder) -> pd.DataFrame:
    """The demo rows with jittered numbers, nulls and an unseen category (every state visited)."""
    rng = np.random.default_rng(3)
    out = frame.copy()
    for name in encoder.numeric_names:
        values = pd.to_numeric(out[name], errors="coerce").astype(float)
        out[name] = values * rng.normal(1.0, 0.2, len(out)) + rng.normal(0, 1, len(out))
        out.loc[out.sample(frac=0.02, random_state=1).index, name] = np.nan
    block = encoder.categorical[0].name
    out[block] = out[block].astype(object)
    out.loc[out.index[:50], block] = "never seen"
    return out


@pytest.mark.parametrize("depth", [1, 2])
def test_tables_match_booster(fitted: Fitted, depth: int) -> None:
    model = _fit(fitted, max_depth=depth)
    booster = model.get_booster()
    tables = TreeTables.build(booster, fitted.encoder)
    assert tables is not None
    encoder = ChunkEncoder(fitted.encoder, np.float32)
    frame = _noisy(fitted.frame, fitted.encoder)
    numeric, codes = encoder.numeric(frame), encoder.codes(frame)
    ours = tables.proba(numeric, codes)
    theirs = booster.inplace_predict(encoder.assemble(numeric, codes)).astype(np.float64)
    assert np.max(np.abs(ours - theirs)) <= TOLERANCE
    # Chunking does not change anything: the same rows give the same numbers in any batch.
    np.testing.assert_array_equal(
        tables.proba(numeric[:, 100:200], codes[:, 100:200]), ours[100:200]
    )


def test_unsupported_models_give_none(fitted: Fitted) -> None:
    regressor = _fit(fitted, max_depth=2, objective="binary:logitraw")
    assert TreeTables.build(regressor.get_booster(), fitted.encoder) is None
    linear = _fit(fitted, booster="gblinear")
    assert TreeTables.build(linear.get_booster(), fitted.encoder) is None
    small = _fit(fitted, max_depth=2)
    assert TreeTables.build(small.get_booster(), fitted.encoder, max_entries=10) is None
    deep = _fit(fitted, max_depth=6)  # trees reading 3+ numbers: tables would be too large
    assert TreeTables.build(deep.get_booster(), fitted.encoder) is None


def test_tables_are_small_and_merged(fitted: Fitted) -> None:
    tables = TreeTables.build(_fit(fitted, max_depth=2).get_booster(), fitted.encoder)
    assert tables is not None
    assert len(tables.tables) < 60  # fewer gathers than trees
    assert all(t.values.size <= 16_384 or len(t.features) <= 3 for t in tables.tables)
