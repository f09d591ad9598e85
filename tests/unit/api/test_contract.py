"""The generated request contract from a tiny synthetic schema (no model, no network)."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest
from pydantic import ValidationError

from churnops.api.body import request_id_of, validate_body
from churnops.api.contract import build_contract, record_of
from churnops.api.errors import MAX_DETAILS, ApiError, validation_error
from churnops.data.profile import profile_frame
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
    contract = build_contract(_schema(), max_batch_size=3)
    item = contract.customer.model_validate(GOOD)
    assert record_of(item, contract) == GOOD


def test_example_is_made_up_from_the_schema_without_an_id() -> None:
    # Without a profile: the middle of each training range, the first allowed category.
    contract = build_contract(_schema(), max_batch_size=3)
    assert contract.example == {"tenure": 36, "charges": 5.0, "plan": "a", "partner": 0}
    contract.customer.model_validate(contract.example)  # and it is a valid request
    # With the training profile: medians and the most frequent category.
    frame = pd.DataFrame(
        {
            "customer id": ["c1", "c2", "c3", "c4", "c5"],
            "tenure": [1, 2, 3, 50, 72],
            "charges": [1.0, 1.5, 2.25, None, 9.0],
            "plan": ["b", "b", "a", "b", "a"],
            "partner": [1, 1, 0, 1, 0],
        }
    )
    profile = profile_frame(frame, _schema())
    typical = build_contract(_schema(), max_batch_size=3, profile=profile).example
    assert typical == {"tenure": 3, "charges": 1.88, "plan": "b", "partner": 1}
    assert "customer id" not in typical
    schema_examples = contract.customer.model_json_schema()["examples"]
    assert schema_examples == [contract.example]
    batch_examples = contract.batch.model_json_schema()["examples"]
    assert batch_examples == [{"customers": [contract.example]}]


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


@pytest.mark.parametrize("value", [True, False, 1.0, 0.0, "1"])
def test_binary_choice_is_strict(value: object) -> None:
    """`true` or `1.0` for a 0/1 field is someone's bug upstream, not a value (both paths: the
    /predict fast path and /predict/batch validate JSON through the same model)."""
    contract = build_contract(_schema(), max_batch_size=3)
    body = orjson.dumps(GOOD | {"partner": value})
    with pytest.raises(ApiError) as caught:
        validate_body(body, contract.customer, allowed=contract.allowed)
    assert caught.value.status == 422
    shown = orjson.dumps(value).decode().replace('"', "'")
    assert caught.value.message == f"partner: {shown} is not one of [0, 1]"
    batch = orjson.dumps({"customers": [GOOD, GOOD | {"partner": value}]})
    with pytest.raises(ApiError) as caught:
        validate_body(batch, contract.batch, allowed=contract.allowed)
    assert caught.value.message == f"customers[1].partner: {shown} is not one of [0, 1]"


def test_float_binary_takes_whole_numbers_but_not_booleans() -> None:
    schema = _schema()
    schema.features[3] = ColumnSchema(
        name="partner", kind=ColumnKind.BINARY, dtype="float", categories=[0.0, 1.0]
    )
    contract = build_contract(schema, max_batch_size=3)
    for value in (1, 1.0, 0):
        validate_body(orjson.dumps(GOOD | {"partner": value}), contract.customer)
    with pytest.raises(ApiError, match="partner: true is not one of"):
        validate_body(orjson.dumps(GOOD | {"partner": True}), contract.customer)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"tenure": 3, "charges": 2.5, "plan": "a", "partner": 1, "tenure": 70}', "tenure"),
        (b'{"tenure": 3, "charges": 2.5, "plan": "a", "partner": 1, "partner" : 0}', "partner"),
        (b'{"customer id": "x:y", "tenure": 3, "charges": 2.5, "plan": "a", "plan": "b",'
         b' "partner": 1}', "plan"),
    ],
)  # fmt: skip
def test_duplicate_keys_are_refused_as_ambiguous(body: bytes, key: str) -> None:
    contract = build_contract(_schema(), max_batch_size=3)
    with pytest.raises(ApiError) as caught:
        validate_body(body, contract.customer)
    assert caught.value.status == 400 and caught.value.code == "ambiguous_json"
    assert caught.value.detail[0]["field"] == key
    assert "more than once" in caught.value.message
    inner = body.decode()
    with pytest.raises(ApiError) as caught:
        validate_body(f'{{"customers": [{inner}]}}'.encode(), contract.batch)
    assert caught.value.detail[0]["field"] == key
    good = orjson.dumps(GOOD).decode()
    with pytest.raises(ApiError, match="customers: appears more than once"):
        validate_body(f'{{"customers": [], "customers": [{good}]}}'.encode(), contract.batch)


def test_colons_inside_values_are_not_duplicates() -> None:
    contract = build_contract(_schema(), max_batch_size=3)
    body = orjson.dumps(GOOD | {"customer id": "a:b:c:d:e:f"})
    assert record_of(validate_body(body, contract.customer), contract)["customer id"] == (
        "a:b:c:d:e:f"
    )


def test_error_answers_stay_small_whatever_was_sent() -> None:
    contract = build_contract(_schema(), max_batch_size=3)
    huge = "x" * 1_000_000
    with pytest.raises(ApiError) as caught:
        validate_body(orjson.dumps(GOOD | {huge: huge}), contract.customer)
    error = caught.value
    assert error.status == 422 and error.detail[0]["reason"] == "unknown field"
    assert error.message.startswith("xxxx") and error.message.endswith("...: unknown field")
    assert len(orjson.dumps([error.message, error.detail])) < 1000
    many = {f"extra{i}": i for i in range(100)}
    with pytest.raises(ApiError) as caught:
        validate_body(orjson.dumps(GOOD | many), contract.customer)
    assert len(caught.value.detail) == MAX_DETAILS
    assert caught.value.message.endswith("(and 99 more problem(s))")


def test_request_id_is_utf8_text_stored_as_sent() -> None:
    assert request_id_of(None) is None
    assert request_id_of("réq-42-✓".encode()) == "réq-42-✓"
    for bad in (b"\xff\xfe", b"a\x01b", b"r" * 129):
        with pytest.raises(ApiError) as caught:
            request_id_of(bad)
        assert caught.value.status == 400 and caught.value.detail[0]["field"] == "X-Request-ID"
