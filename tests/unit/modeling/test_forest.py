"""The flattened forest scores like the library it came from, missing values included."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from lightgbm import LGBMClassifier
from sklearn.ensemble import RandomForestClassifier
from xgboost import DMatrix, XGBClassifier

from churnops.modeling.forest import (
    FlatForest,
    _Builder,
    from_lightgbm,
    from_sklearn_forest,
    from_xgboost,
)
from churnops.modeling.predictors import SMALL_REQUEST_ROWS, predictor_for


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1500, 8))
    x[:, 3] = rng.integers(0, 2, 1500)  # a one-hot-like column: ties at split points
    y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 3] + rng.normal(scale=0.8, size=1500) > 0).astype(int)
    return x, y


def test_xgboost_flat_matches_booster_and_approx_contribs(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = data
    with_missing = x.copy()
    with_missing[::7, 0] = np.nan  # trained with NaNs: learnt default directions matter
    model = XGBClassifier(n_estimators=120, max_depth=5, learning_rate=0.1).fit(with_missing, y)
    flat = from_xgboost(model.get_booster())
    assert flat is not None
    np.testing.assert_allclose(
        flat.proba(with_missing), model.predict_proba(with_missing)[:, 1], atol=2e-7
    )
    approx = model.get_booster().predict(
        DMatrix(with_missing[:300]), pred_contribs=True, approx_contribs=True
    )
    np.testing.assert_allclose(flat.contributions(with_missing[:300]), approx[:, :-1], atol=1e-5)


def test_lightgbm_flat_matches_booster(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    model = LGBMClassifier(n_estimators=80, num_leaves=31, verbose=-1).fit(x, y)
    flat = from_lightgbm(model.booster_)
    assert flat is not None
    np.testing.assert_allclose(flat.proba(x), model.predict_proba(x)[:, 1], atol=1e-12)
    proba, contributions = flat.proba_and_contributions(x[:50], contributions=True)
    margin = np.log(proba / (1 - proba))
    assert contributions is not None
    assert np.ptp(margin - contributions.sum(axis=1)) < 1e-9  # bias is the same for every row


def test_forest_flat_matches_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    model = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0).fit(x, y)
    flat = from_sklearn_forest(model)
    np.testing.assert_allclose(flat.proba(x), model.predict_proba(x)[:, 1], atol=1e-12)
    contributions = flat.contributions(x[:40])
    assert np.ptp(flat.proba(x[:40]) - contributions.sum(axis=1)) < 1e-12


def test_predictor_engine_depends_only_on_row_count(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    model = XGBClassifier(n_estimators=50, max_depth=3).fit(x, y)
    predictor = predictor_for(model)
    small = x[:SMALL_REQUEST_ROWS]
    # Small inputs are walked in numpy, large ones go to the booster: same answers either way.
    np.testing.assert_allclose(
        predictor.proba(small), predictor.proba(x)[:SMALL_REQUEST_ROWS], atol=2e-7
    )
    proba, contributions = predictor.proba_and_contributions(small)
    np.testing.assert_array_equal(proba, predictor.proba(small))
    assert contributions.shape == small.shape


def _row_by_row(flat: FlatForest, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The walk in plain Python: each row through every tree in order, as the libraries sum."""
    xs = flat._prepared(x)
    proba = np.empty(len(xs))
    contrib = np.zeros(xs.shape)
    for r, row in enumerate(xs):
        total32, total = np.float32(flat.base), flat.base
        for root in flat.roots:
            node = int(root)
            while flat.left[node] != node:
                v = row[flat.feature[node]]
                if np.isnan(v):
                    go_left = bool(flat.default_left[node])
                else:
                    go_left = (
                        v < flat.threshold[node] if flat.rule == "lt" else v <= flat.threshold[node]
                    )
                child = int(flat.left[node] if go_left else flat.right[node])
                contrib[r, flat.feature[node]] += flat.mean[child] - flat.mean[node]
                node = child
            if flat.float32_sum:
                total32 = np.float32(total32 + np.float32(flat.value[node]))
            else:
                total += flat.value[node]
        if flat.link == "mean":
            proba[r] = total / flat.n_trees
            contrib[r] /= flat.n_trees
        else:
            margin = float(total32) if flat.float32_sum else total
            proba[r] = 1.0 / (1.0 + math.exp(-margin))  # the libm exp the compiled walk calls
    return proba, contrib


