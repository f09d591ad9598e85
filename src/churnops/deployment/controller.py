"""Deployment use cases: start (shadow, canary, blue-green), switch, roll back, promote, and the
automatic judgement that steps a rollout forward or rolls it back on the evidence.

Every change is a compare-and-set on the policy row (`store.deployment.save_policy`), recorded
in the decisions table (kind "deployment") with its evidence and announced through `notify`
(the alert webhook). The registry is reached only through `promote_alias`, passed in.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from churnops.deployment.compare import Comparison, compare
from churnops.deployment.routing import new_salt
from churnops.deployment.thresholds import Thresholds
from churnops.errors import DeploymentError
from churnops.settings import BusinessSettings, DeploymentSettings
from churnops.store.decisions import Decision, record_decision
from churnops.store.deployment import Policy, read_policy, save_policy
from churnops.store.records import utcnow
from churnops.store.store import PredictionStore

logger = logging.getLogger(__name__)

Notify = Callable[[dict[str, Any]], object]
PromoteAlias = Callable[[str, str, str], object]  # (model name, version, why)
DECISION_KIND = "deployment"
# The labelled figure the judgement reads (each one costs a bootstrap on the evaluating worker;
# `churnops deploy status` and the app show them all).
JUDGED_QUALITY = ("roc_auc",)


@dataclass(frozen=True)
class Verdict:
    action: str  # "hold", "step", "promote", "rollback"
    reason: str


@dataclass(frozen=True)
class StepOutcome:
    action: str  # "none" (no deployment), "hold", "step", "promote", "rollback", "lost"
    reason: str
    policy: Policy | None
    comparison: Comparison | None = None


def _announce(
    store: PredictionStore,
    *,
    before: Policy | None,
    after: Policy,
    outcome: str,
    reason: str,
    actor: str | None,
    evidence: Mapping[str, Any],
    notify: Notify | None,
) -> None:
    """Record the change as a decision (once per policy revision) and announce it."""
    decision = Decision(
        kind=DECISION_KIND,
        outcome=outcome,
        model_name=after.model_name,
        trigger=(before or after).mode,
        idempotency_key=f"deployment:{after.deployment_id}:{after.revision}",
        from_version=after.champion_version,
        to_version=after.challenger_version or (before.challenger_version if before else None),
        actor=actor,
        evidence={
            "reason": reason,
            "deployment_id": after.deployment_id,
            "revision": after.revision,
            "mode": after.mode,
            "weight": after.weight,
            "live": after.live,
            **evidence,
        },
    )
    record_decision(store, decision)
    logger.info("deployment of %s: %s (%s)", after.model_name, outcome, reason)
    if notify is not None:
        try:
            notify(
                {
                    "kind": "deployment",
                    "model_name": after.model_name,
                    "outcome": outcome,
                    "reason": reason,
                    "mode": after.mode,
                    "weight": after.weight,
                    "champion_version": decision.from_version,
                    "challenger_version": decision.to_version,
                    "evidence": dict(evidence),
                }
            )
        except Exception as exc:  # an announcement never undoes a decision
            logger.error("deployment announcement failed: %s", exc)


def new_policy(
    *,
    model_name: str,
    mode: str,
    champion_version: str | None,
    challenger_version: str,
    settings: DeploymentSettings,
    actor: str | None = None,
    reason: str | None = None,
    weight: float | None = None,
    steps: list[float] | None = None,
    sample_rate: float | None = None,
    timeout_ms: float | None = None,
    auto: bool | None = None,
    thresholds: Mapping[str, Any] | None = None,
) -> Policy:
    """A fresh policy (new deployment id and salt) from the settings' defaults and overrides."""
    chosen_steps = tuple(steps or settings.steps)
    if not chosen_steps or any(not 0 < s <= 100 for s in chosen_steps):
        raise DeploymentError("canary steps must be percentages in (0, 100]")
    if list(chosen_steps) != sorted(chosen_steps):
        raise DeploymentError("canary steps must grow: customers never move back to the champion")
    limits = {**Thresholds.from_settings(settings).to_dict(), **(thresholds or {})}
    now = utcnow()
    return Policy(
        model_name=model_name,
        deployment_id=str(uuid.uuid4()),
        mode=mode,
        champion_version=champion_version,
        challenger_version=challenger_version,
        weight=(weight if weight is not None else chosen_steps[0]) if mode == "canary" else 0.0,
        step=0,
        steps=chosen_steps,
        live="champion",
        salt=new_salt(),
        sample_rate=sample_rate if sample_rate is not None else settings.sample_rate,
        timeout_ms=timeout_ms if timeout_ms is not None else settings.timeout_ms,
        thresholds=limits,
        auto=settings.auto if auto is None else auto,
        started_at=now,
        step_started_at=now,
        reason=reason,
        actor=actor,
    )


