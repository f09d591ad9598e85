"""Settings: file < environment < explicit overrides, and paths that do not depend on the cwd."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from churnops.errors import ConfigError
from churnops.settings import get_settings, unknown_env_names


def test_params_file_then_environment_then_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("training:\n  seed: 1\n  cv_folds: 3\nregistry:\n  model_name: from-file\n")
    monkeypatch.setenv("CHURNOPS_TRAINING__SEED", "2")
    settings = get_settings(params, **{"registry.model_name": "from-flag"})
    assert settings.training.seed == 2  # env beats the file
    assert settings.training.cv_folds == 3  # the file beats defaults
    assert settings.registry.model_name == "from-flag"  # flags beat everything


def test_bad_config_is_one_readable_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        get_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("risk_bands:\n  medium: 0.8\n  high: 0.5\n")
    with pytest.raises(ConfigError, match="risk_bands"):
        get_settings(bad)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        get_settings(tmp_path / "list.yaml")


def test_spool_and_keys_live_under_home_whatever_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "home"))
    paths = set()
    for cwd in (tmp_path / "a", tmp_path / "b"):
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        settings = get_settings()
        paths.add(
            (
                settings.resolved_spool_path(),
                settings.resolved_keys_file(),
                settings.resolved_database_url(),
            )
        )
    assert len(paths) == 1  # a restart from another folder finds the same spool and keys
    spool, keys, database = paths.pop()
    assert spool == str(tmp_path / "home" / "spool.jsonl")
    assert keys == str(tmp_path / "home" / "api_keys.json")
    assert database.endswith(str(tmp_path / "home" / "predictions.db"))


def test_flags_beat_the_environment_and_keep_the_rest_of_the_section(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("training:\n  cv_folds: 3\n")
    monkeypatch.setenv("CHURNOPS_TRAINING__BUDGET_MINUTES", "9")
    monkeypatch.setenv("CHURNOPS_TRAINING__SEED", "7")
    settings = get_settings(params, **{"training.budget_minutes": 3})
    assert settings.training.budget_minutes == 3.0
    assert settings.training.seed == 7  # the same section's other values are kept
    assert settings.training.cv_folds == 3


@pytest.mark.parametrize(
    ("dotted", "value", "env", "field_message"),
    [
        ("training.budget_minutes", -5, "CHURNOPS_TRAINING__BUDGET_MINUTES", "greater than 0"),
        ("training.budget_minutes", 0, "CHURNOPS_TRAINING__BUDGET_MINUTES", "greater than 0"),
        ("registry.model_name", "", "CHURNOPS_REGISTRY__MODEL_NAME", "at least 1 character"),
        ("serving.port", 70000, "CHURNOPS_SERVING__PORT", "less than or equal to 65535"),
        ("serving.workers", 0, "CHURNOPS_SERVING__WORKERS", "greater than or equal to 1"),
        ("data.target", "", "CHURNOPS_DATA__TARGET", "at least 1 character"),
    ],
)
def test_a_flag_is_refused_exactly_where_the_environment_is(
    monkeypatch: pytest.MonkeyPatch, dotted: str, value: object, env: str, field_message: str
) -> None:
    """One validation path: what CHURNOPS_* may not hold, a CLI flag may not hold either."""
    with pytest.raises(ConfigError, match=f"--flag {value!r}: .*{field_message}.*\\({dotted}\\)"):
        get_settings(flags={dotted: "--flag"}, **{dotted: value})
    with pytest.raises(ConfigError, match=f"invalid setting {dotted}: .*{field_message}"):
        get_settings(**{dotted: value})  # no flag name known: the field's
    monkeypatch.setenv(env, str(value))
    with pytest.raises(ConfigError, match=f"invalid setting {dotted}: .*{field_message}"):
        get_settings()


def _clear_churnops_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("CHURNOPS_"):
            monkeypatch.delenv(name)


def test_unknown_churnops_variables_are_one_warning_with_a_guess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _clear_churnops_env(monkeypatch)
    monkeypatch.chdir(tmp_path)  # no params.yaml: only the environment speaks
    monkeypatch.setenv("CHURNOPS_SERVING__KEYSFILE", str(tmp_path / "keys.json"))
    monkeypatch.setenv("CHURNOPS_DATABSE_URL", "sqlite:///x.db")
    monkeypatch.setenv("CHURNOPS_NOTHING_LIKE_IT", "1")
    monkeypatch.setenv("CHURNOPS_TRAINING__SEED", "3")  # known: no part of the warning
    with caplog.at_level(logging.WARNING, logger="churnops.settings"):
        settings = get_settings()
    assert settings.serving.keys_file is None  # what the warning is for: the typo is ignored
    assert settings.training.seed == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "CHURNOPS_SERVING__KEYSFILE (did you mean CHURNOPS_SERVING__KEYS_FILE?)" in warnings[0]
    assert "CHURNOPS_DATABSE_URL (did you mean CHURNOPS_DATABASE_URL?)" in warnings[0]
    assert "CHURNOPS_NOTHING_LIKE_IT" in warnings[0]
    assert "CHURNOPS_TRAINING__SEED" not in warnings[0]


def test_every_name_the_project_reads_is_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    names = [
        "CHURNOPS_ENV",
        "CHURNOPS_HOME",
        "CHURNOPS_DATABASE_URL",
        "CHURNOPS_REDIS_URL",
        "CHURNOPS_TRACKING_URI",
        "CHURNOPS_CONFIG",  # params file, read by load_params_file
        "CHURNOPS_LOG_FORMAT",  # read by logformat.py
        "CHURNOPS_SERVING__KEYS_FILE",
        "CHURNOPS_SERVING",  # a whole section as JSON
        "CHURNOPS_SERVING__RATE_LIMITS__/predict",  # a key below a dict field
        "churnops_training__budget_minutes",  # matched case-insensitively, as pydantic-settings
        "CHURNOPS_RISK_BANDS__HIGH",
        "CHURNOPS_MONITORING__WEBHOOK_URL",
        "CHURNOPS_TEST_POSTGRES_URL",  # the test suite's own
        "PATH",  # not ours
    ]
    assert unknown_env_names(names) == {}
    _clear_churnops_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("churnops_serving__keys_file", "/run/keys.json")
    with caplog.at_level(logging.WARNING, logger="churnops.settings"):
        settings = get_settings()
    assert settings.serving.keys_file == "/run/keys.json"  # pydantic-settings read it too
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_every_name_written_in_the_source_is_known() -> None:
    """Any CHURNOPS_* name the code reads or sets is one the start-up check accepts, so a name
    added later without teaching the check fails here rather than warning every user."""
    source = Path(__file__).resolve().parents[2] / "src" / "churnops"
    names = {
        name
        for path in source.rglob("*.py")
        for name in re.findall(r"\bCHURNOPS_[A-Za-z0-9_]*[A-Za-z0-9]\b", path.read_text())
    }
    assert {"CHURNOPS_API_KEY", "CHURNOPS_DATABASE_URL", "CHURNOPS_CONFIG"} <= names
    assert unknown_env_names(names) == {}
