"""`churnops export dvc`: a DVC pipeline whose stages call churnops.

validate (`churnops data check`) -> eda -> train -> evaluate, each with the table (and, when the
churnops source tree is inside the project, the code) as dependencies, the `params.yaml`
sections it reads as parameters, and its outputs, metrics and plots; `dvc repro` then reruns a
stage only when one of those changed. Building the documents is pure; `write_pipeline` writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from churnops.errors import ConfigError

REPORTS = "reports"
DATA_CHECK = f"{REPORTS}/data_check.json"
EDA_REPORT = f"{REPORTS}/eda.html"
TRAIN_SUMMARY = f"{REPORTS}/train.json"
EVALUATION = f"{REPORTS}/evaluation"
PARAMS_FILE = "params.yaml"
# Named on every command: the file DVC tracks, whatever CHURNOPS_CONFIG says.
CONFIG = f"--config {PARAMS_FILE}"
# params.yaml sections each stage reads (DVC tracks every key below a section).
DATA_PARAMS = ["data"]
TRAIN_PARAMS = ["data", "training", "business", "risk_bands", "registry"]
# What a new params.yaml holds: the sections the pipeline reads, nothing secret.
WRITTEN_SECTIONS = ("data", "training", "business", "risk_bands", "registry")


@dataclass(frozen=True)
class ExportedPipeline:
    dvc_yaml: Path
    params_yaml: Path
    params_written: bool
    dependencies: list[str]


class _PlainDumper(yaml.SafeDumper):
    """No `&id001` anchors for repeated lists: dvc.yaml stays readable and editable."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(document: Mapping[str, Any]) -> str:
    return yaml.dump(dict(document), Dumper=_PlainDumper, sort_keys=False)


def _relative(path: str, root: Path) -> str:
    """`path` relative to the pipeline's folder when inside it (DVC's own deps), else absolute
    (an external dependency DVC hashes in place)."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(resolved)


def pipeline_document(*, data_deps: list[str], code_deps: list[str]) -> dict[str, Any]:
    """The dvc.yaml document (`data_deps`/`code_deps` already relative to its folder)."""
    no_cache = {"cache": False}
    return {
        "stages": {
            "validate": {
                "cmd": f"churnops data check {CONFIG} --output {DATA_CHECK}",
                "deps": [*data_deps],
                "params": DATA_PARAMS,
                "outs": [{DATA_CHECK: no_cache}],
            },
            "eda": {
                "cmd": f"churnops eda {CONFIG} --output {EDA_REPORT}",
                "deps": [*data_deps, DATA_CHECK],
                "params": DATA_PARAMS,
                "outs": [{EDA_REPORT: no_cache}],
            },
            "train": {
                # The summary names the registered version; the model itself lives in MLflow.
                "cmd": f"churnops train {CONFIG} --json > {TRAIN_SUMMARY}",
                "deps": [*data_deps, DATA_CHECK, *code_deps],
                "params": TRAIN_PARAMS,
                "outs": [{TRAIN_SUMMARY: no_cache}],
            },
            "evaluate": {
                "cmd": (
                    f"churnops evaluate {CONFIG} --from-summary {TRAIN_SUMMARY} "
                    f"--output-dir {EVALUATION}"
                ),
                "deps": [TRAIN_SUMMARY, *code_deps],
                "outs": [
                    {f"{EVALUATION}/evaluation.json": no_cache},
                    {f"{EVALUATION}/roc.png": no_cache},
                    {f"{EVALUATION}/precision_recall.png": no_cache},
                    {f"{EVALUATION}/confusion_matrix.png": no_cache},
                ],
                "metrics": [{f"{EVALUATION}/metrics.json": no_cache}],
                "plots": [
                    {f"{EVALUATION}/roc.csv": {"x": "fpr", "y": "tpr", "cache": False}},
                    {
                        f"{EVALUATION}/precision_recall.csv": {
                            "x": "recall",
                            "y": "precision",
                            "cache": False,
                        }
                    },
                ],
            },
        }
    }


def params_document(settings: Mapping[str, Any], *, data: Mapping[str, Any]) -> dict[str, Any]:
    """The sections of a new params.yaml: the current settings with `data` as the run resolves it."""
    document = {name: settings[name] for name in WRITTEN_SECTIONS if name in settings}
    document["data"] = dict(data)
    return document


def code_dependencies(root: Path, extra: list[str], package_dir: Path) -> list[str]:
    """The churnops source tree when it lies inside the project (an editable checkout), and any
    path given; an installed package is pinned by its version instead (see the docs)."""
    deps = [_relative(path, root) for path in extra]
    inside = _relative(str(package_dir), root)
    if not Path(inside).is_absolute() and inside not in deps:
        deps.append(inside)
    return deps


def write_pipeline(
    root: Path,
    *,
    settings: Mapping[str, Any],
    data: Mapping[str, Any],
    data_path: str | None,
    code: list[str],
    package_dir: Path,
    data_given: bool,
    force: bool = False,
) -> ExportedPipeline:
    """Write `root/dvc.yaml`, and `root/params.yaml` when there is none (or update its `data`
    section when a table was named on the command line)."""
    root.mkdir(parents=True, exist_ok=True)
    dvc_yaml, params_yaml = root / "dvc.yaml", root / PARAMS_FILE
    if dvc_yaml.exists() and not force:
        raise ConfigError(f"{dvc_yaml} exists; pass --force to replace it")
    data_deps = [] if data_path is None or "://" in data_path else [_relative(data_path, root)]
    data = dict(data)
    if data_deps:  # the stages run in `root`: the table as seen from there
        data["path"] = data_deps[0]
    code_deps = code_dependencies(root, code, package_dir)
    existing: dict[str, Any] = {}
    if params_yaml.exists():
        loaded = yaml.safe_load(params_yaml.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{params_yaml} must hold a mapping at the top level")
        existing = loaded
    # DVC needs every tracked section present: missing ones get the current values.
    wanted = params_document(settings, data=data)
    missing = {k: v for k, v in wanted.items() if k not in existing}
    written = bool(missing) or data_given
    if written:
        if data_given:
            existing["data"] = wanted["data"]
        params_yaml.write_text(_dump({**existing, **missing}))
    dvc_yaml.write_text(
        "# Written by `churnops export dvc`: `dvc repro` reruns what changed.\n"
        + _dump(pipeline_document(data_deps=data_deps, code_deps=code_deps))
    )
    return ExportedPipeline(dvc_yaml, params_yaml, written, [*data_deps, *code_deps])
