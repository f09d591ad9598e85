"""Typed configuration: defaults < params.yaml < CHURNOPS_* environment variables.

Only entry points (CLI commands, create_app, flows) call `get_settings()`; everything below them
receives the typed sections it needs as arguments.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_origin

import yaml
from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from churnops.errors import ConfigError
from churnops.yamlload import safe_load

DEFAULT_PARAMS_FILE = "params.yaml"
ENV_PREFIX = "CHURNOPS_"
# CHURNOPS_* names read outside the settings model: the params file (load_params_file), the log
# format (logformat.py) and the app's API key (dashboard, cli app). CHURNOPS_TEST_* belongs to the
# test suite.
OTHER_ENV_NAMES = frozenset(
    {"CHURNOPS_CONFIG", "CHURNOPS_LOG_FORMAT", "CHURNOPS_API_KEY", "CHURNOPS_API_KEY_FILE"}
)
OTHER_ENV_PREFIXES = ("CHURNOPS_TEST_",)

logger = logging.getLogger(__name__)
CandidateName = Literal["logistic_regression", "random_forest", "xgboost", "lightgbm"]
# Cheapest first: the time budget left over by one candidate flows to the next.
ALL_CANDIDATES: tuple[CandidateName, ...] = (
    "logistic_regression",
    "xgboost",
    "lightgbm",
    "random_forest",
)


class DataSettings(BaseModel):
    """Which table to read and what its columns mean."""

    path: str | None = None  # None: the bundled demo dataset with its own column settings
    target: str | None = Field(None, min_length=1)
    positive_label: str | None = Field(None, min_length=1)  # None: inferred (0/1, yes/no...)
    id_column: str | None = None
    exclude: list[str] = Field(default_factory=list)
    max_null_rate: float = Field(0.5, ge=0.0, le=1.0)


class BusinessSettings(BaseModel):
    """Value of a retained customer and cost of an offer; all set means profit-based threshold."""

    value_retained: float | None = None
    offer_cost: float | None = None
    offer_success_rate: float | None = Field(None, ge=0.0, le=1.0)

    @property
    def complete(self) -> bool:
        return None not in (self.value_retained, self.offer_cost, self.offer_success_rate)


RISK_LEVELS = ("low", "medium", "high")  # in band order: below medium, medium..high, from high


class RiskBands(BaseModel):
    """Probability cut points: below `medium` is low, from `high` on is high."""

    medium: float = Field(0.3, gt=0.0, lt=1.0)
    high: float = Field(0.6, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> RiskBands:
        if self.medium >= self.high:
            raise ValueError(f"risk_bands.medium ({self.medium}) must be below high ({self.high})")
        return self


class TrainingSettings(BaseModel):
    seed: int = 42
    test_size: float = Field(0.2, gt=0.0, lt=0.5)
    cv_folds: int = Field(5, ge=2, le=20)
    budget_minutes: float = Field(2.0, gt=0.0)
    candidates: list[CandidateName] = Field(default_factory=lambda: list(ALL_CANDIDATES))
    n_jobs: int = 2
    leakage_feature_auc: float = 0.98
    leakage_model_auc: float = 0.99
    allow_leakage: bool = False


CheckName = Literal[
    "segment_regression", "fairness", "invariance", "direction", "robustness", "edge_cases"
]
ALL_CHECKS: tuple[CheckName, ...] = (
    "segment_regression",
    "fairness",
    "invariance",
    "direction",
    "robustness",
    "edge_cases",
)


class FairnessLimits(BaseModel):
    """Largest gap between groups of a sensitive column (Fairlearn's definitions)."""

    demographic_parity_difference: float = Field(0.1, gt=0.0, le=1.0)
    equalized_odds_difference: float = Field(0.1, gt=0.0, le=1.0)


class DirectionExpectation(BaseModel):
    """How churn risk may move along a column: `order` lists a category's values in order
    (None: a numeric column, ordered by value); `risk` is the only direction allowed."""

    column: str = Field(min_length=1)
    risk: Literal["increasing", "decreasing"]
    order: list[str | int | float] | None = None

    @model_validator(mode="after")
    def _order_has_two(self) -> DirectionExpectation:
        if self.order is not None and len(self.order) < 2:
            raise ValueError(f"direction of {self.column!r}: order needs at least 2 values")
        return self


class ValidationSettings(BaseModel):
    """Checks run on every trained model before the promotion gate (docs/validation.md)."""

    enabled: bool = True
    min_segment_size: int = Field(100, ge=1)  # smaller segments and groups are not judged
    min_class_rows: int = Field(10, ge=1)  # ROC-AUC needs this many churners and stayers
    numeric_bins: int = Field(4, ge=2, le=20)  # quantile bins of each numeric feature
    weakest: int = Field(5, ge=0)  # how many of the weakest segments to list
    segment_margin: float = Field(0.05, ge=0.0, le=1.0)  # ROC-AUC drop vs the champion
    sensitive_columns: list[str] = Field(default_factory=list)
    fairness: FairnessLimits = Field(default_factory=FairnessLimits)
    fairness_by_column: dict[str, FairnessLimits] = Field(default_factory=dict)
    invariant_columns: list[str] = Field(default_factory=list)  # the id column always is
    directions: list[DirectionExpectation] = Field(default_factory=list)
    direction_tolerance: float = Field(0.05, ge=0.0, le=1.0)  # mean-probability step allowed
    direction_grid: int = Field(10, ge=2, le=50)  # quantile points of a numeric column
    robustness_noise: float = Field(0.05, ge=0.0)  # Gaussian noise, in column standard deviations
    robustness_limit: float = Field(0.05, gt=0.0, le=1.0)  # mean |probability change| allowed
    blocking: list[CheckName] = Field(default_factory=lambda: list(ALL_CHECKS))
    allow: list[CheckName] = Field(default_factory=list)  # failures that may still promote

    def has_columns(self) -> bool:
        """True when any column-level setting is configured (else a table's own may apply)."""
        return bool(self.sensitive_columns or self.invariant_columns or self.directions)


class RegistrySettings(BaseModel):
    model_name: str = Field("churn-model", min_length=1)
    promotion_metric: str = "test_roc_auc"
    promotion_margin: float = 0.002
    experiment: str = "churnops"
    # Consumers (serve, predict) keep a verified local copy of each registered version they load
    # and read which version an alias names straight from the registry's database: a warm start
    # imports no MLflow. None: <home>/model-cache.
    model_cache: bool = True
    model_cache_dir: str | None = None


class ServingSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1)
    model_uri: str | None = None  # None: models:/<registry.model_name>@champion
    max_batch_size: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    reload_interval_seconds: float = 30.0
    rate_limit_per_minute: int = 100
    rate_limits: dict[str, int] = Field(default_factory=dict)  # route path -> requests/minute
    api_key_hashes: list[str] = Field(default_factory=list)
    keys_file: str | None = None  # None: <home>/api_keys.json
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    spool_path: str | None = None  # None: <home>/spool.jsonl
    spool_max_bytes: int = 256 * 1024 * 1024
    # When the spool cannot take more: "drop" (answer 200, count the loss) or "refuse" (answer
    # 503 + Retry-After). None: refuse in production, drop elsewhere.
    on_spool_full: Literal["drop", "refuse"] | None = None
    store_flush_interval_seconds: float = 0.5
    store_batch_size: int = 500
    metrics_dir: str | None = None  # shared by the workers of one server; set by `churnops serve`
    # /docs (Swagger UI, served locally), /openapi.json: open, behind the API key, or not served. None: `key` in
    # production, `public` otherwise.
    docs_access: Literal["public", "key", "off"] | None = None
    ready_timeout_seconds: float = Field(
        2.0, gt=0.0
    )  # /ready answers 503 if the store takes longer
    # Several workers and no Redis: each counts alone, so each gets limit // workers ("divide").
    # None: divide, except in production, which refuses to start unless this is set to "divide".
    rate_limits_without_redis: Literal["divide", "refuse"] | None = None
    app_url: str = "http://127.0.0.1:8501"  # where `GET /` points people for the app


