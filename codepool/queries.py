"""Read-only use cases: look up an issued code, count a pool and tell its history, know when it is exhausted."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from codepool.config import PoolConfig, resolve_pool
from codepool.errors import AmbiguousCodeError, CodeNotFoundError, InvalidCodeError, InvalidRequestError
from codepool.formats import CheckCharacterError, compact
from codepool.model import IssuedCode, PoolLedger, PoolStats, issue_rate
from codepool.repository import CodeRepository
from codepool.tasks import run_pair, run_together

MAX_TYPED_CODE_LENGTH = 256
POOL_STATS_TTL_SECONDS = 5.0
"""How long a container reuses a pool's counts for `GET /pools/{pool}`."""


COUNTED_SLOTS_PER_SHARD = 5_000
"""Slots of a shard counted one by one (one Query of about 200 KB, 25 read units); past this the shard's depth is
estimated from where the count stopped (`PoolDepth`), so knowing a pool's depth costs the same at any size."""
MARGIN_Z = 1.96
"""The margin given with an estimate covers 95 % of its error (a binomial count's normal approximation)."""


@dataclass(frozen=True, slots=True)
class PoolDepth:
    """A pool's available codes by shard: counted exactly, or estimated with a 95 % `margin` (0 when exact).

    A shard with more than COUNTED_SLOTS_PER_SHARD slots is counted that far in key order, and, since a
    generated code's characters are uniform and independent, the slots counted are a binomial share of the
    shard's, the share of the keyspace sorting up to the last key counted (`CodeFormat.key_share`): the
    estimate is count / share, its standard error sqrt(estimate x (1 - share) / share), about 1.4 % of it at
    5,000 counted slots. An imported-only pool's codes are whatever was printed, not uniform, so it is always
    counted exactly, whatever its size."""

    by_shard: list[int]
    margin: int = 0

    @property
    def available(self) -> int:
        return sum(self.by_shard)

    @property
    def exact(self) -> bool:
        return self.margin == 0


async def available_count(repository: CodeRepository, pool: PoolConfig) -> int:
    return (await pool_depth(repository, pool)).available


async def pool_depth(repository: CodeRepository, pool: PoolConfig) -> PoolDepth:
    limit = None if pool.imported_only else COUNTED_SLOTS_PER_SHARD
    counts = await run_together(repository.count_available(pool.name, shard, limit) for shard in range(pool.shards))
    by_shard: list[int] = []
    variance = 0.0
    for counted in counts:
        if counted.last_key is None:
            by_shard.append(counted.count)
            continue
        share = pool.format.key_share(counted.last_key)
        estimate = counted.count / share
        by_shard.append(round(estimate))
        variance += estimate * (1 - share) / share
    margin = math.ceil(MARGIN_Z * math.sqrt(variance)) if variance else 0
    if margin == 0 and any(counted.last_key is not None for counted in counts):
        margin = 1
    return PoolDepth(by_shard=by_shard, margin=margin)


async def pool_stats(repository: CodeRepository, pool: PoolConfig, now: float | None = None) -> PoolStats:
    """The pool's depth (`pool_depth`: a bounded count per shard) and its ledger (one read): the cost of a call
    depends neither on how many codes are issued per second nor on how many are available."""
    depth, ledger = await run_pair(pool_depth(repository, pool), repository.get_ledger(pool.name))
    available = depth.available
    issued = ledger.issued(available)
    rate, window = issue_rate(ledger.snapshots, time.time() if now is None else now, issued)
    return PoolStats(
        pool=pool.name,
        available=available,
        by_shard=depth.by_shard,
        target=pool.target,
        low_watermark=pool.low_watermark,
        keyspace=pool.format.keyspace,
        usable_keyspace=ledger.imported if pool.imported_only else pool.format.usable_keyspace(),
        issued=issued,
        issue_rate_per_hour=rate,
        rate_window_seconds=window,
        exhausted=available == 0 and exhaustion_reason(pool, ledger) is not None,
        swept=swept(pool, ledger),
        margin=depth.margin,
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
    """A pool's counts, reused for `ttl` seconds: one container counts a pool (`pool_depth`, up to
    COUNTED_SLOTS_PER_SHARD slots a shard) at most once per `ttl`, whatever its request rate."""

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
