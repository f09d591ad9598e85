"""Canary routing: the split honours each step's weight, and a customer keeps their variant."""

from __future__ import annotations

import subprocess
import sys
import timeit

import pytest

from churnops.deployment.routing import bucket, routes_to_challenger

IDS = [f"{i:04d}-{chr(65 + i % 26)}XYZ" for i in range(10_000)]


@pytest.mark.parametrize("weight", [5.0, 25.0, 50.0, 100.0])
def test_split_is_within_one_point_of_each_weight(weight: float) -> None:
    share = sum(routes_to_challenger(i, salt="s1", weight=weight) for i in IDS) / len(IDS)
    assert abs(100 * share - weight) <= 1.0


def test_customers_keep_their_variant_as_the_weight_grows() -> None:
    on_at = {
        w: {i for i in IDS if routes_to_challenger(i, salt="s", weight=w)}
        for w in (5.0, 25.0, 50.0, 100.0)
    }
    assert on_at[5.0] <= on_at[25.0] <= on_at[50.0] <= on_at[100.0]
    assert len(on_at[100.0]) == len(IDS)


def test_same_bucket_in_another_process_and_another_salt_reshuffles() -> None:
    code = (
        "from churnops.deployment.routing import bucket;"
        "print(','.join(str(bucket(f'c{i}', 'salt')) for i in range(50)))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert other.stdout.strip() == ",".join(str(bucket(f"c{i}", "salt")) for i in range(50))
    moved = sum(bucket(f"c{i}", "salt") != bucket(f"c{i}", "other") for i in range(50))
    assert moved > 40


def test_routing_costs_under_five_microseconds() -> None:
    n = 20_000
    seconds = min(
        timeit.repeat(
            lambda: routes_to_challenger("7590-VHVEG", salt="0123456789abcdef", weight=25.0),
            number=n,
            repeat=3,
        )
    )
    assert seconds / n < 5e-6


@pytest.mark.parametrize("weight", [0.0, 5.0, 50.0, 99.99, 100.0])
def test_the_api_route_decides_as_the_routing_rule(weight: float) -> None:
    from churnops.api.rollout import Route
    from churnops.deployment.routing import cutoff

    route = Route(mode="canary", salt="s1", cut=cutoff(weight))
    assert [route.to_challenger(i) for i in IDS] == [
        routes_to_challenger(i, salt="s1", weight=weight) for i in IDS
    ]
