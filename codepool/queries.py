"""Read-only use cases: look up an issued code, count a pool's available codes."""

from __future__ import annotations

import asyncio

from codepool.config import PoolConfig
from codepool.errors import CodeNotFoundError, InvalidRequestError
from codepool.formats import lookup_keys
from codepool.model import IssuedCode, PoolStats
from codepool.repository import CodeRepository

MAX_TYPED_CODE_LENGTH = 256


async def available_count(repository: CodeRepository, pool: PoolConfig) -> int:
    return sum(await _available_by_shard(repository, pool))


async def _available_by_shard(repository: CodeRepository, pool: PoolConfig) -> list[int]:
    return list(await asyncio.gather(*(repository.count_available(pool.name, s) for s in range(pool.shards))))


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