def start(store: PredictionStore, policy: Policy, *, notify: Notify | None = None) -> Policy:
    """Put `policy` in force; refused while another deployment is running."""
    current = read_policy(store, policy.model_name)
    if current is not None and current.active:
        raise DeploymentError(
            f"a {current.mode} deployment of {policy.model_name!r} version "
            f"{current.challenger_version} is running: roll it back or promote it first"
        )
    if policy.challenger_version == policy.champion_version:
        raise DeploymentError(f"version {policy.challenger_version} is already the champion")
    saved = save_policy(store, policy, expected_revision=current.revision if current else 0)
    if saved is None:
        raise DeploymentError("the deployment policy changed meanwhile: try again")
    _announce(
        store,
        before=current,
        after=saved,
        outcome="started",
        reason=policy.reason or f"{policy.mode} started",
        actor=policy.actor,
        evidence={"thresholds": dict(saved.thresholds), "steps": list(saved.steps)},
        notify=notify,
    )
    return saved


def _require(store: PredictionStore, model_name: str) -> Policy:
    current = read_policy(store, model_name)
    if current is None or not current.active:
        raise DeploymentError(f"no deployment of {model_name!r} is running")
    return current


def _change(
    store: PredictionStore,
    current: Policy,
    new: Policy,
    *,
    outcome: str,
    reason: str,
    actor: str | None,
    evidence: Mapping[str, Any],
    notify: Notify | None,
) -> Policy | None:
    saved = save_policy(store, new, expected_revision=current.revision)
    if saved is None:
        return None
    _announce(
        store,
        before=current,
        after=saved,
        outcome=outcome,
        reason=reason,
        actor=actor,
        evidence=evidence,
        notify=notify,
    )
    return saved


def switch(
    store: PredictionStore,
    *,
    model_name: str,
    actor: str | None = None,
    notify: Notify | None = None,
) -> Policy:
    """Blue-green: the other side answers from now on (both stay loaded: switching back is the
    same call)."""
    current = _require(store, model_name)
    if current.mode != "blue-green":
        raise DeploymentError(f"switch needs a blue-green deployment (this one is {current.mode})")
    live = "challenger" if current.live == "champion" else "champion"
    saved = _change(
        store,
        current,
        current.changed(live=live, step_started_at=utcnow(), reason=f"switched to {live}"),
        outcome="switched",
        reason=f"{live} answers",
        actor=actor,
        evidence={"from": current.live, "to": live},
        notify=notify,
    )
    if saved is None:
        raise DeploymentError("the deployment policy changed meanwhile: try again")
    return saved


def rollback(
    store: PredictionStore,
    *,
    model_name: str,
    reason: str,
    actor: str | None = None,
    evidence: Mapping[str, Any] | None = None,
    notify: Notify | None = None,
    expected: Policy | None = None,
) -> Policy | None:
    """Every request back to the champion; None when the policy changed since `expected` was
    read (someone else decided first)."""
    current = expected if expected is not None else _require(store, model_name)
    new = current.changed(
        mode="none", weight=0.0, live="champion", reason=reason, step_started_at=utcnow()
    )
    return _change(
        store,
        current,
        new,
        outcome="rolled_back",
        reason=reason,
        actor=actor,
        evidence=evidence or {},
        notify=notify,
    )


