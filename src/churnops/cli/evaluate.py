"""`churnops evaluate [VERSION]`: a registered version's metrics and curves on its held-out split
(rebuilt from its lineage manifest) or on another labelled table."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from churnops.cli.console import cli_errors, out_console
from churnops.cli.options import ConfigOption, ModelNameOption
from churnops.errors import ConfigError


def _from_summary(path: Path) -> tuple[str, str]:
    """(model name, version) from the JSON `churnops train --json` printed."""
    try:
        summary = json.loads(path.read_text())
        return str(summary["model_name"]), str(summary["version"])
    except FileNotFoundError:
        raise ConfigError(f"--from-summary file not found: {path}") from None
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"{path} is not a `churnops train --json` summary (model_name, version)"
        ) from None


def evaluate_command(
    version: str = typer.Argument(
        "champion", metavar="[VERSION]", help="Version number or alias (default champion)."
    ),
    model_name: str | None = ModelNameOption,
    data: str | None = typer.Option(
        None, "--data", "-d", help="Labelled table to evaluate on (default: the held-out split)."
    ),
    from_summary: Path | None = typer.Option(
        None, "--from-summary", help="Evaluate the version a `churnops train --json` file names."
    ),
    output_dir: Path = typer.Option(
        Path("reports/evaluation"), "--output-dir", "-o", help="Where metrics and plots go."
    ),
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON on stdout."),
) -> None:
    """Write metrics.json, evaluation.json, ROC and precision-recall curves (CSV and PNG)."""
    from churnops.settings import get_settings

    with cli_errors():
        if from_summary is not None:
            model_name, version = _from_summary(from_summary)
        overrides: dict[str, object] = {"registry.model_name": model_name}
        settings = get_settings(config, flags={"registry.model_name": "--model-name"}, **overrides)
        if data is not None:
            from churnops.data.sources import reader_kind

            reader_kind(data, flag="--data")
        from churnops.modeling.tracking import configure_tracking  # heavy: after the checks

        client = configure_tracking(settings, must_exist=True)
        from churnops.data.ingest import read_table
        from churnops.modeling.holdout import evaluate_scorer, write_evaluation
        from churnops.modeling.pyfunc import load_scorer
        from churnops.modeling.rebuild import load_recorded_run, resolve_version

        name = settings.registry.model_name
        number, _ = resolve_version(client, name=name, version=version)
        scorer, _ = load_scorer(f"models:/{name}/{number}")
        if data is None:
            frame = load_recorded_run(client, name=name, version=number).split().test
            described = "held-out split"
        else:
            frame, described = read_table(data), data
        evaluation = evaluate_scorer(scorer, frame, model_name=name, version=number, data=described)
        written = write_evaluation(evaluation, output_dir)
    if as_json:
        typer.echo(json.dumps({**evaluation.context(), "metrics": evaluation.metrics}))
        return
    m = evaluation.metrics
    out_console.print(
        f"{name} v{number} on {described} ({evaluation.rows:,} rows): ROC-AUC {m['roc_auc']:.4f}, "
        f"PR-AUC {m['pr_auc']:.4f}, F1 {m['f1']:.4f}, Brier {m['brier']:.4f}"
    )
    out_console.print(f"written to {output_dir}: {', '.join(p.name for p in written)}")
