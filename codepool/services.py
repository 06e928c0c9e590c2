"""The use cases, as plain async functions over a `CodeRepository`: issue, refill, look up, count."""

from __future__ import annotations

import asyncio
import hashlib
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from codepool.candidates import CandidatePrefetcher
from codepool.config import MAX_TARGET, PoolConfig
from codepool.errors import (
    ClaimContentionError,
    CodeNotFoundError,
    IdempotencyMismatchError,
    InvalidRequestError,
    PoolNotFoundError,
    RefillError,
    UnavailableError,
)
from codepool.formats import lookup_keys
from codepool.model import (
    MAX_COUNT,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    METADATA_LIMITS,
    Candidate,
    IssuedCode,
    IssueRequest,
    PoolStats,
    RefillSummary,
    utc_timestamp,
)
from codepool.repository import CodeRepository, IdempotencyRecord

MAX_CLAIM_ATTEMPTS = 8
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
REFILL_ROUND_SIZE = 2_000
MIN_REFILL_ROUND = 200
REFILL_STEP = 100
"""Candidates per check-then-write step: one BatchGetItem (100 keys) and up to four BatchWriteItem (25 items)."""
REFILL_STEPS_IN_FLIGHT = 4
AVAILABLE_CHECK_RATIO = 1000
MAX_BARREN_ROUNDS = 20
"""Refill rounds in a row that find no unissued code before the keyspace is declared exhausted."""


@dataclass(frozen=True, slots=True)
class IssueResult:
    codes: list[IssuedCode]
    replayed: bool = False
    lost_races: int = 0
    """Claim attempts that lost to another claimer (or met a stale slot) before this one succeeded."""


def resolve_pool(pools: Mapping[str, PoolConfig], name: str) -> PoolConfig:
    try:
        return pools[name]
    except KeyError:
        raise PoolNotFoundError(name) from None


def scoped_idempotency_key(caller: str | None, key: str) -> str:
    """Each authenticated caller has a key space of its own: another caller reusing a key gets codes of its
    own, never the first caller's response."""
    if caller is None:
        return key
    return f"{hashlib.sha256(caller.encode()).hexdigest()[:32]}#{key}"


def validate_issue_request(
    request: IssueRequest, pools: Mapping[str, PoolConfig], idempotency_key: str | None
) -> PoolConfig:
    if not 1 <= request.count <= MAX_COUNT:
        raise InvalidRequestError(f"count must be between 1 and {MAX_COUNT}, got {request.count}")
    for name, value in request.metadata().items():
        if len(value) > METADATA_LIMITS[name]:
            raise InvalidRequestError(f"{name} is longer than {METADATA_LIMITS[name]} characters")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidRequestError(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    return resolve_pool(pools, request.pool)


async def issue_codes(
    repository: CodeRepository,
    prefetcher: CandidatePrefetcher,
    pools: Mapping[str, PoolConfig],
    request: IssueRequest,
    *,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    caller: str | None = None,
    clock: Callable[[], float] = time.time,
) -> IssueResult:
    """Claim `request.count` codes from the pool in one atomic write, retrying lost races a bounded number of times.

    With an idempotency key, the key's record is part of that same write, so a retry either finds the
    record (and gets the same codes back) or finds nothing claimed at all.
    """
    pool = validate_issue_request(request, pools, idempotency_key)
    if idempotency_key is not None:
        idempotency_key = scoped_idempotency_key(caller, idempotency_key)
    try:
        return await _claim(repository, prefetcher, pool, request, request_id, idempotency_key, clock)
    except UnavailableError:
        # An empty or contended pool must not hide that this key was already served.
        if idempotency_key is not None:
            previous = await repository.get_idempotency(idempotency_key, int(clock()))
            if previous is not None:
                return _replay(previous, request)
        raise


async def _claim(
    repository: CodeRepository,
    prefetcher: CandidatePrefetcher,
    pool: PoolConfig,
    request: IssueRequest,
    request_id: str | None,
    idempotency_key: str | None,
    clock: Callable[[], float],
) -> IssueResult:
    metadata = request.metadata()
    for attempt in range(MAX_CLAIM_ATTEMPTS):
        candidates = await prefetcher.take(pool, request.count)
        now = clock()
        issued_at = utc_timestamp(now)
        records = [
            IssuedCode(code=c.code, pool=pool.name, issued_at=issued_at, metadata=metadata, request_id=request_id)
            for c in candidates
        ]
        idempotency = None
        if idempotency_key is not None:
            idempotency = IdempotencyRecord(
                key=idempotency_key,
                fingerprint=request.fingerprint(),
                codes=records,
                expires_at=int(now) + IDEMPOTENCY_TTL_SECONDS,
            )
        outcome = await repository.claim(pool.name, candidates, records, idempotency, int(now))
        if outcome.issued is not None:
            return IssueResult(codes=outcome.issued, lost_races=attempt)
        if outcome.replayed is not None:
            prefetcher.give_back(pool.name, candidates)
            return _replay(outcome.replayed, request)
        failed = {c.key for c in outcome.lost} | {c.key for c in outcome.stale}
        await asyncio.gather(*(repository.remove_slot(pool.name, stale) for stale in outcome.stale))
        if outcome.lost:
            prefetcher.report_lost_race(pool.name)
        prefetcher.give_back(pool.name, [c for c in candidates if c.key not in failed])
    raise ClaimContentionError(pool.name, MAX_CLAIM_ATTEMPTS)


def _replay(previous: IdempotencyRecord, request: IssueRequest) -> IssueResult:
    if previous.fingerprint != request.fingerprint():
        raise IdempotencyMismatchError
    return IssueResult(codes=previous.codes, replayed=True)


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

    Candidates go in steps of REFILL_STEP (one BatchGetItem, then up to four BatchWriteItem), several steps in
    flight, so one step's check overlaps another's writes.
    """
    semaphore = asyncio.Semaphore(REFILL_STEPS_IN_FLIGHT)
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


def shard_of(key: str, shards: int) -> int:
    """A code always lands in the same shard, so writing it twice overwrites one slot instead of adding two."""
    return zlib.crc32(key.encode()) % shards


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
    if not keys[0] or len(typed) > 256:
        raise InvalidRequestError("a code to look up must be 1 to 256 characters")
    found = await repository.get_issued(keys)
    if found is None:
        raise CodeNotFoundError(typed)
    return found
