"""`churnops export dvc [DIR]`: a DVC pipeline (validate, eda, train, evaluate) calling churnops."""

from __future__ import annotations

from pathlib import Path

import typer

from churnops.cli.console import cli_errors, out_console
from churnops.cli.options import (
    DataOption,
    ExcludeOption,
    IdOption,
    PositiveOption,
    TargetOption,
    settings_for_data,
)

app = typer.Typer(help="Export churnops pipelines for other tools.", no_args_is_help=True)


@app.command("dvc")
def dvc_command(
    directory: Path = typer.Argument(
        Path(), metavar="[DIR]", help="Project folder for dvc.yaml (default here)."
    ),
    data: str | None = DataOption,
    target: str | None = TargetOption,
    positive_label: str | None = PositiveOption,
    id_column: str | None = IdOption,
    exclude: list[str] | None = ExcludeOption,
    code: list[str] | None = typer.Option(
        None, "--code", help="Another path whose change retrains (repeatable)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing dvc.yaml."),
) -> None:
    """Write DIR/dvc.yaml (and DIR/params.yaml when missing): `dvc repro` then reruns validate,
    eda, train and evaluate only when the table, their params.yaml sections or the code changed."""
    with cli_errors():
        params = directory / "params.yaml"
        settings = settings_for_data(
            params if params.exists() else None,
            data=data,
            target=target,
            positive_label=positive_label,
            id_column=id_column,
            exclude=exclude,
        )
        from churnops.modeling.lineage import PACKAGE_DIR
        from churnops.operations.dvc import write_pipeline

        exported = write_pipeline(
            directory,
            settings=settings.model_dump(mode="json"),
            data=settings.data.model_dump(mode="json"),
            data_path=settings.data.path,
            code=code or [],
            package_dir=PACKAGE_DIR,
            data_given=any(v is not None for v in (data, target, positive_label, id_column)),
            force=force,
        )
    out_console.print(f"wrote {exported.dvc_yaml}")
    if exported.params_written:
        out_console.print(f"wrote {exported.params_yaml}")
    out_console.print(
        f"dependencies: {', '.join(exported.dependencies) or 'none'}; next: "
        f"`cd {directory} && git init && dvc init && dvc repro`"
    )
