"""The pip requirements logged with a churnops model, and a cheap check of them at load time.

The logged names must install everywhere: `xgboost` (not `xgboost-cpu`, which has no macOS wheel,
though it is what we install on Linux) and only the classifier library the model uses, so an
environment rebuilt from the model (`mlflow models serve`, `generate-dockerfile`) never needs
LightGBM's system libgomp for an XGBoost model.

`mlflow.pyfunc.load_model` checks requirements through `importlib.metadata.packages_distributions`
over the whole environment (~1.2 s); `mismatches` asks only for the few packages we pin (ms).
"""

from __future__ import annotations

import re
from importlib.metadata import Distribution, PackageNotFoundError, distribution

COMMON = (
    "mlflow",
    "scikit-learn",
    "pandas",
    "numpy",
    "numba",  # the compiled tree walk (modeling/treewalk.py)
    "scipy",
    "pydantic",
    "pydantic-settings",
    "pyyaml",
    "joblib",
)
# Classifier library (the top-level module of the fitted classifier's class) -> requirement name.
CLASSIFIER_LIBRARIES = {"xgboost": "xgboost", "lightgbm": "lightgbm"}
# Distributions that provide the same importable package under another name.
ALTERNATIVES = {"xgboost": ("xgboost", "xgboost-cpu")}
# `name==version` and nothing else (no extras, markers, wildcards or other operators).
_EXACT_PIN = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9._+!-]+)")


def installed_version(name: str) -> str | None:
    """Version of the installed distribution providing `name` (or its alternative), else None."""
    for candidate in ALTERNATIVES.get(name, (name,)):
        try:
            return _version_of(distribution(candidate))
        except PackageNotFoundError:
            continue
    return None


def _version_of(found: Distribution) -> str | None:
    """`found.version`, read from the metadata's header lines only.

    `Distribution.version` parses the whole METADATA file with the email parser, long description
    included (~1.7 ms a package, 18 ms of a model load's check); the Version header comes first.
    Anything unusual (no such header in the header block, a folded value) is left to it.
    """
    text = found.read_text("METADATA") or found.read_text("PKG-INFO")
    lines = (text or "").splitlines()
    for index, line in enumerate(lines):
        if not line.strip():  # the end of the headers
            break
        key, colon, value = line.partition(":")
        if colon and key.lower() == "version":  # as the email parser reads a header line
            value = value.lstrip(" \t")
            folded = index + 1 < len(lines) and lines[index + 1][:1] in (" ", "\t")
            if folded or not value:
                break
            return value
    return found.version  # None too, when METADATA has no Version at all


def requirement_names(classifier: object) -> list[str]:
    """What a model with this fitted classifier needs: the common stack plus its own library."""
    library = type(classifier).__module__.split(".")[0]
    extra = CLASSIFIER_LIBRARIES.get(library)
    return [*COMMON[:2], *([extra] if extra else []), *COMMON[2:]]


def pinned_requirements(classifier: object) -> list[str]:
    """`name==installed version` for each requirement (unpinned if not installed)."""
    pinned = []
    for name in requirement_names(classifier):
        found = installed_version(name)
        pinned.append(f"{name}=={found}" if found else name)
    return pinned


def _exact_pin_met(line: str) -> bool:
    """Whether `line` is a plain `name==version` pin and exactly that version is installed: met
    without parsing it (what the models we log hold, when loaded where they were trained)."""
    found = _EXACT_PIN.fullmatch(line)
    return found is not None and installed_version(found["name"]) == found["version"]


def mismatches(requirements: list[str]) -> list[str]:
    """Readable lines for each requirement this environment does not satisfy."""
    # packaging (~20 ms to import) only for a line that is not an exact pin met as written.
    pending = [line for line in requirements if not _exact_pin_met(line)]
    if not pending:
        return []
    from packaging.requirements import InvalidRequirement, Requirement

    problems = []
    for line in pending:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:  # a path or URL: nothing to compare against
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        found = installed_version(requirement.name)
        if found is None:
            problems.append(f"{line} (not installed)")
        elif not requirement.specifier.contains(found, prereleases=True):
            problems.append(f"{line} (installed {found})")
    return problems
