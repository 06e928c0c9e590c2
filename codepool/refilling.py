"""Refill a pool: generate fresh codes, skip those already issued, write the rest as available slots.

A refill works in bounded rounds of at most REFILL_ROUND_SIZE candidates, so its memory does not grow with the
target, and, given a `Deadline`, it stops cleanly before it: it does not start a round it expects to overrun,
and a round the deadline cuts short ends the refill with what it wrote counted (`stopped="deadline"`). A target
larger than one run can write (CODES_PER_RUN) is reached over several runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from codepool.config import MAX_TARGET, PoolConfig
from codepool.deadline import Deadline
from codepool.errors import InvalidRequestError, RefillError
from codepool.model import Candidate, RefillSummary, shard_of
from codepool.queries import available_count
from codepool.repository import CodeRepository

T = TypeVar("T")

REQUESTS_IN_FLIGHT = 8
"""The refill's concurrency, and its only owner: steps run this many at a time, and each step sends its
DynamoDB requests one after another, so at most this many requests are in flight."""
REFILL_STEP = 100
"""Candidates per step: one BatchGetItem (100 keys), then up to four BatchWriteItem (25 items each)."""
WRITE_BATCH = 25
"""Slots per `add_available` call: one BatchWriteItem's worth, so a step that is cut short (by the deadline or by
a failing sibling) has counted every batch that completed before it."""
REFILL_ROUND_SIZE = 2_000
"""Most candidates one round draws, and so the most keys the refill remembers at a time (see `_fresh_candidates`):
its memory is bounded by this, whatever the target."""
MIN_REFILL_ROUND = 200
AVAILABLE_CHECK_RATIO = 1000
MAX_BARREN_ROUNDS = 20
"""Refill rounds in a row that find no unissued code before the keyspace is declared exhausted."""
FIRST_ROUND_ESTIMATE_SECONDS = 2.0
"""What a full round is assumed to take until one has been measured (a smaller first round: in proportion). A
round of 2,000 codes took about 0.5 s in the benchmark (3,856 codes/s on DynamoDB Local) and should take about 1 s
at Lambda's 512 MB share of a CPU (133 µs of client CPU per code); 2 s is conservative. From the first round on,
the longest round measured in this refill is the estimate. The estimate only decides whether to start another
round; the deadline's timeout, not the estimate, is what guarantees the refill never runs past it."""

MEASURED_REFILL_CODES_PER_SECOND = 3_856
"""`refill_pool` throughput measured by the benchmarks (benchmarks/results/latest.json, "refill": median of 3
rounds of 10,000 codes, 3,538-4,767 codes/s per round; 8 requests in flight; DynamoDB Local on 2 shared cores)."""
REFILL_RUN_SECONDS = 300 - 10
"""The refiller Lambda's timeout (infra/template.yaml) less the handler's deadline margin (refiller.app)."""
CODES_PER_RUN = MEASURED_REFILL_CODES_PER_SECOND * REFILL_RUN_SECONDS
"""About the most codes one scheduled run writes: 3,856 codes/s x 290 s = 1.12 million (1.03 million at the
slowest benchmark round, 3,538 codes/s). A target further above the pool's depth is reached over several runs,
since each run stops cleanly at its deadline, with what it wrote counted, and the next one goes on:
config.MAX_TARGET (10 million) takes about 9 runs from empty, 45 minutes at the default 5-minute schedule.
Memory does not limit it (a refill remembers one round's keys at a time), so MAX_TARGET stays as it is.

Caveat: the rate is DynamoDB Local's, with client and engine sharing two cores. On Lambda the client is the
likelier limit: 133 µs of client CPU per code at 512 MB (about 0.29 of a vCPU) is about 2,200 codes/s, or about
630,000 codes per run; more memory buys more CPU. Until it is measured on AWS, plan with the lower figure."""


class PoolRefillError(RefillError):
    """A refill failed after counting the pool: `summary` says what it did before (its `written` too)."""

    def __init__(self, message: str, summary: RefillSummary) -> None:
        super().__init__(message, summary.written)
        self.summary = summary


class _DeadlineReached(Exception):
    """The deadline cut an awaited block short."""