def promote(
    store: PredictionStore,
    *,
    model_name: str,
    promote_alias: PromoteAlias,
    reason: str = "promoted",
    actor: str | None = None,
    evidence: Mapping[str, Any] | None = None,
    notify: Notify | None = None,
    expected: Policy | None = None,
) -> Policy | None:
    """The challenger becomes the champion (registry alias moved), the deployment ends."""
    current = expected if expected is not None else _require(store, model_name)
    assert current.challenger_version is not None
    new = current.changed(
        mode="none",
        weight=0.0,
        live="champion",
        champion_version=current.challenger_version,
        reason=reason,
        step_started_at=utcnow(),
    )
    saved = save_policy(store, new, expected_revision=current.revision)
    if saved is None:
        return None
    promote_alias(
        model_name, current.challenger_version, f"deployment {current.deployment_id}: {reason}"
    )
    _announce(
        store,
        before=current,
        after=saved,
        outcome="promoted",
        reason=reason,
        actor=actor,
        evidence={"previous_champion": current.champion_version, **(evidence or {})},
        notify=notify,
    )
    return saved


def judge(policy: Policy, step: Comparison, overall: Comparison, now: datetime) -> Verdict:
    """What the evidence says: roll back on a fault or regression, step forward once the step
    has seen enough, else hold. `step` covers the current step, `overall` the whole deployment."""
    limits = Thresholds.from_mapping(policy.thresholds)
    champ, chall = overall.variants["champion"], overall.variants["challenger"]
    if chall.errors >= limits.fault_limit and chall.error_rate > limits.max_error_rate:
        return Verdict(
            "rollback",
            f"challenger error rate {chall.error_rate:.1%} ({chall.errors} errors or timeouts) > {limits.max_error_rate:.1%}",
        )
    if overall.constant_challenger:
        return Verdict(
            "rollback",
            f"challenger returned one constant score for its last {limits.constant_after} requests",
        )
    enough = chall.requests >= limits.min_requests
    if (
        overall.agreement is not None
        and overall.paired >= limits.min_requests
        and overall.agreement < limits.min_agreement
    ):
        return Verdict(
            "rollback",
            f"agreement with the champion {overall.agreement:.1%} < {limits.min_agreement:.1%}",
        )
    if (
        overall.psi is not None
        and enough
        and champ.requests >= limits.min_requests
        and overall.psi > limits.max_psi
    ):
        return Verdict(
            "rollback", f"score distributions differ: PSI {overall.psi:.3f} > {limits.max_psi}"
        )
    if (
        enough
        and champ.requests >= limits.min_requests
        and champ.p99_ms
        and chall.p99_ms
        and chall.p99_ms > limits.max_latency_ratio * champ.p99_ms
    ):
        return Verdict(
            "rollback",
            f"challenger p99 {chall.p99_ms:.2f} ms > {limits.max_latency_ratio}x champion's {champ.p99_ms:.2f} ms",
        )
    min_labels = max(limits.min_labels, 30)
    if (
        champ.roc_auc is not None
        and chall.roc_auc is not None
        and champ.labels >= min_labels
        and chall.labels >= min_labels
        and chall.roc_auc.high < champ.roc_auc.value - limits.max_quality_drop
    ):
        return Verdict(
            "rollback",
            f"quality regression: challenger ROC-AUC {chall.roc_auc.value:.3f} (95% CI up to {chall.roc_auc.high:.3f}) vs champion {champ.roc_auc.value:.3f}",
        )
    now_step = step.variants["challenger"]
    if now_step.requests < limits.min_requests:
        return Verdict(
            "hold", f"{now_step.requests} of {limits.min_requests} challenger requests in this step"
        )
    if now_step.labels < limits.min_labels:
        return Verdict("hold", f"{now_step.labels} of {limits.min_labels} labels in this step")
    if (now - policy.step_started_at).total_seconds() < limits.min_step_seconds:
        return Verdict("hold", "step younger than min_step_seconds")
    if policy.mode == "blue-green":
        return Verdict("hold", "blue-green is switched and promoted by hand")
    if policy.mode == "canary" and policy.step >= len(policy.steps) - 1:
        return Verdict("promote", f"canary at {policy.weight:g}% with no regression")
    return Verdict("step", "no regression over the step")


