"""params.yaml's `retraining` section holds every default of the typed section, and env names
for its nested keys are known to the settings module."""

from __future__ import annotations

from pathlib import Path

import yaml

from churnops.settings import RetrainingSettings, unknown_env_names

ROOT = Path(__file__).resolve().parents[3]


def test_params_yaml_retraining_section_equals_the_defaults() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert RetrainingSettings(**params["retraining"]) == RetrainingSettings()
    assert params["retraining"] == RetrainingSettings().model_dump()


def test_nested_retraining_env_names_are_known() -> None:
    names = [
        "CHURNOPS_RETRAINING__GATE__MARGIN",
        "CHURNOPS_RETRAINING__TRIGGERS__DRIFT_WINDOWS",
        "CHURNOPS_RETRAINING__SCHEDULES__MONITORING",
        "CHURNOPS_RETRAINING__REQUIRE_APPROVAL",
    ]
    assert unknown_env_names(names) == {}
