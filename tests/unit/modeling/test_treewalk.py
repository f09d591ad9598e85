"""The compiled walk: every variant a model needs can be built ahead of the first request."""

from __future__ import annotations

import numpy as np

from churnops.modeling.treewalk import compile_all, walk, walk_released


def test_compile_all_builds_both_threshold_dtypes_for_both_entry_points() -> None:
    compile_all()
    for kernel in (walk, walk_released):
        first_arguments = {str(signature[0]) for signature in kernel.signatures}
        assert any("float32" in text for text in first_arguments)
        assert any("float64" in text for text in first_arguments)


def test_one_stump_by_hand() -> None:
    """x < 0.5 goes left (leaf 1.0), else right (leaf -1.0); NaN follows default_left."""
    x = np.array([[0.2], [0.7], [np.nan]], dtype=np.float32)
    roots = np.array([0])
    feature = np.array([0, 0, 0])
    threshold = np.array([0.5, 0, 0], dtype=np.float32)
    left, right = np.array([1, 1, 2]), np.array([2, 1, 2])
    default_left = np.array([False, True, True])
    value = np.array([0.0, 1.0, -1.0])
    mean = np.array([0.2, 1.0, -1.0])
    probability, contributions = np.empty(3), np.zeros((3, 1))
    walk(
        x, roots, feature, threshold, left, right, default_left, value, mean, True, True, False,
        0.0, probability, contributions, True, 0,
    )  # fmt: skip
    np.testing.assert_allclose(probability, 1 / (1 + np.exp(-np.array([1.0, -1.0, -1.0]))))
    np.testing.assert_allclose(contributions[:, 0], [0.8, -1.2, -1.2])
