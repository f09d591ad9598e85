"""The customer form, generated from the served model's description (`GET /model`).

`field_specs` is pure: schema + input example -> one `FieldSpec` per input. Numeric fields are
bounded by the range seen in training, categories become select boxes, two-valued fields toggles,
and every field starts at the model's input example. `render_form` draws them with Streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import streamlit as st

MISSING_CATEGORY = "(missing)"  # the schema's name for "was null in training"
TRUTHY = {"yes", "true", "1", "y", "t", "on"}

Widget = Literal["number", "integer", "select", "toggle", "text"]


@dataclass(frozen=True)
class FieldSpec:
    """One input of the form: which widget, its bounds or options, and its starting value."""

    name: str
    widget: Widget
    default: Any
    low: float | None = None
    high: float | None = None
    options: tuple[Any, ...] = ()
    on_value: Any = True  # toggles: the value sent when on / off
    off_value: Any = False
    help: str = ""
    is_id: bool = False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _toggle_values(categories: list[Any]) -> tuple[Any, Any]:
    """(on, off) for a two-valued column: the 'yes'-like value is on, else the larger one."""
    first, second = sorted(categories, key=lambda v: (str(type(v)), v))
    if str(first).strip().lower() in TRUTHY and str(second).strip().lower() not in TRUTHY:
        return first, second
    return second, first


def _numeric_spec(column: Mapping[str, Any], example: Any) -> FieldSpec:
    low, high = column.get("min"), column.get("max")
    integer = column.get("dtype") == "int"
    default = example if _is_number(example) and math.isfinite(float(example)) else None
    if default is None:
        default = low if low is not None else 0
    if low is not None and high is not None:
        default = min(max(default, low), high)
    help_text = (
        f"Seen in training: {low:g} to {high:g}" if low is not None and high is not None else ""
    )
    if integer:
        return FieldSpec(
            column["name"],
            "integer",
            round(default),
            low=None if low is None else math.floor(low),
            high=None if high is None else math.ceil(high),
            help=help_text,
        )
    return FieldSpec(
        column["name"],
        "number",
        float(default),
        low=None if low is None else float(low),
        high=None if high is None else float(high),
        help=help_text,
    )


def column_spec(column: Mapping[str, Any], example: Any) -> FieldSpec:
    """The form field for one schema column."""
    name, kind, dtype = column["name"], column.get("kind"), column.get("dtype")
    categories = [c for c in (column.get("categories") or []) if c != MISSING_CATEGORY]
    if dtype == "bool" or (kind == "binary" and not categories):
        # A 0/1 number or a true/false column: sent back in its own type.
        on, off = (True, False) if dtype == "bool" else (1, 0)
        default = bool(example) if example is not None else False
        return FieldSpec(name, "toggle", default, on_value=on, off_value=off)
    if kind == "binary" and len(categories) == 2:
        on, off = _toggle_values(categories)
        return FieldSpec(
            name,
            "toggle",
            example == on,
            on_value=on,
            off_value=off,
            help=f"on: {on}, off: {off}",
        )
    if categories:
        options = tuple(categories)
        default = example if example in options else options[0]
        return FieldSpec(name, "select", default, options=options)
    if kind == "numeric" or dtype in ("int", "float"):
        return _numeric_spec(column, example)
    return FieldSpec(name, "text", "" if example is None else str(example))


def field_specs(model_info: Mapping[str, Any]) -> list[FieldSpec]:
    """All fields for the served model: the optional customer id first, then every feature."""
    schema = model_info["schema"]
    example = model_info.get("input_example") or {}
    specs: list[FieldSpec] = []
    id_column = schema.get("id_column")
    if id_column:
        value = example.get(id_column)
        specs.append(
            FieldSpec(
                id_column,
                "text",
                "" if value is None else str(value),
                help="Optional: echoed back and stored with the prediction",
                is_id=True,
            )
        )
    specs.extend(column_spec(column, example.get(column["name"])) for column in schema["features"])
    return specs


def to_payload(specs: list[FieldSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body for POST /predict from the widgets' values."""
    body: dict[str, Any] = {}
    for spec in specs:
        value = values.get(spec.name, spec.default)
        if spec.widget == "toggle":
            body[spec.name] = spec.on_value if value else spec.off_value
        elif spec.widget == "integer":
            body[spec.name] = int(value)
        elif spec.widget == "number":
            body[spec.name] = float(value)
        elif spec.is_id:
            if str(value).strip():
                body[spec.name] = str(value).strip()
        else:
            body[spec.name] = value
    return body


def error_for(spec: FieldSpec, errors: Mapping[str, str]) -> str | None:
    """The API's reason for this field, whatever path prefix it came with."""
    for field, reason in errors.items():
        if field == spec.name or field.rsplit(".", 1)[-1] == spec.name:
            return reason
    return None


def render_form(
    specs: list[FieldSpec], *, errors: Mapping[str, str], key_prefix: str = "field"
) -> dict[str, Any]:
    """Draw the fields in two columns; an API error is shown right under the field it names."""
    values: dict[str, Any] = {}
    columns = st.columns(2)
    for index, spec in enumerate(specs):
        key = f"{key_prefix}:{spec.name}"
        with columns[index % 2]:
            if spec.widget == "toggle":
                values[spec.name] = st.toggle(
                    spec.name, value=bool(spec.default), key=key, help=spec.help or None
                )
            elif spec.widget == "select":
                values[spec.name] = st.selectbox(
                    spec.name,
                    list(spec.options),
                    index=list(spec.options).index(spec.default),
                    key=key,
                )
            elif spec.widget == "integer":
                values[spec.name] = st.number_input(
                    spec.name,
                    min_value=None if spec.low is None else int(spec.low),
                    max_value=None if spec.high is None else int(spec.high),
                    value=int(spec.default),
                    step=1,
                    key=key,
                    help=spec.help or None,
                )
            elif spec.widget == "number":
                values[spec.name] = st.number_input(
                    spec.name,
                    min_value=spec.low,
                    max_value=spec.high,
                    value=float(spec.default),
                    key=key,
                    help=spec.help or None,
                )
            else:
                values[spec.name] = st.text_input(
                    spec.name, value=str(spec.default), key=key, help=spec.help or None
                )
            reason = error_for(spec, errors)
            if reason:
                st.error(f"{spec.name}: {reason}", icon=":material/error:")
    return values
