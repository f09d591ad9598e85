"""The sklearn preprocessing every candidate shares, built from the schema alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churnops.data.schema import MISSING_CATEGORY, ColumnSchema, Schema


class AsText(TransformerMixin, BaseEstimator):
    """Categorical values as plain Python strings, nulls as MISSING_CATEGORY (stateless)."""

    def fit(self, X: Any, y: Any = None) -> AsText:
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = np.empty(frame.shape, dtype=object)
        for j, name in enumerate(frame.columns):
            column = frame[name]
            out[:, j] = column.astype(object).where(column.notna(), MISSING_CATEGORY).astype(str)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


def encoder_categories(column: ColumnSchema) -> list[str]:
    """The one-hot columns of a categorical feature: its values, plus MISSING when nulls were seen."""
    values = [str(v) for v in column.categories or []]
    return [*values, MISSING_CATEGORY] if column.nullable else values


def build_preprocessor(schema: Schema) -> ColumnTransformer:
    """Numeric: median impute + standardise; categorical: one-hot over the schema's values."""
    numeric = [c.name for c in schema.numeric_features]
    categorical = schema.categorical_features
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(
            (
                "num",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                numeric,
            )
        )
    if categorical:
        transformers.append(
            (
                "cat",
                Pipeline(
                    [
                        ("text", AsText()),
                        (
                            "onehot",
                            OneHotEncoder(
                                categories=[encoder_categories(c) for c in categorical],
                                handle_unknown="ignore",
                                sparse_output=False,
                                dtype=np.float64,
                            ),
                        ),
                    ]
                ),
                [c.name for c in categorical],
            )
        )
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def build_pipeline(schema: Schema, classifier: Any) -> Pipeline:
    return Pipeline([("preprocess", build_preprocessor(schema)), ("classifier", classifier)])
