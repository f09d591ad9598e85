"""MLflow reads ChurnModel.predict's type hints when the model is logged."""

from __future__ import annotations

import pandas as pd
from mlflow.types.type_hints import _signature_cannot_be_inferred_from_type_hint

from churnops.modeling.pyfunc import ChurnModel


def test_mlflow_takes_the_signature_from_us_not_from_the_hints() -> None:
    """With `Any` MLflow tried to infer a signature from the hint and warned at every log."""
    hint = ChurnModel().predict_type_hints.input
    assert hint is pd.DataFrame
    assert _signature_cannot_be_inferred_from_type_hint(hint)
