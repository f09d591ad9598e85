"""Check a table for training sanity, or rows against a model's schema, collecting every problem."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnops.data.schema import ColumnKind, ColumnSchema, Schema, _python_scalar
from churnops.errors import DataValidationError, Problem
from churnops.settings import DataSettings


def _examples(values: pd.Series, limit: int = 5) -> list[object]:
    return [_python_scalar(v) for v in values.drop_duplicates().head(limit)]


def validate_training_frame(frame: pd.DataFrame, schema: Schema, settings: DataSettings) -> None:
    """Basic sanity of a training table; raises DataValidationError listing every problem."""
    problems: list[Problem] = []
    target = frame[schema.target]
    if target.isna().any():
        problems.append(
            Problem(schema.target, f"target has {int(target.isna().sum())} missing value(s)")
        )
    n_positive = int((target.astype(str) == schema.positive_label).sum())
    if n_positive < 10 or len(frame) - n_positive < 10:
        problems.append(
            Problem(
                schema.target, f"too few rows of one class ({n_positive} positive of {len(frame)})"
            )
        )
    if schema.id_column:
        ids = frame[schema.id_column]
        duplicated = ids[ids.duplicated(keep=False) & ids.notna()]
        if not duplicated.empty:
            problems.append(
                Problem(
                    schema.id_column,
                    f"{duplicated.nunique()} id value(s) appear more than once",
                    _examples(duplicated),
                )
            )
    for column in schema.features:
        series = frame[column.name]
        if series.isna().all():
            problems.append(Problem(column.name, "every value is missing"))
        elif column.null_rate > settings.max_null_rate:
            problems.append(
                Problem(
                    column.name,
                    f"{column.null_rate:.0%} missing, above the limit of {settings.max_null_rate:.0%}",
                )
            )
        elif column.kind is ColumnKind.CATEGORICAL:
            numeric_looking = pd.to_numeric(series.dropna(), errors="coerce")
            share = float(numeric_looking.notna().mean()) if len(numeric_looking) else 0.0
            if 0.9 <= share < 1.0:
                bad = series.dropna()[numeric_looking.isna()]
                problems.append(
                    Problem(
                        column.name,
                        f"looks numeric but {len(bad)} value(s) are not numbers (wrong type?)",
                        _examples(bad),
                    )
                )
    if not schema.features:
        problems.append(Problem(None, "no feature columns left after target, id and exclusions"))
    if problems:
        raise DataValidationError(problems)


def _text_of_distinct(series: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(code per row, -1 for nulls; str() of each distinct value), or None when values of mixed
    Python types could compare equal yet print differently (1, 1.0, True): then row by row."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = series.cat.categories
        if categories.dtype == object and pd.api.types.infer_dtype(categories) not in {
            "string",
            "empty",
        }:
            return None
        codes = np.asarray(series.cat.codes.to_numpy(), dtype=np.int64)
        values = categories.to_numpy()
    else:
        kind = pd.api.types.infer_dtype(series, skipna=True)
        if series.dtype == object and kind not in {"string", "empty"}:
            return None
        factorized, uniques = pd.factorize(series, use_na_sentinel=True)
        codes, values = np.asarray(factorized, dtype=np.int64), np.asarray(uniques)
    texts = np.array([str(v) for v in values], dtype=object)
    return codes, texts


def _column_errors(series: pd.Series, column: ColumnSchema) -> pd.Series:
    """Per row: the reason this column's value is bad, or an empty string."""
    reasons = pd.Series("", index=series.index, dtype=object)
    isna = series.isna().to_numpy()
    if column.kind is ColumnKind.NUMERIC or (column.is_numeric_encoded and column.dtype != "bool"):
        numbers = pd.to_numeric(series, errors="coerce")
        not_number = numbers.isna().to_numpy() & ~isna
        infinite = np.isinf(numbers.to_numpy(dtype=float, na_value=np.nan))
        reasons[not_number] = f"{column.name}: not a number"
        reasons[infinite] = f"{column.name}: must be finite"
        if column.kind is ColumnKind.BINARY and column.categories is not None:
            allowed = {float(c) for c in column.categories}
            outside = numbers.notna().to_numpy() & ~numbers.isin(list(allowed)).to_numpy()
            reasons[outside & ~infinite] = f"{column.name}: must be one of {column.categories}"
    else:
        allowed_text = [str(c) for c in column.categories or []]
        distinct = _text_of_distinct(series)
        if distinct is not None:
            # Each distinct value is turned into text and checked once, then spread to its rows.
            codes, texts = distinct
            bad_value = ~np.isin(texts, allowed_text) if len(texts) else np.zeros(0, dtype=bool)
            unknown = np.zeros(len(series), dtype=bool)
            present = codes >= 0
            unknown[present] = bad_value[codes[present]]
            if unknown.any():
                messages = np.array(
                    [f"{column.name}: {v!r} is not one of {allowed_text}" for v in texts],
                    dtype=object,
                )
                reasons[unknown] = messages[codes[unknown]]
        else:
            text = series.astype(object).where(~isna, None)
            as_text = text.map(lambda v: v if v is None else str(v))
            unknown = ~as_text.isin(allowed_text).to_numpy() & ~isna
            if unknown.any():
                shown = as_text[unknown].map(
                    lambda v: f"{column.name}: {v!r} is not one of {allowed_text}"
                )
                reasons[unknown] = shown
    if not column.nullable:
        reasons[isna] = f"{column.name}: required (no missing values seen in training)"
    return reasons


def find_row_errors(frame: pd.DataFrame, schema: Schema) -> pd.Series:
    """Per row: '; '-joined reasons it cannot be scored, '' for a good row (vectorised)."""
    missing = [c.name for c in schema.features if c.name not in frame.columns]
    if missing:
        raise DataValidationError(
            [Problem(name, "required column is missing from the input") for name in missing]
        )
    combined = pd.Series("", index=frame.index, dtype=object)
    for column in schema.features:
        reasons = _column_errors(frame[column.name], column)
        has = reasons != ""
        if has.any():
            joined = combined.where(combined == "", combined + "; ")
            combined = combined.where(~has, joined + reasons)
    return combined


def validate_against_schema(frame: pd.DataFrame, schema: Schema, max_problems: int = 20) -> None:
    """Raise DataValidationError for the first problems found when scoring `frame`."""
    errors = find_row_errors(frame, schema)
    bad = errors[errors != ""]
    if bad.empty:
        return
    problems = [
        Problem(None, f"row {index}: {reason}") for index, reason in bad.head(max_problems).items()
    ]
    if len(bad) > max_problems:
        problems.append(Problem(None, f"... and {len(bad) - max_problems} more bad row(s)"))
    raise DataValidationError(problems)
