"""The generated request contract from a tiny synthetic schema (no model, no network)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from churnops.api.contract import build_contract, record_of
from churnops.api.errors import validation_error
from churnops.data.schema import ColumnKind, ColumnSchema, Schema


def _schema() -> Schema:
    return Schema(
        target="churn",
        positive_label="Yes",
        negative_label="No",
        id_column="customer id",
        features=[
            ColumnSchema(name="tenure", kind=ColumnKind.NUMERIC, dtype="int", min=0, max=72),
            ColumnSchema(
                name="charges", kind=ColumnKind.NUMERIC, dtype="float", min=1, max=9, null_rate=0.1
            ),
            ColumnSchema(
                name="plan", kind=ColumnKind.CATEGORICAL, dtype="str", categories=["a", "b"]
            ),
            ColumnSchema(name="partner", kind=ColumnKind.BINARY, dtype="int", categories=[0, 1]),
        ],
        ignored=[ColumnSchema(name="customer id", kind=ColumnKind.ID, dtype="str")],
        n_rows=10,
        positive_rate=0.3,
    )


GOOD = {"customer id": "c1", "tenure": 3, "charges": 2.5, "plan": "a", "partner": 1}


def test_valid_record_round_trips_with_original_names() -> None:
    contract = build_contract(_schema(), max_batch_size=3, examples=[GOOD])
    item = contract.customer.model_validate(GOOD)
    assert record_of(item, contract) == GOOD
    assert contract.example == GOOD


def test_optional_id_and_nullable_feature() -> None:
    contract = build_contract(_schema(), max_batch_size=3)
    record = {k: v for k, v in GOOD.items() if k not in ("customer id", "charges")}
    item = record_of(contract.customer.model_validate(record), contract)
    assert item["customer id"] is None and item["charges"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"plan": "c"}, "plan: 'c' is not one of ['a', 'b']"),
        ({"tenure": "3"}, "tenure: expected a number, got a string"),
        ({"extra": 1}, "extra: unknown field"),
        ({"tenure": float("nan")}, "tenure: must be a finite number, got NaN"),
        ({"tenure": 1e300}, "tenure: must be at most 1e+15"),
        ({"customer id": "a\x00b"}, "customer id: must not contain NUL characters"),
    ],
)
def test_errors_name_field_and_reason(change: dict[str, object], message: str) -> None:
    contract = build_contract(_schema(), max_batch_size=3)
    with pytest.raises(ValidationError) as caught:
        contract.customer.model_validate(GOOD | change)
    error = validation_error(caught.value, allowed=contract.allowed)
    assert error.status == 422
    assert error.message.startswith(message)


def test_batch_limits() -> None:
    contract = build_contract(_schema(), max_batch_size=2)
    for customers, status in (([], 422), ([GOOD] * 3, 413)):
        with pytest.raises(ValidationError) as caught:
            contract.batch.model_validate({"customers": customers})
        assert validation_error(caught.value).status == status


def test_out_of_range() -> None:
    contract = build_contract(_schema(), max_batch_size=2)
    assert contract.out_of_range(GOOD | {"tenure": 100, "charges": 0.5}) == [
        ("tenure", "above"),
        ("charges", "below"),
    ]
    assert contract.out_of_range(GOOD | {"charges": None}) == []
