from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codepool.components import Components
from codepool.config import PoolConfig
from codepool.errors import (
    IdempotencyMismatchError,
    InvalidRequestError,
    PoolEmptyError,
    PoolExhaustedError,
    PoolNotFoundError,
)
from codepool.formats import CodeFormat
from codepool.issuing import IDEMPOTENCY_TTL_SECONDS, IssueResult, issue_codes, scoped_idempotency_key
from codepool.model import Candidate, IssueRequest, shard_of
from codepool.queries import lookup_code
from codepool.refilling import refill_pool
from tests.support.fakes import InMemoryRepository

POOL = PoolConfig(name="vouchers", format=CodeFormat(alphabet="unambiguous", length=8), target=200, low_watermark=20)
POOLS = {POOL.name: POOL}


async def filled(target: int = 200) -> InMemoryRepository:
    repository = InMemoryRepository()
    await refill_pool(repository, POOL, target)
    return repository


async def test_refill_tops_the_pool_up_to_its_target_with_well_formed_codes() -> None:
    repository = InMemoryRepository()
    summary = await refill_pool(repository, POOL)
    assert summary.written == 200
    keys = repository.available_keys(POOL.name)
    assert len(keys) == 200
    assert all(POOL.format.matches(code) for slots in repository.slots.values() for code in slots.values())
    again = await refill_pool(repository, POOL)
    assert (again.available_before, again.written) == (200, 0)


async def test_issue_claims_a_code_and_records_its_metadata() -> None:
    repository = await filled()
    components = Components.over(repository, POOLS)
    request = IssueRequest(pool=POOL.name, used_by="alice", reference="order-1", description="welcome")
    result = await issue_codes(components, request, request_id="r-1")
    (code,) = result.codes
    assert POOL.format.matches(code.code)
    record = repository.issued[POOL.format.canonical(code.code)]
    assert record.metadata == {"usedBy": "alice", "reference": "order-1", "description": "welcome"}
    assert record.request_id == "r-1"
    assert POOL.format.canonical(code.code) not in repository.available_keys(POOL.name)


async def test_hot_path_averages_about_one_request_per_code() -> None:
    repository = await filled(1000)
    components = Components.over(repository, POOLS)
    repository.requests = 0
    for _ in range(500):
        await issue_codes(components, IssueRequest(pool=POOL.name))
    assert repository.requests / 500 <= 1.05


async def test_count_claims_several_distinct_codes_at_once() -> None:
    repository = await filled()
    result = await issue_codes(Components.over(repository, POOLS), IssueRequest(pool=POOL.name, count=25))
    assert len({code.code for code in result.codes}) == 25
    assert len(repository.issued) == 25


async def test_two_claimers_racing_for_one_code_exactly_one_wins() -> None:
    repository = InMemoryRepository()
    code = POOL.format.generate()
    key = POOL.format.canonical(code)
    await repository.add_available(POOL.name, [Candidate(key=key, code=code, shard=0)])
    single_shard = PoolConfig(name=POOL.name, format=POOL.format, target=1, low_watermark=0, shards=1)
    pools = {POOL.name: single_shard}
    results = await asyncio.gather(
        *(issue_codes(Components.over(repository, pools), IssueRequest(pool=POOL.name)) for _ in range(2)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, IssueResult)]
    losers = [r for r in results if isinstance(r, PoolEmptyError)]
    assert len(winners) == 1
    assert len(losers) == 1
    assert winners[0].codes[0].code == code


async def test_many_claimers_never_get_the_same_code() -> None:
    repository = await filled(300)

    async def claimer() -> list[str]:
        components = Components.over(repository, POOLS)
        codes = []
        for _ in range(10):
            result = await issue_codes(components, IssueRequest(pool=POOL.name))
            codes.append(result.codes[0].code)
        return codes

    batches = await asyncio.gather(*(claimer() for _ in range(20)))
    codes = [code for batch in batches for code in batch]
    assert len(codes) == len(set(codes)) == 200


