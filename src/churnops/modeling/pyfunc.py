"""ChurnModel: the MLflow pyfunc wrapper, so any MLflow consumer can load and score the model."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import joblib
import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, DataType, TensorSpec
from mlflow.types import Schema as MlflowSchema

from churnops.data.profile import typical_record
from churnops.data.schema import Schema
from churnops.data.validate import validate_against_schema
from churnops.modeling.loading import BUNDLE_ARTIFACT, ModelFiles
from churnops.modeling.loading import load_scorer as _load_scorer
from churnops.modeling.requirements import pinned_requirements
from churnops.modeling.scorer import ModelBundle, Scorer

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MODEL_CODE = Path(__file__).resolve().with_name("model_code.py")

logger = logging.getLogger(__name__)


class ChurnModel(PythonModel):
    """Loads the bundle once, validates input against the schema, scores through `Scorer`."""

    # MLflow would wrap predict() for type-hint validation and warn at every import that our
    # hints are not list[...]; the input is validated against our own schema instead.
    _skip_type_hint_validation = True
    scorer: Scorer

    def load_context(self, context: Any) -> None:
        bundle: ModelBundle = joblib.load(context.artifacts[BUNDLE_ARTIFACT])
        self.scorer = Scorer(bundle)

    # A DataFrame hint is one MLflow infers no signature from (it warned "Failed to infer
    # signature from type hint" for Any at every log); other inputs are still converted below.
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        validate_against_schema(frame, self.scorer.schema)
        reasons = bool((params or {}).get("reasons", True))
        return self.scorer.predict_frame(frame, reasons=reasons)


def input_schema(schema: Schema) -> MlflowSchema:
    """Signature inputs from our schema (training dtypes); the id column is optional."""
    columns: list[ColSpec | TensorSpec] = []
    if schema.id_column:
        id_dtype = next((c.dtype for c in schema.ignored if c.name == schema.id_column), "str")
        id_kind = DataType.long if id_dtype == "int" else DataType.string
        columns.append(ColSpec(id_kind, schema.id_column, required=False))
    for column in schema.features:
        if column.dtype == "bool":
            kind = DataType.boolean
        elif column.dtype == "int":
            kind = DataType.long
        elif column.is_numeric_encoded:
            kind = DataType.double
        else:
            kind = DataType.string
        columns.append(ColSpec(kind, column.name))
    return MlflowSchema(columns)


def log_churn_model(bundle: ModelBundle, *, workdir: Path, name: str = "model") -> ModelInfo:
    """Log the bundle as ONE pyfunc model (with signature, input example and readable sidecars)."""
    workdir.mkdir(parents=True, exist_ok=True)
    bundle_path = workdir / "bundle.joblib"
    joblib.dump(bundle, bundle_path)
    schema_path = bundle.schema.save(workdir / "schema.yaml")
    profile_path = workdir / "reference_profile.json"
    profile_path.write_text(bundle.profile.model_dump_json())
    # Made up from the schema and profile: the logged example is public to every MLflow reader.
    example = pd.DataFrame([typical_record(bundle.schema, bundle.profile)])
    with warnings.catch_warnings():
        # MLflow warns about the untyped predict signature and int columns; the signature below
        # is explicit, so both warnings are noise for our users.
        warnings.simplefilter("ignore", UserWarning)
        return _log(bundle, example, bundle_path, schema_path, profile_path, name)


def _log(
    bundle: ModelBundle,
    example: pd.DataFrame,
    bundle_path: Path,
    schema_path: Path,
    profile_path: Path,
    name: str,
) -> ModelInfo:
    output = Scorer(bundle).predict_frame(example)
    signature = infer_signature(example, output, params={"reasons": True})
    signature = ModelSignature(
        inputs=input_schema(bundle.schema), outputs=signature.outputs, params=signature.params
    )
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(MODEL_CODE),  # models from code: no CloudPickle of our objects
        artifacts={
            BUNDLE_ARTIFACT: str(bundle_path),
            "schema": str(schema_path),
            "reference_profile": str(profile_path),
        },
        code_paths=[str(PACKAGE_DIR)],
        signature=signature,
        input_example=example,
        pip_requirements=pinned_requirements(bundle.pipeline.named_steps["classifier"]),
        metadata={
            "churnops": json.dumps({"candidate": bundle.candidate, "threshold": bundle.threshold})
        },
    )


def load_scorer(model_uri: str) -> tuple[Scorer, ModelFiles]:
    """`loading.load_scorer` with MLflow's configured URIs and no cache (kept for callers)."""
    return _load_scorer(model_uri)
