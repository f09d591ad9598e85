"""The fast encoder equals the fitted ColumnTransformer; contributions add up to the model output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from xgboost import XGBClassifier

from churnops.data.schema import infer_schema
from churnops.features.encoder import COLUMNAR_ROWS, FastEncoder
from churnops.features.pipeline import build_preprocessor
from churnops.modeling.predictors import predictor_for
from churnops.settings import DataSettings


@pytest.fixture(scope="module")
def table() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n),
            "fee": rng.normal(60, 20, n),
            "plan": rng.choice(["a", "b", "c"], n),
            "flag": rng.integers(0, 2, n),
            "region": rng.choice(["north", "south"], n),
        }
    )
    frame.loc[::17, "fee"] = np.nan
    frame.loc[::23, "plan"] = None
    logit = -0.04 * frame["tenure"] + 0.02 * frame["fee"].fillna(60) + (frame["plan"] == "c") - 1
    frame["target"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, frame["target"].to_numpy()


def test_fast_encoder_equals_column_transformer(table: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, _ = table
    schema = infer_schema(frame, DataSettings(target="target"))
    preprocessor = build_preprocessor(schema).fit(frame)
    encoder = FastEncoder.from_fitted(preprocessor, schema)
    expected = preprocessor.transform(frame)
    np.testing.assert_allclose(encoder.encode_frame(frame), expected, rtol=0, atol=1e-12)
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    # Plain records go through Python floats, frames through numpy: the very same numbers.
    np.testing.assert_array_equal(encoder.encode_records(records), encoder.encode_frame(frame))
    columns = {c: list(frame[c].astype(object).where(frame[c].notna(), None)) for c in frame}
    np.testing.assert_array_equal(encoder.encode_records(columns), encoder.encode_frame(frame))


@pytest.mark.parametrize("rows", [1, COLUMNAR_ROWS - 1, COLUMNAR_ROWS, 150])
def test_records_encode_like_the_frame_whatever_the_count(
    table: tuple[pd.DataFrame, np.ndarray], rows: int
) -> None:
    """Few records go through a Python loop, many through numpy columns: the same matrix, with
    None or NaN as a missing value, unknown categories and numbers given as text."""
    frame, _ = table
    schema = infer_schema(frame, DataSettings(target="target"))
    encoder = FastEncoder.from_fitted(build_preprocessor(schema).fit(frame), schema)
    part = frame.iloc[:rows].copy()
    part.loc[part.index[::5], "plan"] = "never seen"
    records = part.astype(object).to_dict(orient="records")
    missing = (None, float("nan"))
    for i, record in enumerate(records):
        if i % 3 == 0:
            record["tenure"] = str(record["tenure"])
        if i % 4 == 1:
            record.pop("region")
        if i % 7 == 2:
            record["plan"], record["fee"] = missing[i % 2], missing[(i + 1) % 2]
    expected = part.copy()
    expected.loc[expected.index[1::4], "region"] = None
    expected.loc[expected.index[2::7], ["plan", "fee"]] = None
    np.testing.assert_array_equal(encoder.encode_records(records), encoder.encode_frame(expected))


@pytest.mark.parametrize("column", ["fee", "plan"])
@pytest.mark.parametrize("rows", [3, COLUMNAR_ROWS + 2])
def test_a_single_feature_encodes_like_the_frame(
    table: tuple[pd.DataFrame, np.ndarray], column: str, rows: int
) -> None:
    """One feature: a record's values are read with one key, not a tuple of several."""
    frame, _ = table
    single = frame[[column, "target"]]
    schema = infer_schema(single, DataSettings(target="target"))
    encoder = FastEncoder.from_fitted(build_preprocessor(schema).fit(single), schema)
    part = single.iloc[:rows]
    records = part[[column]].astype(object).where(part[[column]].notna(), None)
    as_records = records.to_dict(orient="records")
    expected = encoder.encode_frame(part)
    assert expected.shape[1] >= 1
    np.testing.assert_array_equal(encoder.encode_records(as_records), expected)
    as_columns = {column: list(records[column])}
    np.testing.assert_array_equal(encoder.encode_records(as_columns), expected)