async def test_a_slot_for_an_already_issued_code_is_deleted_not_issued_again() -> None:
    repository = await filled(1)
    first = await issue_codes(Components.over(repository, POOLS), IssueRequest(pool=POOL.name))
    code = first.codes[0].code
    key = POOL.format.canonical(code)
    # A refill that checked "not issued" just before the claim re-adds the code's slot.
    stale = Candidate(key=key, code=code, shard=shard_of(key, POOL.shards))
    await repository.add_available(POOL.name, [stale])
    with pytest.raises(PoolEmptyError):
        await issue_codes(Components.over(repository, POOLS), IssueRequest(pool=POOL.name))
    assert repository.available_keys(POOL.name) == set()
    assert len(repository.issued) == 1


async def test_empty_pool_is_reported_not_waited_on() -> None:
    with pytest.raises(PoolEmptyError) as raised:
        await issue_codes(Components.over(InMemoryRepository(), POOLS), IssueRequest(pool=POOL.name))
    assert raised.value.retry_after > 0


async def test_same_idempotency_key_and_body_returns_the_same_codes() -> None:
    repository = await filled()
    components = Components.over(repository, POOLS)
    request = IssueRequest(pool=POOL.name, count=2, used_by="bob")
    first = await issue_codes(components, request, idempotency_key="k")
    second = await issue_codes(components, request, idempotency_key="k")
    assert second.replayed
    assert not first.replayed
    assert second.codes == first.codes
    assert len(repository.issued) == 2
    with pytest.raises(IdempotencyMismatchError):
        await issue_codes(components, IssueRequest(pool=POOL.name, count=2, used_by="eve"), idempotency_key="k")
    assert len(repository.issued) == 2


async def test_replay_still_works_once_the_pool_is_empty() -> None:
    repository = await filled(1)
    request = IssueRequest(pool=POOL.name)
    first = await issue_codes(Components.over(repository, POOLS), request, idempotency_key="k")
    again = await issue_codes(Components.over(repository, POOLS), request, idempotency_key="k")
    assert again.replayed
    assert again.codes == first.codes


async def test_expired_idempotency_key_can_be_used_again() -> None:
    repository = await filled()
    request = IssueRequest(pool=POOL.name)
    components = Components.over(repository, POOLS)
    first = await issue_codes(components, request, idempotency_key="k", clock=lambda: 1000)
    later = 1000 + IDEMPOTENCY_TTL_SECONDS + 1
    second = await issue_codes(components, request, idempotency_key="k", clock=lambda: later)
    assert not second.replayed
    assert second.codes != first.codes


@pytest.mark.parametrize(
    ("request_", "key", "error"),
    [
        (IssueRequest(pool=POOL.name, count=0), None, InvalidRequestError),
        (IssueRequest(pool=POOL.name, count=-1), None, InvalidRequestError),
        (IssueRequest(pool=POOL.name, count=26), None, InvalidRequestError),
        (IssueRequest(pool=POOL.name, used_by="x" * 257), None, InvalidRequestError),
        (IssueRequest(pool=POOL.name, description="x" * 1025), None, InvalidRequestError),
        (IssueRequest(pool=POOL.name), "k" * 256, InvalidRequestError),
        (IssueRequest(pool="nope"), None, PoolNotFoundError),
    ],
)
async def test_invalid_requests_write_nothing(request_: IssueRequest, key: str | None, error: type[Exception]) -> None:
    repository = await filled()
    repository.requests = 0
    with pytest.raises(error):
        await issue_codes(Components.over(repository, POOLS), request_, idempotency_key=key)
    assert repository.requests == 0
    assert not repository.issued


async def test_refill_never_writes_an_issued_code_and_an_exhausted_keyspace_says_so() -> None:
    tiny = PoolConfig(name="tiny", format=CodeFormat(alphabet="numeric", length=2), target=50, low_watermark=0)
    repository = InMemoryRepository()
    await refill_pool(repository, tiny, 50)
    components = Components.over(repository, {"tiny": tiny})
    issued = [(await issue_codes(components, IssueRequest(pool="tiny"))).codes[0].code for _ in range(50)]
    summary = await refill_pool(repository, tiny, 50)
    assert summary.written == 50
    assert not {tiny.format.canonical(c) for c in issued} & repository.available_keys("tiny")
    # Half the keyspace issued: that refill swept it, so every code left is in the pool now.
    assert (summary.swept, summary.stopped, summary.exhausted) == (100, None, False)
    for _ in range(2):
        await issue_codes(components, IssueRequest(pool="tiny", count=25))
    with pytest.raises(PoolExhaustedError, match="every other code of its keyspace"):
        await issue_codes(components, IssueRequest(pool="tiny"))
    again = await refill_pool(repository, tiny, 50)
    assert (again.written, again.stopped, again.exhausted) == (0, "keyspace", True)


