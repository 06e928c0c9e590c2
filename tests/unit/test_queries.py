"""Pool counts are reused for a few seconds per container, so their read cost does not grow with request rate."""

from __future__ import annotations

from codepool.config import PoolConfig
from codepool.formats import CodeFormat
from codepool.queries import POOL_STATS_TTL_SECONDS, PoolStatsCache
from codepool.refilling import refill_pool
from tests.support.fakes import InMemoryRepository

POOL = PoolConfig(name="vouchers", format=CodeFormat(alphabet="unambiguous", length=8), target=100, low_watermark=20)


async def test_pool_counts_are_read_once_per_ttl_whatever_the_request_rate() -> None:
    repository = InMemoryRepository()
    await refill_pool(repository, POOL, 100)
    now = [1000.0]
    cache = PoolStatsCache(repository, clock=lambda: now[0])
    repository.requests = 0
    for _ in range(50):
        assert (await cache.get(POOL)).available == 100
    assert repository.requests == POOL.shards
    now[0] += POOL_STATS_TTL_SECONDS
    await cache.get(POOL)
    assert repository.requests == 2 * POOL.shards
