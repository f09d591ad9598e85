"""Training data for a retraining: the configured table plus labelled production rows.

Production rows are predictions joined with their feedback, from `data_window_days` back up to the
start of the gate's production window (those newest rows are kept unseen, to judge the challenger).
The frame's fingerprint and the share of each source travel with the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from churnops.data.fingerprint import fingerprint
from churnops.data.schema import Schema, infer_schema
from churnops.data.validate import validate_training_frame
from churnops.modeling.lineage import ProductionRows
from churnops.retraining.store_reads import LABEL_COLUMN, labelled_rows
from churnops.settings import DataSettings, RetrainingSettings
from churnops.store.store import PredictionStore

TABLE, PRODUCTION = "table", "production"


@dataclass(frozen=True)
class TrainingData:
    frame: pd.DataFrame
    schema: Schema
    fingerprint: str
    rows: dict[str, int]  # per source
    window: tuple[datetime, datetime]  # production rows taken from [start, end)
    production: pd.DataFrame  # the frame's last rows: the production part, as trained on

    def production_rows(self) -> ProductionRows | None:
        """What the lineage manifest records of the production part (None when there is none)."""
        if self.production.empty:
            return None
        return ProductionRows(
            fingerprint=fingerprint(self.production),
            rows=len(self.production),
            window_start=self.window[0].isoformat(timespec="seconds"),
            window_end=self.window[1].isoformat(timespec="seconds"),
            share=self.shares[PRODUCTION],
        )

    @property
    def shares(self) -> dict[str, float]:
        total = sum(self.rows.values()) or 1
        return {source: round(n / total, 4) for source, n in self.rows.items()}

    def evidence(self) -> dict[str, object]:
        return {
            "data_fingerprint": self.fingerprint,
            "rows": self.rows,
            "shares": self.shares,
            "production_window": [t.isoformat(timespec="seconds") for t in self.window],
        }


def training_window(settings: RetrainingSettings, now: datetime) -> tuple[datetime, datetime]:
    """[now - data window, start of the gate's production window)."""
    end = now - timedelta(days=settings.gate.production_window_days)
    return now - timedelta(days=settings.data_window_days), end


def production_frame(labelled: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Labelled predictions as table rows: the model's features, the target, an id."""
    frame = labelled[[c for c in schema.feature_names if c in labelled.columns]].copy()
    frame[schema.target] = labelled[LABEL_COLUMN].map(
        {1: schema.positive_label, 0: schema.negative_label}
    )
    if schema.id_column:
        ids = labelled["customer_id"].astype("object")
        fallback = pd.Series(
            [f"production-{i}" for i in range(len(labelled))], index=labelled.index
        )
        frame[schema.id_column] = ids.where(ids.notna(), fallback)
    return frame


def combine(
    table: pd.DataFrame, production: pd.DataFrame, data_settings: DataSettings
) -> tuple[pd.DataFrame, Schema]:
    """Both sources in one validated frame (the table's columns, in its order)."""
    if production.empty:
        combined = table.reset_index(drop=True)
    else:
        combined = pd.concat(
            [table, production[[c for c in table.columns if c in production.columns]]],
            ignore_index=True,
        )
    schema = infer_schema(combined, data_settings)
    validate_training_frame(combined, schema, data_settings)
    return combined, schema


def build_training_data(
    table: pd.DataFrame,
    table_schema: Schema,
    store: PredictionStore,
    *,
    data_settings: DataSettings,
    settings: RetrainingSettings,
    now: datetime,
) -> TrainingData:
    """The configured table plus the labelled production rows of the data window."""
    start, end = training_window(settings, now)
    labelled = labelled_rows(store, since=start, until=end)
    production = production_frame(labelled, table_schema)
    frame, schema = combine(table, production, data_settings)
    return TrainingData(
        frame=frame,
        schema=schema,
        fingerprint=fingerprint(frame),
        rows={TABLE: len(table), PRODUCTION: len(production)},
        window=(start, end),
        production=frame.iloc[len(table) :].reset_index(drop=True),
    )