async def test_lookup_accepts_typed_variants() -> None:
    repository = await filled()
    result = await issue_codes(Components.over(repository, POOLS), IssueRequest(pool=POOL.name))
    code = result.codes[0].code
    typed = f" {code[:4].lower()}-{code[4:].lower()} "
    assert (await lookup_code(repository, POOLS, typed)).code == code
    with pytest.raises(InvalidRequestError):
        await lookup_code(repository, POOLS, " - ")


async def test_idempotency_keys_are_scoped_per_authenticated_caller() -> None:
    repository = await filled()
    components = Components.over(repository, POOLS)
    request = IssueRequest(pool=POOL.name)
    alice = await issue_codes(components, request, idempotency_key="k", caller="alice")
    mallory = await issue_codes(components, request, idempotency_key="k", caller="mallory")
    assert not mallory.replayed
    assert mallory.codes != alice.codes
    again = await issue_codes(components, request, idempotency_key="k", caller="alice")
    assert again.replayed
    assert again.codes == alice.codes


async def test_a_caller_without_identity_cannot_reach_into_another_callers_scope() -> None:
    """Before, an unidentified caller's key was stored as sent, so sending alice's stored form of her key,
    `<sha256(alice)[:32]>#k`, replayed alice's codes to whoever sent it."""
    repository = await filled()
    components = Components.over(repository, POOLS)
    request = IssueRequest(pool=POOL.name)
    alice = await issue_codes(components, request, idempotency_key="k", caller="alice")
    crafted = scoped_idempotency_key("alice", "k")
    anonymous = await issue_codes(components, request, idempotency_key=crafted, caller=None)
    assert not anonymous.replayed
    assert anonymous.codes != alice.codes
    again = await issue_codes(components, request, idempotency_key=crafted, caller=None)
    assert again.replayed  # callers without an identity still have their (one, shared) scope
    assert again.codes == anonymous.codes


@given(caller=st.text(max_size=40), key=st.text(min_size=1, max_size=60), sent=st.text(min_size=1, max_size=120))
def test_scoped_and_unscoped_keys_never_meet(caller: str, key: str, sent: str) -> None:
    assert scoped_idempotency_key(None, sent) != scoped_idempotency_key(caller, key)
    assert scoped_idempotency_key(None, scoped_idempotency_key(caller, key)) != scoped_idempotency_key(caller, key)


async def test_a_claim_of_more_codes_than_are_left_says_how_many_are_and_that_it_is_all_or_none() -> None:
    repository = await filled(20)
    components = Components.over(repository, POOLS)
    with pytest.raises(PoolEmptyError) as raised:
        await issue_codes(components, IssueRequest(pool=POOL.name, count=25))
    message = str(raised.value)
    assert "no codes left" not in message
    assert "has about 20 codes left, fewer than the 25 asked for" in message
    assert "all or none" in message
    assert raised.value.left == 20
    assert not repository.issued  # none of the 20 was issued
    assert len((await issue_codes(components, IssueRequest(pool=POOL.name, count=20))).codes) == 20
    with pytest.raises(PoolEmptyError, match="'vouchers' has no codes left"):
        await issue_codes(components, IssueRequest(pool=POOL.name, count=2))


async def test_an_exhausted_pool_says_how_many_are_left_for_smaller_claims() -> None:
    listed = PoolConfig(
        name="listed",
        format=CodeFormat(alphabet="unambiguous", length=8),
        target=10,
        low_watermark=0,
        imported_only=True,
    )
    repository = InMemoryRepository()
    await repository.add_available(
        "listed", [Candidate(key=code, code=code, shard=0) for code in ("AAAA2222", "BBBB3333")]
    )
    components = Components.over(repository, {"listed": listed})
    with pytest.raises(PoolExhaustedError) as raised:
        await issue_codes(components, IssueRequest(pool="listed", count=3))
    assert "only about 2 codes are left, fewer than the 3 asked for" in str(raised.value)
    assert "all or none" in str(raised.value)
    assert "imported-only" in str(raised.value)
