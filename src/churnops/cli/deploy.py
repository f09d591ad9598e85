"""`churnops deploy shadow|canary|blue-green|switch|rollback|promote|evaluate|status`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from churnops.cli.console import cli_errors, out_console
from churnops.cli.options import ConfigOption
from churnops.errors import DeploymentError
from churnops.settings import Settings, get_settings

if TYPE_CHECKING:
    from churnops.store import PredictionStore

app = typer.Typer(
    help="Try a challenger on live traffic (shadow, canary, blue-green), judged by ML quality.",
    no_args_is_help=True,
)
VersionArg = typer.Argument(..., help="The registered version to try as the challenger.")
AutoOption = typer.Option(True, "--auto/--manual", help="Step forward and roll back on its own.")
ReasonOption = typer.Option("by hand", "--reason", help="Why (recorded with the decision).")


def _settings(config: Path | None) -> Settings:
    return get_settings(config)


def _store(settings: Settings) -> PredictionStore:
    from churnops.store import PredictionStore

    store = PredictionStore(settings.resolved_database_url())
    store.open(create=True)
    return store


def _notify(settings: Settings) -> Any:
    url = settings.monitoring.webhook_url
    if not url:
        return None
    from churnops.monitoring.alerts import post_webhook

    return lambda payload: post_webhook(url, payload, timeout=5.0)


def _champion_version(settings: Settings, challenger: str) -> str | None:
    """The champion's version; refuses a challenger the registry does not hold."""
    from churnops.modeling.registry import alias_version
    from churnops.modeling.tracking import configure_tracking

    client = configure_tracking(settings, must_exist=True)
    name = settings.registry.model_name
    try:
        client.get_model_version(name, challenger)
    except Exception as exc:
        raise DeploymentError(f"model {name!r} has no version {challenger}") from exc
    champion = alias_version(client, name, "champion")
    return None if champion is None else str(champion.version)


def _start(settings: Settings, mode: str, version: str, **options: Any) -> None:
    from churnops.deployment import controller

    champion = _champion_version(settings, version)
    policy = controller.new_policy(
        model_name=settings.registry.model_name,
        mode=mode,
        champion_version=champion,
        challenger_version=version,
        settings=settings.deployment,
        actor="cli",
        reason=f"{mode} started by hand",
        **options,
    )
    store = _store(settings)
    try:
        saved = controller.start(store, policy, notify=_notify(settings))
    finally:
        store.close()
    out_console.print(
        f"{saved.mode}: version {saved.challenger_version} beside champion "
        f"{saved.champion_version} (weight {saved.weight:g}%, auto {saved.auto})"
    )


