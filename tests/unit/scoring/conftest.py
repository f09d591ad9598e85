"""A fitted preprocessor and schema from the demo data (no MLflow, no classifier)."""

from __future__ import annotations

import pytest

from churnops.data.load import load_training_table
from churnops.data.sources import resolve_data_settings
from churnops.features.encoder import FastEncoder
from churnops.features.pipeline import build_preprocessor
from churnops.settings import DataSettings
from tests.support.features import Fitted


@pytest.fixture(scope="session")
def fitted() -> Fitted:
    frame, schema = load_training_table(resolve_data_settings(DataSettings()))
    preprocessor = build_preprocessor(schema).fit(frame[schema.feature_names])
    return Fitted(frame, schema, FastEncoder.from_fitted(preprocessor, schema))
