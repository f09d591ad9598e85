"""What a window is compared against: the reference profile plus what the model adds to it.

Precomputes the quantile grids once, so summarising a million-row window does no per-chunk setup.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from churnops.data.profile import NumericProfile, ReferenceProfile
from churnops.data.schema import Schema


@dataclass(frozen=True)
class QuantileGrid:
    """Unique points of a reference quantile sketch with the reference CDF on each side of them.

    The sketch is read as a piecewise-linear quantile function, so between two grid points the
    reference CDF rises linearly and at a repeated quantile (a tie) it jumps.
    """

    points: np.ndarray  # u_0 < ... < u_{m-1}
    cdf_at: np.ndarray  # F_ref(u_j), right-continuous value
    cdf_before: np.ndarray  # F_ref(u_j-), left limit

    @classmethod
    def from_quantiles(cls, quantiles: list[float]) -> QuantileGrid:
        q = np.asarray(quantiles, dtype=float)
        q = q[~np.isnan(q)]
        if q.size == 0:
            q = np.array([0.0])
        points = np.unique(q)
        if q.size == 1:
            return cls(points=points, cdf_at=np.ones(1), cdf_before=np.zeros(1))
        step = 1.0 / (q.size - 1)
        first = np.searchsorted(q, points, side="left")
        last = np.searchsorted(q, points, side="right") - 1
        return cls(points=points, cdf_at=last * step, cdf_before=first * step)

    @property
    def size(self) -> int:
        return int(self.points.size)


@dataclass(frozen=True)
class MonitoringReference:
    """Reference profile, optional schema (training ranges), decision threshold and test metrics."""

    profile: ReferenceProfile
    schema: Schema | None = None
    threshold: float = 0.5
    training_metrics: dict[str, float] = field(default_factory=dict)

    @cached_property
    def fingerprint(self) -> str:
        """Short hash of the profile: summaries are only mergeable against the same reference."""
        text = self.profile.model_dump_json()
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @cached_property
    def grids(self) -> dict[str, QuantileGrid]:
        return {
            name: QuantileGrid.from_quantiles(p.quantiles)
            for name, p in self.profile.numeric.items()
        }

    @cached_property
    def score_grid(self) -> QuantileGrid | None:
        scores = self.profile.scores
        return QuantileGrid.from_quantiles(scores.quantiles) if scores is not None else None

    def training_range(self, name: str) -> tuple[float, float]:
        """Training min/max of a numeric feature: from the schema when given, else the profile."""
        numeric: NumericProfile = self.profile.numeric[name]
        low, high = numeric.min, numeric.max
        if self.schema is not None:
            try:
                column = self.schema.feature(name)
            except KeyError:
                return low, high
            low = column.min if column.min is not None else low
            high = column.max if column.max is not None else high
        return low, high

    @property
    def positive_label(self) -> str | None:
        return self.schema.positive_label if self.schema is not None else None

    @property
    def negative_label(self) -> str | None:
        return self.schema.negative_label if self.schema is not None else None
