"""The lineage manifest of a model version: what it was built from, and how to build it again.

One JSON document per training run (`lineage/manifest.json` on the run; its sha256 and headline
facts as `churnops.lineage.*` tags on the registered version): each data source with its
fingerprint and row count (and, for retraining, the production window it took), the resolved
settings with secrets hidden, the package version and git commit (dirty or not), library
versions, seeds, trial counts and platform. `churnops verify` rebuilds a version from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops import __version__
from churnops.datasets import demo_path
from churnops.errors import RegistryError
from churnops.redact import redact_settings, redact_url
from churnops.settings import Settings

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

FORMAT_VERSION = 1
MANIFEST_ARTIFACT = "lineage/manifest.json"
PRODUCTION_ROWS_ARTIFACT = "lineage/production_rows.parquet"
TAG_PREFIX = "churnops.lineage."
DIGEST_TAG = TAG_PREFIX + "sha256"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
# Everything whose version can move a model's numbers (the classifier libraries, their inputs).
LIBRARIES = (
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "scikit-learn",
    "xgboost-cpu",
    "xgboost",
    "lightgbm",
    "optuna",
    "mlflow",
    "numba",
    "joblib",
)
TABLE, PRODUCTION = "table", "production"


@dataclass(frozen=True)
class ProductionRows:
    """Production rows a retraining run added to the table (what the retraining loop passes).

    The training frame is the table's rows followed by these. `artifact` names the run artifact
    the rows were kept in, when they were: without it `churnops verify` cannot rebuild the run.
    """

    fingerprint: str
    rows: int
    window_start: str
    window_end: str
    share: float  # of the training frame's rows
    source: str = "prediction store"
    artifact: str | None = None


@dataclass(frozen=True)
class DataSource:
    """One input of a training run."""

    role: str  # "table" or "production"
    uri: str  # file path or URL (password hidden); "prediction store" for production rows
    rows: int
    fingerprint: str | None  # the row fingerprint (data.fingerprint), None when not its own
    bundled: str | None = None  # file name inside churnops/datasets for the bundled table
    window_start: str | None = None
    window_end: str | None = None
    share: float | None = None
    artifact: str | None = None


@dataclass(frozen=True)
class TrialRecord:
    """How far a candidate's tuning went: `truncated` runs stopped by the time budget."""

    n_trials: int
    max_trials: int
    truncated: bool