def evaluate(
    store: PredictionStore,
    *,
    model_name: str,
    business: BusinessSettings,
    promote_alias: PromoteAlias | None,
    notify: Notify | None = None,
    bootstrap_samples: int = 200,
    actor: str = "auto",
) -> StepOutcome:
    """Judge the running deployment once and act on it (when its policy says `auto`)."""
    policy = read_policy(store, model_name)
    if policy is None or not policy.active:
        return StepOutcome("none", "no deployment running", policy)
    limits = Thresholds.from_mapping(policy.thresholds)
    overall = compare(
        store,
        policy,
        business=business,
        bootstrap_samples=bootstrap_samples,
        constant_after=limits.constant_after,
        quality=JUDGED_QUALITY,
    )
    step = compare(
        store,
        policy,
        business=business,
        constant_after=limits.constant_after,
        since=policy.step_started_at,
        quality=(),
    )
    verdict = judge(policy, step, overall, utcnow())
    if verdict.action == "hold" or not policy.auto:
        return StepOutcome("hold", verdict.reason, policy, overall)
    evidence = {"comparison": overall.to_dict()}
    saved: Policy | None
    if verdict.action == "rollback":
        saved = rollback(
            store,
            model_name=model_name,
            reason=verdict.reason,
            actor=actor,
            evidence=evidence,
            notify=notify,
            expected=policy,
        )
    elif verdict.action == "promote":
        if promote_alias is None:
            return StepOutcome(
                "hold", "ready to promote; no registry to promote in", policy, overall
            )
        saved = promote(
            store,
            model_name=model_name,
            promote_alias=promote_alias,
            reason=verdict.reason,
            actor=actor,
            evidence=evidence,
            notify=notify,
            expected=policy,
        )
    else:
        saved = _step_forward(
            store, policy, reason=verdict.reason, actor=actor, evidence=evidence, notify=notify
        )
    if saved is None:
        return StepOutcome(
            "lost",
            "another worker changed the policy first",
            read_policy(store, model_name),
            overall,
        )
    return StepOutcome(verdict.action, verdict.reason, saved, overall)


def _step_forward(
    store: PredictionStore,
    policy: Policy,
    *,
    reason: str,
    actor: str,
    evidence: Mapping[str, Any],
    notify: Notify | None,
) -> Policy | None:
    if policy.mode == "shadow":
        new = policy.changed(
            mode="canary", step=0, weight=policy.steps[0], step_started_at=utcnow(), reason=reason
        )
        outcome = "canary"
    else:
        step = policy.step + 1
        new = policy.changed(
            step=step, weight=policy.steps[step], step_started_at=utcnow(), reason=reason
        )
        outcome = "stepped"
    return _change(
        store,
        policy,
        new,
        outcome=outcome,
        reason=f"{reason}: challenger weight {new.weight:g}%",
        actor=actor,
        evidence=evidence,
        notify=notify,
    )


def start_rollout(
    store: PredictionStore,
    *,
    model_name: str,
    challenger_version: str,
    champion_version: str | None,
    settings: DeploymentSettings,
    notify: Notify | None = None,
    actor: str = "retraining",
    reason: str = "newly trained challenger",
) -> Policy:
    """Send a newly trained challenger through shadow -> canary -> champion instead of
    promoting it at once: the policy starts in shadow with `auto` on, and each worker's
    evaluation (or `churnops deploy evaluate`) steps it forward or rolls it back."""
    policy = new_policy(
        model_name=model_name,
        mode="shadow",
        champion_version=champion_version,
        challenger_version=challenger_version,
        settings=settings,
        actor=actor,
        reason=reason,
        auto=True,
    )
    return start(store, policy, notify=notify)
