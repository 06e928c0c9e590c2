"""The refill use case on the in-memory fake: rounds, the deadline, bounded memory, failures that cancel siblings."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

import codepool.refilling
from codepool.config import PoolConfig
from codepool.deadline import Deadline
from codepool.errors import RefillError, StoreUnavailableError
from codepool.formats import CodeFormat
from codepool.model import Candidate, IssuedCode, PoolLedger
from codepool.refilling import REFILL_ROUND_SIZE, PoolRefillError, refill_pool
from codepool.repository import WriteReport
from tests.support.fakes import InMemoryRepository

POOL = PoolConfig(name="vouchers", format=CodeFormat(alphabet="unambiguous", length=8), target=5_000, low_watermark=0)
BIG = PoolConfig(name="big", format=CodeFormat(alphabet="unambiguous", length=10), target=10_000_000, low_watermark=0)


def slots_in(repository: InMemoryRepository, pool: PoolConfig) -> int:
    return len(repository.available_keys(pool.name))


@pytest.fixture
def quick_first_round(monkeypatch: pytest.MonkeyPatch) -> None:
    """Assume a first round of 50 ms instead of 2 s, so deadline tests take a fraction of a second."""
    monkeypatch.setattr(codepool.refilling, "FIRST_ROUND_ESTIMATE_SECONDS", 0.05)


@dataclass
class SlowRepository(InMemoryRepository):
    """Each BatchWriteItem's worth of slots takes `write_seconds`."""

    write_seconds: float = 0.005

    async def add_available(self, pool: str, candidates: Sequence[Candidate]) -> WriteReport:
        await asyncio.sleep(self.write_seconds)
        return await super().add_available(pool, candidates)


@dataclass
class HangingRepository(InMemoryRepository):
    """Writes `answered` batches, then every write hangs (a frozen engine); records the calls cancelled."""

    answered: int = 10
    calls: int = 0
    cancelled: int = 0

    async def add_available(self, pool: str, candidates: Sequence[Candidate]) -> WriteReport:
        self.calls += 1
        if self.calls > self.answered:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        await asyncio.sleep(0)
        return await super().add_available(pool, candidates)


@dataclass
class FailingRepository(InMemoryRepository):
    """The `fail_on`-th write fails (unprocessed items after 3 of its slots landed, or store trouble); the
    others take a while. Records what the other writes did after the failure: completed (the bug) or cancelled."""

    fail_on: int = 3
    error: str = "unprocessed"
    calls: int = 0
    failed: bool = False
    completed_after_failure: int = 0
    cancelled: int = 0

    async def add_available(self, pool: str, candidates: Sequence[Candidate]) -> WriteReport:
        self.calls += 1
        if self.calls == self.fail_on:
            await asyncio.sleep(0.01)
            self.failed = True
            if self.error == "unprocessed":
                await super().add_available(pool, candidates[:3])
                raise RefillError("BatchWriteItem kept returning UnprocessedItems", 3)
            raise StoreUnavailableError("DynamoDB did not answer")
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        report = await super().add_available(pool, candidates)
        if self.failed:
            self.completed_after_failure += 1
        return report