@dataclass(frozen=True)
class LineageManifest:
    created_at: str
    data_fingerprint: str  # of the whole training frame
    data_rows: int
    sources: list[DataSource]
    settings: dict[str, Any]
    code: dict[str, Any]
    libraries: dict[str, str]
    seeds: dict[str, int]
    platform: dict[str, Any]
    tuning: dict[str, TrialRecord] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    @property
    def repeatable(self) -> bool:
        """False when the time budget cut tuning short: a rerun may tune further."""
        return not any(t.truncated for t in self.tuning.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def digest(self) -> str:
        """sha256 of the canonical JSON: recorded on the version, so an edited copy is noticed."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LineageManifest:
        values = dict(raw)
        values["sources"] = [DataSource(**s) for s in raw.get("sources", [])]
        values["tuning"] = {k: TrialRecord(**v) for k, v in raw.get("tuning", {}).items()}
        return cls(**values)

    def table_source(self) -> DataSource | None:
        return next((s for s in self.sources if s.role == TABLE), None)

    def production_source(self) -> DataSource | None:
        return next((s for s in self.sources if s.role == PRODUCTION), None)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def code_state() -> dict[str, Any]:
    """churnops' version, and the commit of the checkout it runs from (an editable install);
    `git_dirty` is True when tracked files differ from that commit (untracked files do not count).
    """
    commit = (_git("rev-parse", "HEAD") or "").strip()
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "package": "churnops",
        "package_version": __version__,
        "git_commit": commit or "unknown",
        "git_dirty": None if status is None else bool(status.strip()),
    }


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = package_version(name)
        except PackageNotFoundError:
            continue
    return found


def platform_facts(n_jobs: int) -> dict[str, Any]:
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "n_jobs": n_jobs,
    }


def _bundled_name(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return demo_path().name if Path(path).resolve() == demo_path().resolve() else None
    except OSError:
        return None


def data_sources(
    *, path: str | None, rows: int, data_fingerprint: str, production: ProductionRows | None
) -> list[DataSource]:
    """The table (its own fingerprint when it is the whole frame) and any production rows."""
    if path and "://" in path:
        uri = redact_url(path)
    elif path and Path(path).exists():
        uri = str(Path(path).resolve())  # verify may run from another folder
    else:
        uri = path or "table"
    if production is None:
        return [
            DataSource(
                TABLE, uri, rows=rows, fingerprint=data_fingerprint, bundled=_bundled_name(path)
            )
        ]
    return [
        DataSource(
            TABLE, uri, rows=rows - production.rows, fingerprint=None, bundled=_bundled_name(path)
        ),
        DataSource(
            PRODUCTION,
            production.source,
            rows=production.rows,
            fingerprint=production.fingerprint,
            window_start=production.window_start,
            window_end=production.window_end,
            share=production.share,
            artifact=production.artifact,
        ),
    ]


def build_manifest(
    frame: pd.DataFrame,
    *,
    settings: Settings,
    data_fingerprint: str,
    production: ProductionRows | None = None,
    tuning: dict[str, TrialRecord] | None = None,
) -> LineageManifest:
    """Everything a training run on `frame` under `settings` depends on."""
    seed = settings.training.seed
    return LineageManifest(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        data_fingerprint=data_fingerprint,
        data_rows=len(frame),
        sources=data_sources(
            path=settings.data.path,
            rows=len(frame),
            data_fingerprint=data_fingerprint,
            production=production,
        ),
        settings=redact_settings(settings.model_dump(mode="json")),
        code=code_state(),
        libraries=library_versions(),
        # One seed feeds every random choice; named per use so a reader sees what it covers.
        seeds={"split": seed, "cv_folds": seed, "tpe_sampler": seed, "classifiers": seed},
        platform=platform_facts(settings.training.n_jobs),
        tuning=dict(tuning or {}),
    )


def version_tags(manifest: LineageManifest, *, run_id: str) -> dict[str, str]:
    """The facts a registry listing shows without opening the manifest, and its digest."""
    code = manifest.code
    sources = "; ".join(
        f"{s.role}:{s.bundled or s.uri} ({s.rows} rows"
        + (f", {s.window_start}..{s.window_end}" if s.window_start else "")
        + ")"
        for s in manifest.sources
    )
    return {
        TAG_PREFIX + "manifest": f"runs:/{run_id}/{MANIFEST_ARTIFACT}",
        DIGEST_TAG: manifest.digest(),
        TAG_PREFIX + "git_commit": str(code["git_commit"]),
        TAG_PREFIX + "git_dirty": str(code["git_dirty"]).lower(),
        TAG_PREFIX + "package_version": str(code["package_version"]),
        TAG_PREFIX + "sources": sources[:4900],  # MLflow caps a tag value at 5,000 characters
        TAG_PREFIX + "repeatable": str(manifest.repeatable).lower(),
    }


def read_manifest(client: MlflowClient, *, name: str, version: str) -> LineageManifest:
    """The manifest of a registered version, checked against the digest on the version.

    `RegistryError` when the version is unknown, has no manifest (trained before lineage was
    recorded) or its manifest was changed after training.
    """
    from mlflow.exceptions import MlflowException

    from churnops.modeling.registry_history import run_artifact

    try:
        found = client.get_model_version(name, version)
    except MlflowException as exc:
        raise RegistryError(f"model {name!r} has no version {version}") from exc
    if not found.run_id:
        raise RegistryError(f"{name} v{version} has no training run to read a manifest from")
    raw = run_artifact(client, found.run_id, MANIFEST_ARTIFACT)
    if raw is None:
        raise RegistryError(
            f"{name} v{version} has no lineage manifest (trained before churnops recorded one)"
        )
    try:
        manifest = LineageManifest.from_dict(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise RegistryError(
            f"the lineage manifest of {name} v{version} is unreadable: {exc}"
        ) from exc
    recorded = dict(found.tags).get(DIGEST_TAG)
    if recorded is not None and recorded != manifest.digest():
        raise RegistryError(
            f"the lineage manifest of {name} v{version} was changed after training "
            f"(sha256 {manifest.digest()[:12]}, recorded {recorded[:12]})"
        )
    return manifest
