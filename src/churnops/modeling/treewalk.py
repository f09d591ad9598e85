"""The flat forest's tree walk, compiled with numba: one pass gives probabilities and reasons.

Walking 300-500 small trees for one customer with vectorised numpy costs ~100 µs, almost all of
it the overhead of dozens of tiny array calls; the same loop compiled to machine code takes a few
microseconds, and scales linearly to thousands of rows. The arithmetic follows the libraries: XGBoost
sums tree outputs in float32 in tree order from the base margin, LightGBM and sklearn in float64.

Two entry points over one compiled body: `walk` keeps the GIL (a request's few rows: releasing
it would let another thread, a worker scoring a large batch say, keep the GIL for up to a switch
interval, 5 ms, per call) and `walk_released` lets other threads run (large batches scored in a
worker thread). Compiled on
first call (a few seconds) and cached on disk next to this module, or in numba's user cache when
that folder is read-only.
"""

from __future__ import annotations

import sys

import numpy as np
from numba import njit

_BLAS_PROBE = "scipy.linalg.cython_blas"
registries_ready = False


def load_registries() -> None:
    """Load numba's typing registries once, before the first walk, without their BLAS probe.

    Numba's first compile or cache load imports all of its numpy support, and with it
    `scipy.linalg` only to learn whether `np.dot` could be compiled (0.15 s of CPU and 16 MB
    here, a tenth of a warm start). The walk uses no BLAS, and no other code of this process
    compiles with numba: the probe is answered "absent" (numba then refuses `np.dot` in jitted
    code of this process); scipy itself stays importable as usual afterwards. A process that
    already imported scipy.linalg (training, a cold load) loads the registries as is.
    """
    global registries_ready
    if registries_ready:
        return
    from numba.core.registry import cpu_target

    blocked = _BLAS_PROBE not in sys.modules
    if blocked:
        sys.modules[_BLAS_PROBE] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        cpu_target.target_context.refresh()
    finally:
        if blocked and sys.modules.get(_BLAS_PROBE, 0) is None:
            del sys.modules[_BLAS_PROBE]
    registries_ready = True


@njit(cache=True, inline="always")
def _child(
    x: np.ndarray,
    r: int,
    node: int,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    default_left: np.ndarray,
    strict_less: bool,
) -> int:
    """The child row `r` goes to from inner `node` (a leaf: itself), without branches on the data.

    On real customers each split goes either way, and a mispredicted branch a node cost more than
    the node (one customer 5.0 -> 4.3 µs, 64 customers 5.3 -> 3.5 µs each, 300 trees of depth 3).
    A NaN compares False either way, so it goes where `default_left` says; strict_less is the
    same for the whole walk, so that branch is always predicted.
    """
    v = x[r, feature[node]]
    below = v < threshold[node] if strict_less else v <= threshold[node]
    go_left = below | (np.isnan(v) & default_left[node])
    return right[node] + np.int64(go_left) * (left[node] - right[node])


