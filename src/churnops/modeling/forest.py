"""Tree ensembles flattened into numpy arrays: fast scoring of a few rows, and path contributions.

A booster's own predict costs ~120 µs for one row and its exact SHAP ~300 µs, almost all of it
call overhead; the compiled walk over the flat arrays (`treewalk`) gives the probability and the
contributions together in a few microseconds. Contributions are Saabas path contributions (what XGBoost's `approx_contribs`
computes): each split credits its feature with the change in the node's mean value along the path.
XGBoost, LightGBM and sklearn random forests are read from their own fitted structures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np

from churnops.modeling import treewalk_aot

Rule = Literal["lt", "le"]  # XGBoost goes left on x < t; LightGBM and sklearn on x <= t
# From this many rows the walk releases the GIL (a batch in a worker thread must not stall the
# event loop); below it keeps it, so a request never waits to get the GIL back.
RELEASE_GIL_ROWS = 512


@dataclass(frozen=True)
class FlatForest:
    roots: np.ndarray  # (trees,) global index of each root
    feature: np.ndarray  # (nodes,) split feature; 0 for leaves
    threshold: np.ndarray  # (nodes,) split value, compared in `compare_dtype`
    left: np.ndarray  # (nodes,) global child index; a leaf points to itself
    right: np.ndarray
    default_left: np.ndarray  # (nodes,) where a missing value goes
    value: np.ndarray  # (nodes,) leaf output (0 for inner nodes)
    mean: np.ndarray  # (nodes,) node mean output, for path contributions
    rule: Rule
    compare_dtype: type[np.floating[Any]]
    base: float  # margin (boosters) or 0 (forest average)
    link: Literal["logit", "mean"]  # boosters: sigmoid of the margin; forests: mean of leaves
    float32_sum: bool  # XGBoost accumulates tree outputs in float32
    input_float32: bool = False  # sklearn rounds inputs to float32, then compares in float64

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    @cached_property
    def walk_depth(self) -> int:
        """Steps for the walk's fixed-depth mode (`treewalk._walk`), or 0 to walk each tree to
        its leaf: fixed depth pays off when the deepest leaf is at most one step deeper than
        the average leaf (boosters' shallow, nearly full trees), not on deep uneven trees."""
        left, right = self.left, self.right
        frontier = self.roots
        depth, leaves, leaf_depths = 0, 0, 0
        while frontier.size:
            is_leaf = left[frontier] == frontier
            leaves += int(is_leaf.sum())
            leaf_depths += depth * int(is_leaf.sum())
            inner = frontier[~is_leaf]
            if not inner.size:
                break
            frontier = np.concatenate([left[inner], right[inner]])
            depth += 1
        return depth if leaves and depth <= leaf_depths / leaves + 1 else 0

    def _prepared(self, x: np.ndarray) -> np.ndarray:
        """Rows in the dtype the thresholds are compared in (sklearn first rounds to float32)."""
        xs = x.astype(np.float32) if self.input_float32 else x
        return np.ascontiguousarray(xs, dtype=self.compare_dtype)

    def proba(self, x: np.ndarray) -> np.ndarray:
        return self.proba_and_contributions(x, contributions=False)[0]

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """(rows x features) Saabas contributions; per row they sum to output minus the root mean."""
        found = self.proba_and_contributions(x, contributions=True)[1]
        assert found is not None
        return found

    def proba_and_contributions(
        self, x: np.ndarray, *, contributions: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Both from one walk of the trees (what a request with reasons needs)."""
        n_rows, n_features = x.shape
        probability = np.empty(n_rows, dtype=np.float64)
        if contributions:
            contrib = np.zeros((n_rows, n_features), dtype=np.float64)
        else:
            contrib = _NO_CONTRIBUTIONS
        kernel = _kernel(n_rows, self.compare_dtype)
        kernel(
            self._prepared(x),
            self.roots,
            self.feature,
            self.threshold,
            self.left,
            self.right,
            self.default_left,
            self.value,
            self.mean,
            self.rule == "lt",
            self.float32_sum,
            self.link == "mean",
            self.base,
            probability,
            contrib,
            contributions,
            self.walk_depth,
        )
        return probability, contrib if contributions else None


_NO_CONTRIBUTIONS = np.zeros((0, 0), dtype=np.float64)


def _kernel(n_rows: int, compare_dtype: type[np.floating[Any]]) -> Any:
    """The walk for `n_rows`: a few rows by the ahead-of-time build when there is one (no numba
    in the process), a large input by numba's walk that releases the GIL."""
    if n_rows < RELEASE_GIL_ROWS:
        compiled = treewalk_aot.kernel(compare_dtype)
        if compiled is not None:
            return compiled
    from churnops.modeling import treewalk  # numba: imported only when needed

    if not treewalk.registries_ready:
        treewalk.load_registries()
    return treewalk.walk_released if n_rows >= RELEASE_GIL_ROWS else treewalk.walk


class _Builder:
    """Accumulates trees given as parallel per-node lists with local child indices (-1 = leaf)."""

    def __init__(self) -> None:
        self.roots: list[int] = []
        self.columns: dict[str, list[Any]] = {
            k: []
            for k in ("feature", "threshold", "left", "right", "default_left", "value", "mean")
        }

    def add(
        self,
        *,
        feature: list[int],
        threshold: list[float],
        left: list[int],
        right: list[int],
        default_left: list[bool],
        value: list[float],
        mean: list[float],
    ) -> None:
        offset = len(self.columns["feature"])
        self.roots.append(offset)
        size = len(feature)
        lefts, rights = [], []
        for i in range(size):
            leaf = left[i] < 0
            lefts.append(offset + i if leaf else offset + left[i])
            rights.append(offset + i if leaf else offset + right[i])
        self.columns["feature"] += [f if left[i] >= 0 else 0 for i, f in enumerate(feature)]
        self.columns["threshold"] += threshold
        self.columns["left"] += lefts
        self.columns["right"] += rights
        self.columns["default_left"] += default_left
        self.columns["value"] += [v if left[i] < 0 else 0.0 for i, v in enumerate(value)]
        self.columns["mean"] += mean

    def build(
        self,
        *,
        rule: Rule,
        compare_dtype: type[np.floating[Any]],
        base: float,
        link: Literal["logit", "mean"],
        float32_sum: bool,
        input_float32: bool = False,
    ) -> FlatForest:
        c = self.columns
        return FlatForest(
            roots=np.asarray(self.roots, dtype=np.int64),
            feature=np.asarray(c["feature"], dtype=np.int64),
            threshold=np.asarray(c["threshold"], dtype=compare_dtype),
            left=np.asarray(c["left"], dtype=np.int64),
            right=np.asarray(c["right"], dtype=np.int64),
            default_left=np.asarray(c["default_left"], dtype=bool),
            value=np.asarray(c["value"], dtype=np.float64),
            mean=np.asarray(c["mean"], dtype=np.float64),
            rule=rule,
            compare_dtype=compare_dtype,
            base=base,
            link=link,
            float32_sum=float32_sum,
            input_float32=input_float32,
        )


def _means(
    left: list[int], right: list[int], value: list[float], weight: list[float]
) -> list[float]:
    """Cover-weighted mean output of every node (leaves: their value)."""
    mean = [0.0] * len(left)

    def visit(node: int) -> float:
        if left[node] < 0:
            mean[node] = value[node]
        else:
            wl, wr = weight[left[node]], weight[right[node]]
            total = weight[node] or wl + wr  # XGBoost divides by the node's own hessian sum
            ml, mr = visit(left[node]), visit(right[node])
            mean[node] = (ml * wl + mr * wr) / total if total > 0 else 0.5 * (ml + mr)
        return mean[node]

    visit(0)
    return mean


def from_xgboost(booster: Any) -> FlatForest | None:
    """Flatten a binary:logistic gbtree booster; None when the model is of another kind."""
    model = json.loads(booster.save_raw("json"))
    learner = model["learner"]
    boosted = learner["gradient_booster"]
    if learner["objective"]["name"] != "binary:logistic" or boosted.get("name") != "gbtree":
        return None
    trees = boosted["model"]["trees"]
    if any(any(t["split_type"]) for t in trees):
        return None  # categorical splits are not flattened
    base_score = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
    builder = _Builder()
    for tree in trees:
        left, right = tree["left_children"], tree["right_children"]
        conditions = tree["split_conditions"]
        builder.add(
            feature=tree["split_indices"],
            threshold=conditions,
            left=left,
            right=right,
            default_left=[bool(v) for v in tree["default_left"]],
            value=conditions,  # a leaf's split_condition holds its output
            mean=_means(left, right, conditions, tree["sum_hessian"]),
        )
    base = float(np.float32(np.log(base_score / (1 - base_score))))
    return builder.build(
        rule="lt", compare_dtype=np.float32, base=base, link="logit", float32_sum=True
    )


def _lightgbm_tree(structure: dict[str, Any]) -> dict[str, list[Any]]:
    """One LightGBM tree (nested dicts) as parallel per-node lists; ValueError if not flat-able."""
    columns: dict[str, list[Any]] = {
        k: [] for k in ("feature", "threshold", "left", "right", "default_left", "value")
    }
    weights: list[float] = []

    def visit(node: dict[str, Any]) -> int:
        index = len(columns["feature"])
        for key in columns:
            columns[key].append(0)
        weights.append(0.0)
        if "leaf_value" in node:
            columns["left"][index] = columns["right"][index] = -1
            columns["value"][index] = float(node["leaf_value"])
            columns["threshold"][index] = 0.0
            columns["default_left"][index] = True
            weights[index] = float(node.get("leaf_count", 1))
            return index
        if node.get("decision_type", "<=") != "<=":
            raise ValueError("categorical split")
        columns["feature"][index] = int(node["split_feature"])
        columns["threshold"][index] = float(node["threshold"])
        columns["default_left"][index] = bool(node.get("default_left", True))
        weights[index] = float(node.get("internal_count", 1))
        columns["left"][index] = visit(node["left_child"])
        columns["right"][index] = visit(node["right_child"])
        return index

    visit(structure)
    columns["mean"] = _means(columns["left"], columns["right"], columns["value"], weights)
    return columns


def from_lightgbm(booster: Any) -> FlatForest | None:
    """Flatten a binary LightGBM booster; None when it has splits the walk does not know."""
    dump = booster.dump_model()
    if dump.get("objective", "").split(" ")[0] != "binary" or dump.get("num_class", 1) != 1:
        return None
    builder = _Builder()
    for info in dump["tree_info"]:
        try:
            columns = _lightgbm_tree(info["tree_structure"])
        except ValueError:
            return None
        builder.add(**columns)
    return builder.build(
        rule="le", compare_dtype=np.float64, base=0.0, link="logit", float32_sum=False
    )


def from_sklearn_forest(forest: Any) -> FlatForest:
    builder = _Builder()
    for estimator in forest.estimators_:
        tree = estimator.tree_
        value = tree.value[:, 0, :]
        positive = (value[:, 1] / value.sum(axis=1)).tolist()
        left = tree.children_left.tolist()
        builder.add(
            feature=[max(f, 0) for f in tree.feature.tolist()],
            threshold=tree.threshold.tolist(),
            left=left,
            right=tree.children_right.tolist(),
            default_left=[True] * len(left),
            value=positive,
            mean=positive,  # sklearn stores each node's class fractions already
        )
    return builder.build(
        rule="le",
        compare_dtype=np.float64,
        base=0.0,
        link="mean",
        float32_sum=False,
        input_float32=True,
    )
