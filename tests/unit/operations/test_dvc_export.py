"""The DVC pipeline `churnops export dvc` writes: stages, dependencies, params, outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from churnops.cli.main import app
from churnops.datasets import demo_path
from churnops.errors import ConfigError
from churnops.operations.dvc import TRAIN_PARAMS, pipeline_document, write_pipeline
from churnops.settings import Settings

PACKAGE = Path("/nowhere/src/churnops")


def export(root: Path, **kwargs: object):
    settings = Settings()
    data = {"path": str(root / "data.csv"), "target": "bad"}
    options: dict = {
        "settings": settings.model_dump(mode="json"),
        "data": data,
        "data_path": data["path"],
        "code": [],
        "package_dir": PACKAGE,
        "data_given": True,
    }
    options.update(kwargs)
    return write_pipeline(root, **options)


def test_stages_in_order_with_what_each_reads_and_writes() -> None:
    stages = pipeline_document(data_deps=["data.csv"], code_deps=["src/churnops"])["stages"]
    assert list(stages) == ["validate", "eda", "train", "evaluate"]
    assert stages["validate"]["cmd"].startswith("churnops data check")
    assert stages["validate"]["params"] == ["data"] and stages["eda"]["params"] == ["data"]
    assert stages["train"]["params"] == TRAIN_PARAMS
    assert stages["train"]["deps"] == ["data.csv", "reports/data_check.json", "src/churnops"]
    assert "reports/train.json" in stages["evaluate"]["deps"]
    assert stages["evaluate"]["metrics"] == [{"reports/evaluation/metrics.json": {"cache": False}}]
    assert {next(iter(p)) for p in stages["evaluate"]["plots"]} == {
        "reports/evaluation/roc.csv",
        "reports/evaluation/precision_recall.csv",
    }


def test_existing_params_are_kept_and_missing_sections_filled(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("training:\n  seed: 7\nserving:\n  port: 9000\n")
    exported = export(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert params["training"] == {"seed": 7} and params["serving"] == {"port": 9000}
    assert params["data"] == {"path": "data.csv", "target": "bad"}, "relative to the project"
    assert set(TRAIN_PARAMS) <= set(params)
    assert exported.dependencies == ["data.csv"], "an installed churnops is not a path dep"
    text = (tmp_path / "dvc.yaml").read_text()
    assert "&id" not in text and "*id" not in text, "no YAML anchors"


def test_refuses_to_replace_a_pipeline_without_force(tmp_path: Path) -> None:
    export(tmp_path)
    with pytest.raises(ConfigError, match="pass --force"):
        export(tmp_path)
    export(tmp_path, force=True)


def test_code_inside_the_project_is_a_dependency(tmp_path: Path) -> None:
    package = tmp_path / "src" / "churnops"
    exported = export(tmp_path, package_dir=package, code=[str(tmp_path / "extra.py")])
    assert exported.dependencies == ["data.csv", "extra.py", "src/churnops"]


def test_cli_on_the_bundled_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("CHURNOPS_")]:
        monkeypatch.delenv(key)
    result = CliRunner().invoke(app, ["export", "dvc", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    stages = yaml.safe_load((tmp_path / "p" / "dvc.yaml").read_text())["stages"]
    assert stages["validate"]["deps"] == [str(demo_path().resolve())], "an external dependency"
    params = yaml.safe_load((tmp_path / "p" / "params.yaml").read_text())
    assert params["data"]["target"] == "churn", "the bundled table's own column settings"
    assert "serving" not in params and "app" not in params, "only what the pipeline reads"
    again = CliRunner().invoke(app, ["export", "dvc", str(tmp_path / "p")])
    assert again.exit_code == 2 and "pass --force" in again.output