@njit(cache=True)
def _walk(
    x: np.ndarray,
    roots: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    default_left: np.ndarray,
    value: np.ndarray,
    mean: np.ndarray,
    strict_less: bool,
    float32_sum: bool,
    average: bool,
    base: float,
    probability: np.ndarray,
    contributions: np.ndarray,
    want_contributions: bool,
    depth: int,
) -> None:
    """Fill `probability` (rows,) and, if wanted, add path contributions into `contributions`.

    `x` is in the comparison dtype of `threshold`; a NaN goes where `default_left` says. Leaves
    point to themselves. Each split credits its feature with the change in the node mean along the
    path. `average` (random forests): the output is the mean leaf value and
    contributions are averaged too; otherwise the output is the sigmoid of base + sum of leaves.

    `depth` > 0: every tree is walked exactly `depth` steps (a leaf reached earlier steps onto
    itself, crediting nothing). For shallow, nearly full trees (boosters) this drops the "leaf
    yet?" branch, mispredicted wherever leaves sit at different depths, and lets probabilities
    alone walk two trees at once: two independent chains of loads for the CPU to overlap (300
    trees of depth 3: 4.5 -> 2.8 µs a customer). With contributions, trees go one at a time, so
    each feature's credits add up in the same order as the plain walk's. `depth` 0: each tree
    until its leaf (deep, uneven trees such as random forests).
    """
    n_rows = x.shape[0]
    n_trees = roots.shape[0]
    pairs = depth > 0 and not want_contributions
    for r in range(n_rows):
        total32 = np.float32(base)
        total = base
        t = 0
        if pairs:
            while t + 1 < n_trees:
                a = roots[t]
                b = roots[t + 1]
                for _ in range(depth):
                    a = _child(x, r, a, feature, threshold, left, right, default_left, strict_less)
                    b = _child(x, r, b, feature, threshold, left, right, default_left, strict_less)
                if float32_sum:  # in tree order, as one tree at a time would
                    total32 = np.float32(total32 + np.float32(value[a]))
                    total32 = np.float32(total32 + np.float32(value[b]))
                else:
                    total += value[a]
                    total += value[b]
                t += 2
        while t < n_trees:
            node = roots[t]
            steps = 0
            while (depth > 0 and steps < depth) or (depth == 0 and left[node] != node):
                child = _child(
                    x, r, node, feature, threshold, left, right, default_left, strict_less
                )
                if want_contributions:
                    contributions[r, feature[node]] += mean[child] - mean[node]
                node = child
                steps += 1
            if float32_sum:
                total32 = np.float32(total32 + np.float32(value[node]))
            else:
                total += value[node]
            t += 1
        if average:
            probability[r] = total / n_trees
            if want_contributions:
                for j in range(contributions.shape[1]):
                    contributions[r, j] /= n_trees
        else:
            margin = np.float64(total32) if float32_sum else total
            probability[r] = 1.0 / (1.0 + np.exp(-margin))


@njit(cache=True)
def walk(
    x: np.ndarray,
    roots: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    default_left: np.ndarray,
    value: np.ndarray,
    mean: np.ndarray,
    strict_less: bool,
    float32_sum: bool,
    average: bool,
    base: float,
    probability: np.ndarray,
    contributions: np.ndarray,
    want_contributions: bool,
    depth: int,
) -> None:
    """`_walk` holding the GIL."""
    _walk(
        x, roots, feature, threshold, left, right, default_left, value, mean, strict_less,
        float32_sum, average, base, probability, contributions, want_contributions, depth,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def walk_released(
    x: np.ndarray,
    roots: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    default_left: np.ndarray,
    value: np.ndarray,
    mean: np.ndarray,
    strict_less: bool,
    float32_sum: bool,
    average: bool,
    base: float,
    probability: np.ndarray,
    contributions: np.ndarray,
    want_contributions: bool,
    depth: int,
) -> None:
    """`_walk` with the GIL released, for inputs large enough to be scored off the event loop."""
    _walk(
        x, roots, feature, threshold, left, right, default_left, value, mean, strict_less,
        float32_sum, average, base, probability, contributions, want_contributions, depth,
    )  # fmt: skip


def compile_all(*, ahead_of_time: bool = True) -> None:
    """Compile (or load from the cache) every variant a model can need: float32 thresholds
    (XGBoost) and float64 (LightGBM, random forests), each holding and releasing the GIL; and
    the walk built ahead of time (`treewalk_aot`, needs a C compiler) unless it is there already.

    For image builds: run once as the user who owns the installed package, and containers
    start without compiling.
    """
    for dtype in (np.float32, np.float64):
        x = np.zeros((1, 1), dtype=dtype)
        index = np.zeros(1, dtype=np.int64)
        node = np.zeros(1, dtype=np.float64)
        for kernel in (walk, walk_released):
            kernel(
                x, index, index, np.zeros(1, dtype=dtype), index, index,
                np.ones(1, dtype=np.bool_), node, node, True, dtype is np.float32, False, 0.0,
                np.zeros(1), np.zeros((1, 1)), True, 0,
            )  # fmt: skip
    if ahead_of_time:
        from churnops.modeling import treewalk_aot

        if treewalk_aot.load() is None:
            treewalk_aot.build()
