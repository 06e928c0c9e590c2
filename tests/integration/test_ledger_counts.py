"""Invariant 6 on DynamoDB Local: the ledger counts each write that landed once, whatever happens to its answer,
so a pool's `issued` equals its `CODE#` records (`tests/support/fault_proxy.py` loses and delays the answers)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from codepool.components import Components
from codepool.config import PoolConfig, Settings
from codepool.dynamodb.client import open_client
from codepool.dynamodb.keys import code_key
from codepool.errors import ClaimContentionError, StoreUnavailableError
from codepool.formats import CodeFormat
from codepool.importing import import_codes
from codepool.issuing import issue_codes
from codepool.model import IssueRequest
from codepool.queries import pool_stats
from codepool.refilling import refill_pool
from codepool.runtime import Container
from localdev.engines import DynamoDBLocal
from tests.support.fault_proxy import Delay, DropResponse, FaultProxy, Rule, dynamodb_error
from tests.support.tables import scan_table

pytestmark = pytest.mark.integration

POOL = PoolConfig(name="counted", format=CodeFormat(alphabet="unambiguous", length=8), target=3000, shards=4)
LEDGER_WRITES = ("TransactWriteItems", "UpdateItem")
"""Where a refill's ledger additions go (now one-item transactions, before this fix UpdateItem ADD)."""


@pytest.fixture
def proxy(dynamodb_local: DynamoDBLocal) -> Iterator[FaultProxy]:
    with FaultProxy(dynamodb_local.endpoint_url, seed=1) as running:
        yield running


def lose_and_delay_answers(proxy: FaultProxy) -> None:
    """For each ledger write: the first answer lost after its write committed, a 5xx the SDK retries, an answer
    2.5 s late (past the refill's 2 s wait, the write landing meanwhile)."""
    for operation in LEDGER_WRITES:
        proxy.add(Rule(DropResponse(), operation=operation, times=1))
        proxy.add(Rule(dynamodb_error("InternalServerError"), operation=operation, times=1))
        proxy.add(Rule(Delay(2.5), operation=operation, times=1))


async def items_of(settings: Settings) -> list[dict[str, Any]]:
    async with AsyncExitStack() as stack:
        return await scan_table(await open_client(settings, stack), settings.table_name)


async def code_records(settings: Settings, pool: str) -> int:
    items = await items_of(settings)
    return sum(1 for item in items if item["pk"]["S"].startswith("CODE#") and item["pool"]["S"] == pool)


async def test_a_refill_whose_ledger_answers_are_lost_or_late_counts_each_code_once(
    proxy: FaultProxy, local_table: Settings
) -> None:
    through = dataclasses.replace(local_table, endpoint_url=proxy.url)
    lose_and_delay_answers(proxy)
    async with Container.open(through, pools={POOL.name: POOL}) as container:
        summary = await refill_pool(container.repository, POOL)
        assert (summary.written, summary.uncounted) == (3000, 0)
        fired = [rule.fired for rule in proxy.rules]
        assert sum(fired[:3]) == 3, fired  # every fault met a ledger write
        ledger = await container.repository.get_ledger(POOL.name)
        stats = await pool_stats(container.repository, POOL)
        assert (ledger.written, stats.available, stats.issued) == (3000, 3000, 0)
        for _ in range(7):
            await issue_codes(container.components, IssueRequest(pool=POOL.name))
        stats = await pool_stats(container.repository, POOL)
    assert stats.issued == await code_records(local_table, POOL.name) == 7


async def test_slots_a_claim_finds_issued_leave_the_pool_counted_once_as_stale(
    proxy: FaultProxy, local_table: Settings
) -> None:
    small = dataclasses.replace(POOL, target=50, low_watermark=0, shards=1)
    through = dataclasses.replace(local_table, endpoint_url=proxy.url)
    async with Container.open(through, pools={small.name: small}) as container, AsyncExitStack() as stack:
        await refill_pool(container.repository, small)
        slots = [item for item in await items_of(local_table) if item["pk"]["S"] == "POOL#counted#0"]
        direct = await open_client(local_table, stack)
        for item in slots[:10]:  # issued meanwhile by a pool sharing the key
            record = {**code_key(item["sk"]["S"]), "code": item["code"], "pool": {"S": "other"}}
            await direct.put_item(TableName=local_table.table_name, Item=record)
        # Answers of claims and stale-slot removals lost after they committed: the SDK's retry is the same write.
        proxy.add(Rule(DropResponse(), operation="TransactWriteItems", rate=0.3))
        components = Components.over(container.repository, {small.name: small})
        issued = 0
        while issued < 40:
            try:
                issued += len((await issue_codes(components, IssueRequest(pool=small.name))).codes)
            except ClaimContentionError:
                continue  # eight stale slots met in a row: a 503 the client retries
        ledger = await container.repository.get_ledger(small.name)
        stats = await pool_stats(container.repository, small)
    assert proxy.rules[0].fired > 0
    assert (ledger.written, ledger.stale, stats.available) == (50, 10, 0)
    assert stats.issued == await code_records(local_table, small.name) == 40


async def test_an_import_that_fails_midway_counts_the_chunks_that_landed_and_a_rerun_counts_the_rest(
    proxy: FaultProxy, local_table: Settings
) -> None:
    cards = PoolConfig(
        name="cards",
        format=CodeFormat(alphabet="numeric", length=8, default_blocklist=False),
        target=10,
        low_watermark=0,
        imported_only=True,
    )
    lines = [(number + 1, f"{10_000_000 + number * 7}") for number in range(400)]
    failing = dataclasses.replace(local_table, endpoint_url=proxy.url, max_attempts=1)
    proxy.add(Rule(dynamodb_error("InternalServerError"), operation="BatchWriteItem", times=1))
    async with Container.open(failing, pools={cards.name: cards}) as container:
        with pytest.raises(StoreUnavailableError):
            await import_codes(container.repository, cards, lines)
        first = await container.repository.get_ledger(cards.name)
        again = await import_codes(container.repository, cards, lines)
        ledger = await container.repository.get_ledger(cards.name)
        stats = await pool_stats(container.repository, cards)
    assert 0 < first.imported < 400
    assert again.imported + first.imported == 400 == ledger.imported
    assert (stats.available, stats.issued, stats.usable_keyspace) == (400, 0, 400)


async def test_two_refills_at_once_in_a_small_keyspace_count_each_slot_once(local_table: Settings) -> None:
    """4-digit codes, 3,000 wanted by two refills at the same time: many codes are drawn by both, and whoever
    creates a slot counts it; the other's conditional put finds it there."""
    small = PoolConfig(name="pins", format=CodeFormat(alphabet="numeric", length=4), target=3000, shards=2)
    async with Container.open(local_table, pools={small.name: small}) as container:
        first, second = await asyncio.gather(
            refill_pool(container.repository, small), refill_pool(container.repository, small)
        )
        ledger = await container.repository.get_ledger(small.name)
        stats = await pool_stats(container.repository, small)
    slots = [
        item for item in await items_of(local_table) if item["pk"]["S"].startswith("POOL#pins#") and "code" in item
    ]
    assert first.written + second.written == ledger.written == len(slots) == stats.available
    assert stats.issued == 0