async def refill_pool(
    repository: CodeRepository,
    pool: PoolConfig,
    target: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    deadline: Deadline | None = None,
) -> RefillSummary:
    """Top the pool up to `target` (default: the pool's) with fresh codes that were never issued.

    Safe to overlap with other refills and with claims: a slot is keyed by its code, so writing the same code
    twice is one slot; and a claim re-checks "never issued" atomically, so a slot added for a code that was
    claimed meanwhile is rejected and deleted, never issued twice.

    With a `deadline`, the refill may end early: the summary then has `complete` False and `stopped` "deadline",
    and counts what was written. Raises `PoolRefillError` (a `RefillError` carrying the summary) when a round
    fails or the keyspace looks exhausted; `RefillError` when the deadline passes before the pool's depth was
    even read; the repository's `StoreUnavailableError` when that read fails.
    """
    started = time.perf_counter()
    goal = pool.target if target is None else target
    if not 0 <= goal <= MAX_TARGET:
        raise InvalidRequestError(f"target must be between 0 and {MAX_TARGET}, got {goal}")
    try:
        before = await _within(deadline, available_count(repository, pool))
    except _DeadlineReached:
        raise RefillError(
            f"pool {pool.name!r}: the deadline passed before its available codes were counted", 0
        ) from None
    summary = RefillSummary(pool=pool.name, available_before=before, target=goal)
    need = goal - before
    barren_rounds = 0
    longest_round: float | None = None
    # A random code hits one already in the pool with odds available/keyspace. Negligible for big
    # keyspaces; for small ones, skipping those (one more key per code in the same BatchGetItem) keeps
    # "written" honest, so the pool really reaches its target.
    check_available = goal * AVAILABLE_CHECK_RATIO > pool.format.keyspace
    try:
        while summary.written < need:
            remaining = need - summary.written
            # Draw at least MIN_REFILL_ROUND: in a nearly full keyspace most candidates turn out issued, and a
            # round of one or two would declare the keyspace exhausted long before it is.
            round_size = min(max(remaining, MIN_REFILL_ROUND), REFILL_ROUND_SIZE)
            if deadline is not None and deadline.remaining() < _round_estimate(longest_round, round_size):
                summary.stopped = "deadline"
                break
            round_started = time.perf_counter()
            summary.rounds += 1
            candidates = _fresh_candidates(pool, round_size, summary)
            try:
                # Cut at the deadline, a round's in-flight BatchWriteItem may or may not have landed: either is
                # harmless, since a slot is a blind write of a code checked not to be issued (at worst the pool
                # holds a few more codes than `written` says, and a claim re-checks "never issued" anyway).
                written = await _within(
                    deadline, _check_and_write(repository, pool, candidates, remaining, check_available, summary)
                )
            except _DeadlineReached:
                summary.stopped = "deadline"
                break
            took = time.perf_counter() - round_started
            longest_round = took if longest_round is None else max(longest_round, took)
            barren_rounds = 0 if written else barren_rounds + 1
            if barren_rounds >= MAX_BARREN_ROUNDS:
                raise PoolRefillError(f"pool {pool.name!r}: the keyspace looks exhausted", summary)
            if on_progress is not None:
                on_progress(summary.written, need)
    except PoolRefillError:
        summary.stopped = "error"
        summary.took_ms = (time.perf_counter() - started) * 1000
        raise
    summary.complete = summary.written >= need
    if summary.complete:
        summary.stopped = None
    summary.took_ms = (time.perf_counter() - started) * 1000
    return summary


def _round_estimate(longest_round: float | None, round_size: int) -> float:
    """How long the next round may take: the longest round so far, or, before any, the first-round guess
    (scaled to the round's size, so a pool that needs a few codes is not held back by a full round's guess)."""
    if longest_round is not None:
        return longest_round
    return FIRST_ROUND_ESTIMATE_SECONDS * round_size / REFILL_ROUND_SIZE


async def _within(deadline: Deadline | None, work: Coroutine[Any, Any, T]) -> T:
    """`await work`, cancelled when the deadline passes (then `_DeadlineReached`)."""
    if deadline is None:
        return await work
    timeout = deadline.timeout()
    try:
        async with timeout:
            return await work
    except TimeoutError:
        if timeout.expired():
            raise _DeadlineReached from None
        raise


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
    other steps' writes. The steps run in a TaskGroup: when one fails, the others are cancelled at once, so none
    is left running on the container's long-lived loop to wake up during a later invocation. Every completed
    write (one BatchWriteItem's worth) is counted in `summary` as it completes, so the summary stays accurate
    whichever way the round ends: only the batches in flight when it ends (cancelled, or failed with store
    trouble) may have landed uncounted, which is harmless (see `refill_pool`).

    A failure raises one `PoolRefillError` (whatever failed: a step's `RefillError` for unprocessed items, or the
    repository's `StoreUnavailableError`, which becomes its `__cause__`), carrying the summary and so the total
    written by this refill: a caller learns what landed either way.
    """
    semaphore = asyncio.Semaphore(REQUESTS_IN_FLIGHT)
    left = budget
    written = 0

    async def step(chunk: list[Candidate]) -> None:
        nonlocal left, written
        async with semaphore:
            issued, available = await repository.existing_among(pool.name, chunk, check_available=check_available)
            summary.skipped_issued += len(issued)
            summary.skipped_available += len(available)
            fresh = [c for c in chunk if c.key not in issued and c.key not in available][: max(left, 0)]
            left -= len(fresh)  # taken before the awaits below, so concurrent steps never overshoot the budget
            for start in range(0, len(fresh), WRITE_BATCH):
                try:
                    report = await repository.add_available(pool.name, fresh[start : start + WRITE_BATCH])
                except RefillError as exc:
                    summary.written += exc.written
                    written += exc.written
                    raise
                summary.written += report.written
                summary.batch_requests += report.requests
                summary.unprocessed_retries += report.unprocessed_retries
                written += report.written

    chunks = [candidates[i : i + REFILL_STEP] for i in range(0, len(candidates), REFILL_STEP)]
    try:
        async with asyncio.TaskGroup() as group:
            for chunk in chunks:
                group.create_task(step(chunk))
    except ExceptionGroup as failures:
        first = _first_failure(failures)
        raise PoolRefillError(f"refill of pool {pool.name!r} failed: {first}", summary) from first
    return written


def _first_failure(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception of a (possibly nested) group: the one that made the TaskGroup cancel the others."""
    first = group.exceptions[0]
    return _first_failure(first) if isinstance(first, BaseExceptionGroup) else first


def _fresh_candidates(pool: PoolConfig, size: int, summary: RefillSummary) -> list[Candidate]:
    """`size` codes, none repeated within this round (repeats are counted, not written).

    Only the round's keys are remembered, so memory stays bounded by REFILL_ROUND_SIZE whatever the target. A code
    drawn again in a later round is harmless: with `check_available` on (small keyspaces) the check finds it in
    the pool and skips it; with it off, writing it is a blind overwrite of the same slot (its shard is a hash of
    the code), which overstates `written` by one, and a code's odds of being drawn again are at most
    target/keyspace, at most 1/1000 when `check_available` is off (AVAILABLE_CHECK_RATIO).
    """
    fmt = pool.format
    seen: set[str] = set()
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
