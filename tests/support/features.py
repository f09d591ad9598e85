"""A fitted preprocessor and schema from the demo data (no MLflow, no classifier)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from churnops.data.schema import Schema
from churnops.features.encoder import FastEncoder


@dataclass
class Fitted:
    frame: pd.DataFrame
    schema: Schema
    encoder: FastEncoder
