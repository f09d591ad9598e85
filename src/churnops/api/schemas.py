"""Fixed request and response bodies of the API (the customer fields come from the model)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator

from churnops.api.contract import IdValue
from churnops.data.schema import Schema
from churnops.settings import RiskBands


class ReasonOut(BaseModel):
    feature: str
    value: Any = None
    contribution: float = Field(description="Contribution to the churn risk (model units)")


class PredictionOut(BaseModel):
    customer_id: str | int | None = None
    churn_probability: float
    will_churn: bool
    risk_level: Literal["low", "medium", "high"]
    confidence: float
    reasons: list[ReasonOut]
    model_name: str
    model_version: str
    prediction_id: str


class BatchSummary(BaseModel):
    count: int
    by_risk_level: dict[str, int]
    mean_probability: float
    predicted_churn_rate: float


class BatchOut(BaseModel):
    predictions: list[PredictionOut]
    summary: BatchSummary
    model_name: str
    model_version: str


class FeedbackIn(BaseModel):
    """The real outcome for a prediction (or for a customer's latest prediction)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"prediction_id": "8f0c2c8e-8a57-4f0e-9a0f-1d2b3c4d5e6f", "label": 1}]
        },
    )

    prediction_id: (
        Annotated[
            str, StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[^\x00]*$")
        ]
        | None
    ) = None
    customer_id: IdValue | None = None
    # Strict: `true` or `1.0` are someone's bug upstream, not a label.
    label: StrictInt = Field(ge=0, le=1, description="1: the customer churned, 0: stayed")

    @model_validator(mode="after")
    def _some_id(self) -> FeedbackIn:
        if self.prediction_id is None and self.customer_id is None:
            raise ValueError("give a prediction_id or a customer_id")
        return self


class FeedbackOut(BaseModel):
    status: Literal["recorded", "queued"]  # queued (202): spooled, checked again on replay
    prediction_id: str | None
    customer_id: str | None
    label: int


class ReadyOut(BaseModel):
    """GET /ready: overall status, the degraded states by name, and each check in words."""

    status: Literal["ok", "degraded", "not_ready"]
    degraded: list[str] = Field(
        description="e.g. model_not_loaded, store_unreachable, store_timeout, store_spooling"
    )
    checks: dict[str, str] = Field(
        description="model, store, store_queue_depth, store_spooled_records (and model_reload)"
    )


class ModelOut(BaseModel):
    """GET /model: the served model version, its figures and the input it takes."""

    name: str
    version: str
    alias: str | None
    uri: str
    loaded_at: str = Field(description="ISO 8601 time the version was loaded")
    candidate: str = Field(description="the classifier family that won training")
    trained_at: str
    metrics: dict[str, dict[str, float]] = Field(description='{"cv": {...}, "test": {...}}')
    threshold: float
    risk_bands: RiskBands
    schema_: Schema = Field(alias="schema")
    input_example: dict[str, Any]


class ErrorDetail(BaseModel):
    field: str
    reason: str
    message: str


class ErrorOut(BaseModel):
    error: str
    message: str
    detail: list[ErrorDetail]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in {
        400: "Malformed JSON",
        401: "Missing or invalid API key",
        413: "Body or batch too large",
        415: "Content-Type is not application/json",
        422: "Invalid input: field and reason given",
        429: "Rate limit exceeded (see Retry-After)",
        503: "No model loaded",
    }.items()
}
