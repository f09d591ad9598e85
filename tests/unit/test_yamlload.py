"""YAML read through libyaml gives what `yaml.safe_load` gives, errors included."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from churnops.errors import ConfigError
from churnops.settings import load_params_file
from churnops.yamlload import SAFE_LOADER, safe_load

ROOT = Path(__file__).resolve().parents[2]
MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.pyfunc.loaders.code_model
    python_version: 3.11.9
metadata:
  churnops: {version: 0.1.0, threshold: 0.35}
model_uuid: 0a1b
utc_time_created: '2026-12-03 10:00:00.000000'
when: 2026-12-03 10:00:00
flags: [yes, no, on, off, ~, 1e3, 0x1F, .inf]
"""


def test_libyaml_is_used_where_pyyaml_has_it() -> None:
    assert SAFE_LOADER is getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.mark.parametrize(
    "text",
    [
        (ROOT / "params.yaml").read_text(),
        resources.files("churnops.datasets").joinpath("telco_churn.yaml").read_text(),
        MLMODEL,
        "",
    ],
    ids=["params.yaml", "demo sidecar", "MLmodel", "empty"],
)
def test_the_same_objects_as_safe_load(text: str) -> None:
    assert safe_load(text) == yaml.safe_load(text)


def test_unsafe_tags_and_bad_yaml_are_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(yaml.YAMLError):
        safe_load("!!python/object/apply:os.system ['true']")
    bad = tmp_path / "params.yaml"
    bad.write_text("training: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_params_file(bad)