class MonitoringSettings(BaseModel):
    psi_warning: float = 0.1
    psi_drift: float = 0.2
    js_drift: float = 0.1
    wasserstein_drift: float = 0.1
    js_needs_wasserstein: bool = False  # True: a numeric JS hit counts only with Wasserstein too
    dataset_drift_share: float = 0.3
    min_rows: int = Field(200, ge=1)  # fewer rows than this cannot tell drift from noise
    performance_drop: float = 0.05
    default_window: str = "7d"
    webhook_url: str | None = None
    reports_dir: str = "reports"


class RetrainingTriggers(BaseModel):
    """When the loop retrains: any one of these holding starts a retraining (guards permitting)."""

    max_champion_age_days: float | None = Field(30.0, gt=0)  # None: age never triggers
    drift_windows: int = Field(3, ge=1)  # K consecutive checks with dataset drift (hysteresis)
    prediction_drift: bool = True  # the score distribution drifted in the same K checks
    performance_drop: float = Field(0.05, gt=0)  # ROC-AUC below training (realised or estimated)
    new_labelled_share: float | None = Field(0.2, gt=0)  # labelled rows / training rows


class RetrainingGuards(BaseModel):
    """What stops a trigger from starting a retraining."""

    min_rows_per_window: int = Field(200, ge=1)  # smaller checks are not evidence
    cooldown_hours: float = Field(24.0, ge=0)
    max_retrains_per_30_days: int = Field(4, ge=1)


