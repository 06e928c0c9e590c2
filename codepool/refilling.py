"""Refill a pool: generate fresh codes, skip those already issued (where that pays), write the rest as slots.

How a refill finds fresh codes depends on how full the keyspace is (`fill`, the share of the usable keyspace
issued or available, from the pool's ledger and counts):

- below CHECK_FILL_FRACTION: random codes are written unchecked, once a sample of each round (SAMPLE_STEP codes)
  was found not issued;
- from there: random codes are checked against issued (and available) codes before they are written;
- from SWEEP_FILL_FRACTION (or once random rounds stop finding fresh codes): the keyspace is swept, each code
  visited once in a scattered order (`SweepState`), so the last codes cost no more to find than the first. Once
  the sweep has visited every code, every code left is in the pool: when those are issued, the pool is exhausted.

A refill works in bounded rounds of at most REFILL_ROUND_SIZE candidates, so its memory does not grow with the
target, and, given a `Deadline`, it stops cleanly before it: it does not start a round it expects to overrun,
and a round the deadline cuts short ends the refill with what it wrote counted (`stopped="deadline"`). A target
larger than one run can write (CODES_PER_RUN) is reached over several runs. Random rounds are pipelined
(`_RandomDraw`): the next round's steps take the request slots the last round's steps free, so the writes do
not drain at each round's end.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from functools import partial
from math import gcd
from typing import Any, TypeVar

from codepool.config import MAX_TARGET, PoolConfig
from codepool.deadline import Deadline
from codepool.errors import InvalidRequestError, RefillError, StoreUnavailableError
from codepool.model import (
    SNAPSHOT_HORIZON_SECONDS,
    Candidate,
    PoolLedger,
    RefillCarry,
    RefillSummary,
    SweepState,
    shard_of,
)
from codepool.queries import pool_depth
from codepool.repository import CodeRepository
from codepool.tasks import first_error, run_limited, run_pair

T = TypeVar("T")

REQUESTS_IN_FLIGHT = 8
"""The refill's concurrency, and its only owner: steps run this many at a time, and each step sends its
DynamoDB requests one after another; between random rounds the ledger's count and the sample take a slot of
the same kind, so at most this many requests are in flight."""
REFILL_STEP = 100
"""Candidates per step: one BatchGetItem (100 keys), then up to four BatchWriteItem (25 items each)."""
WRITE_BATCH = 25
"""Slots per `add_available` call: one BatchWriteItem's worth, so a step that is cut short (by the deadline or by
a failing sibling) has counted every batch that completed before it."""
REFILL_ROUND_SIZE = 2_000
"""Most candidates one round draws. A refill remembers one round's keys and those of the steps in flight (at
most REQUESTS_IN_FLIGHT x REFILL_STEP, see `_fresh_candidates`): its memory is bounded by these, whatever the
target."""
MIN_REFILL_ROUND = 200
AVAILABLE_CHECK_RATIO = 1000
CHECK_FILL_FRACTION = 0.02
"""Fill above which every candidate is checked against issued codes before it is written.

