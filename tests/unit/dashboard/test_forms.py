"""The customer form is generated from the model's description, whatever the table."""

from __future__ import annotations

from typing import Any

from churnops.dashboard.forms import FieldSpec, error_for, field_specs, to_payload


def model_info() -> dict[str, Any]:
    """A made-up table (not the demo's): every kind of column the schema knows."""
    return {
        "schema": {
            "id_column": "account",
            "features": [
                {"name": "age", "kind": "numeric", "dtype": "int", "min": 18, "max": 90},
                {"name": "spend", "kind": "numeric", "dtype": "float", "min": 1.5, "max": 99.5},
                {
                    "name": "tier",
                    "kind": "categorical",
                    "dtype": "str",
                    "categories": ["bronze", "gold", "silver", "(missing)"],
                },
                {"name": "vip", "kind": "binary", "dtype": "str", "categories": ["No", "Yes"]},
                {"name": "flag", "kind": "binary", "dtype": "int", "min": 0, "max": 1},
                {"name": "active", "kind": "binary", "dtype": "bool"},
            ],
        },
        "input_example": {
            "account": "A-1",
            "age": 120,  # outside the observed range: the form clamps it
            "spend": 10.25,
            "tier": "gold",
            "vip": "Yes",
            "flag": 0,
            "active": True,
        },
    }


def by_name(specs: list[FieldSpec]) -> dict[str, FieldSpec]:
    return {spec.name: spec for spec in specs}


def test_widgets_bounds_and_defaults_follow_the_schema() -> None:
    specs = field_specs(model_info())
    assert [spec.name for spec in specs] == [
        "account",
        "age",
        "spend",
        "tier",
        "vip",
        "flag",
        "active",
    ]
    fields = by_name(specs)
    assert fields["account"].is_id and fields["account"].default == "A-1"
    age = fields["age"]
    assert (age.widget, age.low, age.high, age.default) == ("integer", 18, 90, 90)
    spend = fields["spend"]
    assert (spend.widget, spend.low, spend.high, spend.default) == ("number", 1.5, 99.5, 10.25)
    tier = fields["tier"]
    assert tier.widget == "select"
    assert tier.options == ("bronze", "gold", "silver")  # "(missing)" is not a choice
    assert tier.default == "gold"
    vip = fields["vip"]
    assert (vip.widget, vip.on_value, vip.off_value, vip.default) == ("toggle", "Yes", "No", True)
    flag = fields["flag"]
    assert (flag.widget, flag.on_value, flag.off_value, flag.default) == ("toggle", 1, 0, False)
    active = fields["active"]
    assert (active.widget, active.on_value, active.default) == ("toggle", True, True)


def test_payload_sends_each_value_in_its_own_type() -> None:
    specs = field_specs(model_info())
    values = {
        "account": "  ",
        "age": 33,
        "spend": 5,
        "tier": "silver",
        "vip": False,
        "flag": True,
        "active": False,
    }
    payload = to_payload(specs, values)
    assert payload == {
        "age": 33,
        "spend": 5.0,
        "tier": "silver",
        "vip": "No",
        "flag": 1,
        "active": False,
    }  # a blank id is left out
    assert isinstance(payload["spend"], float)


def test_api_errors_are_matched_to_their_field() -> None:
    spec = by_name(field_specs(model_info()))["tier"]
    assert error_for(spec, {"tier": "not one of bronze, gold"}) == "not one of bronze, gold"
    assert error_for(spec, {"customers[0].tier": "bad"}) == "bad"
    assert error_for(spec, {"tiers": "other field"}) is None


def test_a_model_without_an_example_still_gets_a_form() -> None:
    info = model_info()
    info["input_example"] = None
    info["schema"]["id_column"] = None
    fields = by_name(field_specs(info))
    assert "account" not in fields
    assert fields["age"].default == 18  # the low end of the range
    assert fields["tier"].default == "bronze"