def _steps(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise DeploymentError(
            f"--steps must be percentages separated by commas, got {text!r}"
        ) from None


@app.command("shadow")
def shadow_command(
    version: str = VersionArg,
    sample_rate: float | None = typer.Option(None, "--sample-rate", min=0.0001, max=1.0),
    timeout_ms: float | None = typer.Option(None, "--timeout-ms", min=0.1),
    auto: bool = AutoOption,
    config: Path | None = ConfigOption,
) -> None:
    """The challenger also scores every request (or a sample) after the answer is sent."""
    with cli_errors():
        settings = _settings(config)
        _start(
            settings, "shadow", version, sample_rate=sample_rate, timeout_ms=timeout_ms, auto=auto
        )


@app.command("canary")
def canary_command(
    version: str = VersionArg,
    steps: str | None = typer.Option(None, "--steps", help="Weights in percent, e.g. 5,25,50,100."),
    auto: bool = AutoOption,
    config: Path | None = ConfigOption,
) -> None:
    """A sticky share of customers is answered by the challenger, growing step by step."""
    with cli_errors():
        settings = _settings(config)
        _start(settings, "canary", version, steps=_steps(steps), auto=auto)


@app.command("blue-green")
def blue_green_command(
    version: str = VersionArg,
    auto: bool = AutoOption,
    config: Path | None = ConfigOption,
) -> None:
    """Load the challenger beside the champion, warm; `switch` moves every request at once."""
    with cli_errors():
        settings = _settings(config)
        _start(settings, "blue-green", version, auto=auto)


@app.command("switch")
def switch_command(config: Path | None = ConfigOption) -> None:
    """Blue-green: the other side answers (run again to switch back)."""
    with cli_errors():
        from churnops.deployment import controller

        settings = _settings(config)
        store = _store(settings)
        try:
            saved = controller.switch(
                store,
                model_name=settings.registry.model_name,
                actor="cli",
                notify=_notify(settings),
            )
        finally:
            store.close()
        out_console.print(f"blue-green: the {saved.live} answers now")


@app.command("rollback")
def rollback_command(reason: str = ReasonOption, config: Path | None = ConfigOption) -> None:
    """Every request back to the champion."""
    with cli_errors():
        from churnops.deployment import controller

        settings = _settings(config)
        store = _store(settings)
        try:
            controller.rollback(
                store,
                model_name=settings.registry.model_name,
                reason=reason,
                actor="cli",
                notify=_notify(settings),
            )
        finally:
            store.close()
        out_console.print("rolled back: the champion answers every request")


@app.command("promote")
def promote_command(reason: str = ReasonOption, config: Path | None = ConfigOption) -> None:
    """The challenger becomes the champion (registry alias) and the deployment ends."""
    with cli_errors():
        from churnops.deployment import controller
        from churnops.modeling.registry import promote
        from churnops.modeling.tracking import configure_tracking

        settings = _settings(config)
        client = configure_tracking(settings, must_exist=True)
        store = _store(settings)
        try:
            saved = controller.promote(
                store,
                model_name=settings.registry.model_name,
                promote_alias=lambda n, v, why: promote(client, name=n, version=v, why=why),
                reason=reason,
                actor="cli",
                notify=_notify(settings),
            )
        finally:
            store.close()
        if saved is None:
            raise DeploymentError("the deployment policy changed meanwhile: try again")
        out_console.print(f"promoted: version {saved.champion_version} is the champion")


@app.command("evaluate")
def evaluate_command(config: Path | None = ConfigOption) -> None:
    """Judge the running deployment once: step forward, promote, roll back or hold."""
    with cli_errors():
        from churnops.deployment import controller
        from churnops.modeling.registry import promote
        from churnops.modeling.tracking import configure_tracking

        settings = _settings(config)
        client = configure_tracking(settings, must_exist=True)
        store = _store(settings)
        try:
            outcome = controller.evaluate(
                store,
                model_name=settings.registry.model_name,
                business=settings.business,
                promote_alias=lambda n, v, why: promote(client, name=n, version=v, why=why),
                notify=_notify(settings),
                bootstrap_samples=settings.deployment.bootstrap_samples,
                actor="cli",
            )
        finally:
            store.close()
        out_console.print(f"{outcome.action}: {outcome.reason}")


def _fmt(value: Any, spec: str = ".4f") -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):  # an Estimate
        return f"{value['value']:{spec}} [{value['low']:{spec}}, {value['high']:{spec}}]"
    return format(value, spec)


@app.command("status")
def status_command(
    as_json: bool = typer.Option(False, "--json"), config: Path | None = ConfigOption
) -> None:
    """The policy in force and champion vs challenger, per variant."""
    with cli_errors():
        from churnops.deployment.compare import compare
        from churnops.store import PredictionStore
        from churnops.store.deployment import read_policy

        settings = _settings(config)
        store = PredictionStore(settings.resolved_database_url())
        store.open(create=False)
        try:
            policy = read_policy(store, settings.registry.model_name)
            comparison = None
            if policy is not None:
                comparison = compare(
                    store,
                    policy,
                    business=settings.business,
                    bootstrap_samples=settings.deployment.bootstrap_samples,
                ).to_dict()
        finally:
            store.close()
        payload = {
            "policy": None if policy is None else policy.to_json_dict(),
            "comparison": comparison,
        }
        if as_json:
            typer.echo(json.dumps(payload, default=str))
            return
        if policy is None:
            out_console.print("no deployment policy set: the champion answers every request")
            return
        out_console.print(
            f"mode {policy.mode}  champion {policy.champion_version}  challenger "
            f"{policy.challenger_version}  weight {policy.weight:g}%  live {policy.live}  "
            f"auto {policy.auto}  revision {policy.revision}  ({policy.reason or ''})"
        )
        assert comparison is not None
        table = Table(title="Per variant since the deployment started")
        rows = [
            ("version", "model_version", "s"),
            ("requests", "requests", "d"),
            ("error rate", "error_rate", ".2%"),
            ("p50 ms", "p50_ms", ".3f"),
            ("p99 ms", "p99_ms", ".3f"),
            ("mean score", "mean_probability", ".4f"),
            ("churn rate", "churn_rate", ".2%"),
            ("labels", "labels", "d"),
            ("ROC-AUC", "roc_auc", ".4f"),
            ("PR-AUC", "pr_auc", ".4f"),
            ("Brier", "brier", ".4f"),
            ("profit / customer", "profit", ".2f"),
        ]
        table.add_column("")
        for variant in ("champion", "challenger"):
            table.add_column(variant)
        for label, key, spec in rows:
            table.add_row(
                label,
                *(_fmt(comparison["variants"][v][key], spec) for v in ("champion", "challenger")),
            )
        out_console.print(table)
        out_console.print(
            f"agreement at the threshold {_fmt(comparison['agreement'], '.2%')} over "
            f"{comparison['paired']} paired requests; PSI {_fmt(comparison['psi'])}, "
            f"JS {_fmt(comparison['js'])}"
        )