def _with_walk_depth(flat: FlatForest, depth: int) -> FlatForest:
    forced = dataclasses.replace(flat)
    forced.__dict__["walk_depth"] = depth  # the cached property, decided here instead
    return forced


def _deepest_leaf(flat: FlatForest) -> int:
    def depth(node: int) -> int:
        if flat.left[node] == node:
            return 0
        return 1 + max(depth(int(flat.left[node])), depth(int(flat.right[node])))

    return max(depth(int(root)) for root in flat.roots)


@pytest.mark.parametrize("walk", ["to each leaf", "fixed depth"])
@pytest.mark.parametrize("library", ["xgboost", "lightgbm", "sklearn"])
def test_the_compiled_walk_gives_the_plain_walk_bit_for_bit(
    data: tuple[np.ndarray, np.ndarray], library: str, walk: str
) -> None:
    """Any rework of the compiled walk (loop order, branch-free steps, fixed depth, two trees at
    once) must keep each row's sums in tree order: not even the last bit of a score or a reason
    may move. Odd tree counts: the walk two trees at a time ends on a single one."""
    x, y = data
    x = x.copy()
    x[::5, 1] = np.nan
    if library == "xgboost":
        flat = from_xgboost(XGBClassifier(n_estimators=41, max_depth=4).fit(x, y).get_booster())
    elif library == "lightgbm":
        flat = from_lightgbm(LGBMClassifier(n_estimators=31, verbose=-1).fit(x, y).booster_)
    else:
        model = RandomForestClassifier(n_estimators=11, max_depth=6, random_state=0)
        flat = from_sklearn_forest(model.fit(np.nan_to_num(x), y))
    assert flat is not None
    flat = _with_walk_depth(flat, _deepest_leaf(flat) if walk == "fixed depth" else 0)
    rows = x[:64]
    proba, contrib = flat.proba_and_contributions(rows, contributions=True)
    expected_proba, expected_contrib = _row_by_row(flat, rows)
    np.testing.assert_array_equal(proba, expected_proba)
    np.testing.assert_array_equal(contrib, expected_contrib)
    np.testing.assert_array_equal(flat.proba(rows), expected_proba)  # probabilities alone
    np.testing.assert_array_equal(flat.proba(rows[:1]), expected_proba[:1])  # one row alike


def test_boosters_shallow_trees_take_the_fixed_depth_walk_and_deep_uneven_ones_do_not(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = data
    booster = from_xgboost(XGBClassifier(n_estimators=20, max_depth=3).fit(x, y).get_booster())
    assert booster is not None
    assert booster.walk_depth == _deepest_leaf(booster) == 3
    deep = from_sklearn_forest(RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y))
    assert deep is not None
    assert _deepest_leaf(deep) > 10  # grown to purity: leaves at many depths
    assert deep.walk_depth == 0


def test_a_forest_of_single_leaves_walks_to_the_leaf_and_scores_its_values() -> None:
    builder = _Builder()
    for leaf in (0.5, -0.25, 1.0):
        builder.add(
            feature=[0], threshold=[0.0], left=[-1], right=[-1], default_left=[True],
            value=[leaf], mean=[leaf],
        )  # fmt: skip
    flat = builder.build(
        rule="lt", compare_dtype=np.float32, base=0.0, link="logit", float32_sum=True
    )
    assert flat.walk_depth == 0
    margin = float(np.float32(np.float32(np.float32(0.5) + np.float32(-0.25)) + np.float32(1.0)))
    expected = 1.0 / (1.0 + math.exp(-margin))
    np.testing.assert_array_equal(flat.proba(np.zeros((3, 2))), [expected] * 3)
