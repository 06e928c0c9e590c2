"""The candidate prefetcher on the in-memory fake: the window starts at INITIAL_WINDOW, halves after a lost race
(down to MIN_WINDOW) and doubles after a window used without one (up to MAX_WINDOW); stale candidates are dropped,
the rest go back first; a throttled claim keeps every candidate and the window; a short pool is `PoolEmptyError`."""

from __future__ import annotations

import asyncio

import pytest

from codepool.candidates import INITIAL_WINDOW, MAX_WINDOW, MIN_WINDOW, CandidatePrefetcher
from codepool.config import PoolConfig
from codepool.errors import PoolEmptyError
from codepool.formats import CodeFormat
from codepool.model import Candidate, IssuedCode
from codepool.refilling import refill_pool
from codepool.repository import ClaimOutcome
from tests.support.fakes import InMemoryRepository

FORMAT = CodeFormat(alphabet="unambiguous", length=8)
POOL = PoolConfig(name="vouchers", format=FORMAT, target=1_000, low_watermark=0, shards=1)
"""One shard: every prefetch is one query, so what the queue holds after it is the window it asked for."""
OTHER = PoolConfig(name="tickets", format=FORMAT, target=1_000, low_watermark=0, shards=1)


async def filled(*pools: PoolConfig, codes: int = 1_000) -> InMemoryRepository:
    repository = InMemoryRepository()
    for pool in pools:
        await refill_pool(repository, pool, codes)
    repository.requests = 0
    return repository


async def claim(repository: InMemoryRepository, prefetcher: CandidatePrefetcher, pool: PoolConfig, count: int) -> None:
    """What the claim loop does on a won race: take, claim in one write, settle."""
    candidates = await prefetcher.take(pool, count)
    records = [IssuedCode(code=c.code, pool=pool.name, issued_at="2026-11-28T08:00:00.000Z") for c in candidates]
    outcome = await repository.claim(pool.name, candidates, records, None, 0)
    assert outcome.issued is not None
    prefetcher.settle(pool.name, candidates, outcome)


async def fetched_by_next_prefetch(
    repository: InMemoryRepository, prefetcher: CandidatePrefetcher, pool: PoolConfig
) -> int:
    """Use up what the queue holds, then claim one more: how many candidates the prefetch that caused fetched."""
    while prefetcher.held(pool.name):
        await claim(repository, prefetcher, pool, 1)
    before = repository.requests
    await claim(repository, prefetcher, pool, 1)
    assert repository.requests == before + 2, "one query, one claim"
    return prefetcher.held(pool.name) + 1


async def test_the_first_window_is_the_initial_one() -> None:
    repository = await filled(POOL)
    prefetcher = CandidatePrefetcher(repository)
    assert prefetcher.window(POOL.name) == INITIAL_WINDOW
    assert prefetcher.held(POOL.name) == 0
    taken = await prefetcher.take(POOL, 1)
    assert len(taken) == 1
    assert prefetcher.held(POOL.name) == INITIAL_WINDOW - 1
    assert repository.requests == 1
    # The rest of the window comes from the queue, without another query.
    await prefetcher.take(POOL, INITIAL_WINDOW - 1)
    assert repository.requests == 1
    assert prefetcher.held(POOL.name) == 0


async def test_a_window_used_without_a_lost_race_doubles_the_next_up_to_the_maximum() -> None:
    repository = await filled(POOL)
    prefetcher = CandidatePrefetcher(repository)
    sizes = [await fetched_by_next_prefetch(repository, prefetcher, POOL) for _ in range(5)]
    assert sizes == [INITIAL_WINDOW, 2 * INITIAL_WINDOW, MAX_WINDOW, MAX_WINDOW, MAX_WINDOW]
    assert 2 * INITIAL_WINDOW < MAX_WINDOW == 4 * INITIAL_WINDOW
    assert prefetcher.window(POOL.name) == MAX_WINDOW


