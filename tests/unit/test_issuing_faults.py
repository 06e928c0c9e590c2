"""The claim loop under engine trouble, on the in-memory fake: throttling is backed off, not mistaken for a lost
race; every wait draws from the request's deadline; a failed clean-up cancels its siblings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import pytest

from codepool.components import Components
from codepool.config import PoolConfig
from codepool.deadline import Deadline
from codepool.errors import StoreUnavailableError
from codepool.formats import CodeFormat
from codepool.issuing import MAX_CLAIM_THROTTLES, ClaimThrottledError, issue_codes
from codepool.model import Candidate, IssuedCode, IssueRequest
from codepool.refilling import refill_pool
from codepool.repository import ClaimOutcome, IdempotencyRecord
from tests.support.fakes import InMemoryRepository

POOL = PoolConfig(name="vouchers", format=CodeFormat(alphabet="unambiguous", length=8), target=200, low_watermark=20)
POOLS = {POOL.name: POOL}
RepositoryT = TypeVar("RepositoryT", bound=InMemoryRepository)


@dataclass
class ThrottlingRepository(InMemoryRepository):
    """Refuses the first `throttled_claims` claims as DynamoDB does under throttling (a cancelled transaction
    whose reasons are `ThrottlingError`), then behaves."""

    throttled_claims: int = 0
    claims: int = 0
    prefetches: int = 0
    slow_seconds: float = 0.0

    async def find_candidates(self, pool: str, shard: int, start: str, limit: int) -> list[Candidate]:
        self.prefetches += 1
        await asyncio.sleep(self.slow_seconds)
        return await super().find_candidates(pool, shard, start, limit)

    async def claim(
        self,
        pool: str,
        candidates: Sequence[Candidate],
        records: Sequence[IssuedCode],
        idempotency: IdempotencyRecord | None,
        now: int,
    ) -> ClaimOutcome:
        self.claims += 1
        if self.claims <= self.throttled_claims:
            return ClaimOutcome(throttled="ThrottlingError")
        return await super().claim(pool, candidates, records, idempotency, now)


async def filled(repository: RepositoryT) -> RepositoryT:
    await refill_pool(repository, POOL, 200)
    return repository


async def test_throttled_claims_back_off_and_keep_the_prefetched_window() -> None:
    repository = await filled(ThrottlingRepository(throttled_claims=3))
    result = await issue_codes(Components.over(repository, POOLS), IssueRequest(pool=POOL.name))
    assert result.throttles == 3
    assert result.lost_races == 0
    assert repository.claims == 4
    # One prefetch for the whole request: a throttled claim says nothing about its candidates.
    assert repository.prefetches == 1


async def test_throttling_that_does_not_stop_is_a_503_naming_the_cause() -> None:
    repository = await filled(ThrottlingRepository(throttled_claims=1000))
    with pytest.raises(ClaimThrottledError, match="ThrottlingError") as raised:
        await issue_codes(Components.over(repository, POOLS), IssueRequest(pool=POOL.name))
    assert isinstance(raised.value, StoreUnavailableError)
    assert raised.value.code == "store_unavailable"
    assert raised.value.throttles == MAX_CLAIM_THROTTLES
    assert repository.claims == MAX_CLAIM_THROTTLES
    assert not repository.issued


async def test_throttling_gives_up_before_the_deadline_with_the_real_cause() -> None:
    repository = await filled(ThrottlingRepository(throttled_claims=1000))
    started = time.monotonic()
    with pytest.raises(ClaimThrottledError, match="ThrottlingError"):
        await issue_codes(
            Components.over(repository, POOLS), IssueRequest(pool=POOL.name), deadline=Deadline.after(0.06)
        )
    assert time.monotonic() - started < 0.06


async def test_a_slow_store_is_cut_at_the_deadline() -> None:
    repository = await filled(ThrottlingRepository(slow_seconds=5))
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="deadline"):
        await issue_codes(
            Components.over(repository, POOLS),
            IssueRequest(pool=POOL.name),
            idempotency_key="k",
            deadline=Deadline.after(0.2),
        )
    assert time.monotonic() - started < 0.5
    assert not repository.issued


@dataclass
class StaleSlotsRepository(InMemoryRepository):
    """Every claim meets stale slots; the first removal fails, the others are slow."""

    removals_started: int = 0
    removals_finished: int = 0

    async def claim(
        self,
        pool: str,
        candidates: Sequence[Candidate],
        records: Sequence[IssuedCode],
        idempotency: IdempotencyRecord | None,
        now: int,
    ) -> ClaimOutcome:
        return ClaimOutcome(stale=list(candidates))

    async def remove_stale_slot(self, pool: str, candidate: Candidate, token: str, *, counted: bool = True) -> None:
        self.removals_started += 1
        if self.removals_started == 1:
            raise StoreUnavailableError("DynamoDB DeleteItem kept failing: TransactionConflictException")
        await asyncio.sleep(0.2)
        self.removals_finished += 1


async def test_a_failed_stale_slot_removal_cancels_the_other_removals() -> None:
    repository = await filled(StaleSlotsRepository())
    request = IssueRequest(pool=POOL.name, count=25)
    with pytest.raises(StoreUnavailableError, match="TransactionConflictException"):
        await issue_codes(Components.over(repository, POOLS), request)
    assert repository.removals_started == 25
    await asyncio.sleep(0.3)
    assert repository.removals_finished == 0
