"""A compiled copy of the fitted ColumnTransformer that encodes frames and plain records fast.

sklearn's ColumnTransformer costs ~6 ms for one row; the arithmetic it does is a median fill, a
standardisation and a one-hot lookup, which numpy and a dict do in microseconds. The encoder is
built from the fitted transformer's own statistics, so both give the same matrix (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from churnops.data.schema import MISSING_CATEGORY, Schema
from churnops.lazy import lazy_module

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer  # a fitted one comes with sklearn loaded
else:  # frames only: the API scores plain records and never needs pandas
    pd = lazy_module("pandas")

Records = Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]

# From this many plain records on, encoding a column at a time with numpy beats a Python loop.
# Measured on the bundled data (19 features, 2026-12-04), µs a record, loop / columns: 6 records
# 3.9 / 4.6, 8 records 3.8 / 3.8, 11 records 3.8 / 3.2, 32 records 3.7 / 1.9 (48 before the
# columnar path got faster; a shadow's slices are about 10 records).
COLUMNAR_ROWS = 8


def is_plain_numeric(series: pd.Series) -> bool:
    """A numeric column that is not a pandas categorical."""
    return pd.api.types.is_numeric_dtype(series) and not isinstance(
        series.dtype, pd.CategoricalDtype
    )


def distinct_values(series: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(codes, distinct non-null values) with codes -1 for nulls; None when values of mixed
    Python types could compare equal but print differently (1, 1.0, True)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = series.cat.categories
        if categories.dtype == object and pd.api.types.infer_dtype(categories) not in {
            "string",
            "empty",
        }:
            return None
        return np.asarray(series.cat.codes.to_numpy(), dtype=np.int64), categories.to_numpy()
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) not in {
        "string",
        "empty",
    }:
        return None
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques)


def _as_float(series: pd.Series) -> np.ndarray:
    """A fresh float64 copy of a column; text that is not a number becomes NaN."""
    if is_plain_numeric(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    coerced = pd.to_numeric(series, errors="coerce")
    return np.array(coerced.to_numpy(dtype=np.float64, na_value=np.nan), copy=True)


def _is_missing(value: Any) -> bool:
    """A plain value that means "no value": None or NaN (as pandas reads them in a frame)."""
    return value is None or (isinstance(value, float) and value != value)


@dataclass(frozen=True)
class CategoricalBlock:
    name: str
    offset: int
    index: dict[str, int]  # category text -> column offset within the block


@dataclass(frozen=True)
class FastEncoder:
    numeric_names: tuple[str, ...]
    medians: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    categorical: tuple[CategoricalBlock, ...]
    n_outputs: int
    output_owner: np.ndarray  # encoded column -> index into `feature_names`
    feature_names: tuple[str, ...]  # original feature order of the schema

    @classmethod
    def from_fitted(cls, preprocessor: ColumnTransformer, schema: Schema) -> FastEncoder:
        numeric_names: list[str] = []
        medians = means = scales = np.zeros(0)
        blocks: list[CategoricalBlock] = []
        owners: list[int] = []
        feature_names = schema.feature_names
        position = {name: i for i, name in enumerate(feature_names)}
        offset = 0
        for name, transformer, columns in preprocessor.transformers_:
            if name == "num":
                numeric_names = list(columns)
                medians = transformer.named_steps["impute"].statistics_.astype(float)
                scaler = transformer.named_steps["scale"]
                means = scaler.mean_.astype(float)
                scales = scaler.scale_.astype(float)
                owners.extend(position[c] for c in columns)
                offset += len(columns)
            elif name == "cat":
                onehot = transformer.named_steps["onehot"]
                for column, categories in zip(columns, onehot.categories_, strict=True):
                    index = {str(v): i for i, v in enumerate(categories)}
                    blocks.append(CategoricalBlock(name=column, offset=offset, index=index))
                    owners.extend([position[column]] * len(index))
                    offset += len(index)
        return cls(
            numeric_names=tuple(numeric_names),
            medians=medians,
            means=means,
            scales=scales,
            categorical=tuple(blocks),
            n_outputs=offset,
            output_owner=np.asarray(owners, dtype=np.int64),
            feature_names=tuple(feature_names),
        )

    def _scale(self, matrix: np.ndarray) -> None:
        n = len(self.numeric_names)
        if n:
            block = matrix[:, :n]
            np.copyto(block, self.medians, where=np.isnan(block))
            block -= self.means
            block /= self.scales

    def numeric_columns(
        self, frame: pd.DataFrame, dtype: type[np.floating] = np.float64
    ) -> np.ndarray:
        """(numeric columns x rows): median-filled, standardised (computed in float64)."""
        out = np.empty((len(self.numeric_names), len(frame)), dtype=dtype)
        for j, name in enumerate(self.numeric_names):
            out[j] = self._standardised(_as_float(frame[name]), j)
        return out

    def _standardised(self, values: np.ndarray, j: int) -> np.ndarray:
        """Numeric column `j` filled with its median and standardised, in place (float64)."""
        np.copyto(values, self.medians[j], where=np.isnan(values))
        values -= self.means[j]
        values /= self.scales[j]
        return values

    def _block_codes(self, series: pd.Series, block: CategoricalBlock) -> np.ndarray:
        distinct = distinct_values(series)
        if distinct is None:  # mixed Python types: every value turned into text
            text = series.astype(object).where(series.notna(), MISSING_CATEGORY).astype(str)
            return np.asarray(
                pd.Categorical(text, categories=list(block.index)).codes, dtype=np.int32
            )
        # Each distinct value is looked up once (a column has a handful, a chunk 250,000 rows).
        codes, values = distinct
        lookup = np.empty(len(values) + 1, dtype=np.int32)
        for i, value in enumerate(values):
            lookup[i] = block.index.get(str(value), -1)
        lookup[-1] = block.index.get(MISSING_CATEGORY, -1)  # code -1 (null) reads the last slot
        return lookup[codes]

    def category_codes(self, frame: pd.DataFrame) -> np.ndarray:
        """(blocks x rows): offset of each row's category within its one-hot block, -1 unknown."""
        out = np.empty((len(self.categorical), len(frame)), dtype=np.int32)
        for b, block in enumerate(self.categorical):
            out[b] = self._block_codes(frame[block.name], block)
        return out

    def assemble(
        self, numeric: np.ndarray, codes: np.ndarray, dtype: type[np.floating] = np.float64
    ) -> np.ndarray:
        """The encoded matrix from `numeric_columns` and `category_codes` of the same rows."""
        matrix = np.zeros((codes.shape[1], self.n_outputs), dtype=dtype)
        n_numeric = len(self.numeric_names)
        if n_numeric:
            matrix[:, :n_numeric] = numeric.T
        for b, block in enumerate(self.categorical):
            width = len(block.index)
            # One-hot by gathering rows of an identity whose extra last row (code -1) is all zero.
            onehot = np.eye(width + 1, width, dtype=dtype)
            matrix[:, block.offset : block.offset + width] = onehot[codes[b]]
        return matrix

    def encode_frame(
        self, frame: pd.DataFrame, dtype: type[np.floating] = np.float64
    ) -> np.ndarray:
        """Vectorised encoding of a whole frame (batch scoring); float32 for boosted trees."""
        numeric = self.numeric_columns(frame, dtype)
        return self.assemble(numeric, self.category_codes(frame), dtype)

    @cached_property
    def _record_plan(self) -> _RecordPlan:
        return _RecordPlan.of(self)

    def encode_records(self, records: Records) -> np.ndarray:
        """Encoding of plain records (a list of dicts or a dict of lists) with no DataFrame.

        The same matrix as `encode_frame` of the same rows (tested): a few rows are encoded in a
        Python list (per-element numpy writes would cost more than the arithmetic), more rows a
        column at a time with numpy.
        """
        plan = self._record_plan
        if isinstance(records, Mapping):
            length = len(next(iter(records.values()))) if records else 0
            absent = [None] * length
            return self._encode_columns([records.get(name, absent) for name in plan.names], length)
        if len(records) >= COLUMNAR_ROWS:
            return self._encode_columns(plan.columns(records), len(records))
        return self._encode_rows(records)

    def _encode_rows(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        # Fill, centre and scale are the same float64 operations as `_standardised`.
        plan = self._record_plan
        width = self.n_outputs
        flat = [0.0] * (len(rows) * width)
        start = 0
        for values in plan.rows(rows):
            for j, (median, mean, scale) in enumerate(plan.numeric):
                value = values[j]
                number = median if value is None else float(value)
                if number != number:  # NaN is missing, as in a frame
                    number = median
                flat[start + j] = (number - mean) / scale
            for block, value in zip(plan.blocks, values[plan.n_numeric :], strict=True):
                position = block.position(value)
                if position >= 0:
                    flat[start + block.offset + position] = 1.0
            start += width
        return np.array(flat, dtype=np.float64).reshape(len(rows), width)

    def _encode_columns(self, columns: Sequence[Sequence[Any]], length: int) -> np.ndarray:
        """`columns`: each feature's values in `_RecordPlan.names` order."""
        plan = self._record_plan
        matrix = np.zeros((length, self.n_outputs), dtype=np.float64)
        n = plan.n_numeric
        if n:
            # None becomes NaN, filled with the median; the same float64 steps as `_standardised`.
            block = np.array(columns[:n], dtype=np.float64).reshape(n, length)
            np.copyto(block, self.medians[:, None], where=np.isnan(block))
            block -= self.means[:, None]
            block /= self.scales[:, None]
            matrix[:, :n] = block.T
        if plan.blocks:
            codes = np.array(
                [
                    block.positions(column)
                    for block, column in zip(plan.blocks, columns[n:], strict=True)
                ],
                dtype=np.intp,
            ).reshape(len(plan.blocks), length)
            # Every block's one-hot at once: set (row, block offset + code) where the code is known.
            known = codes >= 0
            rows = np.broadcast_to(np.arange(length), codes.shape)[known]
            matrix[rows, (codes + self._block_offsets[:, None])[known]] = 1.0
        return matrix

    @cached_property
    def _block_offsets(self) -> np.ndarray:
        return np.asarray([block.offset for block in self.categorical], dtype=np.intp)

    @cached_property
    def _feature_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """(first encoded column of each feature's contiguous block, that feature's index)."""
        starts = [0] + [
            c for c in range(1, self.n_outputs) if self.output_owner[c] != self.output_owner[c - 1]
        ]
        return np.asarray(starts, dtype=np.intp), self.output_owner[starts]

    def sum_by_feature(self, encoded: np.ndarray) -> np.ndarray:
        """(rows x original features) sums of per-encoded-column values (one-hot blocks summed).

        Summed left to right within each feature's block, so a row's result never depends on
        which other rows it came with (a matrix product's blocking does change the last bit).
        """
        out = np.zeros((encoded.shape[0], len(self.feature_names)), dtype=np.float64)
        if encoded.shape[0] and self.n_outputs:
            starts, features = self._feature_groups
            out[:, features] = np.add.reduceat(encoded, starts, axis=1)
        return out


@dataclass(frozen=True)
class _BlockLookup:
    """One categorical block's value -> position, with the common case (a value that is its
    category's own text, or None) one dict lookup done in C."""

    offset: int
    index: dict[str, int]
    missing: int  # position of the missing-value category, -1 when training saw none
    fast: dict[Any, int]  # `index` plus None -> `missing`

    @classmethod
    def of(cls, block: CategoricalBlock) -> _BlockLookup:
        missing = block.index.get(MISSING_CATEGORY, -1)
        return cls(block.offset, block.index, missing, {**block.index, None: missing})

    def slow(self, value: Any) -> int:
        """What `fast` does not hold: NaN, numbers and other values compared as their text."""
        return self.missing if _is_missing(value) else self.index.get(str(value), -1)

    def position(self, value: Any) -> int:
        position = self.fast.get(value)
        return self.slow(value) if position is None else position

    def positions(self, values: Sequence[Any]) -> list[int | None]:
        found = list(map(self.fast.get, values))
        if None in found:
            return [self.slow(v) if f is None else f for f, v in zip(found, values, strict=True)]
        return found


@dataclass(frozen=True)
class _RecordPlan:
    """How plain records are read: every feature's value of a record in one C call."""

    names: tuple[str, ...]  # numeric features, then categorical ones
    n_numeric: int
    numeric: tuple[tuple[float, float, float], ...]  # (median, mean, scale) as Python floats
    blocks: tuple[_BlockLookup, ...]
    values_of: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # KeyError when a name is absent

    @classmethod
    def of(cls, encoder: FastEncoder) -> _RecordPlan:
        names = encoder.numeric_names + tuple(block.name for block in encoder.categorical)
        getter = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
        numeric = zip(
            encoder.medians.tolist(), encoder.means.tolist(), encoder.scales.tolist(), strict=True
        )
        return cls(
            names=names,
            n_numeric=len(encoder.numeric_names),
            numeric=tuple(numeric),
            blocks=tuple(_BlockLookup.of(block) for block in encoder.categorical),
            values_of=getter,
        )

    def rows(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """Each row's values in `names` order; an absent feature is None."""
        try:
            return list(map(self.values_of, rows))
        except KeyError:
            return [tuple(map(row.get, self.names)) for row in rows]

    def columns(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """Each feature's values over `rows`, in `names` order (a transpose done by zip)."""
        return list(zip(*self.rows(rows), strict=True)) if rows else [() for _ in self.names]
