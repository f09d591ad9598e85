"""How every consumer loads a churnops model: `load_scorer` (and `resolve_identity` for runs).

The same files `mlflow.pyfunc.load_model` reads (the MLmodel file, the requirements, the bundle
artifact), without what our consumers do not need: its environment-wide requirements check
(~1.2 s; `requirements.mismatches` checks the model's own pins in milliseconds), the model's copy
of churnops put first on `sys.path`, and unpickling the python model object. Only a model that
says it is ours (the pyfunc flavor of a `ChurnModel`, churnops metadata, a bundle artifact that
unpickles to a `ModelBundle`) is accepted. Third parties keep `mlflow.pyfunc.load_model`.

Given a `ModelSource` with a cache folder, a registered version is read from the local cache
(`model_cache`) after asking the registry's database which version the URI names now
(`registry_lookup`): a warm start imports no MLflow at all (~1 s of CPU and ~100 MB per process).
MLflow is imported only to download a version not cached yet, or when the registry is one the
lookup cannot read.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import pickle
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.errors import ModelNotFoundError
from churnops.modeling.model_cache import ModelCache
from churnops.modeling.registry import ModelIdentity, model_identity
from churnops.modeling.registry_lookup import local_artifacts, lookup_version
from churnops.modeling.requirements import mismatches
from churnops.yamlload import safe_load

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from churnops.modeling.scorer import ModelBundle, Scorer

BUNDLE_ARTIFACT = "bundle"
# MLflow's loaders of our model: from code (`modeling/model_code.py`, logged today) and of a
# pickled PythonModel (models logged before).
LOADER_MODULES = ("mlflow.pyfunc.loaders.code_model", "mlflow.pyfunc.model")
MLMODEL = "MLmodel"
REQUIREMENTS = "requirements.txt"
SERVING_FILE = "scorer.pickle"  # the detached Scorer (cache entries only)
# The modules whose classes the detached scorer pickles (their source salts the cache key).
PICKLED_MODULES = (
    "modeling/scorer.py",
    "modeling/predictors.py",
    "modeling/forest.py",
    "modeling/treewalk.py",  # what a pickled FlatForest.walk_depth means
    "modeling/calibration.py",
    "features/encoder.py",
    "data/schema.py",
    "data/profile.py",
    "settings.py",
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSource:
    """Where models come from: the registry, an optional local cache, and (lazily) MLflow.

    `client` builds the MLflow client (and sets MLflow's URIs) only when MLflow is needed; the
    entry point passes `lambda: configure_tracking(settings, ...)`.
    """

    registry_uri: str
    cache_dir: Path | None = None
    client: Callable[[], MlflowClient] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ModelFiles:
    """What the MLmodel file says about a model (the parts the loader reads)."""

    flavors: dict[str, Any]
    metadata: dict[str, Any]


def load_scorer(model_uri: str, *, source: ModelSource | None = None) -> tuple[Scorer, ModelFiles]:
    """Load a churnops model's Scorer: from the cache when `source` has one and it holds the
    version `model_uri` names now, otherwise downloaded through MLflow (and then cached)."""
    if source is not None and source.cache_dir is not None:
        cached = _from_cache(model_uri, source, source.cache_dir)
        if cached is not None:
            return cached
    return _load_local(_download(model_uri, None, source), model_uri)


def resolve_identity(model_uri: str, source: ModelSource) -> ModelIdentity:
    """Name and version `model_uri` names now (the registry's database, else MLflow)."""
    record = lookup_version(source.registry_uri, model_uri)
    if record is not None:
        return ModelIdentity(record.name, record.version, model_uri)
    make_client = source.client if _uses_tracking(model_uri) else None
    return model_identity(model_uri, make_client() if make_client is not None else None)


def _uses_tracking(model_uri: str) -> bool:
    """Whether loading `model_uri` needs MLflow's tracking/registry store. A local path or a
    plain artifact URI does not: opening the store would create (and, for SQLite, migrate) a
    tracking database that N workers starting together would race to migrate."""
    return model_uri.startswith(("models:/", "runs:/"))


def _from_cache(
    model_uri: str, source: ModelSource, cache_dir: Path
) -> tuple[Scorer, ModelFiles] | None:
    record = lookup_version(source.registry_uri, model_uri)
    if record is None:
        return None
    cache = ModelCache(cache_dir, salt=code_salt())
    entry = cache.get(record, source.registry_uri)
    if entry is not None:
        return _load_local(entry, model_uri, detached=True)
    with tempfile.TemporaryDirectory(prefix="churnops-model-") as scratch:
        stored = local_artifacts(source.registry_uri, record)
        if stored is not None:  # on this machine: copied, no MLflow needed
            local = Path(shutil.copytree(stored, Path(scratch) / "model"))
        else:
            local = _download(record.uri, Path(scratch), source)
        scorer, meta = _load_local(local, model_uri)  # only a model that loads is cached
        files = [MLMODEL, _bundle_path(meta)]
        if (local / REQUIREMENTS).exists():
            files.append(REQUIREMENTS)
        if scorer.detachable:
            _save_detached(scorer, local / SERVING_FILE)
            files.append(SERVING_FILE)
        try:
            cache.put(record, source.registry_uri, local, files)
        except OSError as exc:  # a read-only home: serve anyway, uncached
            logger.warning("model %s not cached in %s: %s", record.uri, cache_dir, exc)
        return scorer, meta


def _save_detached(scorer: Scorer, path: Path) -> None:
    """The scorer without library objects, checked to score the bundle's example identically."""
    detached = pickle.loads(pickle.dumps(scorer.detached(), protocol=pickle.HIGHEST_PROTOCOL))
    example = scorer.bundle.input_example
    if example and detached.score_rows(example) != scorer.score_rows(example):
        raise ModelNotFoundError("the detached scorer disagrees with the bundle")  # never cached
    path.write_bytes(pickle.dumps(scorer.detached(), protocol=pickle.HIGHEST_PROTOCOL))


@functools.cache
def code_salt() -> str:
    """A digest of the code whose objects the detached scorer pickles: other code, other entry."""
    digest = hashlib.sha256(sys.version.encode())
    package = Path(__file__).resolve().parents[1]
    for relative in PICKLED_MODULES:
        digest.update((package / relative).read_bytes())
    return digest.hexdigest()


def _download(model_uri: str, destination: Path | None, source: ModelSource | None) -> Path:
    try:
        import mlflow.artifacts

        tracked = source is not None and _uses_tracking(model_uri)
        if tracked and source is not None and source.client is not None:
            source.client()  # sets MLflow's tracking and registry URIs as configured
        registry = source.registry_uri if tracked and source is not None else None
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=model_uri,
                dst_path=None if destination is None else str(destination),
                tracking_uri=registry,
                registry_uri=registry,
            )
        )
    except Exception as exc:
        raise ModelNotFoundError(f"cannot load model {model_uri!r}: {exc}") from exc


