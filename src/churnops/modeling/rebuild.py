"""A registered version's training inputs, read back from its lineage manifest.

The recorded table is read again (the bundled one from this installation, another one from the
recorded path or `--data`), production rows from the run's artifact, and the result must have
the recorded fingerprint: `churnops verify` rebuilds the model from it, `churnops evaluate`
takes its held-out split. Every reason it cannot is a `ReproductionError` naming the source.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from churnops.data.sources import reader_kind
from churnops.datasets import demo_path
from churnops.errors import ChurnopsError, DataLoadError
from churnops.modeling.lineage import LineageManifest, read_manifest
from churnops.redact import REDACTED
from churnops.settings import BusinessSettings, DataSettings, RiskBands, TrainingSettings

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from churnops.data.schema import Schema
    from churnops.modeling.stages import Split


class ReproductionError(ChurnopsError):
    """A version cannot be rebuilt: a source is missing, changed, or was never kept."""


@dataclass(frozen=True)
class RecordedRun:
    """What a version was trained on and with, checked against its manifest."""

    model_name: str
    version: str
    run_id: str
    manifest: LineageManifest
    frame: pd.DataFrame
    schema: Schema
    data: DataSettings
    training: TrainingSettings
    business: BusinessSettings
    risk_bands: RiskBands

    def split(self) -> Split:
        from churnops.modeling.stages import split_data

        return split_data(
            self.frame, self.schema, test_size=self.training.test_size, seed=self.training.seed
        )


def resolve_version(client: MlflowClient, *, name: str, version: str) -> tuple[str, str]:
    """(version number, training run id) for a number or an alias (`champion`, `@champion`)."""
    from mlflow.exceptions import MlflowException

    from churnops.errors import RegistryError

    try:
        if version.isdigit():
            found = client.get_model_version(name, version)
        else:
            found = client.get_model_version_by_alias(name, version.lstrip("@"))
    except MlflowException as exc:
        raise RegistryError(f"model {name!r} has no version or alias {version!r}") from exc
    if not found.run_id:
        raise RegistryError(f"{name} v{found.version} has no training run")
    return str(found.version), str(found.run_id)


def table_path(manifest: LineageManifest, override: str | None) -> str:
    """Where to read the recorded table: `override`, this installation's bundled copy, or the
    recorded path (which must exist)."""
    source = manifest.table_source()
    if source is None:
        raise ReproductionError("the manifest records no table")
    if override is not None:
        path = override
    elif source.bundled:
        path = str(demo_path().with_name(source.bundled))
    elif REDACTED in source.uri:
        raise ReproductionError(
            f"the recorded source {source.uri} hides its password: pass the table with --data"
        )
    else:
        path = source.uri
    try:
        reader_kind(path)
    except DataLoadError as exc:
        raise ReproductionError(f"recorded source is missing: {exc}") from None
    return path


def _production_rows(
    client: MlflowClient, manifest: LineageManifest, run_id: str
) -> pd.DataFrame | None:
    from churnops.data.ingest import read_table

    source = manifest.production_source()
    if source is None:
        return None
    window = f"{source.window_start}..{source.window_end}"
    if not source.artifact:
        raise ReproductionError(
            f"the run took {source.rows} production rows ({window}) that were not kept with it: "
            "it cannot be rebuilt"
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, source.artifact, tmp)
        except Exception as exc:
            raise ReproductionError(
                f"the production rows ({window}) artifact {source.artifact!r} is missing: {exc}"
            ) from None
        return read_table(str(Path(local)))


def load_recorded_run(
    client: MlflowClient, *, name: str, version: str, data_path: str | None = None
) -> RecordedRun:
    """The version's manifest, and its training frame read again with the recorded fingerprint."""
    import pandas as pd

    from churnops.data.fingerprint import fingerprint
    from churnops.data.ingest import read_table
    from churnops.data.schema import infer_schema
    from churnops.data.validate import validate_training_frame

    number, run_id = resolve_version(client, name=name, version=version)
    manifest = read_manifest(client, name=name, version=number)
    path = table_path(manifest, data_path)
    table = read_table(path)
    table_source = manifest.table_source()
    if table_source is not None and table_source.fingerprint is not None:
        _check(path, fingerprint(table), table_source.fingerprint, len(table), table_source.rows)
    production = _production_rows(client, manifest, run_id)
    frame = table if production is None else pd.concat([table, production], ignore_index=True)
    _check("the training rows", fingerprint(frame), manifest.data_fingerprint, len(frame), None)
    settings = manifest.settings
    data = DataSettings.model_validate({**settings["data"], "path": path})
    schema = infer_schema(frame, data)
    validate_training_frame(frame, schema, data)
    return RecordedRun(
        model_name=name,
        version=number,
        run_id=run_id,
        manifest=manifest,
        frame=frame,
        schema=schema,
        data=data,
        training=TrainingSettings.model_validate(settings["training"]),
        business=BusinessSettings.model_validate(settings["business"]),
        risk_bands=RiskBands.model_validate(settings["risk_bands"]),
    )


def _check(what: str, found: str, recorded: str, rows: int, recorded_rows: int | None) -> None:
    if found == recorded:
        return
    counted = (
        f" ({rows} rows, recorded {recorded_rows})" if recorded_rows not in (None, rows) else ""
    )
    raise ReproductionError(
        f"{what} has fingerprint {found[:12]}…, the manifest recorded {recorded[:12]}…{counted}: "
        "the data changed since training"
    )
