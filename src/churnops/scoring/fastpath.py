"""Batch hot path: a cheap exact "is this chunk clean?" test and the encoder in parts.

`find_row_errors` checks every row; here each column is factorised once and only its few distinct
values are checked, which gives the same answer (tested against it): a chunk the quick test calls
clean has no row errors. `ChunkEncoder` gives `FastEncoder`'s matrix in the predictor's dtype, or
its parts (what the lookup tables read).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnops.data.schema import ColumnKind, ColumnSchema, Schema
from churnops.data.validate import find_row_errors
from churnops.features.encoder import FastEncoder, distinct_values, is_plain_numeric


def _column_is_clean(series: pd.Series, column: ColumnSchema) -> bool:
    if not column.nullable and bool(series.isna().any()):
        return False
    if column.kind is ColumnKind.NUMERIC or (column.is_numeric_encoded and column.dtype != "bool"):
        if not is_plain_numeric(series):
            return False  # text in a numeric column: let the full check name the bad rows
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if bool(np.isinf(values).any()):
            return False
        if column.kind is ColumnKind.BINARY and column.categories is not None:
            allowed = np.isnan(values)
            for category in {float(c) for c in column.categories}:
                allowed |= values == category  # a few comparisons beat a hash of every value
            return bool(allowed.all())
        return True
    distinct = distinct_values(series)
    if distinct is None:
        return False
    codes, values = distinct
    present = np.zeros(len(values) + 1, dtype=bool)
    present[codes] = True  # code -1 (null) marks the extra last slot; no hashing of every row
    used = values[present[:-1]]
    allowed_text = {str(c) for c in column.categories or []}
    return all(str(v) in allowed_text for v in used)


def chunk_is_clean(frame: pd.DataFrame, schema: Schema) -> bool:
    """True only if `find_row_errors` would find nothing (False may still mean clean)."""
    return all(_column_is_clean(frame[c.name], c) for c in schema.features)


def row_errors(frame: pd.DataFrame, schema: Schema) -> pd.Series | None:
    """None for a clean chunk, else the per-row reasons of `find_row_errors` ('' for good rows)."""
    if chunk_is_clean(frame, schema):
        return None
    errors = find_row_errors(frame, schema)
    return errors if bool((errors != "").any()) else None


@dataclass(frozen=True)
class ChunkEncoder:
    """The FastEncoder's output in one dtype (float32 when the predictor casts anyway), as the
    matrix or as its parts: standardised numbers and one category code per one-hot block."""

    encoder: FastEncoder
    dtype: type[np.floating] = np.float64

    def numeric(self, frame: pd.DataFrame) -> np.ndarray:
        """(numeric columns x rows) standardised values in the encoder's dtype (median-filled)."""
        return self.encoder.numeric_columns(frame, self.dtype)

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """(blocks x rows) offset of each row's category within its block, -1 when unknown."""
        return self.encoder.category_codes(frame)

    def assemble(self, numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The encoder's matrix from `numeric()` and `codes()` of the same rows."""
        return self.encoder.assemble(numeric, codes, self.dtype)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        return self.assemble(self.numeric(frame), self.codes(frame))
