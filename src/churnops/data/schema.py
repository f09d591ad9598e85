"""Infer, save and load the schema of a customer table: what each column is and what it may hold."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from pydantic import BaseModel, Field

from churnops.errors import ConfigError, DataValidationError, Problem
from churnops.lazy import lazy_module
from churnops.settings import DataSettings
from churnops.yamlload import safe_load

if TYPE_CHECKING:
    import pandas as pd
else:  # frames only: the API scores plain records and never needs pandas
    pd = lazy_module("pandas")

Scalar = str | int | float | bool
MISSING_CATEGORY = "(missing)"
MAX_CATEGORIES = 200  # more distinct strings than this is an id or free text, not a category


class ColumnKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BINARY = "binary"
    ID = "id"
    DATETIME = "datetime"


class ColumnSchema(BaseModel):
    """What one column is, and what the training data showed of it."""

    name: str
    kind: ColumnKind
    dtype: str
    null_rate: float = 0.0
    min: float | None = None
    max: float | None = None
    categories: list[Scalar] | None = None

    @property
    def nullable(self) -> bool:
        return self.null_rate > 0.0

    @property
    def is_numeric_encoded(self) -> bool:
        """Numeric and 0/1-style binary columns are fed to the model as numbers."""
        if self.kind is ColumnKind.NUMERIC:
            return True
        return self.kind is ColumnKind.BINARY and self.dtype in {"int", "float", "bool"}


class Schema(BaseModel):
    """The contract every consumer of a model shares: features, target, id and their values."""

    target: str
    positive_label: str
    negative_label: str
    id_column: str | None = None
    features: list[ColumnSchema]
    ignored: list[ColumnSchema] = Field(default_factory=list)
    n_rows: int
    positive_rate: float

    def feature(self, name: str) -> ColumnSchema:
        for column in self.features:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    @property
    def numeric_features(self) -> list[ColumnSchema]:
        return [c for c in self.features if c.is_numeric_encoded]

    @property
    def categorical_features(self) -> list[ColumnSchema]:
        return [c for c in self.features if not c.is_numeric_encoded]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = (
            self.to_yaml() if path.suffix in {".yaml", ".yml"} else self.model_dump_json(indent=2)
        )
        path.write_text(text)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        path = Path(path)
        raw = path.read_text()
        data = safe_load(raw) if path.suffix in {".yaml", ".yml"} else json.loads(raw)
        return cls.model_validate(data)


def _dtype_name(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "str"


def _python_scalar(value: Any) -> Scalar:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _sorted_values(values: pd.Series) -> list[Scalar]:
    uniques = [_python_scalar(v) for v in values.dropna().unique()]
    return sorted(uniques, key=lambda v: (str(type(v)), v))


def _looks_like_datetime(series: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    if _dtype_name(series) != "str":
        return False
    sample = series.dropna().astype(str).head(200)
    if sample.empty or not sample.str.contains(r"\d{4}-\d{2}-\d{2}", regex=True).all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def infer_column(series: pd.Series, *, name: str, is_id: bool = False) -> ColumnSchema:
    """Describe one column: its kind, observed range or allowed values, and null rate."""
    dtype = _dtype_name(series)
    null_rate = float(series.isna().mean())
    nonnull = series.dropna()
    if is_id:
        return ColumnSchema(name=name, kind=ColumnKind.ID, dtype=dtype, null_rate=null_rate)
    if _looks_like_datetime(series):
        return ColumnSchema(
            name=name, kind=ColumnKind.DATETIME, dtype="datetime", null_rate=null_rate
        )
    n_unique = int(nonnull.nunique())
    if n_unique <= 2 and dtype in {"int", "float", "bool", "str"} and n_unique > 0:
        return ColumnSchema(
            name=name,
            kind=ColumnKind.BINARY,
            dtype=dtype,
            null_rate=null_rate,
            categories=_sorted_values(nonnull),
        )
    if dtype in {"int", "float"}:
        return ColumnSchema(
            name=name,
            kind=ColumnKind.NUMERIC,
            dtype=dtype,
            null_rate=null_rate,
            min=float(nonnull.min()) if n_unique else None,
            max=float(nonnull.max()) if n_unique else None,
        )
    if n_unique > MAX_CATEGORIES and n_unique > 0.5 * max(len(nonnull), 1):
        # Unique-per-row strings are an identifier, never a feature.
        return ColumnSchema(name=name, kind=ColumnKind.ID, dtype=dtype, null_rate=null_rate)
    return ColumnSchema(
        name=name,
        kind=ColumnKind.CATEGORICAL,
        dtype=dtype,
        null_rate=null_rate,
        categories=[str(v) for v in _sorted_values(nonnull.astype(str))],
    )


def _target_labels(target: pd.Series, positive_label: str | None, name: str) -> tuple[str, str]:
    values = [str(v) for v in _sorted_values(target)]
    if len(values) != 2:
        raise DataValidationError(
            [
                Problem(
                    name,
                    f"target must have exactly 2 distinct values, found {len(values)}",
                    values[:5],
                )
            ]
        )
    if positive_label is None:
        lowered = {v.lower(): v for v in values}
        for candidate in ("1", "true", "yes", "y", "1.0"):
            if candidate in lowered:
                positive_label = lowered[candidate]
                break
        else:
            raise ConfigError(
                f"cannot tell which value of target {name!r} is positive among {values}; "
                "pass --positive-label"
            )
    if positive_label not in values:
        raise DataValidationError(
            [
                Problem(
                    name, f"positive label {positive_label!r} is not a value of the target", values
                )
            ]
        )
    negative = values[0] if values[1] == positive_label else values[1]
    return positive_label, negative


def infer_schema(frame: pd.DataFrame, settings: DataSettings) -> Schema:
    """Schema of a training table under the given column settings."""
    if settings.target is None:
        raise ConfigError("no target column configured; pass --target or set data.target")
    missing = [
        c for c in [settings.target, settings.id_column, *settings.exclude] if c and c not in frame
    ]
    if missing:
        raise DataValidationError(
            [
                Problem(c, "configured column is not in the table", list(frame.columns)[:8])
                for c in missing
            ]
        )
    positive, negative = _target_labels(
        frame[settings.target].dropna(), settings.positive_label, settings.target
    )
    features: list[ColumnSchema] = []
    ignored: list[ColumnSchema] = []
    for name in frame.columns:
        if name == settings.target:
            continue
        column = infer_column(frame[name], name=str(name), is_id=name == settings.id_column)
        if name in settings.exclude or column.kind in {ColumnKind.ID, ColumnKind.DATETIME}:
            ignored.append(column)
        else:
            features.append(column)
    labels = frame[settings.target].astype(str)
    return Schema(
        target=settings.target,
        positive_label=positive,
        negative_label=negative,
        id_column=settings.id_column,
        features=features,
        ignored=ignored,
        n_rows=len(frame),
        positive_rate=float((labels == positive).mean()),
    )


def target_vector(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """1 for the positive label, 0 otherwise."""
    return (frame[schema.target].astype(str) == schema.positive_label).to_numpy(dtype=np.int8)
