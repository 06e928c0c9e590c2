"""Invariant 1 under load, on DynamoDB Local (moto cannot isolate concurrent transactions)."""

from __future__ import annotations

import asyncio

from codepool.components import Components
from codepool.config import PoolConfig, Settings
from codepool.dynamodb.keys import PARTITION_KEY, SORT_KEY, is_slot
from codepool.errors import ClaimContentionError, PoolEmptyError
from codepool.formats import CodeFormat
from codepool.issuing import issue_codes
from codepool.model import IssueRequest
from codepool.refilling import refill_pool
from codepool.runtime import Container
from tests.support.tables import issued_records, scan_table

CLAIMERS = 64
CODES = 5_000
POOL = PoolConfig(
    name="race", format=CodeFormat(alphabet="unambiguous", length=8), target=1_500, shards=4, low_watermark=100
)
POOLS = {POOL.name: POOL}


async def test_64_claimers_and_two_overlapping_refills_never_issue_a_code_twice(local_table: Settings) -> None:
    async with Container.open(local_table, POOLS) as container:
        repository = container.repository
        await refill_pool(repository, POOL)
        issued: list[tuple[str, str, str]] = []
        done = asyncio.Event()
        refill_runs = [0, 0]
        written_during_claims = 0

        async def claimer(number: int) -> None:
            components = Components.over(repository, POOLS)  # one container each: its own candidate cache
            sequence = 0
            while len(issued) < CODES:
                sequence += 1
                request = IssueRequest(pool=POOL.name, used_by=f"claimer-{number}", reference=f"{number}-{sequence}")
                try:
                    result = await issue_codes(components, request)
                except (PoolEmptyError, ClaimContentionError):
                    await asyncio.sleep(0.02)
                    continue
                issued.append((result.codes[0].code, f"claimer-{number}", f"{number}-{sequence}"))
            done.set()

        async def refiller(number: int) -> None:
            nonlocal written_during_claims
            while not done.is_set():
                summary = await refill_pool(repository, POOL)
                written_during_claims += summary.written
                refill_runs[number] += 1
                await asyncio.sleep(0.05)

        await asyncio.gather(*(claimer(n) for n in range(CLAIMERS)), refiller(0), refiller(1))
        records = await issued_records(container.client, local_table.table_name)
        items = await scan_table(container.client, local_table.table_name)

    codes = [code for code, _, _ in issued]
    assert len(codes) >= CODES
    assert len(set(codes)) == len(codes), "a code was issued twice"
    # The pool started with POOL.target codes, so the claims could only finish because both refillers kept
    # adding codes while they ran.
    assert min(refill_runs) >= 1, f"a refiller never ran during the claims: {refill_runs}"
    assert written_during_claims >= CODES - POOL.target
    assert all(POOL.format.matches(code) for code in codes)

    # Every returned code is recorded with its metadata, and nothing was recorded that was not returned.
    assert set(records) == set(codes)
    for code, used_by, reference in issued:
        assert records[code]["usedBy"]["S"] == used_by
        assert records[code]["reference"]["S"] == reference
        assert records[code]["pool"]["S"] == POOL.name
    slots = {item[SORT_KEY]["S"] for item in items if is_slot(item[PARTITION_KEY]["S"])}
    assert len(slots) > 0
