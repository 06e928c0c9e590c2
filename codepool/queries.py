"""Read-only use cases: look up an issued code, count a pool's available codes."""

from __future__ import annotations

import time
from collections.abc import Callable

from codepool.config import PoolConfig
from codepool.errors import CodeNotFoundError, InvalidRequestError
from codepool.formats import lookup_keys
from codepool.model import IssuedCode, PoolStats
from codepool.repository import CodeRepository
from codepool.tasks import run_together

MAX_TYPED_CODE_LENGTH = 256
POOL_STATS_TTL_SECONDS = 5.0
"""How long a container reuses a pool's counts for `GET /pools/{pool}`."""


async def available_count(repository: CodeRepository, pool: PoolConfig) -> int:
    return sum(await _available_by_shard(repository, pool))


async def _available_by_shard(repository: CodeRepository, pool: PoolConfig) -> list[int]:
    return await run_together(repository.count_available(pool.name, shard) for shard in range(pool.shards))


async def pool_stats(repository: CodeRepository, pool: PoolConfig) -> PoolStats:
    by_shard = await _available_by_shard(repository, pool)
    return PoolStats(
        pool=pool.name,
        available=sum(by_shard),
        by_shard=by_shard,
        target=pool.target,
        low_watermark=pool.low_watermark,
    )


async def lookup_code(repository: CodeRepository, typed: str) -> IssuedCode:
    """The issued code a person typed, whatever the case or separators."""
    keys = lookup_keys(typed)
    if not keys[0] or len(typed) > MAX_TYPED_CODE_LENGTH:
        raise InvalidRequestError(f"a code to look up must be 1 to {MAX_TYPED_CODE_LENGTH} characters")
    found = await repository.get_issued(keys)
    if found is None:
        raise CodeNotFoundError(typed)
    return found


class PoolStatsCache:
    """A pool's counts, reused for `ttl` seconds: counting reads every available slot (`Select=COUNT` over each
    shard), so without it the read cost of `GET /pools/{pool}` would grow with request rate times pool size.
    With it, one container counts a pool at most once per `ttl`, whatever its request rate."""

    def __init__(
        self,
        repository: CodeRepository,
        ttl: float = POOL_STATS_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._ttl = ttl
        self._clock = clock
        self._counted: dict[str, tuple[float, PoolStats]] = {}

    async def get(self, pool: PoolConfig) -> PoolStats:
        now = self._clock()
        cached = self._counted.get(pool.name)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        stats = await pool_stats(self._repository, pool)
        self._counted[pool.name] = (now, stats)
        return stats