def test_values_that_are_not_their_categorys_text_are_matched_by_text(
    table: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """Categories are looked up by the value's own text first: a number, a bool or NaN given
    for a category column finds the same one-hot as in a frame, in both record paths."""
    frame = pd.DataFrame(
        {
            "code": ["1", "2", "True", "2", "1", None] * 10,
            "fee": np.arange(60, dtype=float),
            "target": [0, 1] * 30,
        }
    )
    schema = infer_schema(frame, DataSettings(target="target"))
    encoder = FastEncoder.from_fitted(build_preprocessor(schema).fit(frame), schema)
    given: list[object] = [1, "2", True, 2.0, np.int64(1), float("nan")]
    records = [{"code": given[i % 6], "fee": float(i)} for i in range(len(frame))]
    # 2.0 reads "2.0", not a category seen in training: no one-hot, as a frame of text gives.
    text = [None if v != v else str(v) for v in given]
    as_text = pd.Series([text[i % 6] for i in range(len(frame))], dtype=object)
    expected = encoder.encode_frame(frame.assign(code=as_text))
    block = encoder.categorical[0]
    onehot = expected[:, block.offset : block.offset + len(block.index)]
    assert 0 < onehot.sum() < len(frame)  # some rows known, some not: the check can fail
    for count in (5, len(records)):
        np.testing.assert_array_equal(encoder.encode_records(records[:count]), expected[:count])


def test_sum_by_feature_adds_each_features_columns_whatever_the_rows(
    table: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame, _ = table
    schema = infer_schema(frame, DataSettings(target="target"))
    encoder = FastEncoder.from_fitted(build_preprocessor(schema).fit(frame), schema)
    values = np.random.default_rng(0).normal(size=(len(frame), encoder.n_outputs))
    owner = np.zeros((encoder.n_outputs, len(encoder.feature_names)))
    owner[np.arange(encoder.n_outputs), encoder.output_owner] = 1.0
    summed = encoder.sum_by_feature(values)
    np.testing.assert_allclose(summed, values @ owner, rtol=0, atol=1e-12)
    # A row's sums do not depend on the rows beside it (a matrix product's blocking does).
    for start, stop in ((0, 1), (3, 10), (10, 200)):
        np.testing.assert_array_equal(
            encoder.sum_by_feature(values[start:stop]), summed[start:stop]
        )


@pytest.mark.parametrize(
    "classifier",
    [
        XGBClassifier(n_estimators=30, max_depth=3, random_state=0),
        LGBMClassifier(n_estimators=30, num_leaves=7, random_state=0, verbose=-1),
        LogisticRegression(max_iter=500),
        RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0),
    ],
    ids=["xgboost", "lightgbm", "logreg", "forest"],
)
def test_predictor_matches_sklearn_and_contributions_add_up(
    classifier: object, table: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, y = table
    schema = infer_schema(frame, DataSettings(target="target"))
    matrix = build_preprocessor(schema).fit_transform(frame)
    fitted = classifier.fit(matrix, y)  # type: ignore[attr-defined]
    predictor = predictor_for(fitted)
    expected = fitted.predict_proba(matrix)[:, 1]
    np.testing.assert_allclose(predictor.proba(matrix), expected, atol=1e-6)
    contributions = predictor.contributions(matrix)
    assert contributions.shape == matrix.shape
    if isinstance(fitted, RandomForestClassifier):
        # Saabas: root value + contributions = predicted probability.
        assert np.ptp(expected - contributions.sum(axis=1)) < 1e-9
    else:
        margin = np.log(expected / (1 - expected))
        # Log-odds contributions: a row-independent bias + contributions = margin.
        assert np.ptp(margin - contributions.sum(axis=1)) < 1e-3 or isinstance(
            fitted, LogisticRegression
        )
        if isinstance(fitted, LogisticRegression):
            np.testing.assert_allclose(
                margin, contributions.sum(axis=1) + fitted.intercept_[0], atol=1e-9
            )