class PromotionGateSettings(BaseModel):
    """The production gate: challenger against champion on the same labelled rows."""

    metric: Literal["roc_auc", "pr_auc"] = "roc_auc"
    margin: float = Field(0.002, ge=0)
    bootstrap_samples: int = Field(400, ge=50)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)  # lower bound of the paired difference
    brier_tolerance: float = Field(0.0, ge=0)  # how much worse the Brier score may be
    min_labelled_rows: int = Field(200, ge=10)  # fewer production labels: held-out split only
    production_window_days: float = Field(14.0, gt=0)


class FlowSchedules(BaseModel):
    """Cron schedules of `churnops flows serve` (None: that deployment runs only when asked)."""

    monitoring: str | None = "0 * * * *"
    retraining: str | None = "30 3 * * *"
    training: str | None = None


class RetrainingSettings(BaseModel):
    """Continuous training: triggers, guards, training data, the production gate, rollback."""

    triggers: RetrainingTriggers = Field(default_factory=RetrainingTriggers)
    guards: RetrainingGuards = Field(default_factory=RetrainingGuards)
    gate: PromotionGateSettings = Field(default_factory=PromotionGateSettings)
    data_window_days: float = Field(90.0, gt=0)  # labelled production rows added to the table
    require_approval: bool = False  # True: a passing challenger is held for a person
    rollback_watch_days: float = Field(7.0, ge=0)
    rollback_margin: float = Field(0.03, gt=0)  # ROC-AUC below the previous champion's
    # How a promotion reaches traffic: `direct` moves the champion alias at once; `staged` sends
    # the challenger through shadow -> canary -> champion (the `deployment` section's steps).
    rollout: Literal["direct", "staged"] = "direct"
    schedules: FlowSchedules = Field(default_factory=FlowSchedules)


class DeploymentSettings(BaseModel):
    """Defaults of a new deployment policy (`churnops deploy ...`); each policy keeps its own."""

    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0])
    sample_rate: float = Field(1.0, gt=0.0, le=1.0)  # shadow: share of requests scored twice
    timeout_ms: float = Field(100.0, gt=0.0)  # shadow: later challenger scores are discarded
    poll_interval_seconds: float = Field(0.5, gt=0.0)  # how often a worker reads the policy
    evaluate_interval_seconds: float = Field(10.0, ge=0.0)  # 0: only `churnops deploy evaluate`
    auto: bool = True  # step forward and roll back on the evidence without being told
    min_requests: int = Field(200, ge=1)
    min_labels: int = Field(0, ge=0)
    min_step_seconds: float = Field(0.0, ge=0.0)
    max_error_rate: float = Field(0.01, ge=0.0, le=1.0)
    fault_limit: int = Field(3, ge=1)
    constant_after: int = Field(50, ge=2)
    max_latency_ratio: float = Field(3.0, gt=0.0)
    min_agreement: float = Field(0.8, ge=0.0, le=1.0)
    max_psi: float = Field(0.25, gt=0.0)
    max_quality_drop: float = Field(0.02, ge=0.0)
    bootstrap_samples: int = Field(200, ge=10)


