"""/metrics by deployment variant: predictions and risk levels, scoring time, errors, the policy."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from churnops.api.metrics import ApiMetrics
from churnops.store.deployment import Policy


def _samples(metrics: ApiMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_variants_are_labelled_and_the_policy_shows() -> None:
    metrics = ApiMetrics()
    metrics.observe_variant("champion", ["low", "high"], 0.0002)
    metrics.observe_variant("challenger", ["high"], 0.0003)
    metrics.observe_variant("shadow", ["low", "low", "medium"], 0.004)
    metrics.observe_variant("challenger", (), 0.0, errors=2)
    metrics.set_deployment(
        Policy(model_name="m", deployment_id="d", mode="canary", champion_version="1",
               challenger_version="2", weight=25.0)
    )  # fmt: skip
    samples = _samples(metrics)
    predictions = "churnops_variant_predictions_total"
    assert samples[(predictions, (("risk_level", "low"), ("variant", "shadow")))] == 2
    assert samples[(predictions, (("risk_level", "high"), ("variant", "challenger")))] == 1
    assert samples[("churnops_variant_errors_total", (("variant", "challenger"),))] == 2
    count = "churnops_variant_scoring_seconds_count"
    assert samples[(count, (("variant", "champion"),))] == 1
    assert samples[(count, (("variant", "shadow"),))] == 1
    info = (
        "churnops_deployment_info",
        (("challenger_version", "2"), ("champion_version", "1"), ("live", "champion"), ("mode", "canary")),
    )  # fmt: skip
    assert samples[info] == 1
    assert samples[("churnops_deployment_canary_weight", ())] == 25.0
    metrics.set_deployment(None)
    assert ("churnops_deployment_canary_weight", ()) in _samples(metrics)
    assert not [k for k in _samples(metrics) if k[0] == "churnops_deployment_info"]


def test_one_customer_observations_all_show_whenever_the_figures_are_read() -> None:
    from churnops.api.metrics import VARIANT_FOLD_EVERY

    metrics = ApiMetrics()
    predictions = "churnops_variant_predictions_total"
    count, total = "churnops_variant_scoring_seconds_count", "churnops_variant_scoring_seconds_sum"
    for n in (1, VARIANT_FOLD_EVERY - 1, VARIANT_FOLD_EVERY + 3):  # below, at and past a fold
        for i in range(n):
            metrics.observe_variant_one("challenger", "high" if i % 2 else "low", 0.001)
        metrics.observe_variant_one("champion", "medium", 0.02)
        samples = _samples(metrics)
        assert samples[(predictions, (("risk_level", "low"), ("variant", "challenger")))] == (
            (n + 1) // 2
        )
        high = (predictions, (("risk_level", "high"), ("variant", "challenger")))
        assert samples.get(high, 0) == n // 2
        assert samples[(count, (("variant", "challenger"),))] == n
        assert abs(samples[(total, (("variant", "challenger"),))] - 0.001 * n) < 1e-9
        bucket = "churnops_variant_scoring_seconds_bucket"
        assert samples[(bucket, (("le", "0.001"), ("variant", "challenger")))] == n
        assert samples[(bucket, (("le", "0.01"), ("variant", "champion")))] == 0
        assert samples[(bucket, (("le", "0.025"), ("variant", "champion")))] == 1
        metrics = ApiMetrics()
