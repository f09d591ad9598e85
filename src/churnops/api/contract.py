"""The request contract, generated once per loaded model from the model's own schema.

Field types, allowed categories, which fields may be null and the optional id all come from the
registered model, so the API can never accept what the model was not trained on. Validation runs
straight from the raw body bytes (`model_validate_json`), with no intermediate `json.loads`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    create_model,
)
from pydantic_core import PydanticCustomError

from churnops.data.profile import ReferenceProfile, typical_record
from churnops.data.schema import MISSING_CATEGORY, ColumnKind, ColumnSchema, Schema

# Finite, and small enough to survive standardisation and float32 inside the boosters.
MAX_MAGNITUDE = 1e15
FiniteNumber = Annotated[
    float, Field(strict=True, allow_inf_nan=False, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)
]
# Ids: what the store's column and Postgres text hold (no NUL), integers within int64.
IdText = Annotated[str, StringConstraints(strict=True, max_length=255, pattern=r"^[^\x00]*$")]
IdInt = Annotated[int, Field(strict=True, ge=-(2**63), le=2**63 - 1)]
IdValue = IdText | IdInt
FreeText = Annotated[str, StringConstraints(strict=True, max_length=1000, pattern=r"^[^\x00]*$")]


@dataclass(frozen=True)
class NumericRange:
    """Training range of one numeric feature; values outside are accepted but counted."""

    name: str
    low: float
    high: float


@dataclass(frozen=True)
class Contract:
    """Pydantic models for one model's requests, plus what the error messages and metrics need."""

    customer: type[BaseModel]
    batch: type[BaseModel]
    id_column: str | None
    feature_names: tuple[str, ...]
    allowed: Mapping[str, list[Any]]  # field -> allowed values (categoricals and binaries)
    ranges: tuple[NumericRange, ...]
    example: dict[str, Any]  # made up from the schema (typical values), never a real customer
    renamed: tuple[tuple[str, str], ...] = ()  # (python field name, column name) where they differ

    def out_of_range(self, record: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(feature, 'below'|'above') for each numeric value outside the training range."""
        found: list[tuple[str, str]] = []
        for item in self.ranges:
            value = record.get(item.name)
            if value is None:
                continue
            if value < item.low:
                found.append((item.name, "below"))
            elif value > item.high:
                found.append((item.name, "above"))
        return found


def _literal(values: Sequence[Any]) -> Any:
    return Literal[tuple(values)]


def _no_lookalikes(integer: bool) -> BeforeValidator:
    """Numeric choices are as strict as numbers: pydantic's Literal takes `true` for 1 and, for
    whole-number choices, `1.0` for 1 (someone's bug upstream, not a value)."""

    def check(value: Any) -> Any:
        if isinstance(value, bool) or (integer and isinstance(value, float)):
            raise PydanticCustomError("literal_error", "Input should be one of the allowed values")
        return value

    return BeforeValidator(check)


def _field_type(column: ColumnSchema) -> tuple[Any, list[Any] | None]:
    """The pydantic type of one feature and, for closed sets, its allowed values."""
    if column.dtype == "bool":
        return StrictBool, None
    if column.kind is ColumnKind.NUMERIC or (
        column.kind is ColumnKind.BINARY and not column.categories
    ):
        return FiniteNumber, None
    categories = [c for c in (column.categories or []) if c != MISSING_CATEGORY]
    if not categories:  # nothing known: any text
        return FreeText, None
    if all(isinstance(c, int | float) and not isinstance(c, bool) for c in categories):
        integer = column.dtype == "int" or all(isinstance(c, int) for c in categories)
        low, high = min(categories), max(categories)
        if integer and categories == list(range(int(low), int(high) + 1)):
            # 0/1 and the like: a strict integer range, checked without calling Python.
            return Annotated[int, Field(strict=True, ge=low, le=high)], categories
        return Annotated[_literal(categories), _no_lookalikes(integer)], categories
    return _literal(categories), categories


def _nullable(column: ColumnSchema) -> bool:
    return column.nullable or MISSING_CATEGORY in (column.categories or [])


def _id_type(schema: Schema) -> Any:
    dtype = next((c.dtype for c in schema.ignored if c.name == schema.id_column), "str")
    return IdInt | IdText if dtype == "int" else IdValue


def _python_name(name: str) -> str:
    """Field names that pydantic accepts (no leading underscore); the alias keeps the JSON name."""
    cleaned = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name).lstrip("_")
    return cleaned if cleaned and not cleaned[0].isdigit() else f"f_{cleaned}"


def build_contract(
    schema: Schema,
    *,
    max_batch_size: int,
    profile: ReferenceProfile | None = None,
    title: str = "Customer",
) -> Contract:
    """Generate the request models for `schema` (one customer, and a batch of them).

    The documented example is made up from the schema and the training profile (typical values,
    no id): real training rows must never appear in OpenAPI or `GET /model`.
    """
    fields: dict[str, Any] = {}
    allowed: dict[str, list[Any]] = {}
    ranges: list[NumericRange] = []
    if schema.id_column:
        id_name = _python_name(schema.id_column)
        fields[id_name] = (
            _id_type(schema) | None,
            Field(None, alias=schema.id_column, description="Your id for the customer, echoed"),
        )
    for column in schema.features:
        kind, values = _field_type(column)
        if values is not None:
            allowed[column.name] = values
        if column.kind is ColumnKind.NUMERIC and column.min is not None and column.max is not None:
            ranges.append(NumericRange(column.name, float(column.min), float(column.max)))
        description = f"{column.kind.value} ({column.dtype})"
        if column.min is not None and column.max is not None:
            description += f"; training range [{column.min:g}, {column.max:g}]"
        if _nullable(column):
            fields[_python_name(column.name)] = (
                kind | None,
                Field(None, alias=column.name, description=description + "; may be null"),
            )
        else:
            fields[_python_name(column.name)] = (
                kind,
                Field(..., alias=column.name, description=description),
            )
    example = typical_record(schema, profile)
    config = ConfigDict(
        extra="forbid", populate_by_name=False, json_schema_extra={"examples": [example]}
    )
    customer = create_model(title, __config__=config, **fields)
    batch_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"customers": [example]}]},
    )
    batch = create_model(
        f"{title}Batch",
        __config__=batch_config,
        customers=(
            list[customer],
            Field(..., min_length=1, max_length=max_batch_size, description="Customers to score"),
        ),
    )
    renamed = tuple(
        (name, field.alias)
        for name, field in customer.model_fields.items()
        if field.alias and field.alias != name
    )
    return Contract(
        customer=customer,
        renamed=renamed,
        batch=batch,
        id_column=schema.id_column,
        feature_names=tuple(schema.feature_names),
        allowed=allowed,
        ranges=tuple(ranges),
        example=example,
    )


def record_of(item: BaseModel, contract: Contract) -> dict[str, Any]:
    """The validated customer as a plain dict keyed by the original column names."""
    values = dict(item.__dict__)
    for python_name, column in contract.renamed:
        values[column] = values.pop(python_name)
    return values


class PlainModel(BaseModel):
    """Base of the API's fixed request bodies: unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")
