"""Loading a model imports only what that model needs, logs requirements that install everywhere,
and our load path skips MLflow's environment-wide requirements check but keeps its own.

Which modules a load imports is checked in a fresh interpreter (`sys.modules` of this test process
already holds everything)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.artifacts
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from churnops.data.schema import Schema, infer_schema
from churnops.errors import ModelNotFoundError
from churnops.modeling import stages
from churnops.modeling.predictors import predictor_for
from churnops.modeling.pyfunc import load_scorer, log_churn_model
from churnops.modeling.requirements import installed_version, mismatches
from churnops.settings import BusinessSettings, DataSettings, RiskBands, TrainingSettings
from tests.unit.monitoring.synthetic import make_customers

ROOT = Path(__file__).resolve().parents[3]
TARGET = DataSettings(target="churn", positive_label="Yes", id_column="customer_id")
# sklearn itself is not here: unpickling the fitted pipeline (sklearn.compose) needs it.
LIBRARIES = ("xgboost", "lightgbm", "optuna", "churnops.modeling.candidates")


def _imported_after(code: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run `code` in a fresh interpreter; return which of LIBRARIES it imported (plus `out`)."""
    script = (
        "import json, sys\n"
        f"{code}\n"
        f"print(json.dumps({{'imported': [m for m in {LIBRARIES!r} if m in sys.modules],"
        " 'out': globals().get('out')}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_importing_the_scoring_modules_imports_no_classifier_library() -> None:
    found = _imported_after(
        "import churnops.modeling.scorer, churnops.modeling.pyfunc, churnops.modeling.predictors"
    )

    assert found["imported"] == []


def test_predictor_for_an_unknown_object_names_it_without_importing_anything() -> None:
    with pytest.raises(TypeError, match="no fast predictor for dict"):
        predictor_for({})


def test_mismatches_name_wrong_and_missing_pins_only() -> None:
    numpy_version = installed_version("numpy")
    xgboost_version = installed_version("xgboost")  # provided by xgboost-cpu here
    assert numpy_version and xgboost_version

    problems = mismatches(
        [
            f"numpy=={numpy_version}",
            f"xgboost=={xgboost_version}",
            "pandas==0.0.1",
            "surely-not-a-churnops-dependency==1.0",
            "./wheels/local.whl",  # a path: nothing to compare
            'numpy==0.0.1; python_version < "3"',  # marker false here
        ]
    )

    assert problems == [
        f"pandas==0.0.1 (installed {installed_version('pandas')})",
        "surely-not-a-churnops-dependency==1.0 (not installed)",
    ]


def test_installed_versions_are_importlib_metadatas_for_every_distribution(
    tmp_path: Path,
) -> None:
    """The Version header read on its own equals `Distribution.version` (the whole METADATA
    parsed) for every distribution installed here, and for the header forms left to it."""
    from importlib.metadata import PathDistribution, distributions

    from churnops.modeling.requirements import _version_of

    found = list(distributions())
    assert len(found) > 50
    assert [d.version for d in found] == [_version_of(d) for d in found]
    for name, metadata in {
        "folded": "Metadata-Version: 2.1\nName: a\nVersion: 1.0\n 2\n\nbody\n",
        "late": "Metadata-Version: 2.1\nName: b\n\nVersion: 9.9\n",
        "spaced": "Metadata-Version: 2.1\nName: c\nVERSION:\t 3.1 \n\nVersion: 0\n",
        "absent": "Metadata-Version: 2.1\nName: d\n",
    }.items():
        folder = tmp_path / f"{name}-0.dist-info"
        folder.mkdir()
        (folder / "METADATA").write_text(metadata)
        made = PathDistribution(folder)
        assert _version_of(made) == made.version, name


def test_exact_pins_met_as_written_are_checked_without_packaging() -> None:
    """A model loaded where it was trained pins exactly what is installed: no parsing needed
    (packaging costs ~20 ms of a 10-row predict); any other line is still parsed."""
    numpy_version = installed_version("numpy")
    found = _imported_after(
        "from churnops.modeling.requirements import installed_version, mismatches\n"
        "pins = [f'{name}=={installed_version(name)}' for name in ('numpy', 'pandas', 'xgboost')]\n"
        "out = [mismatches(pins), 'packaging' in sys.modules,\n"
        "       mismatches(pins + ['numpy>=0.1', 'numpy[x]==0.0.1']), 'packaging' in sys.modules]\n"
    )
    assert found["out"] == [[], False, [f"numpy[x]==0.0.1 (installed {numpy_version})"], True]


@dataclass
class Logged:
    uri: str
    frame: pd.DataFrame
    probability: np.ndarray
    tracking_uri: str


def _log_candidate(name: str, home: Path) -> Logged:
    frame = make_customers(500, seed=7)
    frame.insert(0, "customer_id", [f"C{i:05d}" for i in range(len(frame))])
    schema: Schema = infer_schema(frame, TARGET)
    split = stages.split_data(frame, schema, test_size=0.25, seed=3)
    folds = stages.encode_cv_folds(split, schema, folds=3, seed=3)
    result = stages.tune_candidate(
        name,
        split,
        folds,
        schema,
        training=TrainingSettings(seed=3, n_jobs=1),
        business=BusinessSettings(),
        deadline=time.monotonic(),  # defaults only: one trial
    )
    selection = stages.select_winner([result], [], model_limit=0.99)
    packaged = stages.package_bundle(
        selection, split, schema, risk_bands=RiskBands(), data_fingerprint="0" * 64
    )
    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = MlflowClient(uri, uri).create_experiment(name, str(home / "art"))
    with mlflow.start_run(experiment_id=experiment):
        info = log_churn_model(packaged.bundle, workdir=home / "work")
    return Logged(info.model_uri, split.test, result.test_probability, uri)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Logged]:
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        return {
            name: _log_candidate(name, tmp_path_factory.mktemp(name))
            for name in ("xgboost", "lightgbm")
        }
    finally:
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(registry)


