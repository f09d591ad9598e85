"""The environment `make` builds holds compiled bytecode, so no process compiles its imports again."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["mlflow", "sklearn", "fastapi", "pandas", "churnops.settings"])
def test_installed_packages_carry_bytecode(module: str) -> None:
    # With PYTHONDONTWRITEBYTECODE=1 (these shells and the image) nothing writes .pyc at run time,
    # so an install without --compile-bytecode makes every process compile from source (2x slower).
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    init = Path(spec.origin)
    tag = sys.implementation.cache_tag
    cached = init.parent / "__pycache__" / f"{init.stem}.{tag}.pyc"
    assert cached.exists(), f"{module} was installed without compiled bytecode ({cached} missing)"


@pytest.mark.parametrize("path", ["Makefile", "deploy/Dockerfile"])
def test_every_install_compiles_bytecode(path: str) -> None:
    text = (ROOT / path).read_text()
    installs = [line for line in text.splitlines() if "uv pip install" in line]
    assert installs, f"{path} installs nothing with uv"
    assert all("--compile-bytecode" in line for line in installs), installs


def test_the_editable_churnops_is_compiled_by_make_setup() -> None:
    # The editable install is skipped by --compile-bytecode: `make setup` compiles src itself.
    text = (ROOT / "Makefile").read_text()
    setup = text[text.index("\nsetup:") : text.index("\nrun:")]
    assert "compileall -q src" in setup
