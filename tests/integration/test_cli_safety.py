"""The CLI never destroys its input, never prints a traceback for an unwritable output, checks its
arguments before importing the heavy stack, and never creates a store by reading one (issue #10,
items 5, 6 and 10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from churnops.cli.main import app
from churnops.errors import ChurnopsError, ConfigError
from churnops.scoring.destinations import check_destinations
from churnops.scoring.writers import CsvWriter, ParquetWriter
from tests.support.models import TrainedModel

pytestmark = pytest.mark.integration
HEAVY = ("mlflow", "sklearn", "pandas", "pyarrow", "xgboost", "scipy", "sqlalchemy")


def _one_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder with no configuration anywhere: the user's fresh shell."""
    for name in list(os.environ):
        if name.startswith("CHURNOPS_") or name == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _customers(folder: Path, name: str = "data.csv") -> Path:
    path = folder / name
    path.write_text("customer_id,tenure\nC1,3\nC2,40\n")
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# -- item 5: the output never replaces the input ---------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["data.csv", "-o", "data.csv"],
        ["data.csv", "-o", "./data.csv"],
        ["./data.csv", "-o", "sub/../data.csv"],
        ["data.csv", "-o", "{abs}"],
        ["link.csv", "-o", "data.csv"],  # a symlink to the output
        ["data.csv", "-o", "hard.csv"],  # a hard link: the same file under another name
        ["data.csv", "-o", "out.csv", "--rejects", "data.csv", "--on-error", "skip"],
        ["out.rejects.csv", "-o", "out.csv", "--on-error", "skip"],  # the default rejects name
        ["data.csv", "-o", "data.csv", "--engine", "spark"],
    ],
)
def test_output_or_sidecar_that_is_the_input_is_refused(folder: Path, args: list[str]) -> None:
    source = _customers(folder)
    (folder / "sub").mkdir()
    (folder / "link.csv").symlink_to(source)
    os.link(source, folder / "hard.csv")
    _customers(folder, "out.rejects.csv")
    before = _files(folder)

    line = _one_error(CliRunner().invoke(app, ["predict", *(a.format(abs=source) for a in args)]))

    assert "is the input" in line and "overwritten" in line
    assert _files(folder) == before  # nothing written, nothing replaced


