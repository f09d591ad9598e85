"""The batch fast path gives the same answers as the reference validator and encoder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.data.validate import find_row_errors
from churnops.scoring.fastpath import ChunkEncoder, chunk_is_clean, row_errors
from tests.support.features import Fitted


def _variants(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The same rows in the dtypes the readers produce (text, categoricals, objects, floats)."""
    text_columns = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    as_category = frame.astype(dict.fromkeys(text_columns, "category"))
    as_object = frame.astype(dict.fromkeys(text_columns, object))
    as_float = frame.astype({c: float for c in frame.columns if c not in text_columns})
    return {"native": frame, "category": as_category, "object": as_object, "float": as_float}


@pytest.mark.parametrize("variant", ["native", "category", "object", "float"])
def test_encoder_matches_fast_encoder(fitted: Fitted, variant: str) -> None:
    frame = _variants(fitted.frame.head(2000))[variant]
    expected = fitted.encoder.encode_frame(frame)
    got = ChunkEncoder(fitted.encoder, np.float64).encode(frame)
    np.testing.assert_array_equal(got, expected)
    as_float32 = ChunkEncoder(fitted.encoder, np.float32).encode(frame)
    np.testing.assert_array_equal(as_float32, expected.astype(np.float32))


def test_encoder_handles_nulls_unknowns_and_text_numbers(fitted: Fitted) -> None:
    frame = fitted.frame.head(500).astype({"contract": object, "tenure": object}).copy()
    frame.loc[0:9, "contract"] = None
    frame.loc[10:19, "contract"] = "Ten year"  # unknown category: all zeros in its block
    frame.loc[20:29, "total_charges"] = np.nan  # median fill
    frame.loc[30:39, "tenure"] = "12"  # numbers as text
    frame.loc[40:41, "contract"] = 1  # mixed Python types fall back to text conversion
    expected = fitted.encoder.encode_frame(frame)
    np.testing.assert_array_equal(ChunkEncoder(fitted.encoder).encode(frame), expected)


def test_encoder_does_not_modify_its_input(fitted: Fitted) -> None:
    frame = fitted.frame.head(100).copy()
    before = frame.copy()
    ChunkEncoder(fitted.encoder).encode(frame)
    pd.testing.assert_frame_equal(frame, before)


def _mutations(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}

    def mutate(name: str, column: str, value: object, dtype: object = None) -> None:
        changed = frame.copy()
        if dtype is not None:
            changed[column] = changed[column].astype(dtype)
        changed.loc[changed.index[3], column] = value
        out[name] = changed

    mutate("unknown category", "contract", "Ten year")
    mutate("null in required categorical", "contract", None, object)
    mutate("infinite", "monthly_charges", np.inf)
    mutate("text in numeric", "tenure", "twelve", object)
    mutate("number as text in numeric", "tenure", "12", object)
    mutate("binary out of range", "female", 2)
    mutate("null in nullable numeric", "total_charges", np.nan)
    mutate("null in required numeric", "tenure", np.nan)
    mutate("int in text column", "contract", 5, object)
    mutate("category dtype unknown", "payment_method", "Cash", object)
    out["category dtype unknown"] = out["category dtype unknown"].astype(
        {"payment_method": "category"}
    )
    return out


def test_clean_chunk_is_clean(fitted: Fitted) -> None:
    frame = fitted.frame.head(1000)
    for variant in _variants(frame).values():
        assert chunk_is_clean(variant, fitted.schema)
        assert row_errors(variant, fitted.schema) is None
        assert (find_row_errors(variant, fitted.schema) == "").all()


def test_quick_check_never_misses_a_bad_row(fitted: Fitted) -> None:
    frame = fitted.frame.head(200)
    for name, changed in _mutations(frame).items():
        reference = find_row_errors(changed, fitted.schema)
        if (reference != "").any():
            assert not chunk_is_clean(changed, fitted.schema), name
            errors = row_errors(changed, fitted.schema)
            assert errors is not None, name
            pd.testing.assert_series_equal(errors, reference)
        else:
            assert row_errors(changed, fitted.schema) is None, name


def test_mutations_that_must_be_rejected_are(fitted: Fitted) -> None:
    bad = {
        "unknown category",
        "infinite",
        "text in numeric",
        "binary out of range",
        "int in text column",
    }
    frame = fitted.frame.head(200)
    for name, changed in _mutations(frame).items():
        if name in bad:
            errors = row_errors(changed, fitted.schema)
            assert errors is not None, name
            assert list(np.flatnonzero((errors != "").to_numpy())) == [3], name


def test_alias_is_pinned_to_the_resolved_version() -> None:
    """Batch and monitor load exactly the version they record, even if the alias moves."""
    from churnops.modeling.registry import ModelIdentity

    assert ModelIdentity("churn", "7", "models:/churn@champion").pinned_uri == "models:/churn/7"
    assert ModelIdentity("churn", "champion", "models:/churn@champion").pinned_uri == (
        "models:/churn@champion"
    )  # unresolved: the loader reports the unknown alias
    assert (
        ModelIdentity("runs:/x/model", "unregistered", "runs:/x/model").pinned_uri
        == "runs:/x/model"
    )
