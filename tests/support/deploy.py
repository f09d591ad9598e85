"""Reading deploy/compose.yml and deploy/Dockerfile, and running a service's command the way its
container would: as uid 1000, in a working directory it cannot write, with the container's paths
(volumes, secrets, the read-only home) mapped onto folders of the test."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# CHURNOPS_TEST_DEPLOY_DIR: check another copy of deploy/ (e.g. the last release's) with the same tests.
DEPLOY = Path(
    os.environ.get("CHURNOPS_TEST_DEPLOY_DIR") or Path(__file__).resolve().parents[2] / "deploy"
)
CONTAINER_UID = 1000
# What a container may write under read_only: true (its volumes and the /tmp tmpfs).
VOLUME_PATHS = ("/var/lib/churnops", "/var/lib/prefect", "/mlartifacts")
HOME_PATH = "/home/churnops"
SECRETS_PATH = "/run/secrets"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    return loaded


def dockerfile_stages() -> dict[str, list[str]]:
    """Stage name -> its instruction lines (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        match = re.match(r"FROM (\S+) AS ([\w-]+)", line)
        if match:
            current = stages.setdefault(match.group(2), [])
        current.append(line)
    return stages


def stage_parent(stage: str) -> str | None:
    """The stage `stage` is built FROM, when that is another stage of the file."""
    stages = dockerfile_stages()
    match = re.match(r"FROM (\S+) AS", stages[stage][0])
    parent = match.group(1) if match else None
    return parent if parent in stages else None


def image_env(stage: str) -> dict[str, str]:
    """The ENV an image of `stage` starts with (its own and its parent stages')."""
    chain = [stage]
    while (parent := stage_parent(chain[-1])) is not None:
        chain.append(parent)
    env: dict[str, str] = {}
    stages = dockerfile_stages()
    for name in reversed(chain):
        for line in stages[name]:
            if line.startswith("ENV "):
                for part in shlex.split(line[4:]):
                    key, _, value = part.partition("=")
                    env[key] = value
    return env


def image_cmd(stage: str) -> list[str]:
    for line in reversed(dockerfile_stages()[stage]):
        if line.startswith("CMD "):
            command: list[str] = yaml.safe_load(line[4:])
            return command
    raise AssertionError(f"stage {stage} has no CMD")


def service_env(name: str) -> dict[str, str]:
    environment = compose()["services"][name].get("environment") or {}
    return {str(k): str(v) for k, v in environment.items()}


@dataclass
class Container:
    """Host folders standing in for a container's filesystem: a read-only root (the working
    directory and the home), its volumes and its secrets."""

    root: Path
    mounts: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def make(cls, root: Path) -> Container:
        container = cls(root)
        for path in (*VOLUME_PATHS, SECRETS_PATH):
            host = root / "mounts" / path.strip("/").replace("/", "_")
            host.mkdir(parents=True)
            os.chown(host, CONTAINER_UID, CONTAINER_UID)  # the image chowns its volume folders
            container.mounts[path] = host
        for path in ("/app", HOME_PATH):  # root-owned, 0755: readable, not writable, as uid 1000
            host = root / "image" / path.strip("/").replace("/", "_")
            host.mkdir(parents=True)
            container.mounts[path] = host
        return container

    @property
    def workdir(self) -> Path:
        return self.mounts["/app"]

    def host_path(self, value: str) -> str:
        """A container path in `value` (a path or a URL naming one) as the host folder's path."""
        for path, host in sorted(self.mounts.items(), key=lambda item: -len(item[0])):
            value = value.replace(path, str(host))
        return value

    def secret(self, name: str, text: str) -> Path:
        """A secret file as compose mounts it: the host file, owned by uid 1000, mode 0600."""
        path = self.mounts[SECRETS_PATH] / name
        path.write_text(text)
        path.chmod(0o600)
        os.chown(path, CONTAINER_UID, CONTAINER_UID)
        return path

    def env(self, stage: str, service: str, **overrides: str) -> dict[str, str]:
        """The image's and the service's environment, paths mapped, PATH onto this venv."""
        env = {"LANG": "C.UTF-8"}
        for key, value in (image_env(stage) | service_env(service)).items():
            env[key] = self.host_path(value)
        env["PATH"] = f"{Path(sys.executable).parent}:/usr/bin:/bin"
        env["TMPDIR"] = "/tmp"
        return env | overrides

    def unexpected_files(self) -> list[Path]:
        """Anything written outside the volumes, the secrets and /tmp."""
        return [p for p in (self.root / "image").rglob("*") if p.is_file()]


# uid/gid 1000 with no groups. CAP_DAC_READ_SEARCH is kept only so the process can read this
# machine's virtualenv (its interpreter lives under root's 0700 home; in the image /opt/venv is
# world-readable): every write is still checked as uid 1000.
AS_UID_1000 = [
    "setpriv",
    f"--reuid={CONTAINER_UID}",
    f"--regid={CONTAINER_UID}",
    "--clear-groups",
    "--inh-caps=+dac_read_search",
    "--ambient-caps=+dac_read_search",
    "--",
]


@contextmanager
def run_as_container(
    command: list[str], container: Container, env: Mapping[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """`command` as uid 1000 in the container's working directory, in its own process group."""
    executable = shutil.which(command[0], path=env.get("PATH"))
    assert executable is not None, f"{command[0]} is not installed"
    process = subprocess.Popen(
        [*AS_UID_1000, executable, *command[1:]],
        cwd=container.workdir,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait(10)