def _env(tracking_uri: str) -> dict[str, str]:
    import os

    return {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PYTHONPATH": str(ROOT / "src")}


LOAD_OURS = (
    "from churnops.modeling.pyfunc import load_scorer\n"
    "import pandas as pd\n"
    "scorer, _ = load_scorer({uri!r})\n"
    "out = type(scorer.predictor).__name__\n"
)
LOAD_THEIRS = (
    "import mlflow.pyfunc\n"
    "model = mlflow.pyfunc.load_model({uri!r})\n"
    "out = type(model.unwrap_python_model().scorer.predictor).__name__\n"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("candidate", "predictor", "library", "other"),
    [
        ("xgboost", "XGBoostPredictor", "xgboost", "lightgbm"),
        ("lightgbm", "LightGBMPredictor", "lightgbm", "xgboost"),
    ],
)
@pytest.mark.parametrize("loader", [LOAD_OURS, LOAD_THEIRS], ids=["load_scorer", "pyfunc"])
def test_loading_a_model_imports_its_own_classifier_library_only(
    logged: dict[str, Logged],
    candidate: str,
    predictor: str,
    library: str,
    other: str,
    loader: str,
) -> None:
    model = logged[candidate]

    found = _imported_after(loader.format(uri=model.uri), _env(model.tracking_uri))

    assert found["out"] == predictor
    imported = found["imported"]
    assert isinstance(imported, list)
    assert library in imported and other not in imported
    # Scoring needs neither the tuner nor the training candidates (which import every library).
    assert "optuna" not in imported and "churnops.modeling.candidates" not in imported


def _model_file(model: Logged, name: str) -> str:
    mlflow.set_tracking_uri(model.tracking_uri)
    return (Path(mlflow.artifacts.download_artifacts(model.uri)) / name).read_text()


@pytest.mark.slow
def test_logged_requirements_install_everywhere_and_name_only_the_models_library(
    logged: dict[str, Logged],
) -> None:
    for candidate, other in (("xgboost", "lightgbm"), ("lightgbm", "xgboost")):
        model = logged[candidate]
        pip = _model_file(model, "requirements.txt").split()
        conda = yaml.safe_load(_model_file(model, "conda.yaml"))
        conda_pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))

        for requirements in (pip, conda_pip):
            names = {line.split("==")[0] for line in requirements}
            assert not any(name.endswith("-cpu") for name in names), requirements
            assert candidate in names and other not in names
            assert f"{candidate}=={installed_version(candidate)}" in requirements
            assert mismatches(requirements) == []  # this environment satisfies them


@pytest.mark.slow
def test_our_load_matches_mlflows_and_skips_its_environment_scan(
    logged: dict[str, Logged], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc
    import mlflow.utils.requirements_utils as mlflow_requirements

    model = logged["xgboost"]
    mlflow.set_tracking_uri(model.tracking_uri)
    theirs = mlflow.pyfunc.load_model(model.uri).predict(model.frame)
    scanned: list[object] = []
    monkeypatch.setattr(
        mlflow_requirements, "_init_packages_to_modules_map", lambda: scanned.append(1)
    )

    ours, meta = load_scorer(model.uri)

    assert scanned == []
    assert meta.metadata is not None and "churnops" in meta.metadata
    probability = ours.score_frame(model.frame).probability
    assert np.allclose(probability, model.probability)
    assert np.allclose(probability, theirs["churn_probability"].to_numpy())


@pytest.mark.slow
def test_our_load_warns_about_a_mismatched_pin_and_refuses_foreign_models(
    logged: dict[str, Logged], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = logged["xgboost"]
    mlflow.set_tracking_uri(model.tracking_uri)
    copy = tmp_path / "model"
    shutil.copytree(mlflow.artifacts.download_artifacts(model.uri), copy)
    requirements = copy / "requirements.txt"
    requirements.write_text(requirements.read_text() + "\npandas==0.0.1\n")

    with caplog.at_level(logging.WARNING, logger="churnops.modeling.pyfunc"):
        scorer, _ = load_scorer(str(copy))

    assert len(scorer.score_frame(model.frame)) == len(model.frame)
    assert "pandas==0.0.1 (installed" in caplog.text

    (copy / "MLmodel").write_text((copy / "MLmodel").read_text().replace("churnops:", "other:"))
    with pytest.raises(ModelNotFoundError, match="is not a churnops model"):
        load_scorer(str(copy))
    with pytest.raises(ModelNotFoundError, match="cannot load model"):
        load_scorer(str(tmp_path / "nothing-here"))


@pytest.mark.slow
def test_the_model_is_logged_from_code_not_pickled(
    logged: dict[str, Logged], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """MLflow's models-from-code: loading runs `modeling/model_code.py`, no CloudPickle of our
    objects is logged or unpickled (and MLflow's warning about it is gone)."""
    import mlflow.pyfunc

    model = logged["xgboost"]
    mlflow.set_tracking_uri(model.tracking_uri)
    local = Path(mlflow.artifacts.download_artifacts(model.uri, dst_path=str(tmp_path)))
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]

    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert "python_model" not in flavor
    assert not (local / "python_model.pkl").exists()
    assert (local / "model_code.py").exists()
    with caplog.at_level(logging.WARNING):
        served = mlflow.pyfunc.load_model(model.uri).predict(model.frame)
    assert np.allclose(served["churn_probability"].to_numpy(), model.probability)
    assert "CloudPickle" not in caplog.text
