"""YAML documents read with libyaml's parser when PyYAML was built with it.

`yaml.safe_load` parses in pure Python: params.yaml took ~12 ms of every command's start and a
model's MLmodel file a few more. The C parser with the same safe constructors builds the same
objects (MLflow reads its files the same way) in a tenth of the time.
"""

from __future__ import annotations

from typing import Any

import yaml

# libyaml's parser with SafeLoader's constructors and resolver; SafeLoader where PyYAML has none.
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """`yaml.safe_load(text)`, through libyaml when available; raises yaml.YAMLError likewise."""
    return yaml.load(text, Loader=SAFE_LOADER)  # a safe loader, C or Python