@pytest.mark.slow
def test_a_real_champion_never_scores_over_its_input(
    trained_model: TrainedModel, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported case: with a champion to score with, `-o` naming the input exited 0."""
    monkeypatch.setenv("CHURNOPS_TRACKING_URI", trained_model.settings.resolved_tracking_uri())
    monkeypatch.setenv("CHURNOPS_DATABASE_URL", f"sqlite:///{folder.parent / 'predictions.db'}")
    trained_model.frame.head(50).to_csv(folder / "data.csv", index=False)
    before = _files(folder)

    line = _one_error(CliRunner().invoke(app, ["predict", "data.csv", "-o", "./data.csv"]))

    assert "is the input" in line
    assert _files(folder) == before


def test_output_table_that_is_the_input_table_is_refused(folder: Path) -> None:
    url = f"sqlite:///{folder / 'crm.db'}#customers"
    line = _one_error(CliRunner().invoke(app, ["predict", url, "-o", url]))
    assert "output table is the input table" in line


def test_temporary_names_of_the_output_are_refused_as_input(tmp_path: Path) -> None:
    temp = tmp_path / ".out.csv.1234-0123abcd.tmp"
    temp.write_text("a\n1\n")
    with pytest.raises(ConfigError, match="is the input"):
        check_destinations(str(temp), str(tmp_path / "out.csv"))
    check_destinations(str(temp), str(tmp_path / "other.csv"))  # another output's is fine


def test_outputs_sharing_a_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="would both be"):
        check_destinations(
            str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), rejects=str(tmp_path / "out.csv")
        )


# -- item 6: an unwritable output is one line, exit 2, nothing half-written -------------------


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["-o", "data.csv/out.csv"], "data.csv is not a folder"),
        (["-o", "/proc/x.csv"], "cannot be written"),
        (["-o", "missing/out.csv"], "folder does not exist"),
        (["-o", "sub.csv"], "is a folder"),
        (["-o", "out.csv", "--rejects", "/proc/r.csv", "--on-error", "skip"], "cannot be written"),
        (["-o", "out.xlsx"], "cannot tell the output format"),
    ],
)
def test_unwritable_output_is_one_line_and_leaves_nothing(
    folder: Path, args: list[str], reason: str
) -> None:
    _customers(folder)
    (folder / "sub.csv").mkdir()
    before = _files(folder)

    line = _one_error(CliRunner().invoke(app, ["predict", "data.csv", *args]))

    assert reason in line
    assert _files(folder) == before
    assert not (folder / ".churnops").exists()  # failed before any store was touched


@pytest.mark.parametrize("writer_class", [CsvWriter, ParquetWriter])
def test_writer_losing_its_folder_mid_run_fails_cleanly(
    tmp_path: Path, writer_class: type[CsvWriter] | type[ParquetWriter]
) -> None:
    """A write that fails after the checks (the folder replaced by a file, a full disk) is a
    ChurnopsError, and the clean-up after it raises nothing of its own."""
    folder = tmp_path / "out"
    folder.mkdir()
    writer = writer_class(folder / "scored.csv")
    writer.write(pd.DataFrame({"a": [1, 2]}))
    writer._close()  # what a later chunk or commit finds: the temporary file closed
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    folder.write_text("now a file")

    with pytest.raises(ChurnopsError, match="cannot write"):
        writer.commit()
    writer.abort()  # must not raise (the first error is the one the user sees)
    assert folder.read_text() == "now a file"


# -- item 10: arguments before heavy imports; no store created by a read ---------------------


def _cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a fresh interpreter, with Python's import log on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNOPS_")}
    env.pop("MLFLOW_TRACKING_URI", None)
    code = "import sys; from churnops.cli.main import app; sys.exit(app())"
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _imported(stderr: str) -> set[str]:
    modules = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            modules.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return modules


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["predict", "missing.csv"], "input not found: missing.csv"),
        (["predict", "data.csv", "-o", "/proc/x.csv"], "cannot be written"),
        (["predict", "data.csv", "-o", "data.csv"], "is the input"),
        (["train", "--data", "missing.csv"], "input not found: missing.csv"),
        (["eda", "--data", "missing.csv"], "input not found: missing.csv"),
        (["monitor", "--current", "missing.csv"], "--current file not found: missing.csv"),
        (["monitor"], "no MLflow tracking store at"),
        (["models", "list"], "no MLflow tracking store at"),
        (["models", "promote", "1"], "no MLflow tracking store at"),
        (["models", "rollback"], "no MLflow tracking store at"),
        (["predict", "data.csv"], "no MLflow tracking store at"),
    ],
)
def test_bad_arguments_fail_before_heavy_imports_and_create_nothing(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    _customers(tmp_path)
    before = _files(tmp_path)

    done = _cli(tmp_path, *args)

    messages = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(messages) == 1 and expected in messages[0], messages
    assert not _imported(done.stderr) & set(HEAVY)
    assert _files(tmp_path) == before
    assert not (tmp_path / ".churnops").exists()


@pytest.mark.slow
def test_monitor_says_where_the_missing_prediction_store_was_expected(
    trained_model: TrainedModel, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURNOPS_TRACKING_URI", trained_model.settings.resolved_tracking_uri())
    monkeypatch.setenv("CHURNOPS_HOME", str(folder / "home"))
    store = folder / "home" / "predictions.db"

    line = _one_error(CliRunner().invoke(app, ["monitor", "--window", "7d"]))

    assert f"no prediction store at {store}" in line
    assert list(folder.iterdir()) == []  # neither the store nor its folder was created


@pytest.mark.slow
def test_models_list_reads_an_existing_store_without_writing(
    trained_model: TrainedModel, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURNOPS_TRACKING_URI", trained_model.settings.resolved_tracking_uri())
    monkeypatch.setenv("CHURNOPS_HOME", str(folder / "home"))

    result = CliRunner().invoke(app, ["models", "list", "--json"])

    assert result.exit_code == 0, result.output
    assert any("champion" in v["aliases"] for v in json.loads(result.stdout))
    assert list(folder.iterdir()) == []


# -- issue #12: CLI values are validated by the settings model, like the file and environment --


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "--budget-minutes", "-5"], "invalid --budget-minutes -5.0: Input should be"),
        (["train", "--budget-minutes", "0"], "invalid --budget-minutes 0.0: Input should be"),
        (["train", "--model-name", ""], "invalid --model-name '': String should have"),
        (["train", "--target", ""], "invalid --target '': String should have"),
        (["eda", "--target", ""], "invalid --target '': String should have"),
        (["eda", "--positive-label", ""], "invalid --positive-label '': String should have"),
        (["serve", "--port", "70000"], "invalid --port 70000: Input should be less than"),
        (["serve", "--port", "0"], "invalid --port 0: Input should be greater than"),
        (["serve", "--workers", "0"], "invalid --workers 0: Input should be greater than"),
        (["models", "list", "--model-name", ""], "invalid --model-name '': String should have"),
        (["models", "promote", "1", "--model-name", ""], "invalid --model-name ''"),
    ],
)
def test_bad_flag_values_are_refused_by_the_settings_model(
    folder: Path, args: list[str], expected: str
) -> None:
    line = _one_error(CliRunner().invoke(app, args))
    assert expected in line
    assert list(folder.iterdir()) == []


def test_the_environment_is_refused_with_the_same_rule(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURNOPS_TRAINING__BUDGET_MINUTES", "-5")
    line = _one_error(CliRunner().invoke(app, ["train"]))
    assert "invalid setting training.budget_minutes: Input should be greater than 0" in line
