"""Read-only use cases: look up an issued code, count a pool and tell its history, know when it is exhausted."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from codepool.config import PoolConfig, resolve_pool
from codepool.errors import AmbiguousCodeError, CodeNotFoundError, InvalidCodeError, InvalidRequestError
from codepool.formats import CheckCharacterError, compact
from codepool.model import IssuedCode, PoolLedger, PoolStats, issue_rate
from codepool.repository import CodeRepository
from codepool.tasks import run_pair, run_together

MAX_TYPED_CODE_LENGTH = 256
POOL_STATS_TTL_SECONDS = 5.0
"""How long a container reuses a pool's counts for `GET /pools/{pool}`."""


async def available_count(repository: CodeRepository, pool: PoolConfig) -> int:
    return sum(await _available_by_shard(repository, pool))


async def _available_by_shard(repository: CodeRepository, pool: PoolConfig) -> list[int]:
    return await run_together(repository.count_available(pool.name, shard) for shard in range(pool.shards))


async def pool_stats(repository: CodeRepository, pool: PoolConfig, now: float | None = None) -> PoolStats:
    """Counts (one `Select=COUNT` query per shard) and the ledger (one read): the cost of a call does not
    depend on how many codes are issued per second."""
    by_shard, ledger = await run_pair(_available_by_shard(repository, pool), repository.get_ledger(pool.name))
    available = sum(by_shard)
    issued = ledger.issued(available)
    rate, window = issue_rate(ledger.snapshots, time.time() if now is None else now, issued)
    return PoolStats(
        pool=pool.name,
        available=available,
        by_shard=by_shard,
        target=pool.target,
        low_watermark=pool.low_watermark,
        keyspace=pool.format.keyspace,
        usable_keyspace=ledger.imported if pool.imported_only else pool.format.usable_keyspace(),
        issued=issued,
        issue_rate_per_hour=rate,
        rate_window_seconds=window,
        exhausted=available == 0 and exhaustion_reason(pool, ledger) is not None,
        swept=swept(pool, ledger),
    )


def swept(pool: PoolConfig, ledger: PoolLedger) -> bool:
    return ledger.sweep is not None and ledger.sweep.done(pool.format.keyspace)


def exhaustion_reason(pool: PoolConfig, ledger: PoolLedger) -> str | None:
    """Why no refill can ever add a code to the pool (imported-only, or every code of the keyspace visited), or
    None while one can."""
    if pool.imported_only:
        return "it is imported-only: only `unique-codes import` adds codes to it"
    if swept(pool, ledger):
        return f"every other code of its keyspace ({pool.format.keyspace:,}, less blocked ones) is issued"
    return None


async def lookup_code(
    repository: CodeRepository,
    pools: Mapping[str, PoolConfig],
    typed: str,
    pool: str | None = None,
    *,
    any_pool: bool = False,
) -> IssuedCode:
    """The issued code a person typed, resolved against the pools' formats (`CodeFormat.resolve`: case,
    separators, confusables), or only against `pool`'s. Only a code issued by a pool whose format accepts the
    text is an answer, so another pool's code with a similar spelling never is; two answers are ambiguous.
    A wrong check character (and no pool accepting the text) is `InvalidCodeError`, found without a read.

    `any_pool`: when the pools are not known (`unique-codes lookup` without a pools file, as before pools were
    consulted), text that is no known pool's issued code is looked up as typed, then in upper case, whatever
    pool issued it."""
    if not compact(typed.strip()) or len(typed) > MAX_TYPED_CODE_LENGTH:
        raise InvalidRequestError(f"a code to look up must be 1 to {MAX_TYPED_CODE_LENGTH} characters")
    chosen = [resolve_pool(pools, pool)] if pool is not None else list(pools.values())
    owners: dict[str, set[str]] = {}
    mistyped: list[str] = []
    for candidate in chosen:
        try:
            key = candidate.format.resolve(typed)
        except CheckCharacterError:
            mistyped.append(candidate.name)
            continue
        if key is not None:
            owners.setdefault(key, set()).add(candidate.name)
    if not owners and mistyped:
        raise InvalidCodeError(f"{typed!r} has a wrong check character for pool {', '.join(mistyped)}: a typo?")
    found = await repository.find_issued(list(owners)) if owners else {}
    matches = [record for key, record in found.items() if record.pool in owners[key]]
    if len(matches) > 1:
        raise AmbiguousCodeError(typed, sorted(record.pool for record in matches))
    if not matches:
        if any_pool:
            return await _lookup_as_typed(repository, typed)
        raise CodeNotFoundError(typed)
    return matches[0]


async def _lookup_as_typed(repository: CodeRepository, typed: str) -> IssuedCode:
    exact = compact(typed.strip())
    spellings = list(dict.fromkeys([exact, exact.upper()]))
    found = await repository.find_issued(spellings)
    for spelling in spellings:
        if spelling in found:
            return found[spelling]
    raise CodeNotFoundError(typed)


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
