"""The DynamoDB adapter keeps the port's promises on both engines."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from codepool.components import Components
from codepool.config import PoolConfig, Settings
from codepool.dynamodb.client import open_client
from codepool.dynamodb.repository import DynamoDBRepository
from codepool.errors import IdempotencyMismatchError, PoolEmptyError, StoreUnavailableError
from codepool.formats import CodeFormat
from codepool.issuing import issue_codes
from codepool.model import Candidate, IssuedCode, IssueRequest, shard_of
from codepool.queries import available_count, lookup_code
from codepool.refilling import refill_pool
from codepool.repository import IdempotencyRecord
from codepool.runtime import Container
from localdev.schema import create_table

POOL = PoolConfig(name="p", format=CodeFormat(alphabet="unambiguous", length=8), target=100, low_watermark=10)
POOLS = {POOL.name: POOL}


def candidate(code: str) -> Candidate:
    key = POOL.format.canonical(code)
    return Candidate(key=key, code=code, shard=shard_of(key, POOL.shards))


@pytest.fixture
def repository(container: Container) -> DynamoDBRepository:
    return container.repository


def record(code: str) -> IssuedCode:
    return IssuedCode(code=code, pool=POOL.name, issued_at="2026-01-01T00:00:00.000Z", metadata={"usedBy": "u"})


async def test_create_table_is_idempotent(table: Settings) -> None:
    async with AsyncExitStack() as stack:
        client = await open_client(table, stack)
        assert await create_table(client, table.table_name) is False
        ttl = await client.describe_time_to_live(TableName=table.table_name)
        assert ttl["TimeToLiveDescription"].get("AttributeName") == "expiresAt"


async def test_refill_then_count_and_find_candidates(repository: DynamoDBRepository) -> None:
    summary = await refill_pool(repository, POOL, 100)
    assert summary.written == 100
    assert await available_count(repository, POOL) == 100
    found = []
    for shard in range(POOL.shards):
        found += await repository.find_candidates(POOL.name, shard, POOL.format.generate(), 1000)
    assert len({c.key for c in found}) == 100
    assert all(POOL.format.matches(c.code) for c in found)


async def test_claim_is_all_or_nothing(repository: DynamoDBRepository) -> None:
    present, missing = candidate("AAAAAAAA"), candidate("BBBBBBBB")
    await repository.add_available(POOL.name, [present])
    outcome = await repository.claim(POOL.name, [present, missing], [record("AAAAAAAA"), record("BBBBBBBB")], None, 0)
    assert outcome.issued is None
    assert [c.key for c in outcome.lost] == ["BBBBBBBB"]
    # Nothing of the failed claim was written: the present slot is still there, no record exists.
    assert await repository.get_issued(["AAAAAAAA"]) is None
    assert (await repository.count_available(POOL.name, present.shard)).count == 1
    outcome = await repository.claim(POOL.name, [present], [record("AAAAAAAA")], None, 0)
    assert outcome.issued == [record("AAAAAAAA")]
    assert await repository.get_issued(["aaaaaaaa", "AAAAAAAA"]) == record("AAAAAAAA")


async def test_claim_of_a_stale_slot_is_reported_and_nothing_issued_twice(repository: DynamoDBRepository) -> None:
    code = candidate("CCCCCCCC")
    await repository.add_available(POOL.name, [code])
    assert (await repository.claim(POOL.name, [code], [record("CCCCCCCC")], None, 0)).issued
    await repository.add_available(POOL.name, [code])  # a refill re-adds the issued code's slot
    outcome = await repository.claim(POOL.name, [code], [record("CCCCCCCC")], None, 0)
    assert outcome.issued is None
    assert outcome.stale == [code]


async def test_idempotency_record_is_written_with_the_claim(repository: DynamoDBRepository) -> None:
    first, second = candidate("DDDDDDDD"), candidate("EEEEEEEE")
    await repository.add_available(POOL.name, [first, second])
    key = IdempotencyRecord(key="key-1", fingerprint="f", codes=[record("DDDDDDDD")], expires_at=2000)
    assert (await repository.claim(POOL.name, [first], [record("DDDDDDDD")], key, now=1000)).issued
    retry = IdempotencyRecord(key="key-1", fingerprint="f", codes=[record("EEEEEEEE")], expires_at=2000)
    outcome = await repository.claim(POOL.name, [second], [record("EEEEEEEE")], retry, now=1000)
    assert outcome.replayed == key
    assert (await repository.count_available(POOL.name, second.shard)).count == 1, "the replay must claim nothing"
    assert await repository.get_idempotency("key-1", now=1000) == key
    assert await repository.get_idempotency("key-1", now=2001) is None
    # Once expired, the key can be used again even though TTL has not deleted the record yet.
    later = IdempotencyRecord(key="key-1", fingerprint="g", codes=[record("EEEEEEEE")], expires_at=9000)
    assert (await repository.claim(POOL.name, [second], [record("EEEEEEEE")], later, now=2001)).issued


async def test_issue_service_end_to_end(repository: DynamoDBRepository) -> None:
    await refill_pool(repository, POOL, 60)
    components = Components.over(repository, POOLS)
    request = IssueRequest(pool=POOL.name, count=3, used_by="alice", reference="r", description="d")
    first = await issue_codes(components, request, idempotency_key="k", request_id="q")
    again = await issue_codes(components, request, idempotency_key="k")
    assert again.replayed
    assert again.codes == first.codes
    with pytest.raises(IdempotencyMismatchError):
        await issue_codes(components, IssueRequest(pool=POOL.name), idempotency_key="k")
    for code in first.codes:
        stored = await lookup_code(repository, POOLS, code.code.lower())
        assert stored == code
        assert stored.metadata == {"usedBy": "alice", "reference": "r", "description": "d"}
    assert await available_count(repository, POOL) == 57


async def test_draining_the_pool_ends_in_pool_empty(repository: DynamoDBRepository) -> None:
    await refill_pool(repository, POOL, 30)
    components = Components.over(repository, POOLS)
    codes = [(await issue_codes(components, IssueRequest(pool=POOL.name))).codes[0].code for _ in range(30)]
    assert len(set(codes)) == 30
    with pytest.raises(PoolEmptyError):
        await issue_codes(components, IssueRequest(pool=POOL.name))


async def test_small_keyspace_refill_reaches_its_target_without_reissuing(repository: DynamoDBRepository) -> None:
    tiny = PoolConfig(name="tiny", format=CodeFormat(alphabet="numeric", length=3), target=400, low_watermark=0)
    pools = {"tiny": tiny}
    await refill_pool(repository, tiny)
    issued = (await issue_codes(Components.over(repository, pools), IssueRequest(pool="tiny", count=25))).codes
    summary = await refill_pool(repository, tiny)
    assert summary.written == 25
    assert await available_count(repository, tiny) == 400
    available = set()
    for shard in range(tiny.shards):
        available |= {c.key for c in await repository.find_candidates("tiny", shard, "000", 1000)}
    assert not available & {c.code for c in issued}


async def test_unreachable_engine_is_a_bounded_store_unavailable_error() -> None:
    settings = Settings(endpoint_url="http://127.0.0.1:9", connect_timeout=0.2, read_timeout=0.2, max_attempts=2)
    async with AsyncExitStack() as stack:
        repository = DynamoDBRepository(await open_client(settings, stack), "nope")
        with pytest.raises(StoreUnavailableError):
            await asyncio.wait_for(repository.count_available("p", 0), timeout=10)
