"""Shallow boosted trees evaluated as lookup tables: the same probabilities, several times faster.

A tree of depth d reads at most 2^d - 1 features. After encoding, every feature is either a
standardised number (cut into intervals by the thresholds the model uses on it) or a one-hot block
(whose state is the category code). So each tree's leaf is a function of a few small integer
states, and the sum of all trees that read the same features is one table indexed by those states.
Trees are grouped into tables of bounded size; a chunk is scored with one state per feature
(a `searchsorted` per numeric column, the category codes as they are) and one gather per table,
with no one-hot matrix at all.

Leaves are summed in float64 (XGBoost sums in float32), so probabilities agree with the booster's to
well below 1e-6; `BatchScorer` checks that on the first chunk of every run and falls back to the
booster when they do not. `build` returns None for anything it does not support (other objectives,
categorical splits, linear boosters, tables too large).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from churnops.features.encoder import FastEncoder

logger = logging.getLogger(__name__)

MAX_TABLE = 16_384  # entries per merged table (fits in L1/L2 with float64 values)
MAX_ENTRIES = 8_000_000  # all tables together (64 MB); beyond this the booster is used
TOLERANCE = 1e-6  # largest accepted difference from the booster's probabilities


@dataclass(frozen=True)
class _Tree:
    feature: np.ndarray  # encoded column per node, -1 for leaves
    threshold: np.ndarray  # float32; a row goes to `left` when value < threshold
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray  # leaf values (float64 of the float32 leaves)
    depth: int


@dataclass(frozen=True)
class _Table:
    features: tuple[int, ...]  # state features, ascending
    strides: tuple[int, ...]
    values: np.ndarray  # float64, flattened over the product of the features' states


def _parse_tree(node: dict[str, Any], names: dict[str, int]) -> _Tree | None:
    flat: dict[int, tuple[int, float, int, int, float]] = {}
    depth = 0
    stack = [(node, 0)]
    while stack:
        current, level = stack.pop()
        depth = max(depth, level)
        if "leaf" in current:
            flat[int(current["nodeid"])] = (-1, 0.0, -1, -1, float(np.float32(current["leaf"])))
            continue
        split = str(current["split"])
        if "split_condition" not in current or "categories" in current:
            return None  # categorical split: not a threshold on a number
        column = names.get(split)
        if column is None:
            return None
        flat[int(current["nodeid"])] = (
            column,
            float(current["split_condition"]),
            int(current["yes"]),
            int(current["no"]),
            0.0,
        )
        stack.extend((child, level + 1) for child in current["children"])
    size = max(flat) + 1
    rows = [flat.get(i, (-1, 0.0, -1, -1, 0.0)) for i in range(size)]
    return _Tree(
        feature=np.array([r[0] for r in rows], dtype=np.int64),
        threshold=np.array([r[1] for r in rows], dtype=np.float32),
        left=np.array([r[2] for r in rows], dtype=np.int64),
        right=np.array([r[3] for r in rows], dtype=np.int64),
        value=np.array([r[4] for r in rows], dtype=np.float64),
        depth=depth,
    )


def _base_margin(config: dict[str, Any]) -> float | None:
    learner = config["learner"]
    if learner["objective"]["name"] != "binary:logistic":
        return None
    if learner["gradient_booster"]["name"] != "gbtree":
        return None
    params = learner["learner_model_param"]
    if int(params.get("num_class", "0")) > 1 or int(params.get("num_target", "1")) != 1:
        return None
    base = float(str(params["base_score"]).strip("[]"))
    if not 0.0 < base < 1.0:
        return None
    return float(np.log(base / (1.0 - base)))


class TreeTables:
    """An XGBoost binary classifier on a FastEncoder's output, as tables over feature states."""

    def __init__(
        self,
        *,
        thresholds: tuple[np.ndarray, ...],
        n_blocks: int,
        tables: tuple[_Table, ...],
        base_margin: float,
    ) -> None:
        self.thresholds = thresholds  # per numeric column: sorted distinct float32 thresholds
        self.n_numeric = len(thresholds)
        self.n_blocks = n_blocks
        self.tables = tables
        self.base_margin = base_margin

    @property
    def n_entries(self) -> int:
        return sum(t.values.size for t in self.tables)

    @classmethod
    def build(
        cls,
        booster: Any,
        encoder: FastEncoder,
        *,
        max_table: int = MAX_TABLE,
        max_entries: int = MAX_ENTRIES,
    ) -> TreeTables | None:
        """Tables for `booster` (fitted on `encoder`'s columns), or None when not supported."""
        try:
            base = _base_margin(json.loads(booster.save_config()))
            if base is None:
                return None
            feature_names = booster.feature_names or [f"f{i}" for i in range(encoder.n_outputs)]
            if len(feature_names) != encoder.n_outputs:
                return None
            names = {name: i for i, name in enumerate(feature_names)}
            trees = [
                _parse_tree(json.loads(t), names) for t in booster.get_dump(dump_format="json")
            ]
        except (KeyError, ValueError, TypeError) as exc:
            logger.debug("tree tables unsupported: %s", exc)
            return None
        if not trees or any(t is None for t in trees):
            return None
        parsed = [t for t in trees if t is not None]
        return cls._from_trees(parsed, encoder, base, max_table=max_table, max_entries=max_entries)

    @classmethod
    def _from_trees(
        cls,
        trees: list[_Tree],
        encoder: FastEncoder,
        base: float,
        *,
        max_table: int,
        max_entries: int,
    ) -> TreeTables | None:
        n_numeric = len(encoder.numeric_names)
        # State feature of each encoded column: numeric column j -> j, one-hot block b -> n + b.
        state_of = np.empty(encoder.n_outputs, dtype=np.int64)
        state_of[:n_numeric] = np.arange(n_numeric)
        for b, block in enumerate(encoder.categorical):
            state_of[block.offset : block.offset + len(block.index)] = n_numeric + b
        cuts: list[set[float]] = [set() for _ in range(n_numeric)]
        groups: dict[tuple[int, ...], list[_Tree]] = {}
        for tree in trees:
            inner = tree.feature >= 0
            for column, threshold in zip(tree.feature[inner], tree.threshold[inner], strict=True):
                if column < n_numeric:
                    cuts[column].add(float(threshold))
            key = tuple(sorted({int(s) for s in state_of[tree.feature[inner]]}))
            groups.setdefault(key, []).append(tree)
        thresholds = tuple(np.array(sorted(c), dtype=np.float32) for c in cuts)
        n_states = [len(t) + 1 for t in thresholds]
        n_states += [len(block.index) + 1 for block in encoder.categorical]

        def size(features: tuple[int, ...] | set[int]) -> int:
            return int(np.prod([n_states[f] for f in features], dtype=np.int64))

        if sum(size(k) for k in groups) > max_entries:
            return None
        merged: list[tuple[set[int], list[tuple[int, ...]]]] = []
        for key in sorted(groups, key=lambda k: (-size(k), k)):
            for features, keys in merged:
                if size(features | set(key)) <= max_table:
                    features.update(key)
                    keys.append(key)
                    break
            else:
                merged.append((set(key), [key]))
        if sum(size(f) for f, _ in merged) > max_entries:
            return None
        tables: list[_Table] = []
        for features, keys in merged:
            ordered = tuple(sorted(features))
            shape = [n_states[f] for f in ordered]
            values = np.zeros(shape, dtype=np.float64)
            for key in keys:
                part = _group_values(groups[key], key, n_states, thresholds, encoder, state_of)
                values += part.reshape([n_states[f] if f in key else 1 for f in ordered])
            strides = np.cumprod([1, *shape[::-1]])[:-1][::-1]
            tables.append(_Table(ordered, tuple(int(s) for s in strides), values.reshape(-1)))
        return cls(
            thresholds=thresholds,
            n_blocks=len(encoder.categorical),
            tables=tuple(tables),
            base_margin=base,
        )

    def states(self, numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """(features x rows) int32 states: interval index per numeric value, code + 1 per block.

        `numeric` is (numeric columns x rows) float32, exactly the encoder's standardised values;
        `codes` is (blocks x rows), the offset of each row's category in its block, -1 if unknown.
        """
        n_rows = numeric.shape[1] if numeric.ndim == 2 else codes.shape[1]
        out = np.empty((self.n_numeric + self.n_blocks, n_rows), dtype=np.int32)
        for j, cut in enumerate(self.thresholds):
            out[j] = np.searchsorted(cut, numeric[j], side="right")
        if self.n_blocks:
            np.add(codes, 1, out=out[self.n_numeric :], casting="unsafe")
        return out

    def margin(self, states: np.ndarray) -> np.ndarray:
        """Raw score (log-odds) per row."""
        n_rows = states.shape[1]
        total = np.full(n_rows, self.base_margin, dtype=np.float64)
        # Buffers reused across tables: fresh large arrays cost page faults on every chunk.
        index = np.empty(n_rows, dtype=np.int32)
        scratch = np.empty(n_rows, dtype=np.int32)
        gathered = np.empty(n_rows, dtype=np.float64)
        for table in self.tables:
            features = table.features
            if not features:
                total += table.values[0]
                continue
            if len(features) == 1:
                position = states[features[0]]
            else:
                np.multiply(states[features[0]], table.strides[0], out=index)
                for feature, stride in zip(features[1:-1], table.strides[1:-1], strict=True):
                    np.multiply(states[feature], stride, out=scratch)
                    index += scratch
                index += states[features[-1]]  # the last stride is 1
                position = index
            # Indices are in range by construction; "clip" skips the checks and the buffering.
            np.take(table.values, position, out=gathered, mode="clip")
            total += gathered
        return total

    def proba(self, numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """P(positive) per row (float64) from the encoder's parts (see `states`)."""
        return _sigmoid(self.margin(self.states(numeric, codes)))


def _sigmoid(margin: np.ndarray) -> np.ndarray:
    np.negative(margin, out=margin)
    np.exp(margin, out=margin)
    margin += 1.0
    np.reciprocal(margin, out=margin)
    return margin


def _group_values(
    trees: list[_Tree],
    key: tuple[int, ...],
    n_states: list[int],
    thresholds: tuple[np.ndarray, ...],
    encoder: FastEncoder,
    state_of: np.ndarray,
) -> np.ndarray:
    """Sum of `trees` over every combination of the states of `key` (C order over `key`)."""
    shape = [n_states[f] for f in key]
    grid = np.indices(shape).reshape(len(key), -1) if key else np.zeros((0, 1), dtype=np.int64)
    n_combos = grid.shape[1]
    position = {f: i for i, f in enumerate(key)}
    n_numeric = len(thresholds)
    columns = sorted({int(c) for t in trees for c in t.feature[t.feature >= 0]})
    local = {c: i for i, c in enumerate(columns)}
    rows = np.zeros((n_combos, max(len(columns), 1)), dtype=np.float32)
    for column in columns:
        state = grid[position[int(state_of[column])]]
        if column < n_numeric:
            cut = thresholds[column]
            below = np.nextafter(cut[0], np.float32(-np.inf)) if len(cut) else np.float32(0)
            # A representative value of each interval: the threshold that opens it.
            rows[:, local[column]] = np.where(state > 0, cut[np.maximum(state - 1, 0)], below)
        else:
            block = encoder.categorical[int(state_of[column]) - n_numeric]
            rows[:, local[column]] = (state - 1 == column - block.offset).astype(np.float32)
    lookup = np.full(max(columns, default=0) + 1, 0, dtype=np.int64)
    for column, i in local.items():
        lookup[column] = i
    total = np.zeros(n_combos, dtype=np.float64)
    combos = np.arange(n_combos)
    for tree in trees:
        node = np.zeros(n_combos, dtype=np.int64)
        for _ in range(tree.depth):
            feature = tree.feature[node]
            inner = feature >= 0
            if not inner.any():
                break
            value = rows[combos, lookup[np.maximum(feature, 0)]]
            step = np.where(value < tree.threshold[node], tree.left[node], tree.right[node])
            node = np.where(inner, step, node)
        total += tree.value[node]
    return total