The check only avoids stale slots (the claim's never-issued condition is what keeps codes unique), and an
unchecked code is stale with odds `f`, the fraction issued. A check costs 0.5 read units per code (one of 100 keys
of a BatchGetItem, eventually consistent): $0.0625 per million codes at $0.125 per million RRU. A stale slot costs
a cancelled claim (2 items x 2 write units) plus its DeleteItem, 5 write units: $3.125 per million at $0.625 per
million WRU, and a claim attempt's latency. Checking pays when f x 3.125 > 0.0625, from f = 2 %."""
SAMPLE_STEP = 50
"""Candidates of each unchecked round looked up before the round is written (one BatchGetItem of 50 keys, 0.0125
read units per code of a 2,000-code round): one issued code among them turns the check on for this round and the
rest of the refill, so a ledger that understates the fill (codes issued by another tool, an old table) costs no
stale slots beyond the odds of a sample missing them (at 10 % fill, 0.9^50 = 0.5 %)."""
SWEEP_FILL_FRACTION = 0.5
"""Fill from which the keyspace is swept rather than drawn at random: above it a random draw is fresh with odds
below 1/2, and falling towards 0; a sweep reads each code of the keyspace once (its record and its slot), so its
cost per code written stays bounded (a few keys) to the very last code."""
SWEEP_ROUND = 2_000
"""Codes a sweep round visits: 20 BatchGetItem of their records, then one per 100 of the unissued ones' slots, the
writes, the cursor's update, one ledger update and one ledger read."""
SNAPSHOT_SPACING_SECONDS = 60.0
"""A refill adds a snapshot to the ledger (for the issue rate) unless the last one is younger than this."""
LEDGER_TIMEOUT_SECONDS = 2.0
"""The most a refill waits for one ledger addition during its rounds (a pending one is sent again later)."""
SETTLE_SECONDS = 2.0
"""The most a refill spends, as it ends, reading which of its writes of unknown outcome landed."""
LAST_LEDGER_SECONDS = 6.0
"""How long a refill keeps sending its last ledger addition as it ends, past its deadline: within the refiller's
10 s margin (`refiller.app`)."""
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


PENDING_TOKEN_SECONDS = 540.0
"""How long a ledger addition left pending may be sent again with its token by a later refill: DynamoDB keeps a
token 10 minutes, after which sending it again could apply it twice."""


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
    clock: Callable[[], float] = time.time,
    carry: RefillCarry | None = None,
) -> RefillSummary:
    """Top the pool up to `target` (default: the pool's) with fresh codes that were never issued.

    Safe to overlap with other refills and with claims: a slot is keyed by its code, so writing the same code
    twice is one slot; and a claim re-checks "never issued" atomically, so a slot added for a code that was
    claimed meanwhile is rejected and deleted, never issued twice.

    With a `deadline`, the refill may end early: the summary then has `complete` False and `stopped` "deadline",
    and counts what was written. A pool whose keyspace is swept and short of codes ends with `stopped`
    "keyspace" (and `exhausted` once nothing is available); an imported-only pool is never written to. Raises
    `PoolRefillError` (a `RefillError` carrying the summary) when a round fails; `RefillError` when the deadline
    passes before the pool's depth was even read; the repository's `StoreUnavailableError` when that read fails.
    """
    started = time.perf_counter()
    goal = pool.target if target is None else target
    if not 0 <= goal <= MAX_TARGET:
        raise InvalidRequestError(f"target must be between 0 and {MAX_TARGET}, got {goal}")
    try:
        depth, ledger = await _within(
            deadline, run_pair(pool_depth(repository, pool), repository.get_ledger(pool.name))
        )
    except _DeadlineReached:
        raise RefillError(
            f"pool {pool.name!r}: the deadline passed before its available codes were counted", 0
        ) from None
    before = depth.available
    summary = RefillSummary(pool=pool.name, available_before=before, target=goal)
    if pool.imported_only:
        summary.complete = True
        summary.exhausted = before == 0
        summary.took_ms = (time.perf_counter() - started) * 1000
        return summary
    usable = max(1, pool.format.usable_keyspace())
    summary.fill_fraction = min(1.0, (ledger.issued(before) + before) / usable)
    # An estimated depth (a deep pool, `pool_depth`) is topped up only past its margin: a refill does not chase
    # the estimate's noise, and the pool stays within the margin (about 1.4 %) of its target.
    need = goal - before - depth.margin
    refill = _Refill(repository, pool, summary, need, deadline, on_progress)
    if carry is not None:
        refill.take_over(carry)
    try:
        # Every call from here on is within the deadline: a brown-out makes each call take its SDK attempts'
        # timeouts (4 x (1 + 3) s), more than the refiller's margin past its deadline.
        await _within(deadline, _snapshot(repository, pool, ledger, before, clock()))
        if ledger.sweep is None and summary.fill_fraction < SWEEP_FILL_FRACTION:
            await refill.draw_at_random(check=summary.fill_fraction >= CHECK_FILL_FRACTION)
        else:
            refill.needs_sweep = True
        if refill.needs_sweep and need > 0:
            await refill.sweep_keyspace(ledger.sweep)
    except _DeadlineReached:
        summary.stopped = "deadline"
    except PoolRefillError:
        summary.stopped = "error"
        raise
    finally:
        await refill.settle_uncertain()
        await refill.count_in_ledger(last=True)
        if carry is not None:
            refill.hand_over(carry)
        summary.took_ms = (time.perf_counter() - started) * 1000
    summary.complete = summary.written >= need
    if summary.complete:
        summary.stopped = None
    return summary


