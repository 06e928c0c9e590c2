"""Knowing a pool's depth costs the same at any size: a bounded count per shard, then an estimate with its margin."""

from __future__ import annotations

import pytest

from codepool.config import PoolConfig
from codepool.formats import CodeFormat
from codepool.model import Candidate, shard_of
from codepool.queries import pool_depth, pool_stats
from tests.support.fakes import InMemoryRepository

BIG = PoolConfig(name="big", format=CodeFormat(alphabet="unambiguous", length=8), target=100_000, shards=4)


async def filled(pool: PoolConfig, codes: int) -> InMemoryRepository:
    repository = InMemoryRepository()
    fmt = pool.format
    drawn = {fmt.canonical(code): code for code in fmt.generate_many(codes)}
    while len(drawn) < codes:
        drawn.update((fmt.canonical(code), code) for code in fmt.generate_many(codes - len(drawn)))
    candidates = [Candidate(key=key, code=code, shard=shard_of(key, pool.shards)) for key, code in drawn.items()]
    await repository.add_available(pool.name, candidates)
    return repository


def test_key_share_is_the_share_of_random_keys_sorting_at_or_before_a_key() -> None:
    fmt = BIG.format
    keys = sorted(fmt.canonical(code) for code in fmt.generate_many(20_000))
    for index in (0, 1_000, 9_999, 15_000, 19_999):
        assert fmt.key_share(keys[index]) == pytest.approx((index + 1) / len(keys), abs=0.02)
    # A one-case alphabet is keyed in upper case; of its 16 keys in sort order AA is the 1st, AB the 2nd, BA the 5th.
    lower = CodeFormat(alphabet="abcd", length=2)
    assert [lower.key_share(key) for key in ("AA", "AB", "BA", "DD")] == [1 / 16, 2 / 16, 5 / 16, 1.0]


async def test_a_pool_within_the_counted_slots_is_counted_exactly() -> None:
    repository = await filled(BIG, 12_000)
    depth = await pool_depth(repository, BIG)
    assert (depth.available, depth.exact, depth.margin) == (12_000, True, 0)
    stats = (await pool_stats(repository, BIG)).to_json()
    assert (stats["available"], stats["countsExact"], stats["countsMargin"]) == (12_000, True, 0)


@pytest.mark.parametrize("codes", [40_000, 120_000])
async def test_a_bigger_pool_is_estimated_within_its_margin_from_a_bounded_count(
    codes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("codepool.queries.COUNTED_SLOTS_PER_SHARD", 2_000)
    repository = await filled(BIG, codes)
    repository.requests = 0
    depth = await pool_depth(repository, BIG)
    assert repository.requests == BIG.shards  # one bounded count per shard, whatever the pool's size
    assert not depth.exact
    assert abs(depth.available - codes) <= 2.5 * depth.margin, (depth, codes)  # 4.9 standard errors
    assert 0.005 * codes < depth.margin < 0.1 * codes


async def test_an_imported_only_pool_is_counted_exactly_whatever_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("codepool.queries.COUNTED_SLOTS_PER_SHARD", 100)
    cards = PoolConfig(
        name="cards", format=CodeFormat(alphabet="numeric", length=8), target=10, low_watermark=0, imported_only=True
    )
    repository = await filled(cards, 3_000)
    depth = await pool_depth(repository, cards)
    assert (depth.available, depth.exact) == (3_000, True)
