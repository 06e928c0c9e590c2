"""Refill a pool: generate fresh codes, skip those already issued, write the rest as available slots."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from codepool.config import MAX_TARGET, PoolConfig
from codepool.errors import InvalidRequestError, RefillError
from codepool.model import Candidate, RefillSummary, shard_of
from codepool.queries import available_count
from codepool.repository import CodeRepository

REQUESTS_IN_FLIGHT = 8
"""The refill's concurrency, and its only owner: steps run this many at a time, and each step sends its
DynamoDB requests one after another, so at most this many requests are in flight."""
REFILL_STEP = 100
"""Candidates per step: one BatchGetItem (100 keys), then up to four BatchWriteItem (25 items each)."""
REFILL_ROUND_SIZE = 2_000
MIN_REFILL_ROUND = 200
AVAILABLE_CHECK_RATIO = 1000
MAX_BARREN_ROUNDS = 20
"""Refill rounds in a row that find no unissued code before the keyspace is declared exhausted."""


async def refill_pool(
    repository: CodeRepository,
    pool: PoolConfig,
    target: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> RefillSummary:
    """Top the pool up to `target` (default: the pool's) with fresh codes that were never issued.

    Safe to overlap with other refills and with claims: a slot is keyed by its code, so writing the same code
    twice is one slot; and a claim re-checks "never issued" atomically, so a slot added for a code that was
    claimed meanwhile is rejected and deleted, never issued twice.
    """
    started = time.perf_counter()
    goal = pool.target if target is None else target
    if not 0 <= goal <= MAX_TARGET:
        raise InvalidRequestError(f"target must be between 0 and {MAX_TARGET}, got {goal}")
    before = await available_count(repository, pool)
    summary = RefillSummary(pool=pool.name, available_before=before, target=goal)
    need = goal - before
    seen: set[str] = set()
    barren_rounds = 0
    # A random code hits one already in the pool with odds available/keyspace. Negligible for big
    # keyspaces; for small ones, skipping those (one more key per code in the same BatchGetItem) keeps
    # "written" honest, so the pool really reaches its target.
    check_available = goal * AVAILABLE_CHECK_RATIO > pool.format.keyspace
    while summary.written < need:
        remaining = need - summary.written
        # Draw at least MIN_REFILL_ROUND: in a nearly full keyspace most candidates turn out issued, and a round
        # of one or two would declare the keyspace exhausted long before it is.
        round_size = min(max(remaining, MIN_REFILL_ROUND), REFILL_ROUND_SIZE)
        candidates = _fresh_candidates(pool, round_size, seen, summary)
        written = await _check_and_write(repository, pool, candidates, remaining, check_available, summary)
        barren_rounds = 0 if written else barren_rounds + 1
        if barren_rounds >= MAX_BARREN_ROUNDS:
            raise RefillError(f"pool {pool.name!r}: the keyspace looks exhausted", summary.written)
        if on_progress is not None:
            on_progress(summary.written, need)
    summary.took_ms = (time.perf_counter() - started) * 1000
    return summary


async def _check_and_write(
    repository: CodeRepository,
    pool: PoolConfig,
    candidates: list[Candidate],
    budget: int,
    check_available: bool,
    summary: RefillSummary,
) -> int:
    """Write at most `budget` of `candidates` that are neither issued nor (if checked) already available.

    Candidates go in steps of REFILL_STEP, REQUESTS_IN_FLIGHT steps at a time, so one step's check overlaps
    other steps' writes.
    """
    semaphore = asyncio.Semaphore(REQUESTS_IN_FLIGHT)
    left = budget

    async def step(chunk: list[Candidate]) -> int:
        nonlocal left
        async with semaphore:
            issued, available = await repository.existing_among(pool.name, chunk, check_available=check_available)
            summary.skipped_issued += len(issued)
            summary.skipped_available += len(available)
            fresh = [c for c in chunk if c.key not in issued and c.key not in available][: max(left, 0)]
            left -= len(fresh)  # taken before the await below, so concurrent steps never overshoot the budget
            report = await repository.add_available(pool.name, fresh)
            summary.written += report.written
            summary.batch_requests += report.requests
            summary.unprocessed_retries += report.unprocessed_retries
            return report.written

    chunks = [candidates[i : i + REFILL_STEP] for i in range(0, len(candidates), REFILL_STEP)]
    results = await asyncio.gather(*(step(chunk) for chunk in chunks), return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        for failure in failures:
            if isinstance(failure, RefillError):
                summary.written += failure.written
        raise RefillError(f"refill of pool {pool.name!r} failed: {failures[0]}", summary.written) from failures[0]
    return sum(result for result in results if isinstance(result, int))


def _fresh_candidates(pool: PoolConfig, size: int, seen: set[str], summary: RefillSummary) -> list[Candidate]:
    """`size` codes not generated before in this refill (repeats are counted, not written)."""
    fmt = pool.format
    candidates: list[Candidate] = []
    attempts = 0
    while len(candidates) < size and attempts < 20 * size:
        attempts += 1
        code = fmt.generate()
        key = fmt.canonical(code)
        if key in seen:
            summary.skipped_repeated += 1
            continue
        seen.add(key)
        candidates.append(Candidate(key=key, code=code, shard=shard_of(key, pool.shards)))
    return candidates