def _read_mlmodel(local: Path, model_uri: str) -> ModelFiles:
    try:
        data = safe_load((local / MLMODEL).read_text())
    except Exception as exc:
        raise ModelNotFoundError(f"cannot load model {model_uri!r}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"{model_uri!r} is not a churnops model")
    return ModelFiles(flavors=data.get("flavors") or {}, metadata=data.get("metadata") or {})


def _bundle_path(meta: ModelFiles) -> str:
    flavor = meta.flavors.get("python_function") or {}
    return str(((flavor.get("artifacts") or {}).get(BUNDLE_ARTIFACT) or {}).get("path") or "")


def _load_local(
    local: Path, model_uri: str, *, detached: bool = False
) -> tuple[Scorer, ModelFiles]:
    """The Scorer of a model folder; `detached`: from its saved detached scorer when it has one
    (a verified cache entry), the bundle then read only if a library object is needed."""
    from churnops.modeling.scorer import Scorer

    meta = _read_mlmodel(local, model_uri)
    flavor = meta.flavors.get("python_function") or {}
    bundle_path = _bundle_path(meta)
    if flavor.get("loader_module") not in LOADER_MODULES or "churnops" not in meta.metadata:
        raise ModelNotFoundError(f"{model_uri!r} is not a churnops model")
    if not bundle_path:
        raise ModelNotFoundError(f"{model_uri!r} is not a churnops model")
    _warn_mismatches(model_uri, local, str(flavor.get("python_version", "")))
    if detached and (local / SERVING_FILE).is_file():
        scorer = pickle.loads((local / SERVING_FILE).read_bytes())
        if not isinstance(scorer, Scorer):
            raise ModelNotFoundError(f"{model_uri!r}: the cached scorer is not a Scorer")
        scorer.bind(lambda: _read_bundle(local / bundle_path, model_uri))
        return scorer, meta
    return Scorer(_read_bundle(local / bundle_path, model_uri)), meta


def _read_bundle(path: Path, model_uri: str) -> ModelBundle:
    import joblib

    from churnops.modeling.scorer import ModelBundle

    try:
        bundle = joblib.load(path)
    except Exception as exc:
        raise ModelNotFoundError(f"cannot load model {model_uri!r}: {exc}") from exc
    if not isinstance(bundle, ModelBundle):
        raise ModelNotFoundError(f"{model_uri!r} is not a churnops model")
    return bundle


def _warn_mismatches(model_uri: str, local: Path, python_version: str) -> None:
    """Say (once per load, as MLflow would) where this environment differs from the model's."""
    requirements_file = local / REQUIREMENTS
    lines = []
    if requirements_file.exists():
        lines = [
            line.strip()
            for line in requirements_file.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "-"))
        ]
    problems = mismatches(lines)
    running = ".".join(map(str, sys.version_info[:2]))
    if python_version and not python_version.startswith(running + "."):
        problems.append(f"python=={python_version} (running {running})")
    if problems:
        logger.warning(
            "model %s was logged in another environment: %s", model_uri, "; ".join(problems)
        )