class RecommendationSettings(BaseModel):
    """Texts the app suggests: one list per risk level, and per feature named in the reasons."""

    by_risk_level: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "low": ["No action needed: keep the usual service and check again later."],
            "medium": [
                "Check in with the customer and ask how the service could be better.",
                "Offer a small, low-cost loyalty benefit.",
            ],
            "high": [
                "Contact the customer soon with a retention offer.",
                "Hand the account to the retention team for a personal follow-up.",
            ],
        }
    )
    by_feature: dict[str, str] = Field(default_factory=dict)  # feature -> what to do about it
    # Used for a reason with no `by_feature` text; {feature} and {value} are filled in.
    reason_default: str = "Look at {feature} (now {value}): it adds the most to this risk."
    max_reasons: int = Field(3, ge=0)


class AppSettings(BaseModel):
    """The Streamlit app: where it listens, which API it scores through, its limits and texts."""

    host: str = "127.0.0.1"
    port: int = Field(8501, ge=1, le=65535)
    api_url: str = "http://127.0.0.1:8000"
    api_key: str | None = None  # CHURNOPS_API_KEY wins over this
    timeout_seconds: float = Field(10.0, gt=0)
    max_upload_mb: int = Field(50, ge=1)
    batch_chunk_rows: int = Field(1000, ge=1)
    recommendations: RecommendationSettings = Field(default_factory=RecommendationSettings)


