"""Reading uploads and planning their columns, without the API."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest

from churnops.dashboard.batch import (
    UploadError,
    numbers_as_numbers,
    plan_columns,
    read_upload,
    reasons_text,
    records_of,
    riskiest,
)

SCHEMA = {
    "target": "left",
    "id_column": "account",
    "features": [{"name": "age"}, {"name": "tier"}, {"name": "spend"}],
    "ignored": [{"name": "account"}, {"name": "signup_note"}],
}


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"account": ["a", "b"], "age": [30, 40], "tier": ["gold", None], "spend": [1.5, math.nan]}
    )


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_each_upload_format_reads(suffix: str) -> None:
    buffer = io.BytesIO()
    if suffix == ".csv":
        frame().to_csv(buffer, index=False)
    elif suffix == ".xlsx":
        frame().to_excel(buffer, index=False)
    else:
        frame().to_parquet(buffer, index=False)
    read = read_upload("customers" + suffix, buffer.getvalue())
    assert list(read.columns) == ["account", "age", "tier", "spend"]
    assert read["age"].tolist() == [30, 40]


def test_unreadable_and_unsupported_uploads_say_why() -> None:
    with pytest.raises(UploadError, match=r"unsupported file type \.json"):
        read_upload("x.json", b"{}")
    with pytest.raises(UploadError, match="cannot be read as parquet"):
        read_upload("x.parquet", b"not parquet")
    with pytest.raises(UploadError, match="has no rows"):
        read_upload("x.csv", b"age,tier\n")


def test_every_missing_and_unknown_column_is_listed() -> None:
    with pytest.raises(UploadError) as caught:
        plan_columns(["account", "age", "colour", "size"], SCHEMA)
    assert caught.value.problems == [
        "missing column: tier (a model feature)",
        "missing column: spend (a model feature)",
        "unknown column: colour (the model has no such input)",
        "unknown column: size (the model has no such input)",
    ]


def test_target_and_ignored_columns_are_left_out_with_a_note() -> None:
    send, notes = plan_columns(["left", "spend", "tier", "age", "account", "signup_note"], SCHEMA)
    assert send == ["account", "age", "tier", "spend"]
    assert notes == [
        "column left is not a model input: left out",
        "column signup_note is not a model input: left out",
    ]


def test_records_are_plain_json_values() -> None:
    records = records_of(frame())
    assert records[1] == {"account": "b", "age": 40, "tier": None, "spend": None}
    assert type(records[0]["age"]) is int


def test_riskiest_first_with_reasons() -> None:
    scored = frame().assign(
        row=[1, 2],
        churn_probability=[0.2, 0.9],
        risk_level=["low", "high"],
        top_reasons=["", "age = 40"],
    )
    top = riskiest(scored, id_column="account", n=1)
    assert top.to_dict("records") == [
        {
            "row": 2,
            "account": "b",
            "churn_probability": 0.9,
            "risk_level": "high",
            "top_reasons": "age = 40",
        }
    ]
    reasons = [
        {"feature": "age", "value": 40, "contribution": 0.5},
        {"feature": "tier", "value": "gold", "contribution": -0.1},
    ]
    assert reasons_text(reasons) == "age = 40"


def test_numbers_written_as_text_become_numbers_and_the_rest_stays() -> None:
    schema = {
        "features": [
            {"name": "spend", "kind": "numeric", "dtype": "float"},
            {"name": "flag", "kind": "binary", "dtype": "int"},
            {"name": "tier", "kind": "categorical", "dtype": "str"},
        ]
    }
    upload = pd.DataFrame(
        {
            "spend": ["1.5", " ", "lots", None],
            "flag": ["1", "0", "1", "0"],
            "tier": ["1", "2", "3", "4"],  # a category that looks like a number stays text
        }
    )
    records = records_of(numbers_as_numbers(upload, schema))
    assert [r["spend"] for r in records] == [1.5, None, "lots", None]
    assert [r["flag"] for r in records] == [1.0, 0.0, 1.0, 0.0]
    assert [r["tier"] for r in records] == ["1", "2", "3", "4"]
    assert upload["spend"].tolist()[0] == "1.5"  # the upload itself is not modified
