"""Training one kind of classifier imports that library only (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import json, sys
from churnops.modeling.candidates import CANDIDATES
candidate = CANDIDATES[{name!r}]
model = candidate.make(candidate.defaults, 1, 1)
print(json.dumps({{"made": type(model).__name__,
    "loaded": [m for m in ("xgboost", "lightgbm") if m in sys.modules]}}))
"""


@pytest.mark.parametrize(
    ("name", "made", "loaded"),
    [
        ("xgboost", "XGBClassifier", ["xgboost"]),
        ("lightgbm", "LGBMClassifier", ["lightgbm"]),
        ("logistic_regression", "LogisticRegression", []),
    ],
)
def test_making_a_candidate_imports_its_own_library_only(
    name: str, made: str, loaded: list[str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(name=name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"made": made, "loaded": loaded}
