"""When a rollout steps forward and when it rolls back: the limits stored with each policy."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from churnops.settings import DeploymentSettings


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """Limits a deployment is judged by (the policy row keeps them, so every worker agrees)."""

    min_requests: int = 200  # per variant, before a step forward
    min_labels: int = 0  # per variant, before a step forward (0: labels not required)
    min_step_seconds: float = 0.0  # time spent on a step before the next one
    max_error_rate: float = 0.01  # challenger errors and timeouts per request
    fault_limit: int = 3  # challenger errors/timeouts a worker tolerates before rolling back
    constant_after: int = 50  # this many identical challenger scores in a row: degenerate
    max_latency_ratio: float = 3.0  # challenger p99 over champion p99
    min_agreement: float = 0.8  # share of shadowed requests with the same decision
    max_psi: float = 0.25  # between the two score distributions
    max_quality_drop: float = 0.02  # ROC-AUC the challenger may lose (upper CI bound must clear)

    @classmethod
    def from_settings(cls, settings: DeploymentSettings) -> Thresholds:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in settings.model_dump().items() if k in names})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Thresholds:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
