"""Canary routing: the split honours each step's weight, and a customer keeps their variant."""

from __future__ import annotations

import subprocess
import sys
import timeit

import pytest

from churnops.deployment.routing import (
    BUCKETS,
    CRC_SALT_PREFIX,
    Bucketer,
    bucket,
    new_salt,
    routes_to_challenger,
)

IDS = [f"{i:04d}-{chr(65 + i % 26)}XYZ" for i in range(10_000)]
# Both hashes: CRC-32 (every salt `new_salt` makes) and keyed BLAKE2b (salts made before).
SALTS = [CRC_SALT_PREFIX + "5eed", "s1"]


@pytest.mark.parametrize("salt", SALTS)
@pytest.mark.parametrize("weight", [5.0, 25.0, 50.0, 100.0])
def test_split_is_within_one_point_of_each_weight(weight: float, salt: str) -> None:
    share = sum(routes_to_challenger(i, salt=salt, weight=weight) for i in IDS) / len(IDS)
    assert abs(100 * share - weight) <= 1.0


@pytest.mark.parametrize("salt", SALTS)
def test_buckets_are_even_for_sequential_and_numeric_ids(salt: str) -> None:
    # Ten deciles of the buckets, over ids that differ in a digit or two: CRC is linear, the
    # golden-ratio mix must still spread them (each decile within 1 point of 10%).
    for ids in (IDS, [str(i) for i in range(10_000)], [f"cust-{i}" for i in range(10_000)]):
        counts = [0] * 10
        for i in ids:
            counts[bucket(i, salt) * 10 // BUCKETS] += 1
        assert all(abs(c / len(ids) - 0.1) <= 0.01 for c in counts), counts


def test_new_deployments_route_by_crc_and_older_salts_keep_blake2b() -> None:
    salt = new_salt()
    assert salt.startswith(CRC_SALT_PREFIX) and new_salt() != salt
    assert Bucketer(salt).keyed is None
    assert Bucketer("0123456789abcdef").keyed is not None  # a salt from before: as it routed
    assert bucket("7590-VHVEG", "0123456789abcdef") == 6971  # the BLAKE2b bucket, unchanged


@pytest.mark.parametrize("salt", SALTS)
def test_customers_keep_their_variant_as_the_weight_grows(salt: str) -> None:
    on_at = {
        w: {i for i in IDS if routes_to_challenger(i, salt=salt, weight=w)}
        for w in (5.0, 25.0, 50.0, 100.0)
    }
    assert on_at[5.0] <= on_at[25.0] <= on_at[50.0] <= on_at[100.0]
    assert len(on_at[100.0]) == len(IDS)


@pytest.mark.parametrize("prefix", ["", CRC_SALT_PREFIX])
def test_same_bucket_in_another_process_and_another_salt_reshuffles(prefix: str) -> None:
    salt, other_salt = prefix + "salt", prefix + "other"
    code = (
        "from churnops.deployment.routing import bucket;"
        f"print(','.join(str(bucket(f'c{{i}}', {salt!r})) for i in range(50)))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert other.stdout.strip() == ",".join(str(bucket(f"c{i}", salt)) for i in range(50))
    moved = sum(bucket(f"c{i}", salt) != bucket(f"c{i}", other_salt) for i in range(50))
    assert moved > 40
    # A new salt draws a new 25% group, not the old one again: the overlap is about 25% of it.
    first = {i for i in IDS if routes_to_challenger(i, salt=salt, weight=25.0)}
    again = {i for i in IDS if routes_to_challenger(i, salt=other_salt, weight=25.0)}
    assert 0.20 <= len(first & again) / len(first) <= 0.30


@pytest.mark.serial  # asserts a time: run alone, not beside another test
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


@pytest.mark.parametrize("salt", SALTS)
@pytest.mark.parametrize("weight", [0.0, 5.0, 50.0, 99.99, 100.0])
def test_the_api_route_decides_as_the_routing_rule(weight: float, salt: str) -> None:
    from churnops.api.rollout import Route
    from churnops.deployment.routing import cutoff

    route = Route(mode="canary", salt=salt, cut=cutoff(weight))
    assert [route.to_challenger(i) for i in IDS] == [
        routes_to_challenger(i, salt=salt, weight=weight) for i in IDS
    ]
