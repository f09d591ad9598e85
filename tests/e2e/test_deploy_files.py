"""What can be checked of the deployment files without a Docker engine."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from churnops.cli.main import app
from churnops.settings import AppSettings, Settings, unknown_env_names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yml").read_text())


def test_every_waited_on_service_has_a_healthcheck() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


def test_environment_names_real_settings() -> None:
    env = compose()["x-churnops-env"]
    fields = Settings.model_fields
    for key in env:
        if key.startswith("CHURNOPS_"):
            first = key.removeprefix("CHURNOPS_").lower().split("__")[0]
            assert first in fields, f"{key} is not a churnops setting"


def test_container_commands_are_real_cli_commands() -> None:
    runner = CliRunner()
    commands = [compose()["services"]["trainer"]["command"]]
    cmds = re.findall(r"^CMD \[(.*)\]", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    assert len(cmds) == 2  # the app's and the API's
    commands += [[part.strip().strip('"') for part in cmd.split(",")] for cmd in cmds]
    for command in commands:
        assert command[0] == "churnops"
        options = [part for part in command[1:] if part.startswith("--")]
        help_text = runner.invoke(app, [*command[1:2], "--help"], terminal_width=200).output
        for option in options:
            assert option in help_text, f"{command[1]} has no option {option}"


def test_image_build_runs_real_python_steps() -> None:
    """Every `python -c` the Dockerfile runs at build time works in this environment."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    snippets = re.findall(r'python -c "([^"]+)"', dockerfile)
    assert any("compile_all()" in snippet for snippet in snippets)  # containers start compiled
    for snippet in snippets:
        done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_file_is_valid(tmp_path: Path) -> None:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    (copy / "secrets").mkdir(exist_ok=True)
    for secret in ("api_keys.json", "metrics_key", "app_key"):
        (copy / "secrets" / secret).write_text("")
    result = subprocess.run(
        ["docker-compose", "-f", str(copy / "compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def dockerfile_stages() -> dict[str, list[str]]:
    """Stage name -> its instruction lines."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        match = re.match(r"FROM \S+ AS (\w+)", line)
        if match:
            current = stages.setdefault(match.group(1), [])
        current.append(line)
    return stages


def test_app_service_is_checked_and_waits_for_the_api() -> None:
    services = compose()["services"]
    app_service = services["app"]
    assert "/_stcore/health" in " ".join(app_service["healthcheck"]["test"])
    assert app_service["depends_on"]["api"]["condition"] == "service_healthy"
    assert app_service["environment"]["CHURNOPS_APP__API_URL"] == "http://api:8000"
    assert app_service["ports"] == ["8501:8501"]
    assert app_service["build"]["target"] in dockerfile_stages()
    # The app scores with the production settings (merged from the shared block) plus its own.
    env = app_service["environment"]
    assert env["CHURNOPS_ENV"] == "production"
    app_fields = AppSettings.model_fields
    for key in env:
        if key.startswith("CHURNOPS_APP__"):
            assert key.removeprefix("CHURNOPS_APP__").lower() in app_fields, key
    assert env["CHURNOPS_API_KEY_FILE"] == "/run/secrets/app_key"
    assert "app_key" in app_service["secrets"]


def test_every_image_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    stages = dockerfile_stages()
    assert {"base", "app", "api"} <= set(stages)
    assert list(stages)[-1] == "api"  # a build without --target gives the API
    for name in ("app", "api"):
        lines = stages[name]
        cmd = next(i for i, line in enumerate(lines) if line.startswith("CMD"))
        user = next(i for i, line in enumerate(lines) if line.startswith("USER"))
        assert lines[user] == "USER churnops" and user < cmd, name
        assert any(line.startswith("HEALTHCHECK") for line in lines), name
    assert any("_stcore/health" in line for line in stages["app"])
    assert any(".[dashboard]" in line for line in stages["app"])


def test_deploy_environment_names_are_known_in_full() -> None:
    """Every CHURNOPS_* name in compose.yml and the Dockerfile is one the settings read (a typo
    such as CHURNOPS_SERVING__KEYSFILE would be ignored at run time)."""
    texts = [(DEPLOY / "compose.yml").read_text(), (DEPLOY / "Dockerfile").read_text()]
    names = {name for text in texts for name in re.findall(r"\bCHURNOPS_[A-Za-z0-9_]+", text)}
    assert unknown_env_names(names) == {}
    assert "CHURNOPS_SERVING__KEYS_FILE" in names  # the scan sees the deploy files' settings
    assert unknown_env_names({"CHURNOPS_SERVING__KEYSFILE"})  # and would catch a typo