async def _snapshot(
    repository: CodeRepository, pool: PoolConfig, ledger: PoolLedger, available: int, now: float
) -> None:
    """Add (now, issued) to the ledger's snapshots, dropping those past the horizon; at most one a minute."""
    if ledger.snapshots and now - ledger.snapshots[-1][0] < SNAPSHOT_SPACING_SECONDS:
        return
    kept = [snap for snap in ledger.snapshots if now - snap[0] <= SNAPSHOT_HORIZON_SECONDS]
    await repository.save_snapshots(pool.name, [*kept, (now, ledger.issued(available))])


class _Refill:
    """One refill's progress: what it must write, what it wrote, and what the ledger has been told."""

    def __init__(
        self,
        repository: CodeRepository,
        pool: PoolConfig,
        summary: RefillSummary,
        need: int,
        deadline: Deadline | None,
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        self.repository = repository
        self.pool = pool
        self.summary = summary
        self.need = need
        self.deadline = deadline
        self.on_progress = on_progress
        self.needs_sweep = False
        self.longest_round: float | None = None
        self.ledgered = 0
        self.pending: tuple[str, int, float] | None = None
        """(token, amount, when first sent on the monotonic clock) of a ledger addition sent without an answer: it
        may have landed."""
        # A random code hits one already in the pool with odds available/keyspace. Negligible for big
        # keyspaces; for small ones, skipping those (one more key per code in the same BatchGetItem) keeps
        # "written" honest, so the pool really reaches its target.
        self.check_available = need * AVAILABLE_CHECK_RATIO > pool.format.keyspace
        # In such small keyspaces, and in a sweep, another refill at the same time may write the same code:
        # slots are then created by conditional puts, so `written` counts each slot once (`add_new_slots`).
        self.writer = uuid.uuid4().hex
        self.uncertain: list[Candidate] = []
        """Slots of writes whose outcome is unknown, for `settle_uncertain`."""
        self.carried = 0
        """Codes a previous refill wrote whose ledger addition this one sends (`take_over`); not this refill's."""

    @property
    def remaining(self) -> int:
        return self.need - self.summary.written

    def out_of_time(self, round_size: int) -> bool:
        if self.deadline is not None and self.deadline.remaining() < _round_estimate(self.longest_round, round_size):
            self.summary.stopped = "deadline"
            return True
        return False

    def round_took(self, seconds: float) -> None:
        self.longest_round = seconds if self.longest_round is None else max(self.longest_round, seconds)
        if self.on_progress is not None:
            self.on_progress(self.summary.written, self.need)

    async def draw_at_random(self, *, check: bool) -> None:
        """Random rounds as one pipeline: a request slot that frees up is taken by the next step at once, the
        next round's first steps included, so the writes never drain at a round's end (see `_RandomDraw`)."""
        self.summary.checked = check
        draw = _RandomDraw(self)
        try:
            await _within(self.deadline, draw.draw_rounds())
        except _DeadlineReached:
            self.summary.stopped = "deadline"
        if draw.dry_round:
            self.needs_sweep = True

    async def sweep_keyspace(self, standing: SweepState | None) -> None:
        """Visit the keyspace's codes from the sweep's cursor on, writing those neither issued nor available."""
        keyspace = self.pool.format.keyspace
        sweep = standing
        if sweep is None:
            sweep = await _within(self.deadline, self.repository.start_sweep(self.pool.name, _new_sweep(keyspace)))
        summary = self.summary
        summary.checked = True
        while self.remaining > 0:
            if sweep.done(keyspace):
                summary.stopped = "keyspace"
                summary.exhausted = summary.available_before + summary.written == 0
                return
            if self.out_of_time(SWEEP_ROUND):
                return
            round_started = time.perf_counter()
            summary.rounds += 1
            try:
                cursor = await _within(self.deadline, self._sweep_round(sweep))
            except _DeadlineReached:
                summary.stopped = "deadline"
                return
            await self.count_in_ledger()
            sweep = replace(sweep, cursor=cursor)
            self.round_took(time.perf_counter() - round_started)
            # Another refill may be sweeping too: start the next round where the furthest of us got.
            latest = (await _within(self.deadline, self.repository.get_ledger(self.pool.name))).sweep
            if latest is not None and latest.cursor > sweep.cursor:
                sweep = latest
        if sweep.done(keyspace):
            summary.stopped = "keyspace"

    async def _sweep_round(self, sweep: SweepState) -> int:
        """One round of the sweep; returns the cursor it reached (where the next round starts)."""
        pool, fmt, keyspace = self.pool, self.pool.format, self.pool.format.keyspace
        end = min(keyspace, sweep.cursor + SWEEP_ROUND)
        visited: list[tuple[int, Candidate]] = []
        for i in range(sweep.cursor, end):
            code = fmt.code_for(sweep.number(i, keyspace))
            if code is not None:
                key = fmt.canonical(code)
                visited.append((i, Candidate(key=key, code=code, shard=shard_of(key, pool.shards))))
        # Two reads, so no key is read for nothing: every code's record (most are issued, late in a sweep), then
        # the slots of those that are not (the few the pool may already hold), REFILL_STEP keys per request.
        codes = _steps([candidate for _, candidate in visited])
        found = await run_limited(
            REQUESTS_IN_FLIGHT,
            (partial(self.repository.existing_among, pool.name, chunk, check_available=False) for chunk in codes),
        )
        issued = set().union(*(pair[0] for pair in found))
        unissued = _steps([candidate for _, candidate in visited if candidate.key not in issued])
        self.summary.check_requests += len(codes) + len(unissued)
        pooled = await run_limited(
            REQUESTS_IN_FLIGHT, (partial(self.repository.available_among, pool.name, chunk) for chunk in unissued)
        )
        available = set().union(*pooled)
        self.summary.skipped_issued += len(issued)
        self.summary.skipped_available += len(available)
        fresh = [(i, c) for i, c in visited if c.key not in issued and c.key not in available]
        cursor = end
        if len(fresh) > self.remaining:
            # The target is reached inside this round: stop the cursor after the last code written, so the
            # codes after it are visited (and written) by the next refill.
            fresh = fresh[: self.remaining]
            cursor = fresh[-1][0] + 1 if fresh else sweep.cursor
        await self._write_fresh([c for _, c in fresh])
        await self.repository.advance_sweep(pool.name, cursor)
        # Settled: every code before the cursor is issued, available or blocked. A round cut short by the target
        # read past its cursor; the next refill reads those codes again (at most one round's worth per refill).
        self.summary.swept += cursor - sweep.cursor
        return cursor

    async def _write_fresh(self, fresh: list[Candidate]) -> None:
        batches = [fresh[start : start + WRITE_BATCH] for start in range(0, len(fresh), WRITE_BATCH)]
        try:
            await run_limited(
                REQUESTS_IN_FLIGHT,
                (partial(self.write_batch, batch, self.writer) for batch in batches),
            )
        except RefillError as exc:
            raise PoolRefillError(f"refill of pool {self.pool.name!r} failed: {exc}", self.summary) from exc

    def take_over(self, carry: RefillCarry) -> None:
        """Resolve what the last refill of this pool in this container left: its pending ledger addition (if
        still young enough to resend with its token, `PENDING_TOKEN_SECONDS`) and its writes of unknown outcome."""
        self.uncertain.extend(carry.uncertain.pop(self.pool.name, []))
        pending = carry.pending.pop(self.pool.name, None)
        if pending is not None and time.monotonic() - pending[2] < PENDING_TOKEN_SECONDS:
            self.carried = pending[1]
            self.pending = pending

    def hand_over(self, carry: RefillCarry) -> None:
        if self.pending is not None:
            carry.pending[self.pool.name] = self.pending
        if self.uncertain:
            carry.uncertain[self.pool.name] = self.uncertain

    async def write_batch(self, batch: list[Candidate], writer: str | None) -> None:
        """One BatchWriteItem's worth of slots (with a `writer`, one conditional put per slot, counting only the
        slots it created), counted in the summary as soon as it lands. A failure counts the slots that landed
        before it (`RefillError.written`) and is raised; a write whose outcome is unknown (no answer, or cut off
        by a failing sibling or the deadline) is left to `settle_uncertain`."""
        summary = self.summary
        try:
            if writer is None:
                report = await self.repository.add_available(self.pool.name, batch)
            else:
                report = await self.repository.add_new_slots(self.pool.name, batch, writer)
        except RefillError as exc:
            summary.written += exc.written
            raise
        except BaseException:
            self.uncertain.extend(batch)
            raise
        summary.written += report.written
        summary.batch_requests += report.requests
        summary.unprocessed_retries += report.unprocessed_retries

    async def settle_uncertain(self) -> None:
        """Count the slots of writes whose outcome is unknown that did land: those now in the pool, or issued
        (claimed since), read once the writes are over (bounded: SETTLE_SECONDS). A code drawn at random was
        neither before the write, but for odds of at most 1/1,000 (`AVAILABLE_CHECK_RATIO`) or a concurrent
        refill writing the same code."""
        uncertain, self.uncertain = self.uncertain, []
        if not uncertain:
            return
        try:
            async with asyncio.timeout(SETTLE_SECONDS):
                found = await run_limited(
                    REQUESTS_IN_FLIGHT,
                    (
                        partial(self.repository.existing_among, self.pool.name, chunk, check_available=True)
                        for chunk in _steps(uncertain)
                    ),
                )
        except (StoreUnavailableError, RefillError, TimeoutError):
            self.summary.unsettled += len(uncertain)
            self.uncertain = uncertain  # the next refill in this container reads them again
            return
        landed = set().union(*(issued | available for issued, available in found))
        self.summary.written += sum(candidate.key in landed for candidate in uncertain)

    async def count_in_ledger(self, *, last: bool = False) -> None:
        """Add what was written since the last call to the ledger's `written`, bounded in time (the ledger feeds
        statistics and the choice of checks, never a decision that keeps codes unique).

        Once: an addition whose answer did not come (a timeout, an error: it may have landed) stays pending and
        is sent again, the same amount with the same token, before anything new, so it is applied once
        (`CodeRepository.add_to_ledger`). The `last` call, as the refill ends, keeps sending it for up to
        LAST_LEDGER_SECONDS (a resend meets the first send still in flight as `TransactionInProgressException`,
        which the SDK retries); what is still pending then is `uncounted`."""
        give_up = time.monotonic() + (LAST_LEDGER_SECONDS if last else LEDGER_TIMEOUT_SECONDS)
        while (left := give_up - time.monotonic()) > 0:
            if self.pending is None:
                unrecorded = self.summary.written - self.ledgered
                if unrecorded <= 0:
                    break
                self.pending = (uuid.uuid4().hex, unrecorded, time.monotonic())
            token, amount, _ = self.pending
            try:
                await asyncio.wait_for(
                    self.repository.add_to_ledger(self.pool.name, token, written=amount),
                    min(left, LEDGER_TIMEOUT_SECONDS),
                )
            except (StoreUnavailableError, TimeoutError):
                if not last:
                    break
                await asyncio.sleep(min(0.2, max(0.0, give_up - time.monotonic())))
                continue
            if self.carried:
                self.carried = 0  # the last refill's codes, now in the ledger: none of this refill's
            else:
                self.ledgered += amount
            self.pending = None
        self.summary.uncounted = self.summary.written - self.ledgered + self.carried


def _steps(candidates: list[Candidate]) -> list[list[Candidate]]:
    return [candidates[start : start + REFILL_STEP] for start in range(0, len(candidates), REFILL_STEP)]


def _new_sweep(keyspace: int) -> SweepState:
    """A scattered walk over the keyspace: a random start and a random step coprime to its size."""
    step = 1
    if keyspace > 2:
        step = secrets.randbelow(keyspace - 1) + 1
        while gcd(step, keyspace) != 1:
            step = secrets.randbelow(keyspace - 1) + 1
    return SweepState(start=secrets.randbelow(keyspace), step=step, cursor=0)


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


@dataclass
class _Round:
    """One round of random candidates in the pipeline: when its last step is done, how long it took and whether
    it found any fresh code."""

    started: float
    checked: bool
    steps_running: int = 0
    all_launched: bool = False
    fresh: int = 0


class _RandomDraw:
    """The random rounds of one refill as a pipeline of steps sharing REQUESTS_IN_FLIGHT request slots.

    A step (REFILL_STEP candidates: their check if any, then their writes) is launched as soon as a slot frees
    up, whichever round it belongs to: the next round is drawn while the last one's steps are still in flight,
    so the writes never drain at a round's end. Between rounds the pipeline takes a slot for the ledger's count
    and, for an unchecked round, the sample, so at most REQUESTS_IN_FLIGHT requests of any kind are in flight.

    The budget is shared: a step takes fresh candidates only while `written + reserved < need` (`reserved`:
    taken and not yet written), so concurrent steps never overshoot the target, and a round is drawn only for
    what no step has planned for yet (`unplanned`). The steps run in one TaskGroup: a failing step cancels the
    others (and the drawing) at once, so none is left running on the container's long-lived loop.
    """

    def __init__(self, refill: _Refill) -> None:
        self.refill = refill
        self.slots = asyncio.Semaphore(REQUESTS_IN_FLIGHT)
        self.pending = 0
        """Candidates of launched steps not yet sorted into fresh and skipped."""
        self.reserved = 0
        self.dry_round = False
        """A checked round found no fresh code: random draws no longer pay (the refill sweeps instead)."""
        self.running: set[asyncio.Task[None]] = set()
        self.in_flight: set[str] = set()
        """Keys of the launched steps not yet done: rounds overlap, so a round's draws skip these too (a code drawn
        again while its first step is still checking would pass both checks and be counted twice)."""

    @property
    def unplanned(self) -> int:
        return self.refill.need - self.refill.summary.written - self.reserved - self.pending

    async def draw_rounds(self) -> None:
        refill = self.refill
        try:
            async with asyncio.TaskGroup() as group:
                while not self.dry_round:
                    if self.unplanned <= 0:
                        if not self.running:
                            return
                        # Checks may still skip candidates: once the steps in flight are done, draw for those.
                        await asyncio.wait(self.running)
                        continue
                    # At least MIN_REFILL_ROUND: in a nearly full keyspace most candidates turn out issued, and a
                    # round of one or two would find none long before the keyspace is used up.
                    size = min(max(self.unplanned, MIN_REFILL_ROUND), REFILL_ROUND_SIZE)
                    if refill.out_of_time(size):
                        return
                    await self._draw_round(group, size)
        except BaseExceptionGroup as failures:
            first = first_error(failures)
            raise PoolRefillError(f"refill of pool {refill.pool.name!r} failed: {first}", refill.summary) from first

    async def _draw_round(self, group: asyncio.TaskGroup, size: int) -> None:
        refill, summary = self.refill, self.refill.summary
        summary.rounds += 1
        seen: set[str] = set()
        drawn = 0
        round_: _Round | None = None
        while drawn < size:
            chunk = _fresh_candidates(refill.pool, min(REFILL_STEP, size - drawn), summary, seen, self.in_flight)
            drawn += REFILL_STEP
            if not chunk:
                break
            if round_ is None:
                if summary.written > refill.ledgered:
                    await self._with_slot(refill.count_in_ledger())
                if not summary.checked and await self._with_slot(self._sample_is_stale(chunk)):
                    summary.checked = True  # the sample met an issued code: the ledger understated the fill
                round_ = _Round(started=time.perf_counter(), checked=summary.checked)
            await self.slots.acquire()
            self.pending += len(chunk)
            self.in_flight.update(c.key for c in chunk)
            round_.steps_running += 1
            step = group.create_task(self._write_step(round_, chunk))
            self.running.add(step)
            step.add_done_callback(self.running.discard)
        if round_ is not None:
            round_.all_launched = True
            self._round_may_be_done(round_)

    async def _write_step(self, round_: _Round, chunk: list[Candidate]) -> None:
        """Check (if the round is checked, or the keyspace small) and write one step's candidates; the slot was
        taken by the launch and is given back here. Each completed write is counted in the summary as it lands,
        so only the batches in flight when the refill ends (cancelled, or failed) may have landed uncounted,
        which is harmless (see `refill_pool`)."""
        refill, summary = self.refill, self.refill.summary
        sorted_out = False
        try:
            issued: set[str] = set()
            available: set[str] = set()
            if round_.checked or refill.check_available:
                issued, available = await refill.repository.existing_among(
                    refill.pool.name, chunk, check_available=refill.check_available
                )
                summary.check_requests += 2 if refill.check_available else 1  # 100 or 200 keys
            summary.skipped_issued += len(issued)
            summary.skipped_available += len(available)
            fresh = [c for c in chunk if c.key not in issued and c.key not in available]
            round_.fresh += len(fresh)
            # Taken before the awaits below, so concurrent steps never overshoot the budget.
            fresh = fresh[: max(refill.need - summary.written - self.reserved, 0)]
            self.pending -= len(chunk)
            self.reserved += len(fresh)
            sorted_out = True
            for start in range(0, len(fresh), WRITE_BATCH):
                batch = fresh[start : start + WRITE_BATCH]
                try:
                    await refill.write_batch(batch, refill.writer if refill.check_available else None)
                finally:
                    self.reserved -= len(batch)
        finally:
            if not sorted_out:
                self.pending -= len(chunk)
            self.in_flight.difference_update(c.key for c in chunk)
            self.slots.release()
        round_.steps_running -= 1
        self._round_may_be_done(round_)

    def _round_may_be_done(self, round_: _Round) -> None:
        if round_.all_launched and round_.steps_running == 0:
            if round_.checked and round_.fresh == 0:
                self.dry_round = True
            self.refill.round_took(time.perf_counter() - round_.started)

    async def _sample_is_stale(self, chunk: list[Candidate]) -> bool:
        """Whether any of the round's first SAMPLE_STEP candidates is issued (one BatchGetItem)."""
        issued, _ = await self.refill.repository.existing_among(
            self.refill.pool.name, chunk[:SAMPLE_STEP], check_available=False
        )
        self.refill.summary.check_requests += 1
        return bool(issued)

    async def _with_slot(self, work: Coroutine[Any, Any, T]) -> T:
        async with self.slots:
            return await work


def _fresh_candidates(
    pool: PoolConfig, size: int, summary: RefillSummary, seen: set[str], in_flight: AbstractSet[str]
) -> list[Candidate]:
    """`size` codes, none in `seen` (the round's keys so far, which they join) nor `in_flight` (those of the steps
    still running, whatever their round); repeats are counted, not written.

    Only a round's keys are remembered, so memory stays bounded by REFILL_ROUND_SIZE whatever the target. A code
    drawn again in a later round is harmless: with `check_available` on (small keyspaces) the check finds it in
    the pool and skips it; with it off, writing it is a blind overwrite of the same slot (its shard is a hash of
    the code), which overstates `written` by one, and a code's odds of being drawn again are at most
    target/keyspace, at most 1/1000 when `check_available` is off (AVAILABLE_CHECK_RATIO).
    """
    fmt, shards = pool.format, pool.shards
    candidates: list[Candidate] = []
    attempts = 0
    while len(candidates) < size and attempts < 20 * size:
        for code in fmt.generate_many(size - len(candidates)):
            attempts += 1
            key = fmt.canonical(code)
            if key in seen or key in in_flight:
                summary.skipped_repeated += 1
                continue
            seen.add(key)
            candidates.append(Candidate(key=key, code=code, shard=shard_of(key, shards)))
    return candidates
