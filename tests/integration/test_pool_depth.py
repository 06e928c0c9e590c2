"""A pool's depth on DynamoDB Local: counted exactly up to COUNTED_SLOTS_PER_SHARD a shard, estimated past it
from one bounded Query a shard (`python -m tests.scale.million` does the same at a million codes)."""

from __future__ import annotations

import pytest

from codepool.config import PoolConfig, Settings
from codepool.formats import CodeFormat
from codepool.queries import pool_depth, pool_stats
from codepool.refilling import refill_pool
from codepool.runtime import Container

pytestmark = pytest.mark.integration

POOL = PoolConfig(name="deep", format=CodeFormat(alphabet="unambiguous", length=8), target=12_000, shards=4)


async def test_a_deep_pool_is_estimated_from_one_bounded_query_a_shard_within_its_margin(
    local_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Container.open(local_table, pools={POOL.name: POOL}) as container:
        await refill_pool(container.repository, POOL)
        exact = await pool_depth(container.repository, POOL)
        monkeypatch.setattr("codepool.queries.COUNTED_SLOTS_PER_SHARD", 1_000)
        estimated = await pool_depth(container.repository, POOL)
        stats = (await pool_stats(container.repository, POOL)).to_json()
    assert (exact.available, exact.exact) == (12_000, True)
    assert not estimated.exact
    assert abs(estimated.available - 12_000) <= 2.5 * estimated.margin, estimated
    assert (stats["countsExact"], stats["countsMargin"]) == (False, estimated.margin)
    assert abs(stats["issued"]) <= 2.5 * estimated.margin  # issued is the ledger less the estimate: nothing issued


async def test_a_shard_holding_exactly_the_counted_slots_is_exact(
    local_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_shard = PoolConfig(name="one", format=POOL.format, target=500, low_watermark=0, shards=1)
    monkeypatch.setattr("codepool.queries.COUNTED_SLOTS_PER_SHARD", 500)
    async with Container.open(local_table, pools={one_shard.name: one_shard}) as container:
        await refill_pool(container.repository, one_shard)
        depth = await pool_depth(container.repository, one_shard)
    assert (depth.available, depth.exact) == (500, True)