async def test_a_lost_race_drops_the_window_and_halves_the_next_down_to_the_minimum() -> None:
    repository = await filled(POOL)
    prefetcher = CandidatePrefetcher(repository)
    windows = []
    for _ in range(4):
        [candidate] = await prefetcher.take(POOL, 1)
        assert prefetcher.held(POOL.name) == prefetcher.window(POOL.name) - 1
        prefetcher.settle(POOL.name, [candidate], ClaimOutcome(lost=[candidate]))
        assert prefetcher.held(POOL.name) == 0, "another container works this stretch: the window is dropped"
        windows.append(prefetcher.window(POOL.name))
    assert windows == [INITIAL_WINDOW // 2, MIN_WINDOW, MIN_WINDOW, MIN_WINDOW]
    assert INITIAL_WINDOW // 4 == MIN_WINDOW


async def test_after_a_lost_race_the_next_window_is_not_doubled_but_the_one_after_it_is() -> None:
    repository = await filled(POOL)
    prefetcher = CandidatePrefetcher(repository)
    [candidate] = await prefetcher.take(POOL, 1)
    prefetcher.settle(POOL.name, [candidate], ClaimOutcome(lost=[candidate]))
    halved = INITIAL_WINDOW // 2
    assert await fetched_by_next_prefetch(repository, prefetcher, POOL) == halved
    assert await fetched_by_next_prefetch(repository, prefetcher, POOL) == 2 * halved
    assert await fetched_by_next_prefetch(repository, prefetcher, POOL) == 4 * halved


async def test_a_lost_race_keeps_the_attempts_other_candidates_first() -> None:
    repository = await filled(POOL)
    prefetcher = CandidatePrefetcher(repository)
    first, lost, third = await prefetcher.take(POOL, 3)
    prefetcher.settle(POOL.name, [first, lost, third], ClaimOutcome(lost=[lost]))
    assert prefetcher.held(POOL.name) == 2, "the rest of the window is dropped, the attempt's unused candidates kept"
    assert await prefetcher.take(POOL, 2) == [first, third]
    assert repository.requests == 1


async def test_stale_candidates_are_dropped_and_the_unused_go_back_first() -> None:
    repository = await filled(POOL)
    prefetcher = CandidatePrefetcher(repository)
    first, stale, third = await prefetcher.take(POOL, 3)
    prefetcher.settle(POOL.name, [first, stale, third], ClaimOutcome(stale=[stale]))
    assert prefetcher.window(POOL.name) == INITIAL_WINDOW, "a stale slot is not a lost race"
    assert prefetcher.held(POOL.name) == INITIAL_WINDOW - 1
    assert await prefetcher.take(POOL, 2) == [first, third]
    rest = await prefetcher.take(POOL, prefetcher.held(POOL.name))
    assert stale not in rest
    assert repository.requests == 1
    # The window was used without a lost race: the next one is doubled.
    assert await fetched_by_next_prefetch(repository, prefetcher, POOL) == 2 * INITIAL_WINDOW


async def test_a_throttled_claim_keeps_every_candidate_and_the_window() -> None:
    repository = await filled(POOL)
    prefetcher = CandidatePrefetcher(repository)
    taken = await prefetcher.take(POOL, 3)
    prefetcher.settle(POOL.name, taken, ClaimOutcome(throttled="ThrottlingError"))
    assert prefetcher.window(POOL.name) == INITIAL_WINDOW
    assert prefetcher.held(POOL.name) == INITIAL_WINDOW
    assert await prefetcher.take(POOL, 3) == taken, "the same candidates, in the same order, first"
    assert repository.requests == 1
    # Throttling says nothing about contention: the next window still doubles.
    assert await fetched_by_next_prefetch(repository, prefetcher, POOL) == 2 * INITIAL_WINDOW


async def test_an_issued_claim_leaves_the_queue_and_the_window_alone() -> None:
    repository = await filled(POOL)
    prefetcher = CandidatePrefetcher(repository)
    await claim(repository, prefetcher, POOL, 2)
    assert prefetcher.held(POOL.name) == INITIAL_WINDOW - 2
    assert prefetcher.window(POOL.name) == INITIAL_WINDOW


async def test_more_codes_than_the_window_are_fetched_in_one_query() -> None:
    repository = await filled(POOL)
    prefetcher = CandidatePrefetcher(repository)
    taken = await prefetcher.take(POOL, 25)
    assert len({candidate.key for candidate in taken}) == 25 > INITIAL_WINDOW
    assert repository.requests == 1
    assert prefetcher.held(POOL.name) == 0


async def test_each_pool_has_a_window_of_its_own() -> None:
    repository = await filled(POOL, OTHER)
    prefetcher = CandidatePrefetcher(repository)
    [lost] = await prefetcher.take(POOL, 1)
    await prefetcher.take(OTHER, 1)
    prefetcher.settle(POOL.name, [lost], ClaimOutcome(lost=[lost]))
    assert prefetcher.window(POOL.name) == INITIAL_WINDOW // 2
    assert prefetcher.window(OTHER.name) == INITIAL_WINDOW
    assert prefetcher.held(OTHER.name) == INITIAL_WINDOW - 1


async def test_a_prefetch_tries_every_shard_before_the_pool_counts_as_empty() -> None:
    sharded = PoolConfig(name="sharded", format=FORMAT, target=1_000, low_watermark=0, shards=4)
    repository = await filled(sharded, codes=10)
    assert len({shard for (_, shard) in repository.slots}) > 1
    prefetcher = CandidatePrefetcher(repository)
    with pytest.raises(PoolEmptyError, match="'sharded' has no codes left"):
        await prefetcher.take(sharded, 11)
    assert repository.requests == sharded.shards
    # What it found stays queued, once each: the ten codes can still be taken.
    taken = await prefetcher.take(sharded, 10)
    assert {candidate.key for candidate in taken} == repository.available_keys(sharded.name)


async def test_an_empty_pool_is_pool_empty() -> None:
    repository = InMemoryRepository()
    prefetcher = CandidatePrefetcher(repository)
    with pytest.raises(PoolEmptyError) as raised:
        await prefetcher.take(POOL, 1)
    assert raised.value.pool == POOL.name
    assert raised.value.retry_after > 0
    assert prefetcher.window(POOL.name) == INITIAL_WINDOW


async def test_slots_added_directly_are_candidates() -> None:
    repository = InMemoryRepository()
    slots = [Candidate(key=f"AAAA{n:04d}", code=f"AAAA-{n:04d}", shard=0) for n in range(3)]
    await repository.add_available(POOL.name, slots)
    prefetcher = CandidatePrefetcher(repository)
    with pytest.raises(PoolEmptyError):
        await prefetcher.take(POOL, 4)
    assert sorted(await prefetcher.take(POOL, 3), key=lambda c: c.key) == slots


class YieldingRepository(InMemoryRepository):
    """Each query yields to the loop first, as a real one does, so concurrent takes interleave."""

    async def find_candidates(self, pool: str, shard: int, start: str, limit: int) -> list[Candidate]:
        await asyncio.sleep(0)
        return await super().find_candidates(pool, shard, start, limit)


async def test_concurrent_takes_never_hand_out_or_queue_a_candidate_twice() -> None:
    repository = YieldingRepository()
    await refill_pool(repository, POOL, 40)  # fewer than the windows ask for: every prefetch sees the same slots
    prefetcher = CandidatePrefetcher(repository)
    taken = await asyncio.gather(*(prefetcher.take(POOL, 5) for _ in range(8)))
    for batch in taken:
        assert len({candidate.key for candidate in batch}) == 5  # one claim never names an item twice
    queued = list(prefetcher._queues[POOL.name])
    assert len(queued) == len({candidate.key for candidate in queued})


async def test_claiming_never_compiles_the_blocklist() -> None:
    """The prefetcher starts its scans at `random_key` (any key of the keyspace, blocked or not): the blocklist is
    a refiller's concern, and compiling it took 12 ms of the issuer's first request."""
    fmt = CodeFormat(alphabet="unambiguous", length=8)
    pool = PoolConfig(name="fresh", format=fmt, target=1_000, low_watermark=0, shards=2)
    repository = InMemoryRepository()
    for n in range(50):
        code = f"{n:08d}".translate(str.maketrans("01", "AB"))
        repository.slots.setdefault((pool.name, n % 2), {})[fmt.canonical(code)] = code
    assert "_regex" not in vars(fmt._blocked)
    await claim(repository, CandidatePrefetcher(repository), pool, 3)
    assert "_regex" not in vars(fmt._blocked)
    fmt.generate()
    assert "_regex" in vars(fmt._blocked)  # the control: drawing a code to issue does compile it


def test_a_random_key_is_a_key_of_the_keyspace() -> None:
    fmt = CodeFormat(alphabet="unambiguous", length=6, prefix="VIP-", pattern="###-###")
    keys = {fmt.random_key() for _ in range(200)}
    assert len(keys) > 190
    assert all(len(key) == 9 and key.startswith("VIP") and "-" not in key for key in keys)
