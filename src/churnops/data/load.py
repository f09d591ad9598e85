"""Load a training table under its column settings: read, infer the schema, validate."""

from __future__ import annotations

import pandas as pd

from churnops.data.ingest import read_table
from churnops.data.schema import Schema, infer_schema
from churnops.data.validate import validate_training_frame
from churnops.errors import ConfigError
from churnops.settings import DataSettings


def load_training_table(settings: DataSettings) -> tuple[pd.DataFrame, Schema]:
    if settings.path is None:
        raise ConfigError("no data path resolved (this is a bug: resolve_data_settings first)")
    frame = read_table(settings.path)
    schema = infer_schema(frame, settings)
    validate_training_frame(frame, schema, settings)
    return frame, schema
