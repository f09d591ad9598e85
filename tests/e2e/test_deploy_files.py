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
from churnops.settings import Settings, unknown_env_names

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
    cmd = re.search(r"CMD \[(.*)\]", (DEPLOY / "Dockerfile").read_text())
    assert cmd is not None
    commands.append([part.strip().strip('"') for part in cmd.group(1).split(",")])
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
    for secret in ("api_keys.json", "metrics_key"):
        (copy / "secrets" / secret).write_text("")
    result = subprocess.run(
        ["docker-compose", "-f", str(copy / "compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_deploy_environment_names_are_known_in_full() -> None:
    """Every CHURNOPS_* name in compose.yml and the Dockerfile is one the settings read (a typo
    such as CHURNOPS_SERVING__KEYSFILE would be ignored at run time)."""
    texts = [(DEPLOY / "compose.yml").read_text(), (DEPLOY / "Dockerfile").read_text()]
    names = {name for text in texts for name in re.findall(r"\bCHURNOPS_[A-Za-z0-9_]+", text)}
    assert unknown_env_names(names) == {}
    assert "CHURNOPS_SERVING__KEYS_FILE" in names  # the scan sees the deploy files' settings
    assert unknown_env_names({"CHURNOPS_SERVING__KEYSFILE"})  # and would catch a typo
