"""Schema inference and every validation error, on small synthetic frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.data.schema import ColumnKind, Schema, infer_schema, target_vector
from churnops.data.sources import resolve_data_settings
from churnops.data.validate import find_row_errors, validate_against_schema, validate_training_frame
from churnops.errors import ConfigError, DataValidationError
from churnops.settings import DataSettings


def customers(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "account": [f"A{i:04d}" for i in range(n)],
            "left": rng.choice(["yes", "no"], size=n),
            "age": rng.integers(18, 90, size=n),
            "spend": rng.normal(50, 10, size=n),
            "plan": rng.choice(["basic", "plus", "pro"], size=n),
            "is_member": rng.integers(0, 2, size=n),
            "signup": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        }
    )


SETTINGS = DataSettings(target="left", positive_label="yes", id_column="account")


def test_infers_each_kind_with_ranges_and_categories() -> None:
    schema = infer_schema(customers(), SETTINGS)
    kinds = {c.name: c.kind for c in schema.features}
    assert kinds == {
        "age": ColumnKind.NUMERIC,
        "spend": ColumnKind.NUMERIC,
        "plan": ColumnKind.CATEGORICAL,
        "is_member": ColumnKind.BINARY,
    }
    ignored = {c.name: c.kind for c in schema.ignored}
    assert ignored == {"account": ColumnKind.ID, "signup": ColumnKind.DATETIME}
    assert schema.feature("plan").categories == ["basic", "plus", "pro"]
    assert schema.feature("is_member").categories == [0, 1]
    frame = customers()
    assert schema.feature("age").min == frame["age"].min()
    assert schema.feature("age").max == frame["age"].max()
    assert schema.positive_label == "yes" and schema.negative_label == "no"
    assert schema.positive_rate == pytest.approx((frame["left"] == "yes").mean())


def test_null_rate_recorded_and_schema_round_trips(tmp_path) -> None:
    frame = customers()
    frame.loc[:5, "spend"] = np.nan
    schema = infer_schema(frame, SETTINGS)
    assert schema.feature("spend").null_rate == pytest.approx(6 / len(frame))
    for name in ("schema.yaml", "schema.json"):
        path = schema.save(tmp_path / name)
        assert Schema.load(path) == schema
    assert "spend" in (tmp_path / "schema.yaml").read_text()


def test_positive_label_inferred_for_0_1_targets_and_required_otherwise() -> None:
    frame = customers()
    frame["left"] = (frame["left"] == "yes").astype(int)
    schema = infer_schema(frame, DataSettings(target="left", id_column="account"))
    assert schema.positive_label == "1"
    assert target_vector(frame, schema).sum() == frame["left"].sum()
    frame["left"] = np.where(frame["left"] == 1, "gone", "stayed")
    with pytest.raises(ConfigError, match="--positive-label"):
        infer_schema(frame, DataSettings(target="left"))


def test_exclude_and_unknown_configured_columns() -> None:
    schema = infer_schema(customers(), SETTINGS.model_copy(update={"exclude": ["spend"]}))
    assert "spend" not in schema.feature_names
    with pytest.raises(DataValidationError) as caught:
        infer_schema(customers(), SETTINGS.model_copy(update={"id_column": "nope"}))
    assert caught.value.problems[0].column == "nope"


def test_target_must_be_binary() -> None:
    frame = customers()
    frame.loc[:3, "left"] = "maybe"
    with pytest.raises(DataValidationError, match="exactly 2 distinct values"):
        infer_schema(frame, SETTINGS)


def test_training_validation_lists_every_problem() -> None:
    frame = customers()
    frame.loc[1, "account"] = frame.loc[0, "account"]  # duplicate id
    frame["empty"] = np.nan  # all-null column
    frame["mostly_missing"] = np.where(np.arange(len(frame)) < 45, np.nan, 1.5)
    frame.loc[0, "left"] = None  # missing target
    frame["price_text"] = [str(v) for v in range(len(frame))]
    frame.loc[2, "price_text"] = "n/a"  # numbers stored as text with a stray value
    schema = infer_schema(frame.dropna(subset=["left"]), SETTINGS)
    with pytest.raises(DataValidationError) as caught:
        validate_training_frame(frame, schema, SETTINGS)
    text = str(caught.value)
    columns = {p.column for p in caught.value.problems}
    assert {"account", "empty", "mostly_missing", "left", "price_text"} <= columns
    assert "A0000" in text  # the duplicated id is shown as an example
    assert "'n/a'" in text


def test_row_errors_name_the_column_and_reason() -> None:
    schema = infer_schema(customers(), SETTINGS)
    bad = customers(4).drop(columns=["left"])
    bad["age"] = bad["age"].astype(object)
    bad.loc[0, "plan"] = "platinum"
    bad.loc[1, "age"] = "old"
    bad.loc[2, "spend"] = np.inf
    bad.loc[3, "is_member"] = 7
    errors = find_row_errors(bad, schema)
    assert "plan: 'platinum' is not one of ['basic', 'plus', 'pro']" in errors[0]
    assert errors[1] == "age: not a number"
    assert errors[2] == "spend: must be finite"
    assert "is_member: must be one of [0, 1]" in errors[3]
    with pytest.raises(DataValidationError, match="row 0"):
        validate_against_schema(bad, schema)


def test_missing_feature_column_fails_up_front() -> None:
    schema = infer_schema(customers(), SETTINGS)
    with pytest.raises(DataValidationError, match="required column is missing"):
        find_row_errors(customers().drop(columns=["plan"]), schema)


def test_null_only_allowed_where_training_had_nulls() -> None:
    frame = customers()
    frame.loc[:3, "spend"] = np.nan
    schema = infer_schema(frame, SETTINGS)
    rows = customers(3)
    rows.loc[0, "spend"] = np.nan  # nullable: fine
    rows.loc[1, "age"] = np.nan  # never null in training: rejected
    errors = find_row_errors(rows, schema)
    assert errors[0] == ""
    assert errors[1].startswith("age: required")


def test_other_table_never_inherits_configured_columns() -> None:
    configured = DataSettings(
        path="a.csv", target="churn", positive_label="Yes", id_column="cid", exclude=["x"]
    )
    other = resolve_data_settings(configured, path="b.csv", target="default")
    assert other.path == "b.csv" and other.target == "default"
    assert other.id_column is None and other.exclude == [] and other.positive_label is None
    same = resolve_data_settings(configured, path="a.csv")
    assert same.id_column == "cid" and same.exclude == ["x"]
    demo = resolve_data_settings(DataSettings())
    assert demo.path is not None and demo.path.endswith("telco_churn.csv") and demo.target
