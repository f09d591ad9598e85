"""The walk built ahead of time gives exactly what numba's JIT gives, for every kind of forest, and
a process that walks a few rows with it never imports numba."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from churnops.modeling import treewalk_aot
from churnops.modeling.forest import RELEASE_GIL_ROWS, _Builder, _kernel
from churnops.modeling.treewalk import load_registries, walk
from tests.support.services import needs


@pytest.fixture(scope="module")
def compiled() -> Any:
    module = treewalk_aot.load()
    if module is None:
        needs("the ahead-of-time tree walk", "run `make setup` (it builds it with gcc)")
    return module


def _random_forest(rng: np.random.Generator, *, dtype: Any, n_features: int) -> dict[str, Any]:
    """Complete trees of random depth: the flat arrays `_walk` takes."""
    builder = _Builder()
    deepest = 0
    for _ in range(41):  # odd: the walk two trees at a time ends on a single one
        depth = int(rng.integers(1, 6))
        deepest = max(deepest, depth)
        inner = 2**depth - 1
        size = 2 ** (depth + 1) - 1
        left = [2 * i + 1 if i < inner else -1 for i in range(size)]
        right = [2 * i + 2 if i < inner else -1 for i in range(size)]
        builder.add(
            feature=[int(f) for f in rng.integers(0, n_features, size)],
            threshold=[float(t) for t in rng.normal(0, 1, size)],
            left=left,
            right=right,
            default_left=[bool(b) for b in rng.random(size) < 0.5],
            value=[float(v) for v in rng.normal(0, 0.3, size)],
            mean=[float(v) for v in rng.normal(0, 0.3, size)],
        )
    forest = builder.build(
        rule="lt", compare_dtype=dtype, base=-0.4, link="logit", float32_sum=True
    )
    return {
        "roots": forest.roots, "feature": forest.feature, "threshold": forest.threshold,
        "left": forest.left, "right": forest.right, "default_left": forest.default_left,
        "value": forest.value, "mean": forest.mean, "depth": deepest,
    }  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("strict", "float32_sum", "average"), [
    (True, True, False),  # XGBoost
    (False, False, False),  # LightGBM
    (False, False, True),  # random forest
])  # fmt: skip
@pytest.mark.parametrize(("fixed_depth", "want_contributions"), [
    (False, True),  # each tree to its leaf
    (True, True),  # fixed depth, one tree at a time
    (True, False),  # fixed depth, two trees at once
])  # fmt: skip
def test_the_ahead_of_time_walk_equals_numbas_bit_for_bit(
    compiled: Any,
    dtype: Any,
    strict: bool,
    float32_sum: bool,
    average: bool,
    fixed_depth: bool,
    want_contributions: bool,
) -> None:
    rng = np.random.default_rng(7)
    n_features = 6
    arrays = _random_forest(rng, dtype=dtype, n_features=n_features)
    x = rng.normal(0, 1, (200, n_features)).astype(dtype)
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values follow default_left
    x[:5] = arrays["threshold"][:n_features]  # values exactly on a threshold: < versus <=
    aot = compiled.walk_f4 if dtype is np.float32 else compiled.walk_f8
    results = []
    for kernel in (walk, aot):
        probability = np.empty(len(x))
        contributions = np.zeros((len(x), n_features))
        kernel(
            np.ascontiguousarray(x), arrays["roots"], arrays["feature"], arrays["threshold"],
            arrays["left"], arrays["right"], arrays["default_left"], arrays["value"],
            arrays["mean"], strict, float32_sum, average, -0.4, probability, contributions,
            want_contributions, arrays["depth"] if fixed_depth else 0,
        )  # fmt: skip
        results.append((probability, contributions))
    (jit_p, jit_c), (aot_p, aot_c) = results
    assert len(np.unique(jit_p)) > 50  # the rows took different paths
    np.testing.assert_array_equal(aot_p, jit_p)
    np.testing.assert_array_equal(aot_c, jit_c)


def test_few_rows_take_the_compiled_module_and_many_take_numbas_released_walk(
    compiled: Any,
) -> None:
    from churnops.modeling.treewalk import walk_released

    assert _kernel(1, np.float32) is compiled.walk_f4
    assert _kernel(RELEASE_GIL_ROWS - 1, np.float64) is compiled.walk_f8
    assert _kernel(RELEASE_GIL_ROWS, np.float32) is walk_released


def test_walking_a_few_rows_imports_no_numba(compiled: Any) -> None:
    script = (
        "import sys, numpy as np\n"
        "from churnops.modeling.forest import _Builder\n"
        "b = _Builder()\n"
        "b.add(feature=[0, 0, 0], threshold=[0.5, 0, 0], left=[1, -1, -1], right=[2, -1, -1],"
        " default_left=[True] * 3, value=[0.0, 1.0, -1.0], mean=[0.2, 1.0, -1.0])\n"
        "f = b.build(rule='lt', compare_dtype=np.float32, base=0.0, link='logit',"
        " float32_sum=True)\n"
        "p, c = f.proba_and_contributions(np.array([[0.2], [0.7]]), contributions=True)\n"
        "print(p.round(4).tolist(), c.round(4).tolist(), 'numba' in sys.modules,"
        " 'llvmlite' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == [
        "[0.7311,", "0.2689]", "[[0.8],", "[-1.2]]", "False", "False",
    ]  # fmt: skip


def test_numbas_registries_load_without_breaking_scipy() -> None:
    """The JIT path answers numba's BLAS probe "absent"; scipy stays importable afterwards."""
    load_registries()
    import scipy.linalg.cython_blas  # noqa: F401


def test_a_missing_build_is_none_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(treewalk_aot, "module_name", lambda: "_treewalk_aot_not_built")
    treewalk_aot.load.cache_clear()
    try:
        assert treewalk_aot.load() is None
        assert treewalk_aot.kernel(np.float32) is None
    finally:
        monkeypatch.undo()
        treewalk_aot.load.cache_clear()