class Settings(BaseSettings):
    """Everything churnops can be told. Nested env vars use `__`: CHURNOPS_DATA__TARGET=churn."""

    model_config = SettingsConfigDict(
        env_prefix="CHURNOPS_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    env: Literal["development", "production", "test"] = "development"
    home: str = ".churnops"
    tracking_uri: str | None = None  # None: MLFLOW_TRACKING_URI or sqlite under `home`
    database_url: str | None = None  # None: sqlite under `home`
    redis_url: str | None = None
    data: DataSettings = Field(default_factory=DataSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    business: BusinessSettings = Field(default_factory=BusinessSettings)
    risk_bands: RiskBands = Field(default_factory=RiskBands)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    retraining: RetrainingSettings = Field(default_factory=RetrainingSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings)
    app: AppSettings = Field(default_factory=AppSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the YAML file (passed as init kwargs) so deployments override params.yaml.
        return env_settings, init_settings

    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        from_env = os.environ.get("MLFLOW_TRACKING_URI")
        if from_env:
            return from_env
        return f"sqlite:///{Path(self.home).resolve() / 'mlflow.db'}"

    def artifact_location(self) -> str | None:
        """Artifact root for new experiments when tracking to a local SQLite store."""
        if self.resolved_tracking_uri().startswith("sqlite:"):
            return (Path(self.home).resolve() / "mlruns").as_uri()
        return None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.home).resolve() / 'predictions.db'}"

    def resolved_keys_file(self) -> str:
        return self.serving.keys_file or str(Path(self.home).resolve() / "api_keys.json")

    def resolved_spool_path(self) -> str:
        """Beside the store's default file, so a restart from any folder replays the same spool."""
        return self.serving.spool_path or str(Path(self.home).resolve() / "spool.jsonl")

    def resolved_on_spool_full(self) -> Literal["drop", "refuse"]:
        if self.serving.on_spool_full is not None:
            return self.serving.on_spool_full
        return "refuse" if self.env == "production" else "drop"

    def resolved_model_cache_dir(self) -> Path | None:
        if not self.registry.model_cache:
            return None
        return Path(self.registry.model_cache_dir or Path(self.home).resolve() / "model-cache")

    def champion_uri(self) -> str:
        return self.serving.model_uri or f"models:/{self.registry.model_name}@champion"


def load_params_file(path: str | Path | None) -> dict[str, Any]:
    """Read params.yaml; a missing default file is fine, a missing named file is an error."""
    if path is None:
        path = Path(os.environ.get("CHURNOPS_CONFIG", DEFAULT_PARAMS_FILE))
        if not Path(path).exists():
            return {}
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        loaded = safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    return loaded


def get_settings(
    config_path: str | Path | None = None,
    *,
    flags: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings from params.yaml, the environment and explicit overrides (highest).

    `overrides` are dotted names (`training.budget_minutes`) -> value, None meaning "not given";
    `flags` names the CLI option behind each, for the error message.
    """
    from pydantic import ValidationError

    warn_unknown_env()
    params = load_params_file(config_path)
    try:
        settings = Settings(**params)
    except ValidationError as exc:
        raise _config_error(exc, {}) from None
    return apply_overrides(settings, overrides, flags=flags)


def _env_names(model: type[BaseModel], prefix: str) -> tuple[set[str], set[str]]:
    """Exact names and open prefixes (dict fields take any key below them) for `model`."""
    names: set[str] = set()
    prefixes: set[str] = set()
    for field_name, field in model.model_fields.items():
        name = prefix + field_name.upper()
        names.add(name)  # a nested section can also be given whole, as JSON
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            inner_names, inner_prefixes = _env_names(annotation, name + "__")
            names |= inner_names
            prefixes |= inner_prefixes
        elif get_origin(annotation) is dict:
            prefixes.add(name + "__")
    return names, prefixes


def unknown_env_names(names: Iterable[str]) -> dict[str, str | None]:
    """Each CHURNOPS_* name the settings would silently ignore -> the closest known name, if any.

    Compared upper-cased, as pydantic-settings matches environment names case-insensitively."""
    known, prefixes = _env_names(Settings, ENV_PREFIX)
    known |= OTHER_ENV_NAMES
    unknown: dict[str, str | None] = {}
    for name in names:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known:
            continue
        if upper.startswith((*prefixes, *OTHER_ENV_PREFIXES)):
            continue
        # Compare without the shared prefix, or every short name looks close to every other.
        tails = {known_name.removeprefix(ENV_PREFIX): known_name for known_name in known}
        close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), tails, n=1, cutoff=0.8)
        unknown[name] = tails[close[0]] if close else None
    return unknown


def warn_unknown_env(environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Log one warning naming every unknown CHURNOPS_* variable (a typo is otherwise ignored)."""
    unknown = unknown_env_names(os.environ if environ is None else environ)
    if unknown:
        described = [
            f"{name} (did you mean {guess}?)" if guess else name
            for name, guess in sorted(unknown.items())
        ]
        logger.warning("ignoring unknown environment variables: %s", ", ".join(described))
    return unknown


def apply_overrides(
    settings: Settings, overrides: Mapping[str, Any], *, flags: Mapping[str, str] | None = None
) -> Settings:
    """A copy of `settings` with explicit values (CLI flags) on top, validated by the same model
    as the file and the environment: a flag can never hold what CHURNOPS_* would be refused."""
    from pydantic import ValidationError

    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    updated = settings.model_copy(deep=True)
    validator = Settings.__pydantic_validator__
    try:
        for name, value in nested.items():
            current = getattr(updated, name)
            if isinstance(current, BaseModel) and isinstance(value, dict):
                value = _merged(current.model_dump(), value)
            # Env is not read again here: these values beat it, as flags should.
            validator.validate_assignment(updated, name, value)
    except ValidationError as exc:
        raise _config_error(exc, flags or {}) from None
    return updated


def _merged(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _prefixes(loc: tuple[Any, ...]) -> list[str]:
    """`a.b.0` -> `a.b.0`, `a.b`, `a`: the longest first."""
    parts = [str(p) for p in loc]
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _config_error(exc: Any, flags: Mapping[str, str]) -> ConfigError:
    """The first problem as one line, named by its CLI flag when it came from one."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    # A list item's error is located below the list (`validation.allow.0`): name the list's flag.
    flag = next(
        (flags[k] for k in _prefixes(first["loc"]) if k in flags),
        None,
    )
    if flag is None:
        return ConfigError(f"invalid setting {where}: {first['msg']}")
    return ConfigError(f"invalid {flag} {first['input']!r}: {first['msg']} ({where})")
