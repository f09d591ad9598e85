"""Which validation column settings apply to which table, and the --allow flag's errors."""

from __future__ import annotations

import pandas as pd
import pytest

from churnops.data.sources import resolve_data_settings, resolve_validation_settings
from churnops.datasets import demo_path
from churnops.errors import ConfigError
from churnops.settings import DataSettings, Settings, ValidationSettings, apply_overrides
from churnops.validation.run import check_columns


def test_the_bundled_table_brings_its_own_validation_columns() -> None:
    demo = resolve_data_settings(DataSettings())
    resolved = resolve_validation_settings(ValidationSettings(), demo)
    frame = pd.read_csv(demo_path(), nrows=5)
    assert resolved.sensitive_columns and resolved.directions
    check_columns(resolved, list(frame.columns))  # every named column exists in the table
    for direction in resolved.directions:
        if direction.order is not None:
            assert set(direction.order) <= set(pd.read_csv(demo_path())[direction.column])


def test_configured_columns_win_and_other_tables_get_none(tmp_path) -> None:
    demo = resolve_data_settings(DataSettings())
    mine = ValidationSettings(sensitive_columns=["age_band"])
    assert resolve_validation_settings(mine, demo).sensitive_columns == ["age_band"]
    other = DataSettings(path=str(tmp_path / "other.csv"), target="y")
    assert resolve_validation_settings(ValidationSettings(), other).sensitive_columns == []


def test_a_missing_column_is_one_readable_error() -> None:
    with pytest.raises(ConfigError, match="'age_band', which the table does not have"):
        check_columns(ValidationSettings(sensitive_columns=["age_band"]), ["a", "b"])


def test_allow_names_only_known_checks() -> None:
    with pytest.raises(ConfigError, match="invalid --allow 'fairnes'"):
        apply_overrides(
            Settings(), {"validation.allow": ["fairnes"]}, flags={"validation.allow": "--allow"}
        )
    ok = apply_overrides(Settings(), {"validation.allow": ["fairness"]})
    assert ok.validation.allow == ["fairness"]