@dataclass
class CountingRepository(InMemoryRepository):
    """Accepts every write and keeps none of it, so its own memory does not grow with the target."""

    accepted: int = 0

    async def add_available(self, pool: str, candidates: Sequence[Candidate]) -> WriteReport:
        self.accepted += len(candidates)
        return WriteReport(written=len(candidates), requests=(len(candidates) + 24) // 25)


async def test_refill_reaches_the_target_in_rounds_and_says_it_is_complete() -> None:
    repository = InMemoryRepository()
    summary = await refill_pool(repository, POOL)
    assert summary.written == slots_in(repository, POOL) == 5_000
    assert (summary.complete, summary.stopped) == (True, None)
    assert summary.rounds == 3  # 2,000 + 2,000 + 1,000
    body = summary.to_json()
    assert (body["complete"], body["stopped"], body["rounds"]) == (True, None, 3)
    for key in ["pool", "availableBefore", "target", "written", "skippedIssued", "skippedAvailable"]:
        assert key in body
    again = await refill_pool(repository, POOL, deadline=Deadline.after(60))
    assert (again.available_before, again.written, again.complete, again.stopped) == (5_000, 0, True, None)


async def test_a_deadline_too_close_for_one_round_stops_before_writing() -> None:
    repository = InMemoryRepository()
    summary = await refill_pool(repository, POOL, deadline=Deadline.after(0.2))
    assert (summary.written, summary.rounds, slots_in(repository, POOL)) == (0, 0, 0)
    assert (summary.complete, summary.stopped) == (False, "deadline")
    assert summary.to_json()["stopped"] == "deadline"


@pytest.mark.usefixtures("quick_first_round")
async def test_a_nearly_used_up_deadline_stops_with_partial_progress_counted() -> None:
    repository = SlowRepository()
    started = time.monotonic()
    summary = await refill_pool(repository, BIG, 1_000_000, deadline=Deadline.after(0.5))
    took = time.monotonic() - started
    assert took < 0.5 + 0.25, f"ran {took:.2f} s with a 0.5 s deadline"
    assert 0 < summary.written < 1_000_000
    assert summary.written == slots_in(repository, BIG)
    assert summary.rounds > 1
    assert (summary.complete, summary.stopped) == (False, "deadline")


@pytest.mark.usefixtures("quick_first_round")
async def test_a_hanging_store_is_cut_at_the_deadline_and_what_landed_is_counted() -> None:
    repository = HangingRepository(answered=10)
    started = time.monotonic()
    summary = await asyncio.wait_for(refill_pool(repository, BIG, 100_000, deadline=Deadline.after(0.4)), 5)
    took = time.monotonic() - started
    assert 0.35 < took < 0.4 + 0.25
    assert summary.written == slots_in(repository, BIG) == 10 * 25
    assert (summary.complete, summary.stopped) == (False, "deadline")
    assert repository.cancelled > 0
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []


async def test_memory_stays_bounded_whatever_the_target() -> None:
    """The refill remembers one round's keys at a time: ten times the target, about the same peak memory."""

    async def peak_bytes(target: int) -> int:
        repository = CountingRepository()
        tracemalloc.start()
        try:
            summary = await refill_pool(repository, BIG, target)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert summary.written == repository.accepted == target
        return peak

    small = await peak_bytes(2 * REFILL_ROUND_SIZE)
    large = await peak_bytes(20 * REFILL_ROUND_SIZE)
    assert large < 1.5 * small, f"peak {large:,} bytes for 20 rounds' codes vs {small:,} for 2 rounds'"


async def test_a_failing_step_cancels_its_siblings_and_the_error_counts_what_landed() -> None:
    repository = FailingRepository(fail_on=3)
    with pytest.raises(RefillError, match="UnprocessedItems") as caught:
        await refill_pool(repository, POOL)
    await asyncio.sleep(0.1)  # siblings left running would complete now
    assert repository.completed_after_failure == 0
    assert repository.cancelled >= 1
    assert caught.value.written == slots_in(repository, POOL) == 3
    assert isinstance(caught.value, PoolRefillError)
    summary = caught.value.summary
    assert (summary.written, summary.complete, summary.stopped) == (3, False, "error")
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []


async def test_store_trouble_in_a_step_is_one_refill_error_caused_by_it() -> None:
    repository = FailingRepository(fail_on=2, error="unavailable")
    with pytest.raises(RefillError, match="DynamoDB did not answer") as caught:
        await refill_pool(repository, POOL)
    assert isinstance(caught.value.__cause__, StoreUnavailableError)
    assert caught.value.written == slots_in(repository, POOL) == 0
    assert repository.completed_after_failure == 0
    assert repository.cancelled >= 1


@dataclass
class CountingChecks(InMemoryRepository):
    checked_codes: int = 0

    async def existing_among(
        self, pool: str, candidates: Sequence[Candidate], *, check_available: bool
    ) -> tuple[set[str], set[str]]:
        self.checked_codes += len(candidates)
        return await super().existing_among(pool, candidates, check_available=check_available)


SMALL = PoolConfig(name="small", format=CodeFormat(alphabet="numeric", length=5), target=1_000, low_watermark=0)


async def test_below_the_check_fill_fraction_codes_are_written_unchecked_but_for_a_sample() -> None:
    repository = InMemoryRepository()
    summary = await refill_pool(repository, BIG, 4_000)
    assert (summary.checked, summary.fill_fraction, summary.written) == (False, 0.0, 4_000)
    # Two rounds of 2,000: one sampled BatchGetItem each, no other check.
    assert (summary.rounds, summary.check_requests) == (2, 2)


async def test_a_sample_that_meets_issued_codes_turns_the_check_on_whatever_the_ledger_says() -> None:
    repository = InMemoryRepository()
    fmt = SMALL.format
    for number in range(0, fmt.keyspace, 10):  # 10 % issued behind the ledger's back (an old table, another tool)
        code = fmt.code_for(number)
        if code is not None:
            repository.issued[fmt.canonical(code)] = IssuedCode(code=code, pool="small", issued_at="t")
    summary = await refill_pool(repository, SMALL)
    assert summary.fill_fraction == 0.0  # the ledger knows of none
    assert summary.checked
    assert summary.skipped_issued > 0
    assert not repository.available_keys("small") & set(repository.issued)


async def test_from_the_check_fill_fraction_every_candidate_is_checked() -> None:
    repository = CountingChecks()
    # The ledger says 3,000 of the pool's codes were issued (3 % of 100,000, less blocked ones); the table holds
    # none, so no sample could have turned the check on: the fill fraction did.
    repository.ledgers["small"] = PoolLedger(written=3_000)
    summary = await refill_pool(repository, SMALL)
    assert summary.fill_fraction >= codepool.refilling.CHECK_FILL_FRACTION
    assert summary.checked
    assert repository.checked_codes == 1_000  # every candidate, in steps of 100; an unchecked refill: 50
    # Steps of 100 codes, each one BatchGetItem of 200 keys (records and, this keyspace being small, slots).
    assert summary.check_requests == 2 * 1_000 // 100


TINY = PoolConfig(
    name="tiny", format=CodeFormat(alphabet="numeric", length=4, default_blocklist=False), target=3_000, low_watermark=0
)


async def test_overlapping_rounds_never_write_one_code_twice_or_count_it_twice() -> None:
    """Rounds overlap in the pipeline (eight steps in flight, slow writes): a code drawn again
    while its first step is still in flight must not be written and counted by both."""
    repository = SlowRepository(write_seconds=0.002)
    summary = await refill_pool(repository, TINY)
    assert summary.rounds > 1
    assert summary.written == slots_in(repository, TINY) == 3_000
    assert summary.skipped_repeated + summary.skipped_available > 0  # a 10,000-code keyspace: draws do repeat
